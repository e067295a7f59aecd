//! The replay cache shared by several gateways, in Redis: one key per remembered value, taken
//! with `SET key 1 NX PX ttl`, so Redis both decides atomically and forgets on time.
//!
//! Configure the Redis instance with `maxmemory-policy noeviction` (or `volatile-ttl` on a
//! dedicated instance): an eviction of a live key would reopen the replay window. With
//! `noeviction`, a Redis out of memory answers `OOM`, reported as [`NonceError::Full`].

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};

use super::{NonceError, NonceStore, entry_key, ttl_millis};

/// Where the shared replay cache lives.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisNonceConfig {
    /// `redis://[user:password@]host:port/db` (may hold a password: never logged).
    pub url: String,
    /// Prefix of every key, so the cache can share an instance.
    #[serde(default = "default_prefix")]
    pub key_prefix: String,
    /// Longest wait for one answer, milliseconds.
    #[serde(default = "default_response_timeout_ms")]
    pub response_timeout_ms: u64,
    /// Longest wait for a connection, milliseconds.
    #[serde(default = "default_connection_timeout_ms")]
    pub connection_timeout_ms: u64,
}

fn default_prefix() -> String {
    "onecard:nonce:".into()
}
fn default_response_timeout_ms() -> u64 {
    250
}
fn default_connection_timeout_ms() -> u64 {
    1000
}

impl RedisNonceConfig {
    /// The settings for `url` with the default prefix and timeouts.
    pub fn new(url: impl Into<String>) -> RedisNonceConfig {
        RedisNonceConfig {
            url: url.into(),
            key_prefix: default_prefix(),
            response_timeout_ms: default_response_timeout_ms(),
            connection_timeout_ms: default_connection_timeout_ms(),
        }
    }
}

impl fmt::Debug for RedisNonceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisNonceConfig")
            .field("url", &"<redacted>")
            .field("key_prefix", &self.key_prefix)
            .field("response_timeout_ms", &self.response_timeout_ms)
            .field("connection_timeout_ms", &self.connection_timeout_ms)
            .finish()
    }
}

/// A [`NonceStore`] in Redis.
#[derive(Clone)]
pub struct RedisNonceStore {
    conn: ConnectionManager,
    prefix: String,
}

fn unavailable(e: &redis::RedisError) -> NonceError {
    // Redis error texts name the command and host, never the password.
    NonceError::Unavailable(e.to_string())
}

impl RedisNonceStore {
    /// Connects (once, now: an unreachable Redis is an error here rather than on the first
    /// request); the connection manager reconnects by itself afterwards.
    pub async fn connect(config: &RedisNonceConfig) -> Result<RedisNonceStore, NonceError> {
        let client = redis::Client::open(config.url.as_str()).map_err(|e| unavailable(&e))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(Duration::from_millis(config.response_timeout_ms.max(1))))
            .set_connection_timeout(Some(Duration::from_millis(config.connection_timeout_ms.max(1))))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client, manager_config).await.map_err(|e| unavailable(&e))?;
        Ok(RedisNonceStore { conn, prefix: config.key_prefix.clone() })
    }

    /// A store on an existing connection.
    pub fn from_connection(conn: ConnectionManager, key_prefix: impl Into<String>) -> RedisNonceStore {
        RedisNonceStore { conn, prefix: key_prefix.into() }
    }

    fn key(&self, scope: &str, nonce: &str) -> String {
        format!("{}{}", self.prefix, entry_key(scope, nonce))
    }
}

impl fmt::Debug for RedisNonceStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisNonceStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

#[async_trait]
impl NonceStore for RedisNonceStore {
    async fn check_and_remember(&self, scope: &str, nonce: &str, ttl: Duration) -> Result<(), NonceError> {
        let mut conn = self.conn.clone();
        let reply: Result<Option<String>, redis::RedisError> = redis::cmd("SET")
            .arg(self.key(scope, nonce))
            .arg("1")
            .arg("NX")
            .arg("PX")
            .arg(ttl_millis(ttl))
            .query_async(&mut conn)
            .await;
        match reply {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(NonceError::Replayed),
            Err(e) if e.code() == Some("OOM") => {
                tracing::warn!("replay cache full: Redis is out of memory");
                Err(NonceError::Full)
            }
            Err(e) => {
                tracing::warn!(error = %e, "replay cache unavailable");
                Err(unavailable(&e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_url() {
        let c = RedisNonceConfig::new("redis://user:hunter2@127.0.0.1:6379/0");
        assert!(!format!("{c:?}").contains("hunter2"));
        let parsed: RedisNonceConfig = toml::from_str("url = \"redis://127.0.0.1:6379\"").expect("defaults");
        assert_eq!(parsed.key_prefix, "onecard:nonce:");
        assert!(toml::from_str::<RedisNonceConfig>("url = \"redis://x\"\nprefix = \"p\"").is_err());
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_unavailable() {
        // Port 1 on the loopback: nothing listens there.
        let mut config = RedisNonceConfig::new("redis://127.0.0.1:1");
        config.connection_timeout_ms = 500;
        let err = RedisNonceStore::connect(&config).await.expect_err("nothing listens on port 1");
        assert!(matches!(err, NonceError::Unavailable(_)), "{err:?}");
    }

    /// A store on the test Redis with a random key prefix, so parallel tests never collide.
    async fn test_store() -> (RedisNonceStore, String) {
        let url = std::env::var("ONECARD_TEST_REDIS_URL").expect("ONECARD_TEST_REDIS_URL is set for Redis tests");
        let prefix = format!("onecard-test:{}:", hex::encode(rand::random::<[u8; 8]>()));
        let mut config = RedisNonceConfig::new(url);
        config.key_prefix = prefix.clone();
        let store = RedisNonceStore::connect(&config).await.expect("ONECARD_TEST_REDIS_URL names a reachable Redis");
        (store, prefix)
    }

    #[tokio::test]
    #[cfg_attr(not(onecard_redis), ignore = "needs Redis: set ONECARD_TEST_REDIS_URL")]
    async fn redis_takes_a_nonce_once_per_scope_with_its_ttl() {
        let (store, prefix) = test_store().await;
        let ttl = Duration::from_secs(30);
        store.check_and_remember("channel:3300000001", "n1", ttl).await.expect("first");
        assert_eq!(store.check_and_remember("channel:3300000001", "n1", ttl).await, Err(NonceError::Replayed));
        store.check_and_remember("channel:3300000002", "n1", ttl).await.expect("other scope");
        store.check_and_remember("credential", "n1", ttl).await.expect("other scope");

        let mut conn = store.conn.clone();
        let pttl: i64 = redis::cmd("PTTL")
            .arg(format!("{prefix}channel:3300000001:n1"))
            .query_async(&mut conn)
            .await
            .expect("PTTL");
        assert!(pttl > 0 && pttl <= 30_000, "the key expires with the ttl, got {pttl} ms");
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.expect("KEYS");
        let deleted: i64 = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await.expect("DEL");
        assert_eq!(deleted, 3);
    }

    #[tokio::test]
    #[cfg_attr(not(onecard_redis), ignore = "needs Redis: set ONECARD_TEST_REDIS_URL")]
    async fn redis_lets_exactly_one_of_concurrent_takers_win() {
        let (store, prefix) = test_store().await;
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.check_and_remember("s", "same", Duration::from_secs(30)).await })
            })
            .collect();
        let mut won = 0;
        for t in tasks {
            match t.await.expect("task") {
                Ok(()) => won += 1,
                Err(e) => assert_eq!(e, NonceError::Replayed),
            }
        }
        assert_eq!(won, 1);
        let mut conn = store.conn.clone();
        let _: i64 = redis::cmd("DEL").arg(format!("{prefix}s:same")).query_async(&mut conn).await.expect("DEL");
    }
}
