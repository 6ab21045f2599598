//! Base64 as Go's `encoding/base64` does it: the standard alphabet with padding (Secret data),
//! and the raw URL alphabet (list continue tokens). Decoding errors name the first bad byte,
//! as Go's `CorruptInputError` does.

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn encode_with(data: &[u8], table: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(table[((n >> (18 - 6 * i)) & 63) as usize]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 with padding.
pub fn encode(data: &[u8]) -> String {
    encode_with(data, STD, true)
}

/// URL-safe base64 without padding (Go's `RawURLEncoding`).
pub fn encode_raw_url(data: &[u8]) -> String {
    encode_with(data, URL, false)
}

fn value_of(table: &[u8; 64], c: u8) -> Option<u32> {
    table.iter().position(|&t| t == c).map(|p| p as u32)
}

/// The error message of a failed decode, in Go's words.
fn corrupt(at: usize) -> String {
    format!("illegal base64 data at input byte {at}")
}

/// Decodes like Go: `\r` and `\n` are skipped; with `pad`, the input must be padded.
fn decode_with(input: &str, table: &[u8; 64], pad: bool) -> Result<Vec<u8>, String> {
    let bytes: Vec<(usize, u8)> = input
        .bytes()
        .enumerate()
        .filter(|(_, b)| *b != b'\r' && *b != b'\n')
        .collect();
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let mut i = 0;
    while i < bytes.len() {
        let mut quantum = [0u32; 4];
        let mut got = 0;
        while got < 4 && i < bytes.len() {
            let (pos, c) = bytes[i];
            if c == b'=' && pad {
                // Padding is valid only at positions 2 and 3 of a quantum, and ends the input.
                if got < 2 || (got == 2 && bytes.get(i + 1).map(|b| b.1) != Some(b'=')) {
                    return Err(corrupt(pos));
                }
                let end = if got == 2 { i + 2 } else { i + 1 };
                if let Some((extra, _)) = bytes.get(end) {
                    return Err(corrupt(*extra));
                }
                let n = (quantum[0] << 18) | (quantum[1] << 12) | (quantum[2] << 6);
                out.push((n >> 16) as u8);
                if got == 3 {
                    out.push((n >> 8) as u8);
                }
                return Ok(out);
            }
            quantum[got] = value_of(table, c).ok_or_else(|| corrupt(pos))?;
            got += 1;
            i += 1;
        }
        let n = (quantum[0] << 18) | (quantum[1] << 12) | (quantum[2] << 6) | quantum[3];
        match got {
            4 => out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]),
            2 | 3 if !pad => {
                out.push((n >> 16) as u8);
                if got == 3 {
                    out.push((n >> 8) as u8);
                }
            }
            _ => return Err(corrupt(bytes[i - got].0)),
        }
    }
    Ok(out)
}

/// Standard base64 with padding, as Go decodes `[]byte` fields of JSON objects.
pub fn decode(input: &str) -> Result<Vec<u8>, String> {
    decode_with(input, STD, true)
}

/// URL-safe base64 without padding.
pub fn decode_raw_url(input: &str) -> Result<Vec<u8>, String> {
    decode_with(input, URL, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_standard_and_url_alphabets() {
        assert_eq!(encode(b"hello"), "aGVsbG8=");
        assert_eq!(encode(b"hi!"), "aGkh");
        assert_eq!(encode(b""), "");
        assert_eq!(encode_raw_url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn decodes_and_names_the_first_bad_byte_like_go() {
        assert_eq!(decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode("aGVs\nbG8=").unwrap(), b"hello");
        assert_eq!(decode("aGk=").unwrap(), b"hi");
        assert_eq!(decode("not base64!").unwrap_err(), corrupt(3));
        assert_eq!(decode("abc").unwrap_err(), corrupt(0));
        assert_eq!(decode("aGk=x").unwrap_err(), corrupt(4));
        assert_eq!(decode_raw_url("-_8").unwrap(), vec![0xfb, 0xff]);
        for s in ["", "YQ==", "YWI=", "YWJj"] {
            assert_eq!(encode(&decode(s).unwrap()), s);
        }
    }
}
