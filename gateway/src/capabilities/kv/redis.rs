//! Key-value state shared by several gateways, in Redis: anti-passback markers and capacity
//! counters must hold across every gateway of a city, so each key is one Redis key under
//! `{prefix}{namespace}:{key}`, and every operation is one atomic Redis command or script.
//!
//! Compare-and-swap is a Lua script (Redis runs scripts atomically); increment is `INCRBY` with
//! the TTL set only when the key is new, like [`super::MemoryKv`].

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};

use super::{KvBackend, KvBackendError};

/// Where shared key-value state lives (the `[kv]` table).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisKvConfig {
    /// `redis://[user:password@]host:port/db` (may hold a password: never logged).
    pub url: String,
    /// Prefix of every key. Default `onecard:kv:`.
    #[serde(default = "default_prefix")]
    pub key_prefix: String,
    /// Longest wait for one answer, ms. Default 250.
    #[serde(default = "default_timeout_ms")]
    pub response_timeout_ms: u64,
}

fn default_prefix() -> String {
    "onecard:kv:".into()
}

fn default_timeout_ms() -> u64 {
    250
}

impl RedisKvConfig {
    /// Settings for `url` with the defaults.
    pub fn new(url: impl Into<String>) -> Self {
        RedisKvConfig { url: url.into(), key_prefix: default_prefix(), response_timeout_ms: default_timeout_ms() }
    }
}

impl fmt::Debug for RedisKvConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisKvConfig").field("url", &"<redacted>").field("key_prefix", &self.key_prefix).finish_non_exhaustive()
    }
}

/// A [`KvBackend`] in Redis.
#[derive(Clone)]
pub struct RedisKv {
    conn: ConnectionManager,
    prefix: String,
}

impl fmt::Debug for RedisKv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisKv").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

fn unavailable(e: &redis::RedisError) -> KvBackendError {
    KvBackendError::Unavailable(e.to_string())
}

fn ttl_ms(ttl: Option<Duration>) -> i64 {
    ttl.map_or(0, |t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX).max(1))
}

/// KEYS[1] = key; ARGV[1] = "1" when a value is expected, ARGV[2] = expected, ARGV[3] = new,
/// ARGV[4] = ttl ms (0: none). Returns 1 when swapped.
const CAS: &str = r#"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
else
  if current then return 0 end
end
if tonumber(ARGV[4]) > 0 then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[3])
end
return 1
"#;

/// KEYS[1] = key; ARGV[1] = delta, ARGV[2] = ttl ms for a new key (0: none).
const INCR: &str = r#"
local existed = redis.call('EXISTS', KEYS[1])
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if existed == 0 and tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return value
"#;

impl RedisKv {
    /// Connects now (an unreachable Redis fails start-up, not the first request).
    pub async fn connect(config: &RedisKvConfig) -> Result<RedisKv, KvBackendError> {
        let client = redis::Client::open(config.url.as_str()).map_err(|e| unavailable(&e))?;
        let manager = ConnectionManagerConfig::new()
            .set_response_timeout(Some(Duration::from_millis(config.response_timeout_ms.max(1))))
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client, manager).await.map_err(|e| unavailable(&e))?;
        Ok(RedisKv { conn, prefix: config.key_prefix.clone() })
    }

    fn key(&self, namespace: &str, key: &str) -> String {
        format!("{}{namespace}:{key}", self.prefix)
    }
}

#[async_trait]
impl KvBackend for RedisKv {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, KvBackendError> {
        let mut conn = self.conn.clone();
        redis::cmd("GET").arg(self.key(namespace, key)).query_async(&mut conn).await.map_err(|e| unavailable(&e))
    }

    async fn set(&self, namespace: &str, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<(), KvBackendError> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(namespace, key)).arg(value);
        if ttl.is_some() {
            cmd.arg("PX").arg(ttl_ms(ttl));
        }
        cmd.query_async::<()>(&mut conn).await.map_err(|e| unavailable(&e))
    }

    async fn delete(&self, namespace: &str, key: &str) -> Result<bool, KvBackendError> {
        let mut conn = self.conn.clone();
        let n: i64 = redis::cmd("DEL").arg(self.key(namespace, key)).query_async(&mut conn).await.map_err(|e| unavailable(&e))?;
        Ok(n > 0)
    }

    async fn compare_and_swap(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<bool, KvBackendError> {
        let mut conn = self.conn.clone();
        let swapped: i64 = redis::Script::new(CAS)
            .key(self.key(namespace, key))
            .arg(if expected.is_some() { "1" } else { "0" })
            .arg(expected.unwrap_or_default())
            .arg(new)
            .arg(ttl_ms(ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(swapped == 1)
    }

    async fn increment(&self, namespace: &str, key: &str, delta: i64, ttl: Option<Duration>) -> Result<i64, KvBackendError> {
        let mut conn = self.conn.clone();
        redis::Script::new(INCR)
            .key(self.key(namespace, key))
            .arg(delta)
            .arg(ttl_ms(ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| match e.kind() {
                redis::ErrorKind::Server(_) if e.to_string().contains("not an integer") => KvBackendError::NotANumber,
                _ => unavailable(&e),
            })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn config() -> RedisKvConfig {
        let url = std::env::var("ONECARD_TEST_REDIS_URL").expect("ONECARD_TEST_REDIS_URL is set for Redis tests");
        let mut config = RedisKvConfig::new(url);
        config.key_prefix = format!("onecard-test:kv:{}:", hex::encode(rand::random::<[u8; 8]>()));
        config
    }

    async fn store() -> RedisKv {
        RedisKv::connect(&config()).await.expect("a reachable Redis")
    }

    #[test]
    fn config_hides_the_url_and_refuses_unknown_fields() {
        let c = RedisKvConfig::new("redis://user:hunter2@127.0.0.1:6379/0");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(toml::from_str::<RedisKvConfig>("url = \"redis://x\"\nprefix = \"p\"").is_err());
    }

    #[tokio::test]
    #[cfg_attr(not(onecard_redis), ignore = "needs Redis: set ONECARD_TEST_REDIS_URL")]
    async fn redis_kv_keeps_the_backend_contract() {
        super::super::contract::holds(&store().await).await;
    }

    #[tokio::test]
    #[cfg_attr(not(onecard_redis), ignore = "needs Redis: set ONECARD_TEST_REDIS_URL")]
    async fn two_gateways_sharing_redis_let_one_swap_win() {
        // Two connections, as two gateway processes would have.
        let config = config();
        let a = Arc::new(RedisKv::connect(&config).await.expect("redis"));
        let b = Arc::new(RedisKv::connect(&config).await.expect("redis"));
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let kv = if i % 2 == 0 { Arc::clone(&a) } else { Arc::clone(&b) };
                tokio::spawn(async move { kv.compare_and_swap("parks", "inside:h", None, vec![i], None).await.unwrap() })
            })
            .collect();
        let mut won = 0;
        for t in tasks {
            won += usize::from(t.await.unwrap());
        }
        assert_eq!(won, 1);
    }
}
