//! Durations as users write them in Weir's CRDs, in Go's (and Kubernetes') style: `500ms`,
//! `30s`, `1.5s`, `2m`, `1m30s`, `1h`.
//!
//! Every duration field in the API is a string matching [`DURATION_PATTERN`]; the
//! schema enforces the shape and [`parse_duration`] is the one place that turns it
//! into a [`std::time::Duration`].

use std::time::Duration;

/// The regular expression every duration field must match (also put in the CRD schema).
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";

/// A duration string that could not be parsed, naming the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{field}: invalid duration {value:?}: expected numbers each followed by h, m, s or ms, to the millisecond (for example 30s, 1.5s or 1m30s)"
)]
pub struct DurationError {
    /// The path of the field that held the value, such as `spec.analysis.interval`.
    pub field: String,
    /// The value as written.
    pub value: String,
}

/// Parses a Go-style duration: one or more numbers (with an optional fraction), each
/// followed by `h`, `m`, `s` or `ms`, such as `500ms`, `1.5s` or `1h2m3s`. The total must
/// be a whole number of milliseconds; `field` names the source in the error.
pub fn parse_duration(field: &str, value: &str) -> Result<Duration, DurationError> {
    let err = || DurationError {
        field: field.to_string(),
        value: value.to_string(),
    };
    // Sum in microseconds so that a fraction such as 1.5ms is seen not to be whole.
    let mut total_micros: u128 = 0;
    let mut rest = value;
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let int_len = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        if int_len == 0 {
            return Err(err());
        }
        let (int, after) = rest.split_at(int_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(f) => {
                let len = f.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
                if len == 0 {
                    return Err(err());
                }
                f.split_at(len)
            }
            None => ("", after),
        };
        let (micros_per_unit, after): (u128, &str) = if let Some(a) = after.strip_prefix("ms") {
            (1_000, a)
        } else if let Some(a) = after.strip_prefix('s') {
            (1_000_000, a)
        } else if let Some(a) = after.strip_prefix('m') {
            (60_000_000, a)
        } else if let Some(a) = after.strip_prefix('h') {
            (3_600_000_000, a)
        } else {
            return Err(err());
        };
        let whole: u128 = int.parse().map_err(|_| err())?;
        let mut micros = whole.checked_mul(micros_per_unit).ok_or_else(err)?;
        if !frac.is_empty() {
            // Only digits that can matter at microsecond precision; more must be zeros.
            let scale = 10u128.checked_pow(u32::try_from(frac.len()).map_err(|_| err())?);
            let numer: u128 = frac.parse().map_err(|_| err())?;
            let part = match scale {
                Some(scale) => {
                    let p = numer.checked_mul(micros_per_unit).ok_or_else(err)?;
                    if !p.is_multiple_of(scale) {
                        return Err(err());
                    }
                    p / scale
                }
                None => return Err(err()),
            };
            micros = micros.checked_add(part).ok_or_else(err)?;
        }
        total_micros = total_micros.checked_add(micros).ok_or_else(err)?;
        rest = after;
    }
    if !total_micros.is_multiple_of(1_000) {
        return Err(err());
    }
    let millis = u64::try_from(total_micros / 1_000).map_err(|_| err())?;
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
    fn parses_go_style_sums_and_fractions() {
        assert_eq!(parse_duration("f", "1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("f", "1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(
            parse_duration("f", "1h2m3.25s"),
            Ok(Duration::from_millis(3_723_250))
        );
        assert_eq!(parse_duration("f", "0.5h"), Ok(Duration::from_secs(1800)));
        assert_eq!(
            parse_duration("f", "1s500ms"),
            Ok(Duration::from_millis(1500))
        );
        assert_eq!(parse_duration("f", "2.000s"), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn rejects_bad_values_naming_field_and_value() {
        for bad in [
            "",
            "s",
            "10",
            "1.5ms",
            "1.s",
            ".5s",
            "1m30",
            "-1s",
            "10d",
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
        for s in [
            "1ms", "30s", "2m", "1h", "1.5s", "1m30s", "1h2m3.5s", "10d", "", "m", "1.s", "1m30",
        ] {
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
