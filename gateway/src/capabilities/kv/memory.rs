//! [`MemoryKv`]: the key-value backend of a single gateway process, with expiry. It can be saved
//! to and loaded from a JSON file, which is how `onecard plugin run --state FILE` keeps state
//! between runs.

use std::collections::{BTreeMap, HashMap, hash_map};
use std::hash::{BuildHasher, RandomState};
use std::sync::MutexGuard;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{KvBackend, KvBackendError};
use crate::sharded::Sharded;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    value: Value,
    /// Unix milliseconds after which the entry is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at_ms: Option<u64>,
}

/// Values are kept as text when they are UTF-8, so a saved state file is readable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Value {
    Text(String),
    Bytes { hex: String },
}

impl Value {
    fn from_bytes(bytes: Vec<u8>) -> Self {
        match String::from_utf8(bytes) {
            Ok(text) => Value::Text(text),
            Err(e) => Value::Bytes { hex: hex::encode(e.into_bytes()) },
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        match self {
            Value::Text(t) => t.as_bytes().to_vec(),
            Value::Bytes { hex } => hex::decode(hex).unwrap_or_default(),
        }
    }
}

/// In-process key-value store; every operation holds one lock briefly, so each is atomic.
///
/// The entries are [`Sharded`] by a hash of the key: a gateway's store holds a marker or counter
/// per card holder (hundreds of thousands).
#[derive(Debug, Default)]
pub struct MemoryKv {
    shards: Sharded<Map>,
    /// Picks a key's shard.
    hasher: RandomState,
    journal: Option<Journal>,
    /// The shard [`MemoryKv::prune_expired_step`] prunes next.
    next_prune: AtomicUsize,
}

/// What an entry became: its value and expiry (unix ms), or `None` when deleted.
pub type Changed = Option<(Vec<u8>, Option<u64>)>;

/// Told every change, under the lock of the key's shard, so in the order each key's changes
/// happened.
#[derive(Clone)]
pub struct Journal(pub std::sync::Arc<dyn Fn(&str, &str, Changed) + Send + Sync>);

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Journal")
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn expiry(ttl: Option<Duration>) -> Option<u64> {
    ttl.map(|t| now_ms().saturating_add(t.as_millis() as u64))
}

type Map = HashMap<(String, String), Entry>;

impl MemoryKv {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `entries` (namespace, key, value, expiry in unix ms) that tells `journal`
    /// every change ([`super::JournaledKv`]).
    pub fn journaled(entries: impl IntoIterator<Item = (String, String, Vec<u8>, Option<u64>)>, journal: Journal) -> Self {
        let kv = MemoryKv { journal: Some(journal), ..MemoryKv::default() };
        kv.extend(entries.into_iter().map(|(ns, key, value, expires_at_ms)| ((ns, key), Entry { value: Value::from_bytes(value), expires_at_ms })));
        kv
    }

    fn extend(&self, entries: impl IntoIterator<Item = ((String, String), Entry)>) {
        for (id, entry) in entries {
            self.lock(&id.0, &id.1).insert(id, entry);
        }
    }

    fn tell(&self, ns: &str, key: &str, changed: Changed) {
        if let Some(journal) = &self.journal {
            (journal.0)(ns, key, changed);
        }
    }

    /// The shard of `key` in `ns`, locked.
    fn lock(&self, ns: &str, key: &str) -> MutexGuard<'_, Map> {
        self.shards.lock(self.hasher.hash_one((ns, key)))
    }

    /// The live entry of `key` in `ns` in its locked shard `map`; an expired one is removed
    /// (and the removal journaled).
    fn live<'a>(&self, map: &'a mut Map, ns: &str, key: &str) -> Option<&'a mut Entry> {
        // One lookup (every plugin's kv call comes here): the entry API finds the key once
        // where a look, a removal and a second look hashed it up to three times.
        match map.entry((ns.to_owned(), key.to_owned())) {
            hash_map::Entry::Occupied(e) if e.get().expires_at_ms.is_some_and(|t| t <= now_ms()) => {
                e.remove();
                self.tell(ns, key, None);
                None
            }
            hash_map::Entry::Occupied(e) => Some(e.into_mut()),
            hash_map::Entry::Vacant(_) => None,
        }
    }

    /// Drops the expired entries of a locked shard (journaling each removal); returns how many.
    fn prune(&self, map: &mut Map, now: u64) -> usize {
        let before = map.len();
        map.retain(|(ns, key), e| {
            let keep = e.expires_at_ms.is_none_or(|t| t > now);
            if !keep {
                self.tell(ns, key, None);
            }
            keep
        });
        before - map.len()
    }

    /// Drops every expired entry, shard by shard; returns how many.
    pub fn prune_expired(&self) -> usize {
        let now = now_ms();
        self.shards.each().map(|mut map| self.prune(&mut map, now)).sum()
    }

    /// Drops the expired entries of one shard, the next in turn; returns how many. Called
    /// [`crate::sharded::SHARDS`] times as often as a whole pass would be, it does the same
    /// work in as many pieces, holding one shard's lock and a CPU for one piece at a time: a
    /// store of hundreds of thousands of entries is never walked whole while requests wait.
    pub fn prune_expired_step(&self) -> usize {
        let shard = self.next_prune.fetch_add(1, Ordering::Relaxed);
        self.prune(&mut self.shards.shard(shard), now_ms())
    }

    /// The live entries of shard `shard` (namespace, key, value, expiry), copied under its lock.
    pub fn shard_entries(&self, shard: usize) -> Vec<(String, String, Vec<u8>, Option<u64>)> {
        let now = now_ms();
        let map = self.shards.shard(shard);
        map.iter()
            .filter(|(_, e)| e.expires_at_ms.is_none_or(|t| t > now))
            .map(|((ns, key), e)| (ns.clone(), key.clone(), e.value.to_bytes(), e.expires_at_ms))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.shards.each().map(|map| map.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live entries as JSON: `{namespace: {key: {"value": ..., "expires_at_ms": ...}}}`.
    pub fn to_json(&self) -> serde_json::Value {
        self.prune_expired();
        let mut out: BTreeMap<String, BTreeMap<String, Entry>> = BTreeMap::new();
        for map in self.shards.each() {
            for ((ns, key), entry) in map.iter() {
                out.entry(ns.clone()).or_default().insert(key.clone(), entry.clone());
            }
        }
        serde_json::to_value(out).unwrap_or_default()
    }

    /// Load entries saved by [`MemoryKv::to_json`].
    pub fn from_json(json: serde_json::Value) -> Result<Self, serde_json::Error> {
        let saved: BTreeMap<String, BTreeMap<String, Entry>> = serde_json::from_value(json)?;
        let kv = MemoryKv::default();
        kv.extend(saved.into_iter().flat_map(|(ns, keys)| keys.into_iter().map(move |(key, e)| ((ns.clone(), key), e))));
        kv.prune_expired();
        Ok(kv)
    }
}

#[async_trait]
impl KvBackend for MemoryKv {
    async fn get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, KvBackendError> {
        Ok(self.live(&mut self.lock(ns, key), ns, key).map(|e| e.value.to_bytes()))
    }

    async fn set(&self, ns: &str, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<(), KvBackendError> {
        let expires_at_ms = expiry(ttl);
        let mut map = self.lock(ns, key);
        self.tell(ns, key, Some((value.clone(), expires_at_ms)));
        map.insert((ns.into(), key.into()), Entry { value: Value::from_bytes(value), expires_at_ms });
        Ok(())
    }

    async fn delete(&self, ns: &str, key: &str) -> Result<bool, KvBackendError> {
        let mut map = self.lock(ns, key);
        let existed = self.live(&mut map, ns, key).is_some();
        if map.remove(&(ns.to_owned(), key.to_owned())).is_some() {
            self.tell(ns, key, None);
        }
        Ok(existed)
    }

    async fn compare_and_swap(
        &self,
        ns: &str,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<bool, KvBackendError> {
        let mut map = self.lock(ns, key);
        let current = self.live(&mut map, ns, key).map(|e| e.value.to_bytes());
        if current != expected {
            return Ok(false);
        }
        let expires_at_ms = expiry(ttl);
        self.tell(ns, key, Some((new.clone(), expires_at_ms)));
        map.insert((ns.into(), key.into()), Entry { value: Value::from_bytes(new), expires_at_ms });
        Ok(true)
    }

    async fn increment(&self, ns: &str, key: &str, delta: i64, ttl: Option<Duration>) -> Result<i64, KvBackendError> {
        let mut map = self.lock(ns, key);
        let (current, expires_at_ms) = match self.live(&mut map, ns, key) {
            Some(entry) => {
                let bytes = entry.value.to_bytes();
                let n = std::str::from_utf8(&bytes).ok().and_then(|s| s.parse::<i64>().ok()).ok_or(KvBackendError::NotANumber)?;
                (n, entry.expires_at_ms)
            }
            None => (0, expiry(ttl)),
        };
        let value = current.checked_add(delta).ok_or(KvBackendError::NotANumber)?;
        self.tell(ns, key, Some((value.to_string().into_bytes(), expires_at_ms)));
        map.insert((ns.into(), key.into()), Entry { value: Value::Text(value.to_string()), expires_at_ms });
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_kv_keeps_the_backend_contract() {
        super::super::contract::holds(&MemoryKv::new()).await;
    }

    #[tokio::test]
    async fn namespaces_do_not_see_each_other() {
        let kv = MemoryKv::new();
        kv.set("parks", "k", b"1".to_vec(), None).await.unwrap();
        assert_eq!(kv.get("transit", "k").await.unwrap(), None);
        assert_eq!(kv.get("parks", "k").await.unwrap(), Some(b"1".to_vec()));
    }

    #[tokio::test]
    async fn compare_and_swap_only_from_the_expected_value() {
        let kv = MemoryKv::new();
        assert!(kv.compare_and_swap("a", "k", None, b"x".to_vec(), None).await.unwrap());
        assert!(!kv.compare_and_swap("a", "k", None, b"y".to_vec(), None).await.unwrap());
        assert!(kv.compare_and_swap("a", "k", Some(b"x".to_vec()), b"y".to_vec(), None).await.unwrap());
        assert_eq!(kv.get("a", "k").await.unwrap(), Some(b"y".to_vec()));
    }

    #[tokio::test]
    async fn increment_counts_and_refuses_text() {
        let kv = MemoryKv::new();
        assert_eq!(kv.increment("a", "n", 2, None).await.unwrap(), 2);
        assert_eq!(kv.increment("a", "n", -1, None).await.unwrap(), 1);
        kv.set("a", "t", b"abc".to_vec(), None).await.unwrap();
        assert_eq!(kv.increment("a", "t", 1, None).await, Err(KvBackendError::NotANumber));
        assert_eq!(kv.get("a", "t").await.unwrap(), Some(b"abc".to_vec()), "a refused increment changes nothing");
    }

    #[tokio::test]
    async fn expired_entries_are_gone() {
        let kv = MemoryKv::new();
        kv.set("a", "k", b"v".to_vec(), Some(Duration::from_millis(0))).await.unwrap();
        assert_eq!(kv.get("a", "k").await.unwrap(), None);
        assert!(!kv.delete("a", "k").await.unwrap());
    }

    #[tokio::test]
    async fn an_expired_entry_read_is_removed_and_journaled_once_and_a_live_one_stays() {
        let told = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = told.clone();
        let journal = Journal(std::sync::Arc::new(move |ns: &str, key: &str, changed: Changed| {
            log.lock().unwrap().push((ns.to_string(), key.to_string(), changed));
        }));
        let past = now_ms() - 1;
        let kv = MemoryKv::journaled([("a".into(), "old".into(), b"1".to_vec(), Some(past)), ("a".into(), "kept".into(), b"2".to_vec(), None)], journal);
        assert_eq!(kv.get("a", "old").await.unwrap(), None);
        assert_eq!(kv.get("a", "old").await.unwrap(), None);
        assert_eq!(*told.lock().unwrap(), [("a".to_string(), "old".to_string(), None)], "one removal, journaled once");
        assert_eq!(kv.increment("a", "old", 5, None).await.unwrap(), 5, "the removed counter starts again");
        assert_eq!(kv.get("a", "kept").await.unwrap(), Some(b"2".to_vec()));
        assert_eq!(kv.len(), 2);
    }

    #[tokio::test]
    async fn saves_and_loads_as_json() {
        let kv = MemoryKv::new();
        kv.set("a", "text", b"v".to_vec(), Some(Duration::from_secs(60))).await.unwrap();
        kv.set("a", "bin", vec![0xff, 0x00], None).await.unwrap();
        let loaded = MemoryKv::from_json(kv.to_json()).unwrap();
        assert_eq!(loaded.get("a", "text").await.unwrap(), Some(b"v".to_vec()));
        assert_eq!(loaded.get("a", "bin").await.unwrap(), Some(vec![0xff, 0x00]));
    }
}
