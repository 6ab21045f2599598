//! Durations as users write them in Weir's CRDs: `500ms`, `30s`, `2m`, `1h`.
//!
//! Every duration field in the API is a string matching [`DURATION_PATTERN`]; the
//! schema enforces the shape and [`parse_duration`] is the one place that turns it
//! into a [`std::time::Duration`].

use std::time::Duration;

/// The regular expression every duration field must match (also put in the CRD schema).
pub const DURATION_PATTERN: &str = "^[0-9]+(ms|s|m|h)$";

/// A duration string that could not be parsed, naming the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{field}: invalid duration {value:?}: expected a whole number followed by ms, s, m or h (for example 30s)"
)]
pub struct DurationError {
    /// The path of the field that held the value, such as `spec.analysis.interval`.
    pub field: String,
    /// The value as written.
    pub value: String,
}

/// Parses `500ms`, `30s`, `2m` or `1h`; `field` names the source in the error.
pub fn parse_duration(field: &str, value: &str) -> Result<Duration, DurationError> {
    let err = || DurationError {
        field: field.to_string(),
        value: value.to_string(),
    };
    let split = value.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    let (digits, unit) = value.split_at(split);
    if digits.is_empty() {
        return Err(err());
    }
    let n: u64 = digits.parse().map_err(|_| err())?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(err()),
    };
    let millis = n.checked_mul(millis_per_unit).ok_or_else(err)?;
    Ok(Duration::from_millis(millis))
}

/// Formats a duration in the largest unit that represents it exactly (`90s`, `2m`, `500ms`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    for (unit, size) in [("h", 3_600_000u128), ("m", 60_000), ("s", 1_000)] {
        if ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_duration("f", "500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("f", "30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("f", "2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("f", "1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("f", "0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_bad_values_naming_field_and_value() {
        for bad in [
            "",
            "s",
            "10",
            "1.5s",
            "-1s",
            "10d",
            "1m30s",
            " 1s",
            "1S",
            "99999999999999999999h",
        ] {
            let err = parse_duration("spec.analysis.interval", bad).unwrap_err();
            assert_eq!(err.field, "spec.analysis.interval");
            assert_eq!(err.value, bad);
            let msg = err.to_string();
            assert!(msg.contains("spec.analysis.interval"), "{msg}");
            assert!(msg.contains(&format!("{bad:?}")), "{msg}");
        }
    }

    #[test]
    fn pattern_agrees_with_parser_on_samples() {
        let re = regex::Regex::new(DURATION_PATTERN).unwrap();
        for s in ["1ms", "30s", "2m", "1h", "1.5s", "10d", "", "m"] {
            assert_eq!(re.is_match(s), parse_duration("f", s).is_ok(), "{s}");
        }
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(ms in 0u64..10_000_000_000) {
            let d = Duration::from_millis(ms);
            prop_assert_eq!(parse_duration("f", &format_duration(d)), Ok(d));
        }
    }
}
