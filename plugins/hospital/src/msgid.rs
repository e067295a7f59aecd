//! Message ids of the national medical-insurance interface: the 12-character institution code,
//! the local time `yyyyMMddHHmmss` and a 4-digit sequence (30 characters). The sequence is a kv
//! counter per local day, so two messages of the same second never share an id.

use onecard_sdk::clock::{Datetime, civil_from_days};
use onecard_sdk::{HandleError, kv};

/// The highest sequence number a 4-digit field holds.
const MAX_SEQUENCE: i64 = 9_999;

/// Local civil time of `now` as `yyyyMMddHHmmss`.
pub fn local_timestamp(now: &Datetime) -> String {
    let local_ms = now.unix_ms + i64::from(now.utc_offset_minutes) * 60_000;
    let (y, m, d) = civil_from_days(local_ms.div_euclid(86_400_000));
    let seconds = local_ms.rem_euclid(86_400_000) / 1_000;
    format!("{y:04}{m:02}{d:02}{:02}{:02}{:02}", seconds / 3_600, seconds / 60 % 60, seconds % 60)
}

/// The kv key of the sequence counter of `now`'s local day.
pub fn sequence_key(now: &Datetime) -> String {
    format!("msgseq:{}", &local_timestamp(now)[..8])
}

/// Allocate the next message id of the day. The counter lives a day past local midnight.
pub fn next(institution_code: &str, now: &Datetime) -> Result<String, HandleError> {
    let ttl = now.ms_until_local_midnight() + 86_400_000;
    let sequence = kv::increment(&sequence_key(now), 1, Some(ttl))?;
    if sequence > MAX_SEQUENCE {
        return Err(HandleError::refused(
            "MESSAGE_IDS_EXHAUSTED",
            "all 9999 insurance message ids of today are used; settle again tomorrow",
        ));
    }
    Ok(format!("{institution_code}{}{sequence:04}", local_timestamp(now)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use onecard_sdk::testing::DEFAULT_NOW_MS;

    #[test]
    fn local_time_in_china() {
        let t = Datetime { unix_ms: DEFAULT_NOW_MS + 59_000, utc_offset_minutes: 480 };
        assert_eq!(local_timestamp(&t), "20261123100059");
        // 2026-11-23T17:30:05Z is already the next day in China.
        let late = Datetime { unix_ms: 1_795_455_005_000, utc_offset_minutes: 480 };
        assert_eq!(local_timestamp(&late), "20261124013005");
        assert_eq!(sequence_key(&late), "msgseq:20261124");
    }
}
