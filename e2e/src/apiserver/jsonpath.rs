//! The small JSONPath subset that printer columns and scale paths use.
//!
//! Supported: `.a.b`, `['a.b']`, `[0]`, `[*]`, and filters `[?(@.k=="v")]` / `[?(@.k)]`.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
    All,
    Filter(Vec<String>, Option<String>),
}

fn parse(path: &str) -> Result<Vec<Seg>, String> {
    let p = path.trim();
    let p = p
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(p);
    let p = p.strip_prefix('$').unwrap_or(p);
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    let mut segs = vec![];
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let start = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                let key: String = chars[start..i].iter().collect();
                if !key.is_empty() {
                    segs.push(Seg::Key(key));
                }
            }
            '[' => {
                let close =
                    find_close(&chars, i).ok_or_else(|| format!("unterminated [ in {path}"))?;
                let inner: String = chars[i + 1..close].iter().collect();
                segs.push(parse_bracket(inner.trim())?);
                i = close + 1;
            }
            _ => {
                let start = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                segs.push(Seg::Key(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(segs)
}

fn find_close(chars: &[char], open: usize) -> Option<usize> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (j, &c) in chars.iter().enumerate().skip(open) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    s.strip_prefix('\'')
        .and_then(|x| x.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|x| x.strip_suffix('"')))
        .unwrap_or(s)
        .to_string()
}

fn parse_bracket(inner: &str) -> Result<Seg, String> {
    if inner == "*" {
        return Ok(Seg::All);
    }
    if let Some(f) = inner.strip_prefix("?(").and_then(|s| s.strip_suffix(')')) {
        let f = f.trim();
        let (lhs, rhs) = match f.split_once("==") {
            Some((l, r)) => (l.trim(), Some(unquote(r))),
            None => (f, None),
        };
        let lhs = lhs
            .strip_prefix('@')
            .ok_or_else(|| format!("unsupported filter {f}"))?;
        let keys = lhs
            .split('.')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        return Ok(Seg::Filter(keys, rhs));
    }
    if let Ok(n) = inner.parse::<usize>() {
        return Ok(Seg::Index(n));
    }
    Ok(Seg::Key(unquote(inner)))
}

fn scalar_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Evaluates a JSONPath, returning every match (empty when nothing matches or the path is bad).
pub fn eval(obj: &Value, path: &str) -> Vec<Value> {
    let Ok(segs) = parse(path) else {
        return vec![];
    };
    let mut cur = vec![obj.clone()];
    for seg in segs {
        let mut next = vec![];
        for v in &cur {
            match &seg {
                Seg::Key(k) => next.extend(v.get(k.as_str()).cloned()),
                Seg::Index(i) => next.extend(v.get(*i).cloned()),
                Seg::All => match v {
                    Value::Array(a) => next.extend(a.iter().cloned()),
                    Value::Object(m) => next.extend(m.values().cloned()),
                    _ => {}
                },
                Seg::Filter(keys, want) => {
                    for item in v.as_array().into_iter().flatten() {
                        let got = keys.iter().try_fold(item, |c, k| c.get(k.as_str()));
                        let ok = match (got, want) {
                            (Some(g), Some(w)) => scalar_str(g) == *w,
                            (Some(g), None) => !g.is_null(),
                            (None, _) => false,
                        };
                        if ok {
                            next.push(item.clone());
                        }
                    }
                }
            }
        }
        cur = next;
    }
    cur
}

/// Evaluates a path and returns the first match.
pub fn first(obj: &Value, path: &str) -> Option<Value> {
    eval(obj, path).into_iter().next()
}

/// Sets the value at a simple dotted path (used by the scale subresource).
pub fn set(obj: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let segs = parse(path)?;
    let mut cur = obj;
    let n = segs.len();
    for (i, seg) in segs.into_iter().enumerate() {
        let Seg::Key(k) = seg else {
            return Err(format!("unsupported path for writing: {path}"));
        };
        let Some(m) = cur.as_object_mut() else {
            return Err(format!("{path}: not an object"));
        };
        if i + 1 == n {
            m.insert(k, value);
            return Ok(());
        }
        cur = m
            .entry(k)
            .or_insert_with(|| Value::Object(Default::default()));
    }
    Err(format!("empty path {path}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn evaluates_paths_indices_wildcards_and_filters() {
        let o = json!({"status": {"phase": "Healthy", "conditions": [
            {"type": "Ready", "status": "True"}, {"type": "Paused", "status": "False"}]},
            "spec": {"steps": [{"w": 1}, {"w": 2}]}, "metadata": {"labels": {"a.b/c": "x"}}});
        assert_eq!(first(&o, ".status.phase"), Some(json!("Healthy")));
        assert_eq!(first(&o, "{.spec.steps[1].w}"), Some(json!(2)));
        assert_eq!(eval(&o, ".spec.steps[*].w"), vec![json!(1), json!(2)]);
        assert_eq!(
            first(&o, ".status.conditions[?(@.type==\"Paused\")].status"),
            Some(json!("False"))
        );
        assert_eq!(first(&o, ".metadata.labels['a.b/c']"), Some(json!("x")));
        assert_eq!(first(&o, ".missing.x"), None);
    }

    #[test]
    fn set_creates_intermediate_objects() {
        let mut o = json!({});
        set(&mut o, ".spec.replicas", json!(3)).unwrap();
        assert_eq!(o, json!({"spec": {"replicas": 3}}));
        assert!(set(&mut o, ".spec.x[0]", json!(1)).is_err());
    }
}
