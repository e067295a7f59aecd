//! `kv`: key-value state in the application's own namespace (capacity counters, anti-passback
//! markers, idempotency records).
//!
//! The namespace is the catalog application id and is fixed by the host: a plugin cannot name
//! another application's keys. Backends: [`JournaledKv`] (one gateway on SQLite, the default:
//! state in memory, journaled to a file beside the database, so it survives a restart),
//! [`SqlKv`] (PostgreSQL, shared by the city's gateways),
//! [`RedisKv`] (shared by several gateways), [`MemoryKv`] (the CLI's `plugin run` and tests).

mod change_log;
mod journaled;
mod memory;
mod redis;
mod sql;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use wasmtime::component::Linker;

use super::HostState;
use super::meter::{Metered, MeteredData};
use crate::bindings::onecard::plugin::kv::{Host, KvError, add_to_linker};

pub use journaled::JournaledKv;
pub use memory::{Changed, Journal, MemoryKv};
pub use self::redis::{RedisKv, RedisKvConfig};
pub use sql::{SqlKv, sqlite_file_beside};

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
    /// Resolves once every change made before the call is durable (a clean shutdown waits on
    /// it). Backends that write through before answering have nothing to wait for.
    async fn flush(&self) {}
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

/// The behaviour every backend keeps, run against each of them by their own tests.
#[cfg(test)]
pub(crate) mod contract {
    use std::time::Duration;

    use super::{KvBackend, KvBackendError};

    /// Namespaces are separate, compare-and-swap swaps only from the expected value (absent
    /// included), increments count and refuse text without changing it, entries expire, delete
    /// tells whether a live entry was there. Uses namespaces unique to the call.
    pub(crate) async fn holds(kv: &dyn KvBackend) {
        let ns = format!("contract-{}", hex::encode(rand::random::<[u8; 6]>()));
        let other = format!("{ns}-other");
        assert_eq!(kv.get(&ns, "k").await.unwrap(), None);
        assert!(kv.compare_and_swap(&ns, "k", None, b"a".to_vec(), Some(Duration::from_secs(60))).await.unwrap());
        assert!(!kv.compare_and_swap(&ns, "k", None, b"b".to_vec(), None).await.unwrap(), "exists already");
        assert!(!kv.compare_and_swap(&ns, "k", Some(b"x".to_vec()), b"b".to_vec(), None).await.unwrap(), "wrong expectation");
        assert!(kv.compare_and_swap(&ns, "k", Some(b"a".to_vec()), b"b".to_vec(), None).await.unwrap());
        assert_eq!(kv.get(&ns, "k").await.unwrap(), Some(b"b".to_vec()));
        assert_eq!(kv.get(&other, "k").await.unwrap(), None, "namespaces are separate");
        assert_eq!(kv.increment(&ns, "n", 2, Some(Duration::from_secs(60))).await.unwrap(), 2);
        assert_eq!(kv.increment(&ns, "n", 3, None).await.unwrap(), 5);
        assert_eq!(kv.increment(&ns, "n", -6, None).await.unwrap(), -1);
        assert_eq!(kv.increment(&ns, "k", 1, None).await, Err(KvBackendError::NotANumber));
        assert_eq!(kv.get(&ns, "k").await.unwrap(), Some(b"b".to_vec()), "a failed increment changed nothing");
        kv.set(&ns, "bin", vec![0xff, 0x00, 0x7f], None).await.unwrap();
        assert_eq!(kv.get(&ns, "bin").await.unwrap(), Some(vec![0xff, 0x00, 0x7f]), "values are bytes");
        kv.set(&ns, "t", b"v".to_vec(), Some(Duration::from_millis(50))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(kv.get(&ns, "t").await.unwrap(), None, "expired");
        assert!(!kv.delete(&ns, "t").await.unwrap(), "an expired entry was not there");
        assert!(kv.compare_and_swap(&ns, "t", None, b"again".to_vec(), None).await.unwrap(), "an expired entry counts as absent");
        assert_eq!(kv.increment(&ns, "gone", 1, Some(Duration::from_millis(50))).await.unwrap(), 1);
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(kv.increment(&ns, "gone", 1, None).await.unwrap(), 1, "an expired counter starts again");
        assert!(kv.delete(&ns, "k").await.unwrap());
        assert!(!kv.delete(&ns, "k").await.unwrap());
    }
}
