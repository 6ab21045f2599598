//! OpenAPI v2 and v3 documents built from the served resources.
//!
//! Every PATCH operation declares the `fieldValidation` query parameter, so kubectl (1.27+)
//! delegates validation to the server instead of validating client-side.

use super::resources::{Registry, ResourceDef};
use serde_json::{Map, Value, json};
use std::hash::{Hash, Hasher};

/// The schema name of a definition, e.g. `dev.weir.v1alpha1.Rollout` or `io.k8s.api.core.v1.Pod`.
pub fn schema_name(d: &ResourceDef) -> String {
    if d.custom {
        let rev: Vec<&str> = d.group.split('.').rev().collect();
        format!("{}.{}.{}", rev.join("."), d.version, d.kind)
    } else {
        let g = if d.group.is_empty() {
            "core"
        } else {
            d.group.split('.').next().unwrap_or("core")
        };
        format!("io.k8s.api.{g}.{}.{}", d.version, d.kind)
    }
}

fn gvk(d: &ResourceDef) -> Value {
    json!({"group": d.group, "version": d.version, "kind": d.kind})
}

/// The object schema of a definition (CRD schema, or an open object for built-ins).
pub fn object_schema(d: &ResourceDef) -> Value {
    let mut s = match &d.schema {
        Some(schema) => (**schema).clone(),
        None => json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
    };
    if let Some(m) = s.as_object_mut() {
        let props = m.entry("properties").or_insert_with(|| json!({}));
        if let Some(p) = props.as_object_mut() {
            p.insert("apiVersion".into(), json!({"type": "string"}));
            p.insert("kind".into(), json!({"type": "string"}));
            p.insert(
                "metadata".into(),
                json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
            );
        }
        m.insert("x-kubernetes-group-version-kind".into(), json!([gvk(d)]));
    }
    s
}

fn base_path(d: &ResourceDef) -> String {
    let prefix = if d.group.is_empty() {
        format!("/api/{}", d.version)
    } else {
        format!("/apis/{}/{}", d.group, d.version)
    };
    if d.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", d.plural)
    } else {
        format!("{prefix}/{}", d.plural)
    }
}

fn query_params(v3: bool, names: &[&str]) -> Vec<Value> {
    names
        .iter()
        .map(|n| {
            if v3 {
                json!({"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
            } else {
                json!({"name": n, "in": "query", "type": "string", "uniqueItems": true})
            }
        })
        .collect()
}

fn op(d: &ResourceDef, action: &str, verb: &str, v3: bool, params: &[&str]) -> Value {
    let reference = if v3 {
        format!("#/components/schemas/{}", schema_name(d))
    } else {
        format!("#/definitions/{}", schema_name(d))
    };
    let ok = if v3 {
        json!({"description": "OK", "content": {"application/json": {"schema": {"$ref": reference}}}})
    } else {
        json!({"description": "OK", "schema": {"$ref": reference}})
    };
    json!({
        "operationId": format!("{verb}{}", d.kind),
        "parameters": query_params(v3, params),
        "responses": {"200": ok},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(d),
    })
}

fn paths_for(d: &ResourceDef, v3: bool, out: &mut Map<String, Value>) {
    let base = base_path(d);
    let write = ["dryRun", "fieldManager", "fieldValidation"];
    let patch = ["dryRun", "fieldManager", "fieldValidation", "force"];
    out.insert(
        base.clone(),
        json!({"get": op(d, "list", "list", v3, &["labelSelector", "fieldSelector", "watch"]),
               "post": op(d, "post", "create", v3, &write)}),
    );
    out.insert(
        format!("{base}/{{name}}"),
        json!({"get": op(d, "get", "read", v3, &[]),
               "put": op(d, "put", "replace", v3, &write),
               "patch": op(d, "patch", "patch", v3, &patch),
               "delete": op(d, "delete", "delete", v3, &["dryRun"])}),
    );
    if d.status {
        out.insert(
            format!("{base}/{{name}}/status"),
            json!({"get": op(d, "get", "read", v3, &[]),
                   "put": op(d, "put", "replace", v3, &write),
                   "patch": op(d, "patch", "patch", v3, &patch)}),
        );
    }
}

/// The OpenAPI v3 document of one group/version.
pub fn v3_group_version(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let defs: Vec<_> = reg
        .all()
        .filter(|d| d.group == group && d.version == version)
        .collect();
    if defs.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for d in defs {
        paths_for(d, true, &mut paths);
        schemas.insert(schema_name(d), object_schema(d));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0-weir-local"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

fn hash_of(v: &Value) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.to_string().hash(&mut h);
    format!("{:016X}", h.finish())
}

/// The OpenAPI v3 root (`/openapi/v3`): one entry per group/version, with a content hash.
pub fn v3_root(reg: &Registry) -> Value {
    let mut paths = Map::new();
    for (g, vs) in reg.groups() {
        for v in vs {
            let key = if g.is_empty() {
                format!("api/{v}")
            } else {
                format!("apis/{g}/{v}")
            };
            let hash = v3_group_version(reg, &g, &v)
                .map(|d| hash_of(&d))
                .unwrap_or_default();
            paths.insert(
                key.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}")}),
            );
        }
    }
    json!({"paths": paths})
}

/// The OpenAPI v2 document (`/openapi/v2`, JSON).
pub fn v2(reg: &Registry) -> Value {
    let mut paths = Map::new();
    let mut defs = Map::new();
    for d in reg.all() {
        paths_for(d, false, &mut paths);
        defs.insert(schema_name(d), object_schema(d));
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0-weir-local"},
        "paths": paths,
        "definitions": defs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::defs_from_crd;

    #[test]
    fn crd_schema_appears_with_gvk_and_patch_declares_field_validation() {
        let mut reg = Registry::default();
        let crd = json!({"spec": {"group": "weir.dev", "names": {"plural": "rollouts", "kind": "Rollout"},
            "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object"}}}}}]}});
        assert_eq!(defs_from_crd(&crd).len(), 1);
        reg.set_crd("rollouts.weir.dev", &crd);
        let doc = v3_group_version(&reg, "weir.dev", "v1alpha1").unwrap();
        let s = &doc["components"]["schemas"]["dev.weir.v1alpha1.Rollout"];
        assert_eq!(s["x-kubernetes-group-version-kind"][0]["kind"], "Rollout");
        let patch = &doc["paths"]["/apis/weir.dev/v1alpha1/namespaces/{namespace}/rollouts/{name}"]
            ["patch"];
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        let root = v3_root(&reg);
        assert!(
            root["paths"]["apis/weir.dev/v1alpha1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .contains("hash=")
        );
        assert!(root["paths"].get("api/v1").is_some());
    }
}
