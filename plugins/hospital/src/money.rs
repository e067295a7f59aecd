//! Amounts in medical-insurance messages are decimal yuan strings with two decimals (`"123.45"`);
//! the plugin and the settlement port count fen (`u64`). The conversion is exact both ways and
//! never goes through floating point. (Hand-written: a decimal crate would be a dependency of
//! every plugin build for two short functions.)

/// `12345` fen → `"123.45"`.
pub fn to_yuan(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// `"123.45"`, `"123.4"` or `"123"` → fen. Signs, exponents, more than two decimals, empty parts
/// and overflow are rejected (`None`).
pub fn parse_yuan(text: &str) -> Option<u64> {
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) if !f.is_empty() => (w, f),
        Some(_) => return None,
        None => (text, ""),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || fraction.len() > 2 || (!fraction.is_empty() && !digits(fraction)) {
        return None;
    }
    let yuan: u64 = whole.parse().ok()?;
    let cents: u64 = match fraction.len() {
        0 => 0,
        1 => fraction.parse::<u64>().ok()? * 10,
        _ => fraction.parse().ok()?,
    };
    yuan.checked_mul(100)?.checked_add(cents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_two_decimals() {
        assert_eq!(to_yuan(0), "0.00");
        assert_eq!(to_yuan(5), "0.05");
        assert_eq!(to_yuan(12_345), "123.45");
        assert_eq!(to_yuan(100), "1.00");
    }

    #[test]
    fn parses_exactly_and_round_trips() {
        assert_eq!(parse_yuan("123.45"), Some(12_345));
        assert_eq!(parse_yuan("0.1"), Some(10));
        assert_eq!(parse_yuan("7"), Some(700));
        assert_eq!(parse_yuan("0.07"), Some(7));
        for fen in [0, 1, 99, 100, 101, 987_654_321] {
            assert_eq!(parse_yuan(&to_yuan(fen)), Some(fen));
        }
    }

    #[test]
    fn rejects_what_is_not_a_two_decimal_amount() {
        for bad in ["", ".5", "1.", "1.234", "-1.00", "+1", "1e3", "1,00", " 1.00", "NaN", "99999999999999999999.00"] {
            assert_eq!(parse_yuan(bad), None, "{bad:?}");
        }
    }
}
