//! The in-process replay cache of a single gateway: a bounded set of values with expiry times.
//!
//! When full it refuses new values with [`NonceError::Full`] and never evicts a live one;
//! expired values are pruned (oldest expiry first) before every decision.
//!
//! A gateway remembers every request nonce and every card-credential nonce for minutes, so at a
//! few thousand requests a second the set holds millions of values. Two choices keep that cheap:
//! - a value is kept as a 128-bit keyed hash of its scope and nonce (two SipHash-1-3 keys drawn
//!   at start), not as a string: 56–112 bytes an entry instead of about 200, and no allocation
//!   per request. A false "replayed" needs two values with equal 128-bit hashes under keys an
//!   attacker does not know;
//! - the set is [`Sharded`]: one map of a million entries re-hashing under the lock every
//!   request takes would stall them all.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{NonceError, NonceStore, ttl_millis};
use crate::sharded::Sharded;

pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The 128-bit keyed hash of a value; its bits are already uniform, so the maps use them as is.
type Key = u128;

/// A [`Hasher`] for [`Key`]s: keeps the low 64 bits of the key (already a keyed hash).
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `Key`s are hashed (`write_u128`); this keeps the trait's contract for anything else.
        self.0 = bytes.iter().fold(self.0, |h, b| h.rotate_left(8) ^ u64::from(*b));
    }
    fn write_u128(&mut self, key: u128) {
        self.0 = key as u64;
    }
}

#[derive(Default)]
struct Shard {
    /// Live values and when each expires (milliseconds since the store started).
    live: HashMap<Key, u64, BuildHasherDefault<KeyHasher>>,
    expiries: BinaryHeap<Reverse<(u64, Key)>>,
}

impl Shard {
    /// Forgets values expired at `now`; returns how many.
    fn prune(&mut self, now: u64) -> usize {
        let mut pruned = 0;
        while let Some(Reverse((at, _))) = self.expiries.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((at, key))) = self.expiries.pop()
                && self.live.get(&key) == Some(&at)
            {
                self.live.remove(&key);
                pruned += 1;
            }
        }
        pruned
    }
}

pub struct MemoryNonceStore {
    capacity: usize,
    clock: Clock,
    /// Where the store's millisecond clock starts.
    origin: Instant,
    hashers: (RandomState, RandomState),
    shards: Sharded<Shard>,
    /// Live values in all shards (pruned ones are subtracted as they go).
    len: AtomicUsize,
}

impl MemoryNonceStore {
    pub fn new(capacity: usize) -> MemoryNonceStore {
        MemoryNonceStore::with_clock(capacity, Arc::new(Instant::now))
    }

    pub fn with_clock(capacity: usize, clock: Clock) -> MemoryNonceStore {
        let origin = clock();
        MemoryNonceStore {
            capacity,
            clock,
            origin,
            hashers: (RandomState::new(), RandomState::new()),
            shards: Sharded::default(),
            len: AtomicUsize::new(0),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.prune_all(self.now());
        self.len.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn now(&self) -> u64 {
        u64::try_from((self.clock)().saturating_duration_since(self.origin).as_millis()).unwrap_or(u64::MAX)
    }

    fn key(&self, scope: &str, nonce: &str) -> Key {
        let half = |hasher: &RandomState| {
            let mut h = hasher.build_hasher();
            h.write(scope.as_bytes());
            h.write_u8(0xff); // no scope/nonce split can give another pair the same bytes
            h.write(nonce.as_bytes());
            h.finish()
        };
        (u128::from(half(&self.hashers.0)) << 64) | u128::from(half(&self.hashers.1))
    }

    /// The key's shard, by the same 64 bits its map hashes: [`Sharded`] picks the shard by
    /// bits the map does not use.
    fn shard(&self, key: Key) -> MutexGuard<'_, Shard> {
        self.shards.lock(key as u64)
    }

    fn prune_all(&self, now: u64) {
        for mut shard in self.shards.each() {
            let pruned = shard.prune(now);
            self.len.fetch_sub(pruned, Ordering::AcqRel);
        }
    }

    /// Counts one more live value unless the store is full.
    fn reserve(&self) -> bool {
        self.len.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.capacity).then_some(n + 1)).is_ok()
    }
}

impl fmt::Debug for MemoryNonceStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryNonceStore").field("capacity", &self.capacity).finish_non_exhaustive()
    }
}

#[async_trait]
impl NonceStore for MemoryNonceStore {
    async fn check_and_remember(&self, scope: &str, nonce: &str, ttl: Duration) -> Result<(), NonceError> {
        let key = self.key(scope, nonce);
        let now = self.now();
        let mut shard = self.shard(key);
        let pruned = shard.prune(now);
        self.len.fetch_sub(pruned, Ordering::AcqRel);
        if shard.live.contains_key(&key) {
            return Err(NonceError::Replayed);
        }
        if !self.reserve() {
            // Other shards may hold values that have expired since they were last touched.
            drop(shard);
            self.prune_all(now);
            shard = self.shard(key);
            if shard.live.contains_key(&key) {
                return Err(NonceError::Replayed);
            }
            if !self.reserve() {
                tracing::warn!(capacity = self.capacity, "replay cache full: refusing new nonces");
                return Err(NonceError::Full);
            }
        }
        let expires = now.saturating_add(ttl_millis(ttl));
        shard.live.insert(key, expires);
        shard.expiries.push(Reverse((expires, key)));
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A clock moved by hand.
    #[derive(Clone)]
    pub(crate) struct ManualClock(Arc<Mutex<Instant>>);

    impl ManualClock {
        pub(crate) fn new() -> ManualClock {
            ManualClock(Arc::new(Mutex::new(Instant::now())))
        }
        pub(crate) fn advance(&self, by: Duration) {
            let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
            *t += by;
        }
        pub(crate) fn clock(&self) -> Clock {
            let me = self.clone();
            Arc::new(move || *me.0.lock().unwrap_or_else(|p| p.into_inner()))
        }
    }

    const TTL: Duration = Duration::from_secs(600);

    #[tokio::test]
    async fn a_nonce_is_taken_once_per_scope() {
        let store = MemoryNonceStore::new(10);
        store.check_and_remember("channel:1", "n1", TTL).await.expect("first");
        assert_eq!(store.check_and_remember("channel:1", "n1", TTL).await, Err(NonceError::Replayed));
        store.check_and_remember("channel:2", "n1", TTL).await.expect("other scope");
        store.check_and_remember("channel:1", "n2", TTL).await.expect("other nonce");
        assert_eq!(store.len(), 3);
    }

    #[tokio::test]
    async fn when_full_new_nonces_are_refused_and_nothing_is_evicted() {
        let clock = ManualClock::new();
        let store = MemoryNonceStore::with_clock(3, clock.clock());
        for n in ["a", "b", "c"] {
            store.check_and_remember("s", n, TTL).await.expect("room");
        }
        assert_eq!(store.check_and_remember("s", "d", TTL).await, Err(NonceError::Full));
        // Every live nonce is still remembered (a replay is still a replay, not "full").
        for n in ["a", "b", "c"] {
            assert_eq!(store.check_and_remember("s", n, TTL).await, Err(NonceError::Replayed), "{n}");
        }
        // The refused one was not remembered either.
        assert_eq!(store.len(), 3);
        clock.advance(TTL - Duration::from_millis(1));
        assert_eq!(store.check_and_remember("s", "d", TTL).await, Err(NonceError::Full), "still live");
    }

    #[tokio::test]
    async fn expired_nonces_are_pruned_and_free_room() {
        let clock = ManualClock::new();
        let store = MemoryNonceStore::with_clock(2, clock.clock());
        store.check_and_remember("s", "short", Duration::from_secs(10)).await.expect("room");
        store.check_and_remember("s", "long", Duration::from_secs(100)).await.expect("room");
        clock.advance(Duration::from_secs(9));
        assert_eq!(store.check_and_remember("s", "short", TTL).await, Err(NonceError::Replayed));
        clock.advance(Duration::from_secs(1));
        // At its expiry the short one is gone: room for one, and the value itself is usable again.
        assert_eq!(store.len(), 1);
        store.check_and_remember("s", "new", TTL).await.expect("room after pruning");
        assert_eq!(store.check_and_remember("s", "long", TTL).await, Err(NonceError::Replayed));
        assert_eq!(store.check_and_remember("s", "short", TTL).await, Err(NonceError::Full));
        clock.advance(Duration::from_secs(90));
        store.check_and_remember("s", "short", TTL).await.expect("long expired: room again");
    }

    #[tokio::test]
    async fn a_zero_ttl_still_refuses_an_immediate_replay() {
        let clock = ManualClock::new();
        let store = MemoryNonceStore::with_clock(2, clock.clock());
        store.check_and_remember("s", "n", Duration::ZERO).await.expect("first");
        assert_eq!(store.check_and_remember("s", "n", Duration::ZERO).await, Err(NonceError::Replayed));
    }

    /// Capacity counts values in every shard, and values that expired in shards no request has
    /// touched since are pruned before a new one is refused.
    #[tokio::test]
    async fn capacity_is_exact_across_shards_and_expired_values_anywhere_free_room() {
        let clock = ManualClock::new();
        let store = MemoryNonceStore::with_clock(1000, clock.clock());
        for n in 0..1000 {
            store.check_and_remember("channel:c1", &format!("n{n}"), Duration::from_secs(10)).await.expect("room");
        }
        assert_eq!(store.check_and_remember("channel:c1", "one-more", TTL).await, Err(NonceError::Full));
        assert_eq!(store.check_and_remember("channel:c1", "n999", TTL).await, Err(NonceError::Replayed));
        assert_eq!(store.len(), 1000, "the refused value was not remembered, nothing was evicted");
        clock.advance(Duration::from_secs(10));
        // No call in between touched the other shards: the new value's insert prunes them.
        store.check_and_remember("channel:c1", "one-more", TTL).await.expect("room once they expired");
        assert_eq!(store.len(), 1);
    }

    #[tokio::test]
    async fn scope_and_nonce_do_not_run_together() {
        let store = MemoryNonceStore::new(10);
        store.check_and_remember("channel:a", "b:c", TTL).await.expect("first");
        store.check_and_remember("channel:a:b", "c", TTL).await.expect("another scope and nonce, not a replay");
        store.check_and_remember("channel:ab", "c", TTL).await.expect("another scope and nonce, not a replay");
        assert_eq!(store.check_and_remember("channel:a", "b:c", TTL).await, Err(NonceError::Replayed));
    }
}
