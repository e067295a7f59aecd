//! The daily payment total of a wallet, kept as a kv counter per wallet and local day. A payment
//! reserves its amount with an atomic compare-and-swap *before* it is submitted, so concurrent
//! payments can never together exceed the limit; a payment that fails gives its reservation back.

use onecard_sdk::clock::Datetime;
use onecard_sdk::{HandleError, kv};

use crate::config::Tier;

pub fn daily_key(wallet_id: &str, now: &Datetime) -> String {
    format!("daily:{wallet_id}:{}", now.local_date())
}

/// Paid (or reserved) today, fen.
pub fn spent(key: &str) -> Result<u64, HandleError> {
    let raw = kv::get(key)?;
    Ok(raw.and_then(|v| String::from_utf8(v).ok()?.parse::<u64>().ok()).unwrap_or(0))
}

fn fen(amount: u64) -> Result<i64, HandleError> {
    i64::try_from(amount).map_err(|_| HandleError::invalid("INVALID_PARAMS", "parameters: field `amount_fen`: too large"))
}

/// Attempts of one reservation while concurrent payments keep changing the day's total.
const RESERVE_ATTEMPTS: usize = 32;

/// Reserve `amount` under `key` or refuse without keeping anything. Returns the day's new total.
///
/// A compare-and-swap from the total read, never an increment undone afterwards: the total never
/// passes the limit, not even for a moment, so what another payment reads and tells its holder
/// is always a real total.
pub fn reserve(key: &str, amount: u64, tier: &Tier, now: &Datetime) -> Result<u64, HandleError> {
    let delta = fen(amount)?;
    let ttl = now.ms_until_local_midnight() + 86_400_000;
    let limit = i64::try_from(tier.daily_payment_limit_fen).unwrap_or(i64::MAX);
    for _ in 0..RESERVE_ATTEMPTS {
        let raw = kv::get(key)?;
        let before = raw.as_deref().and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok()).unwrap_or(0);
        let total = before.checked_add(delta).ok_or_else(|| HandleError::invalid("INVALID_PARAMS", "parameters: field `amount_fen`: too large"))?;
        if total > limit {
            let before = u64::try_from(before).unwrap_or(0);
            return Err(HandleError::refused(
                "DAILY_LIMIT_EXCEEDED",
                format!(
                    "the wallet may pay {} fen a day; {before} fen are paid today, {} fen remain",
                    tier.daily_payment_limit_fen,
                    tier.daily_payment_limit_fen.saturating_sub(before)
                ),
            ));
        }
        if kv::compare_and_swap(key, raw.as_deref(), total.to_string().as_bytes(), Some(ttl))? {
            return Ok(u64::try_from(total).unwrap_or(0));
        }
    }
    Err(HandleError::backend("KV_CONTENDED", format!("the daily total `{key}` kept changing under concurrent payments")))
}

/// Give a reservation back.
pub fn release(key: &str, amount: u64) -> Result<(), HandleError> {
    kv::increment(key, -fen(amount)?, None)?;
    Ok(())
}
