//! Decodes the protobuf bodies kubectl sends for access and token reviews (its typed
//! clients speak `application/vnd.kubernetes.protobuf`) into their JSON form (pure).
//!
//! Only the fields the reviews read are decoded: field numbers from upstream's
//! `k8s.io/api/authorization/v1/generated.proto` and `authentication/v1/generated.proto`.

use serde_json::{Map, Value, json};

/// The envelope's magic prefix.
const MAGIC: &[u8] = b"k8s\0";

/// One decoded field: its number and its payload.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn fields(buf: &[u8]) -> Option<Vec<(u64, Field<'_>)>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let key = varint(buf, &mut at)?;
        let field = match key & 7 {
            0 => Field::Varint(varint(buf, &mut at)?),
            2 => {
                let len = usize::try_from(varint(buf, &mut at)?).ok()?;
                let end = at.checked_add(len).filter(|e| *e <= buf.len())?;
                let b = &buf[at..end];
                at = end;
                Field::Bytes(b)
            }
            1 => {
                at = at.checked_add(8).filter(|e| *e <= buf.len())?;
                continue;
            }
            5 => {
                at = at.checked_add(4).filter(|e| *e <= buf.len())?;
                continue;
            }
            _ => return None,
        };
        out.push((key >> 3, field));
    }
    Some(out)
}

/// Decodes a message into JSON with `names` mapping field numbers to (name, kind), where kind
/// is `s` string, `S` repeated string, `i` integer, or a nested message's names.
fn message(buf: &[u8], names: &[(u64, &str, Kind)]) -> Option<Value> {
    let mut m = Map::new();
    for (n, f) in fields(buf)? {
        let Some((_, name, kind)) = names.iter().find(|(num, _, _)| *num == n) else {
            continue;
        };
        match (kind, f) {
            (Kind::Str, Field::Bytes(b)) => {
                m.insert((*name).into(), json!(String::from_utf8_lossy(b)));
            }
            (Kind::Strs, Field::Bytes(b)) => {
                let e = m.entry(*name).or_insert_with(|| json!([]));
                if let Some(a) = e.as_array_mut() {
                    a.push(json!(String::from_utf8_lossy(b)));
                }
            }
            (Kind::Int, Field::Varint(v)) => {
                m.insert((*name).into(), json!(v));
            }
            (Kind::Msg(inner), Field::Bytes(b)) => {
                m.insert((*name).into(), message(b, inner)?);
            }
            _ => return None,
        }
    }
    Some(Value::Object(m))
}

/// How a field is decoded.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Strs,
    Int,
    Msg(&'static [(u64, &'static str, Kind)]),
}

const RESOURCE_ATTRS: &[(u64, &str, Kind)] = &[
    (1, "namespace", Kind::Str),
    (2, "verb", Kind::Str),
    (3, "group", Kind::Str),
    (4, "version", Kind::Str),
    (5, "resource", Kind::Str),
    (6, "subresource", Kind::Str),
    (7, "name", Kind::Str),
];
const NON_RESOURCE_ATTRS: &[(u64, &str, Kind)] = &[(1, "path", Kind::Str), (2, "verb", Kind::Str)];
const ACCESS_SPEC: &[(u64, &str, Kind)] = &[
    (1, "resourceAttributes", Kind::Msg(RESOURCE_ATTRS)),
    (2, "nonResourceAttributes", Kind::Msg(NON_RESOURCE_ATTRS)),
    (3, "user", Kind::Str),
    (4, "groups", Kind::Strs),
    (6, "uid", Kind::Str),
];
const TOKEN_REVIEW_SPEC: &[(u64, &str, Kind)] =
    &[(1, "token", Kind::Str), (2, "audiences", Kind::Strs)];
const TOKEN_REQUEST_SPEC: &[(u64, &str, Kind)] = &[
    (1, "audiences", Kind::Strs),
    (4, "expirationSeconds", Kind::Int),
];

/// Decodes a protobuf review body of `kind` (`SelfSubjectAccessReview`,
/// `SubjectAccessReview`, `TokenReview` or `TokenRequest`) into its JSON form.
pub fn decode_review(body: &[u8]) -> Option<Value> {
    let unknown = fields(body.strip_prefix(MAGIC)?)?;
    let mut type_meta = json!({});
    let mut raw: &[u8] = &[];
    for (n, f) in unknown {
        match (n, f) {
            (1, Field::Bytes(b)) => {
                type_meta = message(b, &[(1, "apiVersion", Kind::Str), (2, "kind", Kind::Str)])?;
            }
            (2, Field::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let spec = match type_meta["kind"].as_str()? {
        "SelfSubjectAccessReview" | "SubjectAccessReview" => ACCESS_SPEC,
        "TokenReview" => TOKEN_REVIEW_SPEC,
        "TokenRequest" => TOKEN_REQUEST_SPEC,
        _ => return None,
    };
    let mut obj = message(raw, &[(2, "spec", Kind::Msg(spec))])?;
    obj["apiVersion"] = type_meta["apiVersion"].clone();
    obj["kind"] = type_meta["kind"].clone();
    obj["metadata"] = json!({});
    Some(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(n: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![
            u8::try_from(n << 3 | 2).unwrap(),
            u8::try_from(bytes.len()).unwrap(),
        ];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn a_self_subject_access_review_decodes() {
        let attrs = [
            tag(1, b"demo"),
            tag(2, b"patch"),
            tag(3, b"weir.dev"),
            tag(5, b"rollouts"),
            tag(6, b"status"),
        ]
        .concat();
        let spec = tag(1, &attrs);
        let raw = tag(2, &spec);
        let tm = [
            tag(1, b"authorization.k8s.io/v1"),
            tag(2, b"SelfSubjectAccessReview"),
        ]
        .concat();
        let body = [MAGIC.to_vec(), tag(1, &tm), tag(2, &raw)].concat();
        let v = decode_review(&body).unwrap();
        assert_eq!(v["kind"], "SelfSubjectAccessReview");
        assert_eq!(
            v["spec"]["resourceAttributes"],
            json!({"namespace": "demo", "verb": "patch", "group": "weir.dev",
                   "resource": "rollouts", "subresource": "status"})
        );
    }

    #[test]
    fn garbage_is_refused() {
        assert!(decode_review(b"{}").is_none());
        assert!(decode_review(b"k8s\0\x0a\xff").is_none());
        let tm = [tag(1, b"v1"), tag(2, b"Pod")].concat();
        assert!(decode_review(&[MAGIC.to_vec(), tag(1, &tm)].concat()).is_none());
    }
}
