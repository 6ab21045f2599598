//! Decodes the `application/vnd.kubernetes.protobuf` bodies kubectl's typed clients send into
//! their JSON form (pure): the `runtime.Unknown` envelope, then the object's message, read
//! against a table of field numbers per message (`protobuf/kinds.rs`, from upstream's
//! `generated.proto` files, Kubernetes 1.32).
//!
//! Go's protobuf encoder writes every non-pointer field, zero values included, where JSON
//! leaves them out (`omitempty`); the tables say which fields are pointers, whose zero values
//! are kept. A field the tables do not know is an error when it carries a value, so nothing
//! the client sent is dropped silently.

mod kinds;

use crate::apiserver::codec;
use serde_json::{Map, Value, json};

pub use kinds::schema_of;

/// The envelope's magic prefix.
const MAGIC: &[u8] = b"k8s\0";

/// Why a body does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not protobuf, or cut short.
    #[error("malformed protobuf: {0}")]
    Malformed(String),
    /// A kind this server cannot read from protobuf.
    #[error("{0} is not decoded from protobuf by this server; send it as application/json")]
    UnknownKind(String),
    /// A field the tables do not know, carrying a value.
    #[error(
        "field {field} of {message} is not decoded from protobuf by this server; send the object as application/json"
    )]
    UnknownField {
        /// The message's name.
        message: &'static str,
        /// The field number.
        field: u64,
    },
}

/// One wire field's payload.
#[derive(Debug, Clone, Copy)]
pub enum Wire<'a> {
    /// A varint.
    Varint(u64),
    /// A length-delimited payload.
    Bytes(&'a [u8]),
    /// A fixed 32- or 64-bit value (never used by the kinds decoded here).
    Fixed,
}

impl Wire<'_> {
    /// Whether the payload is the zero value Go writes for an unset non-pointer field.
    fn is_zero(&self) -> bool {
        match self {
            Wire::Varint(v) => *v == 0,
            Wire::Bytes(b) => b.is_empty(),
            Wire::Fixed => false,
        }
    }
}

fn varint(buf: &[u8], at: &mut usize) -> Result<u64, DecodeError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf
            .get(*at)
            .ok_or_else(|| DecodeError::Malformed("varint cut short".into()))?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(DecodeError::Malformed("varint longer than 10 bytes".into()))
}

fn skip(buf: &[u8], at: &mut usize, n: usize) -> Result<(), DecodeError> {
    *at = at
        .checked_add(n)
        .filter(|e| *e <= buf.len())
        .ok_or_else(|| DecodeError::Malformed("field cut short".into()))?;
    Ok(())
}

/// Splits a message into its (field number, payload) pairs, in wire order.
pub fn fields(buf: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, DecodeError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let key = varint(buf, &mut at)?;
        let field = match key & 7 {
            0 => Wire::Varint(varint(buf, &mut at)?),
            2 => {
                let len = usize::try_from(varint(buf, &mut at)?)
                    .map_err(|_| DecodeError::Malformed("length too large".into()))?;
                let start = at;
                skip(buf, &mut at, len)?;
                Wire::Bytes(&buf[start..at])
            }
            1 => {
                skip(buf, &mut at, 8)?;
                Wire::Fixed
            }
            5 => {
                skip(buf, &mut at, 4)?;
                Wire::Fixed
            }
            t => return Err(DecodeError::Malformed(format!("wire type {t}"))),
        };
        out.push((key >> 3, field));
    }
    Ok(out)
}

/// How one field is decoded into JSON.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// A string, left out when empty.
    Str,
    /// A `*string`: kept when empty.
    PStr,
    /// A repeated string (empty elements kept: `apiGroups: [""]`).
    Strs,
    /// An integer, left out when zero.
    Int,
    /// A `*int32`/`*int64`: kept when zero.
    PInt,
    /// A bool, left out when false.
    Bool,
    /// A `*bool`: kept when false.
    PBool,
    /// Bytes, as base64 (Go's `[]byte` in JSON).
    Bytes,
    /// `map<string, string>`.
    StrMap,
    /// `map<string, bytes>`, values as base64.
    BytesMap,
    /// `map<string, Quantity>`.
    QuantityMap,
    /// `resource.Quantity` (a message holding its string).
    Quantity,
    /// `intstr.IntOrString`.
    IntOrStr,
    /// `metav1.Time`: RFC 3339, left out when zero.
    Time,
    /// A nested message, kept even when empty (`resources: {}`).
    Msg(&'static Schema),
    /// A repeated message.
    Msgs(&'static Schema),
    /// An embedded struct whose fields Go's JSON inlines into the parent.
    Inline(&'static Schema),
    /// Read and ignored (an object's `status` on create is ignored anyway).
    Skip,
}

/// A message: its name (for errors) and its fields.
#[derive(Debug)]
pub struct Schema {
    /// The Go type's name.
    pub name: &'static str,
    /// (number, JSON name, kind).
    pub fields: &'static [(u64, &'static str, Kind)],
}

fn text(b: &[u8]) -> Value {
    json!(String::from_utf8_lossy(b))
}

fn wrong(schema: &Schema, n: u64) -> DecodeError {
    DecodeError::Malformed(format!(
        "field {n} of {} has the wrong wire type",
        schema.name
    ))
}

/// A map entry's key (1) and value (2).
fn entry(b: &[u8]) -> Result<(String, Option<Wire<'_>>), DecodeError> {
    let mut key = String::new();
    let mut value = None;
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Wire::Bytes(k)) => key = String::from_utf8_lossy(k).into_owned(),
            (2, v) => value = Some(v),
            _ => return Err(DecodeError::Malformed("map entry".into())),
        }
    }
    Ok((key, value))
}

fn quantity(b: &[u8]) -> Result<Value, DecodeError> {
    let mut s = Value::String(String::new());
    for (n, f) in fields(b)? {
        if let (1, Wire::Bytes(v)) = (n, f) {
            s = text(v);
        }
    }
    Ok(s)
}

fn int_or_str(b: &[u8]) -> Result<Value, DecodeError> {
    let (mut ty, mut int, mut s) = (0, 0i64, String::new());
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Wire::Varint(v)) => ty = v,
            (2, Wire::Varint(v)) => int = i64::from(v as i32),
            (3, Wire::Bytes(v)) => s = String::from_utf8_lossy(v).into_owned(),
            _ => return Err(DecodeError::Malformed("IntOrString".into())),
        }
    }
    Ok(if ty == 1 { json!(s) } else { json!(int) })
}

fn time(b: &[u8]) -> Result<Option<Value>, DecodeError> {
    let (mut secs, mut nanos) = (0i64, 0u32);
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Wire::Varint(v)) => secs = v as i64,
            (2, Wire::Varint(v)) => nanos = v as u32,
            _ => return Err(DecodeError::Malformed("Time".into())),
        }
    }
    if secs == 0 && nanos == 0 {
        return Ok(None);
    }
    let t = chrono::DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| DecodeError::Malformed(format!("time {secs} out of range")))?;
    Ok(Some(json!(
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )))
}

/// Inserts `v` under `name`, appending when the field repeats.
fn push(m: &mut Map<String, Value>, name: &str, v: Value) {
    let e = m.entry(name).or_insert_with(|| json!([]));
    if let Some(a) = e.as_array_mut() {
        a.push(v);
    }
}

fn map_insert(m: &mut Map<String, Value>, name: &str, key: String, v: Value) {
    let e = m.entry(name).or_insert_with(|| json!({}));
    if let Some(o) = e.as_object_mut() {
        o.insert(key, v);
    }
}

/// Decodes one message against `schema` into a JSON object.
pub fn message(buf: &[u8], schema: &Schema) -> Result<Value, DecodeError> {
    let mut m = Map::new();
    for (n, f) in fields(buf)? {
        let Some((_, name, kind)) = schema.fields.iter().find(|(num, _, _)| *num == n) else {
            if f.is_zero() {
                continue;
            }
            return Err(DecodeError::UnknownField {
                message: schema.name,
                field: n,
            });
        };
        let name = *name;
        match (kind, f) {
            (Kind::Skip, _) => {}
            (Kind::Str, Wire::Bytes([])) => {}
            (Kind::Str | Kind::PStr, Wire::Bytes(b)) => {
                m.insert(name.into(), text(b));
            }
            (Kind::Strs, Wire::Bytes(b)) => push(&mut m, name, text(b)),
            (Kind::Int | Kind::Bool, Wire::Varint(0)) => {}
            (Kind::Int | Kind::PInt, Wire::Varint(v)) => {
                m.insert(name.into(), json!(v as i64));
            }
            (Kind::Bool | Kind::PBool, Wire::Varint(v)) => {
                m.insert(name.into(), json!(v != 0));
            }
            (Kind::Bytes, Wire::Bytes(b)) => {
                m.insert(name.into(), json!(codec::encode(b)));
            }
            (Kind::StrMap, Wire::Bytes(b)) => {
                let (k, v) = entry(b)?;
                let v = match v {
                    Some(Wire::Bytes(v)) => text(v),
                    _ => json!(""),
                };
                map_insert(&mut m, name, k, v);
            }
            (Kind::BytesMap, Wire::Bytes(b)) => {
                let (k, v) = entry(b)?;
                let v = match v {
                    Some(Wire::Bytes(v)) => json!(codec::encode(v)),
                    _ => json!(""),
                };
                map_insert(&mut m, name, k, v);
            }
            (Kind::QuantityMap, Wire::Bytes(b)) => {
                let (k, v) = entry(b)?;
                let v = match v {
                    Some(Wire::Bytes(v)) => quantity(v)?,
                    _ => json!(""),
                };
                map_insert(&mut m, name, k, v);
            }
            (Kind::Quantity, Wire::Bytes(b)) => {
                m.insert(name.into(), quantity(b)?);
            }
            (Kind::IntOrStr, Wire::Bytes(b)) => {
                let v = int_or_str(b)?;
                if v != json!(0) {
                    m.insert(name.into(), v);
                }
            }
            (Kind::Time, Wire::Bytes(b)) => {
                if let Some(t) = time(b)? {
                    m.insert(name.into(), t);
                }
            }
            (Kind::Msg(inner), Wire::Bytes(b)) => {
                m.insert(name.into(), message(b, inner)?);
            }
            (Kind::Msgs(inner), Wire::Bytes(b)) => push(&mut m, name, message(b, inner)?),
            (Kind::Inline(inner), Wire::Bytes(b)) => {
                if let Value::Object(o) = message(b, inner)? {
                    m.extend(o);
                }
            }
            _ => return Err(wrong(schema, n)),
        }
    }
    Ok(Value::Object(m))
}

/// The envelope's `apiVersion`, `kind` and raw object bytes.
pub fn unwrap_envelope(body: &[u8]) -> Result<(String, String, &[u8]), DecodeError> {
    let inner = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| DecodeError::Malformed("the body does not start with k8s\\0".into()))?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (n, f) in fields(inner)? {
        match (n, f) {
            (1, Wire::Bytes(b)) => {
                for (tn, tf) in fields(b)? {
                    match (tn, tf) {
                        (1, Wire::Bytes(v)) => api_version = String::from_utf8_lossy(v).into(),
                        (2, Wire::Bytes(v)) => kind = String::from_utf8_lossy(v).into(),
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => raw = b,
            (4, Wire::Bytes(ct))
                if !ct.is_empty() && ct != b"application/vnd.kubernetes.protobuf" =>
            {
                return Err(DecodeError::Malformed(format!(
                    "content type {} inside the envelope",
                    String::from_utf8_lossy(ct)
                )));
            }
            _ => {}
        }
    }
    if kind.is_empty() {
        return Err(DecodeError::Malformed("the envelope names no kind".into()));
    }
    Ok((api_version, kind, raw))
}

/// Decodes a protobuf object body into the JSON object a client would have sent, with its
/// `apiVersion` and `kind`; kinds without a table are [`DecodeError::UnknownKind`].
pub fn decode_object(body: &[u8]) -> Result<Value, DecodeError> {
    let (api_version, kind, raw) = unwrap_envelope(body)?;
    let schema = schema_of(&api_version, &kind)
        .ok_or_else(|| DecodeError::UnknownKind(format!("{kind} ({api_version})")))?;
    let mut obj = message(raw, schema)?;
    if let Some(o) = obj.as_object_mut() {
        o.insert("apiVersion".into(), json!(api_version));
        o.insert("kind".into(), json!(kind));
    }
    Ok(obj)
}

#[cfg(test)]
mod tests;
