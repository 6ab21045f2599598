//! The order of a merged list in a strategic merge patch, as upstream's `normalizeElementOrder`
//! and `mergeSortedSlice` compute it: the items the patch names keep the patch's order (or the
//! `$setElementOrder` list's), the server's other items keep theirs, and the two are
//! interleaved where the server's order relates them.

use serde_json::Value;

fn identity(v: &Value, key: Option<&str>) -> Value {
    match key {
        Some(k) => v.get(k).cloned().unwrap_or(Value::Null),
        None => v.clone(),
    }
}

fn index(ids: &[Value], id: &Value) -> Option<usize> {
    ids.iter().position(|x| x == id)
}

/// Orders `merged`: `patch_order` is the patch's list (or `$setElementOrder`), `server_order`
/// the live list before the patch; `key` is the merge key (`None` for primitive lists).
pub fn normalize(
    merged: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let patch_ids: Vec<Value> = patch_order.iter().map(|v| identity(v, key)).collect();
    let server_ids: Vec<Value> = server_order.iter().map(|v| identity(v, key)).collect();
    let (mut named, mut server_only): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|v| index(&patch_ids, &identity(v, key)).is_some());
    named.sort_by_key(|v| index(&patch_ids, &identity(v, key)));
    server_only.sort_by_key(|v| index(&server_ids, &identity(v, key)).unwrap_or(usize::MAX));
    let mut out = Vec::with_capacity(named.len() + server_only.len());
    let (mut left, mut right) = (
        server_only.into_iter().peekable(),
        named.into_iter().peekable(),
    );
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                match (
                    index(&server_ids, &identity(l, key)),
                    index(&server_ids, &identity(r, key)),
                ) {
                    (Some(li), Some(ri)) => li < ri,
                    _ => false,
                }
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(v: &[Value]) -> Vec<&str> {
        v.iter().map(|i| i["name"].as_str().unwrap()).collect()
    }

    #[test]
    fn the_patch_order_wins_for_the_items_it_names() {
        let server = vec![json!({"name": "app"}), json!({"name": "sidecar"})];
        let patch = vec![json!({"name": "sidecar"}), json!({"name": "app"})];
        let out = normalize(server.clone(), &patch, &server, Some("name"));
        assert_eq!(names(&out), ["sidecar", "app"]);
    }

    #[test]
    fn new_items_come_first_and_server_items_keep_their_relative_order() {
        let server = vec![json!({"name": "a"}), json!({"name": "b"})];
        let merged = vec![
            json!({"name": "a"}),
            json!({"name": "b"}),
            json!({"name": "c"}),
        ];
        let out = normalize(merged, &[json!({"name": "c"})], &server, Some("name"));
        assert_eq!(names(&out), ["c", "a", "b"]);
        let merged = vec![json!({"name": "a"}), json!({"name": "b"})];
        let out = normalize(merged, &[json!({"name": "b"})], &server, Some("name"));
        assert_eq!(names(&out), ["a", "b"], "interleaved by the server's order");
    }
}
