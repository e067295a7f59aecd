//! The application configuration a subsidy-paying department files with the catalog: its
//! policies, each with the standard amount per period and the public-notice end of each period.
//!
//! ```json
//! {
//!   "policies": {
//!     "farm-2026": {
//!       "name": "Cultivated land protection subsidy",
//!       "standard_fen": 150000,
//!       "household": true,
//!       "periods": { "2026": { "notice_ends": "2026-11-20" } }
//!     }
//!   }
//! }
//! ```
//!
//! A configuration that breaks a rule below is the department's deployment error: every action
//! answers with an internal fault naming it, before touching any state.

use std::collections::BTreeMap;

use onecard_sdk::HandleError;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Policies by id (the id batch items name).
    pub policies: BTreeMap<String, Policy>,
    /// A claim on (policy, period, person) whose disbursement has not finished after this many
    /// seconds is taken to belong to a request that died, and may be taken over (the payment's
    /// idempotency key still prevents a second payment). Default 300, at least 30.
    #[serde(default = "default_claim_stale_after_seconds")]
    pub claim_stale_after_seconds: u64,
}

fn default_claim_stale_after_seconds() -> u64 {
    300
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub name: String,
    /// The policy standard: the most one person (or household) may receive per period, fen.
    pub standard_fen: u64,
    /// A household subsidy: paid only to the head of household's card. Default false.
    #[serde(default)]
    pub household: bool,
    /// The periods the department has published, by id (e.g. `2026`, `2026-Q4`).
    pub periods: BTreeMap<String, Period>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    /// The first local date (`YYYY-MM-DD`) after the public-notice period: nothing of this
    /// period is paid before it.
    pub notice_ends: String,
}

impl Config {
    /// Check the rules the types cannot express.
    pub fn validate(&self) -> Result<(), HandleError> {
        if self.claim_stale_after_seconds < 30 {
            return Err(fault("claim_stale_after_seconds must be at least 30".into()));
        }
        for (id, policy) in &self.policies {
            if policy.standard_fen == 0 {
                return Err(fault(format!("policy `{id}`: standard_fen must be positive")));
            }
            if let Some((period, p)) = policy.periods.iter().find(|(_, p)| !is_date(&p.notice_ends)) {
                return Err(fault(format!("policy `{id}` period `{period}`: notice_ends `{}` is not YYYY-MM-DD", p.notice_ends)));
            }
        }
        Ok(())
    }

    /// The policy and period an item names, or `POLICY_UNKNOWN` / `PERIOD_UNKNOWN`.
    pub fn period(&self, policy: &str, period: &str) -> Result<(&Policy, &Period), HandleError> {
        let p = self
            .policies
            .get(policy)
            .ok_or_else(|| HandleError::refused("POLICY_UNKNOWN", format!("policy `{policy}` is not paid by this application")))?;
        let period = p.periods.get(period).ok_or_else(|| {
            HandleError::refused("PERIOD_UNKNOWN", format!("period `{period}` of {} has not been published", p.name))
        })?;
        Ok((p, period))
    }

    pub fn claim_stale_after_ms(&self) -> i64 {
        i64::try_from(self.claim_stale_after_seconds.saturating_mul(1000)).unwrap_or(i64::MAX)
    }
}

fn fault(message: String) -> HandleError {
    HandleError::Internal(format!("configuration: {message}"))
}

/// `YYYY-MM-DD` with a plausible month and day (dates compare as strings in this form).
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !digits(0..4) || !digits(5..7) || !digits(8..10) {
        return false;
    }
    let (month, day) = (&s[5..7], &s[8..10]);
    ("01"..="12").contains(&month) && ("01"..="31").contains(&day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_faults() {
        assert!(is_date("2026-11-20"));
        for bad in ["2026-13-01", "2026-11-32", "2026/11/20", "26-11-20", "2026-1-20", "2026-11-00"] {
            assert!(!is_date(bad), "{bad}");
        }
        let config = |json: &str| serde_json::from_str::<Config>(json).unwrap().validate().unwrap_err().message().to_owned();
        assert!(config(r#"{"policies":{"p":{"name":"P","standard_fen":0,"periods":{}}}}"#).contains("standard_fen"));
        assert!(config(r#"{"policies":{"p":{"name":"P","standard_fen":1,"periods":{"1":{"notice_ends":"soon"}}}}}"#).contains("soon"));
        assert!(config(r#"{"policies":{},"claim_stale_after_seconds":5}"#).contains("claim_stale"));
        assert!(serde_json::from_str::<Config>(r#"{"policies":{},"extra":1}"#).is_err());
    }
}
