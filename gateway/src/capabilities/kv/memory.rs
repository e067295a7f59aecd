//! [`MemoryKv`]: the key-value backend of a single gateway process, with expiry. It can be saved
//! to and loaded from a JSON file, which is how `onecard plugin run --state FILE` keeps state
//! between runs.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::MutexGuard;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use hashbrown::HashTable;
use hashbrown::hash_table::{self, OccupiedEntry};
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
/// per card holder (hundreds of thousands). The key is hashed once per operation; that hash
/// picks the shard and the slot in its table, and is kept with the entry so that a table's
/// growth does not hash every key again. A lookup borrows the key's parts and never allocates,
/// and only a write can grow a table.
#[derive(Debug, Default)]
pub struct MemoryKv {
    shards: Sharded<Map>,
    /// Hashes keys (SipHash with keys drawn at start: plugins put card holders' references in
    /// keys, so collisions must not be chosen from outside).
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

impl Entry {
    fn expired(&self, now: u64) -> bool {
        self.expires_at_ms.is_some_and(|t| t <= now)
    }
}

/// One key's entry in a shard's table, with the hash it was placed by.
#[derive(Debug)]
struct Slot {
    hash: u64,
    ns: String,
    key: String,
    entry: Entry,
}

type Map = HashTable<Slot>;

/// A key's hash and its locked shard.
struct Located<'a> {
    hash: u64,
    map: MutexGuard<'a, Map>,
}

impl Slot {
    fn is(&self, ns: &str, key: &str) -> bool {
        self.ns == ns && self.key == key
    }
}

impl Located<'_> {
    fn find(&mut self, ns: &str, key: &str) -> Option<OccupiedEntry<'_, Slot>> {
        self.map.find_entry(self.hash, |slot| slot.is(ns, key)).ok()
    }

    /// Sets `key` in `ns` to `entry`.
    fn put(&mut self, ns: &str, key: &str, entry: Entry) {
        let hash = self.hash;
        match self.map.entry(hash, |slot| slot.is(ns, key), |slot| slot.hash) {
            hash_table::Entry::Occupied(mut found) => found.get_mut().entry = entry,
            hash_table::Entry::Vacant(vacant) => {
                vacant.insert(Slot { hash, ns: ns.to_owned(), key: key.to_owned(), entry });
            }
        }
    }
}

impl MemoryKv {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `entries` (namespace, key, value, expiry in unix ms) that tells `journal`
    /// every change ([`super::JournaledKv`]).
    pub fn journaled(entries: impl IntoIterator<Item = (String, String, Vec<u8>, Option<u64>)>, journal: Journal) -> Self {
        let kv = MemoryKv { journal: Some(journal), ..MemoryKv::default() };
        kv.extend(entries.into_iter().map(|(ns, key, value, expires_at_ms)| (ns, key, Entry { value: Value::from_bytes(value), expires_at_ms })));
        kv
    }

    fn extend(&self, entries: impl IntoIterator<Item = (String, String, Entry)>) {
        for (ns, key, entry) in entries {
            self.locate(&ns, &key).put(&ns, &key, entry);
        }
    }

    fn tell(&self, ns: &str, key: &str, changed: Changed) {
        if let Some(journal) = &self.journal {
            (journal.0)(ns, key, changed);
        }
    }

    /// The hash of `key` in `ns` and its shard, locked.
    fn locate(&self, ns: &str, key: &str) -> Located<'_> {
        let hash = self.hasher.hash_one((ns, key));
        Located { hash, map: self.shards.lock(hash) }
    }

    /// The live entry of `key` in `ns`; an expired one is removed (and the removal journaled).
    fn live<'a>(&self, at: &'a mut Located<'_>, ns: &str, key: &str) -> Option<&'a mut Entry> {
        let found = at.find(ns, key)?;
        if found.get().entry.expired(now_ms()) {
            found.remove();
            self.tell(ns, key, None);
            return None;
        }
        Some(&mut found.into_mut().entry)
    }

    /// Drops the expired entries of a locked shard (journaling each removal); returns how many.
    fn prune(&self, map: &mut Map, now: u64) -> usize {
        let before = map.len();
        map.retain(|slot| {
            let expired = slot.entry.expired(now);
            if expired {
                self.tell(&slot.ns, &slot.key, None);
            }
            !expired
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
            .filter(|slot| !slot.entry.expired(now))
            .map(|slot| (slot.ns.clone(), slot.key.clone(), slot.entry.value.to_bytes(), slot.entry.expires_at_ms))
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
            for slot in map.iter() {
                out.entry(slot.ns.clone()).or_default().insert(slot.key.clone(), slot.entry.clone());
            }
        }
        serde_json::to_value(out).unwrap_or_default()
    }

    /// Load entries saved by [`MemoryKv::to_json`].
    pub fn from_json(json: serde_json::Value) -> Result<Self, serde_json::Error> {
        let saved: BTreeMap<String, BTreeMap<String, Entry>> = serde_json::from_value(json)?;
        let kv = MemoryKv::default();
        kv.extend(saved.into_iter().flat_map(|(ns, keys)| keys.into_iter().map(move |(key, e)| (ns.clone(), key, e))));
        kv.prune_expired();
        Ok(kv)
    }
}

#[async_trait]
impl KvBackend for MemoryKv {
    async fn get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, KvBackendError> {
        Ok(self.live(&mut self.locate(ns, key), ns, key).map(|e| e.value.to_bytes()))
    }

    async fn set(&self, ns: &str, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<(), KvBackendError> {
        let expires_at_ms = expiry(ttl);
        let mut at = self.locate(ns, key);
        self.tell(ns, key, Some((value.clone(), expires_at_ms)));
        at.put(ns, key, Entry { value: Value::from_bytes(value), expires_at_ms });
        Ok(())
    }

    async fn delete(&self, ns: &str, key: &str) -> Result<bool, KvBackendError> {
        let mut at = self.locate(ns, key);
        let Some(found) = at.find(ns, key) else {
            return Ok(false);
        };
        let existed = !found.get().entry.expired(now_ms());
        found.remove();
        self.tell(ns, key, None);
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
        let mut at = self.locate(ns, key);
        let current = self.live(&mut at, ns, key).map(|e| e.value.to_bytes());
        if current != expected {
            return Ok(false);
        }
        let expires_at_ms = expiry(ttl);
        self.tell(ns, key, Some((new.clone(), expires_at_ms)));
        at.put(ns, key, Entry { value: Value::from_bytes(new), expires_at_ms });
        Ok(true)
    }

    async fn increment(&self, ns: &str, key: &str, delta: i64, ttl: Option<Duration>) -> Result<i64, KvBackendError> {
        let mut at = self.locate(ns, key);
        let (current, expires_at_ms) = match self.live(&mut at, ns, key) {
            Some(entry) => {
                let bytes = entry.value.to_bytes();
                let n = std::str::from_utf8(&bytes).ok().and_then(|s| s.parse::<i64>().ok()).ok_or(KvBackendError::NotANumber)?;
                (n, entry.expires_at_ms)
            }
            None => (0, expiry(ttl)),
        };
        let value = current.checked_add(delta).ok_or(KvBackendError::NotANumber)?;
        self.tell(ns, key, Some((value.to_string().into_bytes(), expires_at_ms)));
        at.put(ns, key, Entry { value: Value::Text(value.to_string()), expires_at_ms });
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

    /// Namespace and key are told apart by the table, not only by their joined text.
    #[tokio::test]
    async fn a_namespace_and_key_do_not_run_together() {
        let kv = MemoryKv::new();
        kv.set("ab", "c", b"1".to_vec(), None).await.unwrap();
        assert_eq!(kv.get("a", "bc").await.unwrap(), None);
        kv.set("a", "bc", b"2".to_vec(), None).await.unwrap();
        assert_eq!(kv.get("ab", "c").await.unwrap(), Some(b"1".to_vec()));
        assert!(kv.delete("a", "bc").await.unwrap());
        assert_eq!((kv.len(), kv.get("ab", "c").await.unwrap()), (1, Some(b"1".to_vec())), "the other key is untouched");
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
