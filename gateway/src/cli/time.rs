//! Parsing `--now` for reproducible local runs: unix milliseconds, or a China local date-time
//! `YYYY-MM-DDTHH:MM[:SS]` (a date crate would bring a time zone database for this one flag).

use crate::capabilities::clock::CHINA_UTC_OFFSET_MINUTES;

/// Unix milliseconds of `text`.
pub fn parse_now(text: &str) -> Result<i64, String> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let err = || format!("`{text}` is neither unix milliseconds nor a local time YYYY-MM-DDTHH:MM[:SS]");
    let (date, time) = text.split_once(['T', ' ']).ok_or_else(err)?;
    let d: Vec<i64> = date.split('-').map(str::parse).collect::<Result<_, _>>().map_err(|_| err())?;
    let t: Vec<i64> = time.split(':').map(str::parse).collect::<Result<_, _>>().map_err(|_| err())?;
    let ([y, m, day], [hh, mm, rest @ ..]) = (d.as_slice(), t.as_slice()) else { return Err(err()) };
    let ss = rest.first().copied().unwrap_or(0);
    let valid = (1..=12).contains(m) && (1..=31).contains(day) && (0..24).contains(hh) && (0..60).contains(mm) && (0..60).contains(&ss) && rest.len() <= 1;
    if !valid {
        return Err(err());
    }
    let days = days_from_civil(*y, *m, *day);
    let local_s = days * 86_400 + hh * 3_600 + mm * 60 + ss;
    Ok((local_s - i64::from(CHINA_UTC_OFFSET_MINUTES) * 60) * 1_000)
}

/// Days since 1970-01-01 of a Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_china_time() {
        assert_eq!(parse_now("2026-11-23T10:00").unwrap(), 1_795_399_200_000);
        assert_eq!(parse_now("2026-11-23 10:00:30").unwrap(), 1_795_399_230_000);
        assert_eq!(parse_now("1795399200000").unwrap(), 1_795_399_200_000);
        for bad in ["2026-13-01T10:00", "2026-11-23", "10:00", "2026-11-23T25:00", "2026-11-23T10:00:00:00"] {
            assert!(parse_now(bad).is_err(), "{bad}");
        }
    }
}
