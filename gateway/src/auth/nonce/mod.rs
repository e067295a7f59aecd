//! The replay cache: remembers single-use values (request nonces, card-credential nonces) for
//! a while and refuses to see one twice.
//!
//! Scopes keep the uses apart: `channel:<channel id>` for request nonces, `credential` for card
//! tokens. [`MemoryNonceStore`] serves one gateway; several gateways share a
//! [`RedisNonceStore`], since a replay cache that is not shared lets a request replay on
//! another gateway. A store at capacity refuses new values rather than forgetting live ones:
//! forgetting would reopen the replay window.

mod memory;
mod redis_store;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

pub use memory::MemoryNonceStore;
pub use redis_store::{RedisNonceConfig, RedisNonceStore};

/// Why a value could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NonceError {
    /// Already seen within its time to live.
    #[error("already used")]
    Replayed,
    /// The store is at capacity.
    #[error("the replay cache is full")]
    Full,
    /// The store cannot be reached or failed.
    #[error("the replay cache is unavailable: {0}")]
    Unavailable(String),
}

/// A replay cache.
#[async_trait]
pub trait NonceStore: Send + Sync + fmt::Debug {
    /// Remembers `nonce` in `scope` for `ttl` (at least a millisecond), or fails with
    /// [`NonceError::Replayed`] when it is already remembered there. Atomic: of two concurrent
    /// calls with the same value, exactly one succeeds.
    async fn check_and_remember(&self, scope: &str, nonce: &str, ttl: Duration) -> Result<(), NonceError>;
}

/// The store key of `nonce` in `scope`.
fn entry_key(scope: &str, nonce: &str) -> String {
    format!("{scope}:{nonce}")
}

/// `ttl` in whole milliseconds, at least one.
fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}
