//! Why a plugin did not load, or did not answer.
//!
//! [`InvokeError`] says who is to blame through its variant; the gateway turns it into an HTTP
//! answer in one place (`crate::error`).

/// A plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("plugin artifact hash mismatch: the catalog filed {expected}, the bytes hash to {actual}")]
    HashMismatch { expected: String, actual: String },
    #[error("plugin imports capability `{capability}`, which its catalog entry does not grant")]
    CapabilityNotGranted { capability: String },
    #[error("plugin imports `{import}`, which onecard does not provide")]
    UnknownImport { import: String },
    #[error("not a valid onecard plugin component: {0}")]
    Invalid(String),
    #[error("plugin `describe` failed: {0}")]
    Describe(String),
    #[error("wasmtime engine: {0}")]
    Engine(String),
    #[error("{0}")]
    Io(String),
}

/// A `handle` call did not produce a response.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvokeError {
    /// The plugin ran past its deadline (blame: plugin).
    #[error("plugin did not answer within its {deadline_ms} ms deadline")]
    Timeout { deadline_ms: u64 },
    /// The plugin trapped, panicked, exhausted memory, stack or host-call budget, or broke the
    /// contract (blame: plugin).
    #[error("plugin fault: {reason}")]
    Fault { reason: String },
    /// A business rule refused (blame: holder or request).
    #[error("{code}: {message}")]
    Refused { code: String, message: String },
    /// Parameters break a rule the schema cannot express (blame: caller).
    #[error("{code}: {message}")]
    InvalidParams { code: String, message: String },
    /// A backend the plugin depends on failed (blame: backend).
    #[error("{code}: {message}")]
    Backend { code: String, message: String },
    /// Every instance slot is in use (blame: gateway capacity).
    #[error("no free plugin instance slot")]
    Busy,
}

impl InvokeError {
    /// The stable error code.
    pub fn code(&self) -> &str {
        match self {
            InvokeError::Timeout { .. } => "PLUGIN_TIMEOUT",
            InvokeError::Fault { .. } => "PLUGIN_FAULT",
            InvokeError::Refused { code, .. } | InvokeError::InvalidParams { code, .. } | InvokeError::Backend { code, .. } => code,
            InvokeError::Busy => "GATEWAY_BUSY",
        }
    }
}

impl InvokeError {
    /// The human-readable message, without the code.
    pub fn message(&self) -> String {
        match self {
            InvokeError::Refused { message, .. } | InvokeError::InvalidParams { message, .. } | InvokeError::Backend { message, .. } => {
                message.clone()
            }
            other => other.to_string(),
        }
    }
}

/// Plugin-chosen codes: `^[A-Z][A-Z0-9_]{2,63}$`, and not in the gateway's reserved families.
pub(crate) fn valid_plugin_code(code: &str) -> bool {
    let shape = (3..=64).contains(&code.len())
        && code.starts_with(|c: char| c.is_ascii_uppercase())
        && code.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    let reserved = ["PLUGIN_", "GATEWAY_", "CHANNEL_", "CATALOG_", "AUDIT_"].iter().any(|p| code.starts_with(p));
    shape && !reserved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_codes() {
        assert!(valid_plugin_code("ALREADY_INSIDE"));
        assert!(valid_plugin_code("CAPACITY_REACHED2"));
        for bad in ["", "ok", "Already", "A-B", "PLUGIN_TIMEOUT", "CHANNEL_NOT_AUTHORIZED", &"X".repeat(65)] {
            assert!(!valid_plugin_code(bad), "{bad}");
        }
    }
}
