//! Settings of channel authentication (the `[auth]` table of the gateway configuration).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default bound on the distance between a request's timestamp and the gateway's clock.
pub const DEFAULT_MAX_SKEW_SECS: u64 = 300;

/// Channel-authentication settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Largest accepted |request timestamp − gateway time|, seconds (both ends inclusive).
    pub max_skew_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig { max_skew_secs: DEFAULT_MAX_SKEW_SECS }
    }
}

impl AuthConfig {
    /// How long a nonce is remembered: twice the skew, so that a request cannot be replayed
    /// anywhere in the window `[timestamp − skew, timestamp + skew]` it is accepted in.
    pub fn nonce_ttl(&self) -> Duration {
        Duration::from_secs(self.max_skew_secs.saturating_mul(2).max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_fields() {
        let c: AuthConfig = toml::from_str("").expect("defaults");
        assert_eq!(c.max_skew_secs, 300);
        assert_eq!(c.nonce_ttl(), Duration::from_secs(600));
        let c: AuthConfig = toml::from_str("max_skew_secs = 30").expect("set");
        assert_eq!(c.nonce_ttl(), Duration::from_secs(60));
        assert!(toml::from_str::<AuthConfig>("max_skew = 30").is_err());
    }
}
