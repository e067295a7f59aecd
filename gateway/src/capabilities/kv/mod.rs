//! `kv`: key-value state in the application's own namespace (capacity counters, anti-passback
//! markers, idempotency records).
//!
//! The namespace is the catalog application id and is fixed by the host: a plugin cannot name
//! another application's keys. Backends: [`MemoryKv`] (one gateway: the embedded default, the CLI
//! and tests); state shared by several gateways goes to Redis ([`RedisKv`]).

mod memory;
mod redis;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use wasmtime::component::Linker;

use super::HostState;
use super::meter::{Metered, MeteredData};
use crate::bindings::onecard::plugin::kv::{Host, KvError, add_to_linker};

pub use memory::MemoryKv;
pub use self::redis::{RedisKv, RedisKvConfig};

/// Size limits of keys and values.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KvConfig {
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
}

impl Default for KvConfig {
    fn default() -> Self {
        KvConfig { max_key_bytes: 256, max_value_bytes: 64 * 1024 }
    }
}

/// A backend failure, as the plugin will see it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KvBackendError {
    #[error("the stored value is not a decimal integer")]
    NotANumber,
    #[error("key-value store unavailable: {0}")]
    Unavailable(String),
}

/// Where key-value state lives. Every operation is atomic per key.
#[async_trait]
pub trait KvBackend: Send + Sync + fmt::Debug {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, KvBackendError>;
    async fn set(&self, namespace: &str, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<(), KvBackendError>;
    async fn delete(&self, namespace: &str, key: &str) -> Result<bool, KvBackendError>;
    async fn compare_and_swap(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<bool, KvBackendError>;
    async fn increment(&self, namespace: &str, key: &str, delta: i64, ttl: Option<Duration>) -> Result<i64, KvBackendError>;
}

/// Per-instance kv state: the backend and the application's namespace.
#[derive(Debug, Clone)]
pub struct KvState {
    pub backend: Arc<dyn KvBackend>,
    pub namespace: String,
    pub config: KvConfig,
}

impl KvState {
    pub fn new(backend: Arc<dyn KvBackend>, namespace: &str, config: KvConfig) -> Self {
        KvState { backend, namespace: namespace.into(), config }
    }

    fn check(&self, key: &str, value: Option<&[u8]>) -> Result<(), KvError> {
        if key.is_empty() || key.len() > self.config.max_key_bytes {
            return Err(KvError::TooLarge(format!("key of {} bytes (1 to {} allowed)", key.len(), self.config.max_key_bytes)));
        }
        match value {
            Some(v) if v.len() > self.config.max_value_bytes => {
                Err(KvError::TooLarge(format!("value of {} bytes (at most {})", v.len(), self.config.max_value_bytes)))
            }
            _ => Ok(()),
        }
    }
}

fn ttl(ms: Option<u64>) -> Option<Duration> {
    ms.map(Duration::from_millis)
}

fn to_wit(e: KvBackendError) -> KvError {
    match e {
        KvBackendError::NotANumber => KvError::NotANumber,
        KvBackendError::Unavailable(m) => KvError::Unavailable(m),
    }
}

impl Host for Metered<'_, KvState> {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, KvError>> {
        let kv = self.charge("kv.get")?;
        if let Err(e) = kv.check(&key, None) {
            return Ok(Err(e));
        }
        Ok(kv.backend.get(&kv.namespace, &key).await.map_err(to_wit))
    }

    async fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: Option<u64>) -> wasmtime::Result<Result<(), KvError>> {
        let kv = self.charge("kv.set")?;
        if let Err(e) = kv.check(&key, Some(&value)) {
            return Ok(Err(e));
        }
        Ok(kv.backend.set(&kv.namespace, &key, value, ttl(ttl_ms)).await.map_err(to_wit))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<bool, KvError>> {
        let kv = self.charge("kv.delete")?;
        if let Err(e) = kv.check(&key, None) {
            return Ok(Err(e));
        }
        Ok(kv.backend.delete(&kv.namespace, &key).await.map_err(to_wit))
    }

    async fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<bool, KvError>> {
        let kv = self.charge("kv.compare-and-swap")?;
        if let Err(e) = kv.check(&key, Some(&new)) {
            return Ok(Err(e));
        }
        Ok(kv.backend.compare_and_swap(&kv.namespace, &key, expected, new, ttl(ttl_ms)).await.map_err(to_wit))
    }

    async fn increment(&mut self, key: String, delta: i64, ttl_ms: Option<u64>) -> wasmtime::Result<Result<i64, KvError>> {
        let kv = self.charge("kv.increment")?;
        if let Err(e) = kv.check(&key, None) {
            return Ok(Err(e));
        }
        Ok(kv.backend.increment(&kv.namespace, &key, delta, ttl(ttl_ms)).await.map_err(to_wit))
    }
}

pub(crate) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    add_to_linker::<HostState, MeteredData<KvState>>(linker, |s| Metered { state: &mut s.kv, meter: &mut s.meter })
}
