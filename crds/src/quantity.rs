//! SMI `v1alpha1` TrafficSplit weights are Kubernetes quantities (`"500m"`, `1`, `100`).
//!
//! The rule Weir applies: every weight, whatever its SMI version, is normalised to a
//! whole number of **milli-units** (`u64`). `"500m"` is 500, `1` is 1000, `100` is
//! 100000, `"1.5"` is 1500 and `"2k"` is 2000000. Weights are relative, so only the
//! ratios matter: `100`/`50` and `"100m"`/`"50m"` split traffic identically. A weight
//! that is negative, finer than one milli-unit, too large, or not a quantity at all
//! is an error; nothing is rounded silently.

/// Why a weight could not be turned into milli-units.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The weight is below zero.
    #[error("weight {0:?} is negative; weights must be zero or more")]
    Negative(String),
    /// The text is not a Kubernetes quantity.
    #[error("weight {0:?} is not a quantity (expected a number such as 100, \"500m\" or \"1.5\")")]
    Malformed(String),
    /// The value has a fractional part smaller than one milli-unit.
    #[error("weight {0:?} is finer than 1m, the smallest weight step")]
    TooFine(String),
    /// The value does not fit in 64 bits of milli-units.
    #[error("weight {0:?} is too large")]
    TooLarge(String),
}

/// Converts a JSON weight (integer, float or quantity string) into milli-units.
pub fn weight_millis(value: &serde_json::Value) -> Result<u64, QuantityError> {
    match value {
        serde_json::Value::String(s) => parse_quantity_millis(s),
        serde_json::Value::Number(n) => parse_quantity_millis(&n.to_string()),
        other => Err(QuantityError::Malformed(other.to_string())),
    }
}

/// Parses a Kubernetes quantity string (decimal SI or binary suffix) into milli-units.
pub fn parse_quantity_millis(text: &str) -> Result<u64, QuantityError> {
    let s = text.trim();
    let malformed = || QuantityError::Malformed(text.to_string());
    let (negative, unsigned) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(num_end);
    let (int_part, frac_part) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(malformed());
    }
    if !int_part
        .bytes()
        .chain(frac_part.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return Err(malformed());
    }
    // Scale: value = digits * 10^exp10 * 2^exp2, expressed in milli-units.
    let (exp10, exp2): (i32, u32) = match suffix {
        "" => (3, 0),
        "m" => (0, 0),
        "k" => (6, 0),
        "M" => (9, 0),
        "G" => (12, 0),
        "T" => (15, 0),
        "P" => (18, 0),
        "Ki" => (3, 10),
        "Mi" => (3, 20),
        "Gi" => (3, 30),
        "Ti" => (3, 40),
        s if s.starts_with(['e', 'E']) => {
            let e: i32 = s[1..].parse().map_err(|_| malformed())?;
            (e.checked_add(3).ok_or_else(malformed)?, 0)
        }
        _ => return Err(malformed()),
    };
    let digits: String = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let exp10 = exp10 - frac_part.len() as i32;
    let is_zero = digits.is_empty() || digits.bytes().all(|b| b == b'0');
    if is_zero {
        return Ok(0);
    }
    if negative {
        return Err(QuantityError::Negative(text.to_string()));
    }
    let too_large = || QuantityError::TooLarge(text.to_string());
    let mut mantissa: u128 = if digits.len() > 38 {
        return Err(too_large());
    } else {
        digits.parse().map_err(|_| malformed())?
    };
    let mut e = exp10;
    while e < 0 {
        if !mantissa.is_multiple_of(10) {
            return Err(QuantityError::TooFine(text.to_string()));
        }
        mantissa /= 10;
        e += 1;
    }
    let scaled = 10u128
        .checked_pow(e as u32)
        .and_then(|p| mantissa.checked_mul(p))
        .and_then(|v| v.checked_mul(1u128 << exp2))
        .ok_or_else(too_large)?;
    u64::try_from(scaled).map_err(|_| too_large())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn documented_examples() {
        assert_eq!(parse_quantity_millis("500m"), Ok(500));
        assert_eq!(parse_quantity_millis("1"), Ok(1000));
        assert_eq!(parse_quantity_millis("100"), Ok(100_000));
        assert_eq!(parse_quantity_millis("1.5"), Ok(1500));
        assert_eq!(parse_quantity_millis("2k"), Ok(2_000_000));
        assert_eq!(parse_quantity_millis("1Ki"), Ok(1_024_000));
        assert_eq!(parse_quantity_millis("1e2"), Ok(100_000));
        assert_eq!(parse_quantity_millis("0"), Ok(0));
        assert_eq!(parse_quantity_millis("-0"), Ok(0));
        assert_eq!(parse_quantity_millis(".5"), Ok(500));
    }

    #[test]
    fn json_numbers_and_strings() {
        assert_eq!(weight_millis(&json!(50)), Ok(50_000));
        assert_eq!(weight_millis(&json!("50m")), Ok(50));
        assert_eq!(weight_millis(&json!(0.25)), Ok(250));
        assert!(matches!(
            weight_millis(&json!(true)),
            Err(QuantityError::Malformed(_))
        ));
        assert!(matches!(
            weight_millis(&json!(null)),
            Err(QuantityError::Malformed(_))
        ));
    }

    #[test]
    fn bad_quantities() {
        assert!(matches!(
            parse_quantity_millis("-5"),
            Err(QuantityError::Negative(_))
        ));
        assert!(matches!(
            parse_quantity_millis("-500m"),
            Err(QuantityError::Negative(_))
        ));
        for bad in ["", "abc", "5x", "1.2.3", "m", "--1", "1 0", "1e", "."] {
            assert!(
                matches!(parse_quantity_millis(bad), Err(QuantityError::Malformed(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_quantity_millis("0.5m"),
            Err(QuantityError::TooFine(_))
        ));
        assert!(matches!(
            parse_quantity_millis("1P0"),
            Err(QuantityError::Malformed(_))
        ));
        assert!(matches!(
            parse_quantity_millis("100000000P"),
            Err(QuantityError::TooLarge(_))
        ));
        assert!(matches!(
            parse_quantity_millis("1e400"),
            Err(QuantityError::TooLarge(_))
        ));
    }

    proptest! {
        #[test]
        fn integers_are_thousand_millis(n in 0u64..1_000_000_000) {
            prop_assert_eq!(parse_quantity_millis(&n.to_string()), Ok(n * 1000));
            prop_assert_eq!(parse_quantity_millis(&format!("{n}m")), Ok(n));
        }

        #[test]
        fn never_panics(s in ".{0,24}") {
            let _ = parse_quantity_millis(&s);
        }
    }
}
