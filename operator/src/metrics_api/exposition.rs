//! The Prometheus text exposition format, parsed generically: any metric, labels in any
//! order, escapes in label values, `NaN` and `±Inf`, optional timestamps (ignored).

use std::collections::BTreeMap;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name, with its `_bucket`/`_sum`/`_count` suffix if any.
    pub name: String,
    /// The labels, by name.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// A line that is not valid exposition text; as Prometheus does, the whole scrape fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}: {text:?}")]
pub struct ParseError {
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: &'static str,
    /// The line (cut to 120 characters).
    pub text: String,
}

/// Parses exposition text, keeping the samples whose metric name `keep` accepts.
pub fn parse(text: &str, keep: impl Fn(&str) -> bool) -> Result<Vec<Sample>, ParseError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |message| ParseError {
            line: i + 1,
            message,
            text: line.chars().take(120).collect(),
        };
        let name_end = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(line.len());
        let name = &line[..name_end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(err("no metric name"));
        }
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(after) = rest.strip_prefix('{') {
            rest = parse_labels(after, &mut labels).map_err(err)?;
        }
        // An OpenMetrics exemplar (`… 3 # {trace_id="a"} 1`) is not part of the sample.
        let rest = rest.split_once(" # ").map_or(rest, |(sample, _)| sample);
        let mut fields = rest.split_whitespace();
        let value = fields.next().ok_or_else(|| err("no value"))?;
        let value = parse_value(value).ok_or_else(|| err("the value is not a number"))?;
        if let Some(ts) = fields.next()
            && ts.parse::<i64>().is_err()
        {
            return Err(err("the timestamp is not an integer"));
        }
        if fields.next().is_some() {
            return Err(err("text after the timestamp"));
        }
        if keep(name) {
            out.push(Sample {
                name: name.to_string(),
                labels,
                value,
            });
        }
    }
    Ok(out)
}

/// Parses `name="value",…}` and returns what follows the closing brace.
fn parse_labels<'a>(
    mut s: &'a str,
    labels: &mut BTreeMap<String, String>,
) -> Result<&'a str, &'static str> {
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix('}') {
            return Ok(rest);
        }
        let name_end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or("unterminated labels")?;
        let name = &s[..name_end];
        if name.is_empty() {
            return Err("a label without a name");
        }
        s = s[name_end..].trim_start();
        s = s
            .strip_prefix('=')
            .ok_or("a label without '='")?
            .trim_start();
        s = s.strip_prefix('"').ok_or("a label value without quotes")?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("an unterminated label value"),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    Some((_, c)) => {
                        value.push('\\');
                        value.push(c);
                    }
                    None => return Err("an unterminated label value"),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err("a label given twice");
        }
        s = s[end + 1..].trim_start();
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
        } else if !s.starts_with('}') {
            return Err("labels not separated by ','");
        }
    }
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_parse_whatever_the_label_order_and_escapes() {
        let text = r#"
# HELP weir_requests_total Requests.
# TYPE weir_requests_total counter
weir_requests_total{status_code="200",namespace="prod",classification="success"} 412
weir_requests_total{namespace="prod" , classification="failure",path="a\"b\\c\nd",} 3 1700000000000
weir_response_latency_ms_bucket{le="+Inf",namespace="prod"} 415
weir_connections_open 2
nan_gauge NaN
with_exemplar_total 7 # {trace_id="abc"} 1.0 1700000000.000
# EOF
"#;
        let s = parse(text, |_| true).unwrap();
        assert_eq!(s.len(), 6);
        assert_eq!(s[5].value, 7.0);
        assert_eq!(s[0].name, "weir_requests_total");
        assert_eq!(s[0].labels["namespace"], "prod");
        assert_eq!(s[0].labels["status_code"], "200");
        assert_eq!(s[0].value, 412.0);
        assert_eq!(s[1].labels["path"], "a\"b\\c\nd");
        assert_eq!(s[1].value, 3.0);
        assert_eq!(s[2].labels["le"], "+Inf");
        assert!(s[3].labels.is_empty());
        assert!(s[4].value.is_nan());
    }

    #[test]
    fn keep_filters_by_metric_name() {
        let s = parse("a 1\nb 2\na_x 3\n", |n| n.starts_with('a')).unwrap();
        assert_eq!(s.iter().map(|s| s.value).collect::<Vec<_>>(), [1.0, 3.0]);
    }

    #[test]
    fn malformed_lines_fail_the_whole_scrape_naming_the_line() {
        for (text, message) in [
            ("ok 1\n{a=\"b\"} 1", "no metric name"),
            ("m{a=\"b\" 1", "labels not separated by ','"),
            ("m{a=b} 1", "a label value without quotes"),
            ("m{a=\"b} 1", "an unterminated label value"),
            ("m{a=\"1\",a=\"2\"} 1", "a label given twice"),
            ("m", "no value"),
            ("m one", "the value is not a number"),
            ("m 1 soon", "the timestamp is not an integer"),
        ] {
            let e = parse(text, |_| true).unwrap_err();
            assert_eq!(e.message, message, "{text}");
        }
        assert_eq!(parse("ok 1\n{a=\"b\"} 1", |_| true).unwrap_err().line, 2);
    }
}
