//! Decodes the protobuf bodies kubectl sends for access and token reviews (its typed
//! clients speak `application/vnd.kubernetes.protobuf`) into their JSON form (pure).
//!
//! Only the fields the reviews read are decoded: field numbers from upstream's
//! `k8s.io/api/authorization/v1/generated.proto` and `authentication/v1/generated.proto`.

use crate::apiserver::protobuf::{Kind, Schema, message, unwrap_envelope};
use serde_json::{Value, json};

const RESOURCE_ATTRS: Schema = Schema {
    name: "ResourceAttributes",
    fields: &[
        (1, "namespace", Kind::Str),
        (2, "verb", Kind::Str),
        (3, "group", Kind::Str),
        (4, "version", Kind::Str),
        (5, "resource", Kind::Str),
        (6, "subresource", Kind::Str),
        (7, "name", Kind::Str),
    ],
};
const NON_RESOURCE_ATTRS: Schema = Schema {
    name: "NonResourceAttributes",
    fields: &[(1, "path", Kind::Str), (2, "verb", Kind::Str)],
};
const ACCESS_SPEC: Schema = Schema {
    name: "SubjectAccessReviewSpec",
    fields: &[
        (1, "resourceAttributes", Kind::Msg(&RESOURCE_ATTRS)),
        (2, "nonResourceAttributes", Kind::Msg(&NON_RESOURCE_ATTRS)),
        (3, "user", Kind::Str),
        (4, "groups", Kind::Strs),
        (5, "extra", Kind::Skip),
        (6, "uid", Kind::Str),
    ],
};
const TOKEN_REVIEW_SPEC: Schema = Schema {
    name: "TokenReviewSpec",
    fields: &[(1, "token", Kind::Str), (2, "audiences", Kind::Strs)],
};
const TOKEN_REQUEST_SPEC: Schema = Schema {
    name: "TokenRequestSpec",
    fields: &[
        (1, "audiences", Kind::Strs),
        (2, "boundObjectRef", Kind::Skip),
        (4, "expirationSeconds", Kind::PInt),
    ],
};

const ACCESS_REVIEW: Schema = Schema {
    name: "SubjectAccessReview",
    fields: &[
        (1, "metadata", Kind::Skip),
        (2, "spec", Kind::Msg(&ACCESS_SPEC)),
        (3, "status", Kind::Skip),
    ],
};
const TOKEN_REVIEW: Schema = Schema {
    name: "TokenReview",
    fields: &[
        (1, "metadata", Kind::Skip),
        (2, "spec", Kind::Msg(&TOKEN_REVIEW_SPEC)),
        (3, "status", Kind::Skip),
    ],
};
const TOKEN_REQUEST: Schema = Schema {
    name: "TokenRequest",
    fields: &[
        (1, "metadata", Kind::Skip),
        (2, "spec", Kind::Msg(&TOKEN_REQUEST_SPEC)),
        (3, "status", Kind::Skip),
    ],
};

/// Decodes a protobuf review body of `kind` (`SelfSubjectAccessReview`,
/// `SubjectAccessReview`, `TokenReview` or `TokenRequest`) into its JSON form.
pub fn decode_review(body: &[u8]) -> Option<Value> {
    let (api_version, kind, raw) = unwrap_envelope(body).ok()?;
    let schema = match kind.as_str() {
        "SelfSubjectAccessReview" | "SubjectAccessReview" => &ACCESS_REVIEW,
        "TokenReview" => &TOKEN_REVIEW,
        "TokenRequest" => &TOKEN_REQUEST,
        _ => return None,
    };
    let mut obj = message(raw, schema).ok()?;
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    obj["metadata"] = json!({});
    Some(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAGIC: &[u8] = b"k8s\0";

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
