//! The application configuration the e-CNY service files with the catalog: the wallet tiers and
//! their limits, the merchants payments may go to, and the operator's backend name.

use std::collections::BTreeMap;

use onecard_sdk::HandleError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Backend name of the e-CNY operator in the catalog entry. Default `ecny`.
    #[serde(default = "default_backend")]
    pub backend: String,
    /// Wallet tiers by the operator's tier name. Default: DOMAIN.md's two tiers, `class4` (phone
    /// number only) and `class2` (ID and bank account), see [`default_tiers`].
    #[serde(default = "default_tiers")]
    pub tiers: BTreeMap<String, Tier>,
    /// Merchants a card payment may go to, by merchant id (as the acquirer knows it). Default none.
    #[serde(default)]
    pub merchants: BTreeMap<String, Merchant>,
}

/// The limits of one wallet tier, in fen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// The most the wallet may hold.
    pub balance_limit_fen: u64,
    /// The most one payment may be.
    pub single_payment_limit_fen: u64,
    /// The most all payments of one local day may add up to.
    pub daily_payment_limit_fen: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Merchant {
    pub name: String,
}

fn default_backend() -> String {
    "ecny".into()
}

/// DOMAIN.md, "Digital yuan": the lowest, phone-only tier holds 10,000 CNY, pays at most 2,000
/// at once and 5,000 a day; a tier opened with ID and bank account 500,000 / 50,000 / 100,000.
pub fn default_tiers() -> BTreeMap<String, Tier> {
    BTreeMap::from([
        ("class4".into(), Tier { balance_limit_fen: 1_000_000, single_payment_limit_fen: 200_000, daily_payment_limit_fen: 500_000 }),
        ("class2".into(), Tier { balance_limit_fen: 50_000_000, single_payment_limit_fen: 5_000_000, daily_payment_limit_fen: 10_000_000 }),
    ])
}

impl Config {
    /// The limits of `tier`; a wallet of a tier the configuration no longer has is a
    /// configuration fault.
    pub fn tier(&self, tier: &str) -> Result<Tier, HandleError> {
        self.tiers.get(tier).copied().ok_or_else(|| HandleError::Internal(format!("configuration: no wallet tier `{tier}`")))
    }

    pub fn merchant(&self, id: &str) -> Result<&Merchant, HandleError> {
        self.merchants
            .get(id)
            .ok_or_else(|| HandleError::refused("MERCHANT_UNKNOWN", format!("merchant `{id}` does not accept e-CNY card payments here")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_domain_tiers() {
        let config: Config = serde_json::from_str("{}").unwrap();
        assert_eq!(config.backend, "ecny");
        assert_eq!(config.tier("class4").unwrap().daily_payment_limit_fen, 500_000);
        assert_eq!(config.tier("class2").unwrap().balance_limit_fen, 50_000_000);
        assert!(serde_json::from_str::<Config>(r#"{"tiers":{"x":{"balance_limit_fen":1}}}"#).is_err());
        assert!(serde_json::from_str::<Config>(r#"{"limits":{}}"#).is_err());
    }
}
