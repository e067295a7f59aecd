//! Identifier formats of the programme, checked in one place.
//!
//! Channel numbers, region codes, resident ID numbers (GB 11643 with the ISO 7064 MOD 11-2
//! check character), card identification codes and artifact hashes arrive from TOML files,
//! HTTP bodies and issuers; every entry point validates them with these functions so that the
//! database never holds a malformed identifier.

/// Weights of the ISO 7064 MOD 11-2 check over the first 17 digits of a GB 11643 number.
const SSN_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for each value of the weighted sum modulo 11.
const SSN_CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// Computes the check character for the first 17 digits of a resident ID number.
///
/// Returns `None` when `first17` is not exactly 17 ASCII digits.
pub fn ssn_check_char(first17: &str) -> Option<char> {
    if first17.len() != 17 || !first17.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sum: u32 = first17
        .bytes()
        .zip(SSN_WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    Some(SSN_CHECK[(sum % 11) as usize])
}

/// Builds a valid 18-character ID number from its first 17 digits (for tests and tools).
///
/// # Panics
/// When `first17` is not 17 digits: callers pass literals they control.
pub fn ssn_with_check(first17: &str) -> String {
    let check = ssn_check_char(first17).unwrap_or_else(|| panic!("{first17:?} is not 17 digits"));
    format!("{first17}{check}")
}

/// Validates a resident ID number; returns it normalised (upper-case `X`).
pub fn validate_ssn(ssn: &str) -> Result<String, String> {
    let ssn = ssn.trim().to_ascii_uppercase();
    if ssn.len() != 18 {
        return Err("a social security number has 18 characters".into());
    }
    let (body, check) = ssn.split_at(17);
    let Some(expected) = ssn_check_char(body) else {
        return Err("the first 17 characters of a social security number are digits".into());
    };
    if !check.starts_with(expected) {
        return Err("the social security number's check character is wrong".into());
    }
    let month: u32 = body[10..12].parse().unwrap_or(0);
    let day: u32 = body[12..14].parse().unwrap_or(0);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err("the social security number's birth date is not a date".into());
    }
    Ok(ssn)
}

fn all_digits(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit())
}

/// A province code: two digits (e.g. `33`).
pub fn validate_province_code(code: &str) -> Result<(), String> {
    if all_digits(code, 2) && code != "00" {
        Ok(())
    } else {
        Err(format!("province code {code:?} is not two digits"))
    }
}

/// A city code: four digits starting with its province code (e.g. `3301`).
pub fn validate_city_code(code: &str) -> Result<(), String> {
    if all_digits(code, 4) && !code.ends_with("00") {
        Ok(())
    } else {
        Err(format!("city code {code:?} is not four digits (province + city)"))
    }
}

/// A channel number: ten digits whose first two are the province code (e.g. `3300000001`).
pub fn validate_channel_id(id: &str) -> Result<(), String> {
    if all_digits(id, 10) {
        Ok(())
    } else {
        Err(format!("channel id {id:?} is not ten digits with a province prefix"))
    }
}

/// An issuing-region code: six digits; pooling-region codes ending in `99` are accepted.
pub fn validate_region_code(code: &str) -> Result<(), String> {
    if all_digits(code, 6) {
        Ok(())
    } else {
        Err(format!("region code {code:?} is not six digits"))
    }
}

/// A card identification code: 32 hex characters, region (6) + `D156` + `000005` + 16 hex.
pub fn validate_card_id_code(code: &str) -> Result<(), String> {
    let ok = code.len() == 32
        && code.bytes().all(|b| b.is_ascii_hexdigit())
        && code[..6].bytes().all(|b| b.is_ascii_digit())
        && code[6..10].eq_ignore_ascii_case("D156")
        && &code[10..16] == "000005";
    if ok {
        Ok(())
    } else {
        Err(format!(
            "card identification code {code:?} is not region(6) + D156 + 000005 + 16 hex"
        ))
    }
}

/// A SHA-256 digest as 64 lower-case hex characters.
pub fn validate_sha256_hex(s: &str) -> Result<(), String> {
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(format!("{s:?} is not a SHA-256 digest (64 lower-case hex characters)"))
    }
}

/// A catalog slug (department, application, venue, key ids): 1–64 of `a-z 0-9 - _ .`,
/// starting with a letter or digit.
pub fn validate_slug(what: &str, s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.'
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {s:?} must be 1-64 characters of a-z, 0-9, '-', '_', '.' starting with a letter or digit"
        ))
    }
}

/// A new record identifier of `N` bytes as lowercase hex: the first 6 bytes are the Unix time in
/// milliseconds (big-endian), the rest random (as UUIDv7 lays them out).
///
/// Request ids and access-log ids are keys of B-tree indexes that grow by thousands of rows a
/// second. With purely random keys every insert lands on a different leaf page, and on SQLite
/// each such page is rewritten into the WAL at every commit; keys that start with the time land
/// on the index's last page. The random part keeps them unique and unguessable within a
/// millisecond.
pub fn time_ordered_hex<const N: usize>() -> String {
    const TIME_BYTES: usize = 6;
    const { assert!(N >= TIME_BYTES + 8, "keep at least 8 random bytes") };
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut bytes = [0u8; N];
    bytes[..TIME_BYTES].copy_from_slice(&millis.to_be_bytes()[8 - TIME_BYTES..]);
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes[TIME_BYTES..]);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ordered_ids_sort_by_creation_and_differ_within_a_millisecond() {
        let first = time_ordered_hex::<16>();
        let burst: Vec<String> = (0..1000).map(|_| time_ordered_hex::<16>()).collect();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later = time_ordered_hex::<16>();
        assert_eq!(first.len(), 32);
        assert!(first.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')), "{first}");
        assert!(later > first, "{later} sorts after {first}");
        assert!(burst.iter().all(|id| id[..12] >= first[..12] && id[..12] <= later[..12]));
        let distinct: std::collections::BTreeSet<&String> = burst.iter().collect();
        assert_eq!(distinct.len(), burst.len(), "no two ids repeat");
        let millis = u64::from_str_radix(&later[..12], 16).expect("hex time");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as u64;
        assert!(now.abs_diff(millis) < 60_000, "the prefix is the time in ms: {millis} vs {now}");
        assert_eq!(time_ordered_hex::<14>().len(), 28);
    }

    #[test]
    fn known_valid_numbers_pass() {
        assert_eq!(validate_ssn("11010519491231002X").as_deref(), Ok("11010519491231002X"));
        assert_eq!(validate_ssn("11010519491231002x").as_deref(), Ok("11010519491231002X"));
        assert!(validate_ssn("440524188001010014").is_ok());
    }

    #[test]
    fn wrong_check_char_fails() {
        assert!(validate_ssn("110105194912310021").is_err());
        assert!(validate_ssn("440524188001010015").is_err());
        assert!(validate_ssn("4405241880010100").is_err());
        assert!(validate_ssn("44052418800101001A").is_err());
    }

    #[test]
    fn generator_matches_known_examples() {
        assert_eq!(ssn_with_check("11010519491231002"), "11010519491231002X");
        assert_eq!(ssn_with_check("44052418800101001"), "440524188001010014");
        // Every generated number validates.
        for seq in 0..50 {
            let n = ssn_with_check(&format!("33010619900307{seq:03}"));
            assert!(validate_ssn(&n).is_ok(), "{n}");
        }
    }

    #[test]
    fn channel_and_region_codes() {
        assert!(validate_channel_id("3300000001").is_ok());
        assert!(validate_channel_id("330000001").is_err());
        assert!(validate_channel_id("33000000a1").is_err());
        assert!(validate_region_code("339900").is_ok());
        assert!(validate_city_code("3301").is_ok());
        assert!(validate_city_code("3300").is_err());
        assert!(validate_card_id_code("330100D156000005ABCDEF0123456789").is_ok());
        assert!(validate_card_id_code("330100D156000006ABCDEF0123456789").is_err());
        assert!(validate_sha256_hex(&"0".repeat(64)).is_ok());
        assert!(validate_sha256_hex(&"A".repeat(64)).is_err());
        assert!(validate_slug("id", "hz-parks").is_ok());
        assert!(validate_slug("id", "HZ").is_err());
    }
}
