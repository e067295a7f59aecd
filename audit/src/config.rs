//! The audit writer's configuration (the `[audit]` table of the gateway's TOML).

use serde::{Deserialize, Serialize};

use crate::error::AuditError;

/// How the audit writer queues and batches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Decisions that may be admitted (reserved) or queued but not yet written. When it is full
    /// the gateway refuses new work with `AUDIT_BACKPRESSURE`. Default 10 000; at least 1.
    pub queue_capacity: usize,
    /// The most records written in one transaction. Default 512; at least 1.
    pub batch_max: usize,
    /// How long the writer waits for more records after the first of a batch, in milliseconds.
    /// Default 10.
    pub flush_interval_ms: u64,
    /// The longest pause between retries of a failed write, in milliseconds (retries start at
    /// 5 ms and double). Default 1 000; at least 1.
    pub retry_max_ms: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig { queue_capacity: 10_000, batch_max: 512, flush_interval_ms: 10, retry_max_ms: 1_000 }
    }
}

impl AuditConfig {
    /// Checks the values can be used.
    pub fn validate(&self) -> Result<(), AuditError> {
        if self.queue_capacity == 0 {
            return Err(AuditError::Config("queue_capacity must be at least 1".into()));
        }
        if self.batch_max == 0 {
            return Err(AuditError::Config("batch_max must be at least 1".into()));
        }
        if self.retry_max_ms == 0 {
            return Err(AuditError::Config("retry_max_ms must be at least 1".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_and_unknown_fields_are_refused() {
        let c: AuditConfig = toml::from_str("batch_max = 64").expect("parses");
        assert_eq!(c, AuditConfig { batch_max: 64, ..AuditConfig::default() });
        assert_eq!(AuditConfig::default().queue_capacity, 10_000);
        let err = toml::from_str::<AuditConfig>("queue_capacty = 5").expect_err("typo");
        assert!(err.to_string().contains("queue_capacty"), "{err}");
    }

    #[test]
    fn zero_sizes_are_refused() {
        for bad in [
            AuditConfig { queue_capacity: 0, ..AuditConfig::default() },
            AuditConfig { batch_max: 0, ..AuditConfig::default() },
            AuditConfig { retry_max_ms: 0, ..AuditConfig::default() },
        ] {
            let err = bad.validate().expect_err("refused");
            assert_eq!(err.code(), "AUDIT_CONFIG_INVALID");
        }
        AuditConfig::default().validate().expect("defaults are valid");
    }
}
