//! The file source: a multi-document YAML file of Kubernetes objects, reloaded on change.

use super::Publisher;
use crate::error::Error;
use crate::index::Kind;
use crate::index::objects::kind_of;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// Parses every document of a YAML file into JSON values; `List` objects are flattened.
pub fn parse_documents(text: &str, path: &Path) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    for (index, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(doc).map_err(|source| Error::ParseYaml {
            path: path.to_path_buf(),
            index,
            source,
        })?;
        match value {
            Value::Null => {}
            Value::Object(ref map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
                let items = map
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                out.extend(items);
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// Loads a whole file's objects into the publisher: each kind is reset to what the file holds.
pub fn load(publisher: &mut Publisher, objects: &[Value]) {
    let mut by_kind: BTreeMap<Kind, Vec<Value>> =
        Kind::ALL.iter().map(|k| (*k, Vec::new())).collect();
    for o in objects {
        let kind = o.get("kind").and_then(Value::as_str).unwrap_or("");
        match kind_of(kind) {
            Some(k) => by_kind.entry(k).or_default().push(o.clone()),
            None => tracing::debug!(kind, "ignoring an object of a kind the proxy does not use"),
        }
    }
    for (kind, objects) in by_kind {
        publisher.reset(kind, &objects);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

/// Polls `path` every `poll`; on a change of content, reloads and publishes.
pub async fn run(
    path: PathBuf,
    poll: Duration,
    mut publisher: Publisher,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let mut last_stamp: Option<Stamp> = None;
    let mut last_text: Option<String> = None;
    let mut warned = false;
    loop {
        match tokio::fs::metadata(&path).await {
            Ok(meta) => {
                warned = false;
                let stamp = Stamp {
                    modified: meta.modified().ok(),
                    len: meta.len(),
                };
                if last_stamp.as_ref() != Some(&stamp) {
                    last_stamp = Some(stamp);
                    reload(&path, &mut publisher, &mut last_text).await;
                }
            }
            Err(e) => {
                if !warned {
                    let err = Error::ReadConfig {
                        path: path.clone(),
                        source: e,
                    };
                    tracing::warn!(error = %crate::index::error_chain(&err), "config file unavailable; keeping the last snapshot");
                    warned = true;
                }
                last_stamp = None;
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(poll) => {}
        }
    }
}

async fn reload(path: &Path, publisher: &mut Publisher, last_text: &mut Option<String>) {
    let text = match tokio::fs::read_to_string(path).await {
        Ok(t) => t,
        Err(source) => {
            let err = Error::ReadConfig {
                path: path.to_path_buf(),
                source,
            };
            tracing::warn!(error = %crate::index::error_chain(&err), "keeping the last snapshot");
            publisher.failed();
            return;
        }
    };
    if last_text.as_deref() == Some(text.as_str()) {
        return;
    }
    match parse_documents(&text, path) {
        Ok(objects) => {
            load(publisher, &objects);
            publisher.publish();
            *last_text = Some(text);
        }
        Err(err) => {
            tracing::warn!(error = %crate::index::error_chain(&err), "keeping the last snapshot");
            publisher.failed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_and_lists_are_flattened_and_empty_documents_skipped() {
        let text = "---\nkind: Service\nmetadata: {name: a}\n---\n---\nkind: List\nitems:\n- kind: Pod\n  metadata: {name: p}\n";
        let docs = parse_documents(text, Path::new("x.yaml")).unwrap();
        let kinds: Vec<_> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, vec!["Service", "Pod"]);
    }

    #[test]
    fn a_yaml_syntax_error_names_the_document() {
        let err =
            parse_documents("kind: Service\n---\nkind: [oops\n", Path::new("x.yaml")).unwrap_err();
        assert!(err.to_string().contains("document 1"), "{err}");
    }
}
