//! Hand-written schema fragments for fields that schemars cannot describe the Kubernetes way.

use schemars::{Schema, SchemaGenerator, json_schema};

/// A value that is an integer or a string (`x-kubernetes-int-or-string`), such as a quantity.
pub fn int_or_string(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "x-kubernetes-int-or-string": true })
}

/// Any JSON value, kept as written (`x-kubernetes-preserve-unknown-fields`).
pub fn preserve_unknown(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}

/// A pod template: checked for containers with a name and an image, the rest kept as written.
///
/// The full `PodTemplateSpec` schema is several hundred kilobytes, too large for the
/// `last-applied-configuration` annotation of a client-side `kubectl apply`; the
/// operator validates the rest when it builds the Deployment.
pub fn pod_template(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "required": ["spec"],
        "properties": {
            "metadata": {
                "type": "object",
                "properties": {
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}}
                },
                "x-kubernetes-preserve-unknown-fields": true
            },
            "spec": {
                "type": "object",
                "required": ["containers"],
                "properties": {
                    "containers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["name", "image"],
                            "properties": {
                                "name": {"type": "string", "minLength": 1},
                                "image": {"type": "string", "minLength": 1}
                            },
                            "x-kubernetes-preserve-unknown-fields": true
                        }
                    }
                },
                "x-kubernetes-preserve-unknown-fields": true
            }
        }
    })
}
