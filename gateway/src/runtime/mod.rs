//! The plugin runtime: loads WebAssembly components and runs one action per fresh instance.
//!
//! It knows nothing about cards, money or the catalog: it verifies artifact hashes, compiles
//! (with an on-disk cache), links the capabilities an application is granted, and runs `handle`
//! under a deadline, a memory cap, a stack cap and a host-call budget. What a capability does is
//! in [`crate::capabilities`]; who may call what is the request pipeline's business.

mod artifact;
mod config;
mod engine;
mod error;
mod limiter;
mod plugin;

use std::path::Path;
use std::time::Duration;

use wasmtime::Engine;

pub use artifact::sha256_hex;
pub use config::RuntimeConfig;
pub use engine::{EpochTicker, build_engine};
pub use error::{InvokeError, LoadError};
pub use limiter::{InstanceLimiter, MemoryCapReached};
pub use plugin::{Invocation, LoadedPlugin, WarmInstance};

use crate::capabilities::{Grants, InstanceLimits};

/// The engine, its epoch ticker and the compile cache: one per gateway process.
#[derive(Debug)]
pub struct Runtime {
    engine: Engine,
    config: RuntimeConfig,
    _ticker: EpochTicker,
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        let engine = build_engine(&config).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        let ticker = EpochTicker::start(&engine, Duration::from_millis(config.epoch_tick_ms.max(1)));
        Ok(Runtime { engine, config, _ticker: ticker })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// The deadline of one plugin call.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.config.deadline_ms)
    }

    /// Per-instance limits derived from the configuration.
    pub fn instance_limits(&self) -> InstanceLimits {
        InstanceLimits {
            memory_bytes: self.config.memory_cap_bytes(),
            max_host_calls: self.config.max_host_calls,
            max_log_bytes: self.config.max_log_bytes,
        }
    }

    /// Load a plugin whose filed SHA-256 is `expected_sha256`, granted `grants`.
    ///
    /// Refuses bytes whose hash differs, a component importing a capability not granted or an
    /// interface onecard does not offer, and a component whose `describe` fails.
    pub async fn load(&self, bytes: &[u8], expected_sha256: &str, grants: &Grants) -> Result<LoadedPlugin, LoadError> {
        let actual = sha256_hex(bytes);
        if !actual.eq_ignore_ascii_case(expected_sha256) {
            return Err(LoadError::HashMismatch { expected: expected_sha256.to_ascii_lowercase(), actual });
        }
        let component = artifact::compile(&self.engine, bytes, &actual, self.config.cache_dir.as_deref())?;
        LoadedPlugin::link(self, component, actual, grants).await
    }

    /// Load a plugin file for inspection or a local run: its own hash is trusted, and it is
    /// granted everything it asks for.
    pub async fn load_file_unfiled(&self, path: &Path) -> Result<LoadedPlugin, LoadError> {
        let bytes = std::fs::read(path).map_err(|e| LoadError::Io(format!("{}: {e}", path.display())))?;
        self.load(&bytes, &sha256_hex(&bytes), &Grants::all()).await
    }
}
