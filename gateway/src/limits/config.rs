//! Configuration of the rate limiters (the `[limits]` table of the gateway configuration).

use std::num::NonZeroU64;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the limiters keep their memory bounded. The limits themselves come from the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// How often the background pruner drops the state of keys that have fully replenished
    /// (card holders not seen for a while), in milliseconds. Default `60000` (one minute).
    /// Zero is refused when the configuration is read.
    #[serde(default = "default_prune_interval_ms")]
    pub prune_interval_ms: NonZeroU64,
}

/// One minute.
const DEFAULT_PRUNE_INTERVAL_MS: NonZeroU64 = NonZeroU64::new(60_000).expect("60000 is not zero");

fn default_prune_interval_ms() -> NonZeroU64 {
    DEFAULT_PRUNE_INTERVAL_MS
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig { prune_interval_ms: default_prune_interval_ms() }
    }
}

impl LimitsConfig {
    /// The prune interval as a duration.
    pub fn prune_interval(&self) -> Duration {
        Duration::from_millis(self.prune_interval_ms.get())
    }
}
