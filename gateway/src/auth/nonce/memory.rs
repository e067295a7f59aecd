//! The in-process replay cache of a single gateway: a bounded map with expiry times.
//!
//! When full it refuses new values with [`NonceError::Full`] and never evicts a live one;
//! expired values are pruned (oldest expiry first) before every decision.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{NonceError, NonceStore, entry_key, ttl_millis};

/// The store's source of time; tests drive it by hand.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

#[derive(Default)]
struct Entries {
    /// Key -> expiry.
    live: HashMap<String, Instant>,
    /// Expiries, soonest first.
    expiries: BinaryHeap<Reverse<(Instant, String)>>,
}

impl Entries {
    fn prune(&mut self, now: Instant) {
        while let Some(Reverse((at, _))) = self.expiries.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((at, key))) = self.expiries.pop()
                && self.live.get(&key) == Some(&at)
            {
                self.live.remove(&key);
            }
        }
    }
}

/// A bounded in-memory [`NonceStore`].
pub struct MemoryNonceStore {
    capacity: usize,
    clock: Clock,
    entries: Mutex<Entries>,
}

impl MemoryNonceStore {
    /// A store holding at most `capacity` live values, on the monotonic clock.
    pub fn new(capacity: usize) -> MemoryNonceStore {
        MemoryNonceStore::with_clock(capacity, Arc::new(Instant::now))
    }

    /// A store on the given clock.
    pub fn with_clock(capacity: usize, clock: Clock) -> MemoryNonceStore {
        MemoryNonceStore { capacity, clock, entries: Mutex::new(Entries::default()) }
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Live values now (expired ones pruned first).
    pub fn len(&self) -> usize {
        let mut entries = self.lock();
        entries.prune((self.clock)());
        entries.live.len()
    }

    /// Whether no value is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves the maps consistent (every mutation is a single
        // insert or remove), so a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
        let key = entry_key(scope, nonce);
        let now = (self.clock)();
        let mut entries = self.lock();
        entries.prune(now);
        if entries.live.contains_key(&key) {
            return Err(NonceError::Replayed);
        }
        if entries.live.len() >= self.capacity {
            tracing::warn!(capacity = self.capacity, "replay cache full: refusing new nonces");
            return Err(NonceError::Full);
        }
        let expires = now + Duration::from_millis(ttl_millis(ttl));
        entries.live.insert(key.clone(), expires);
        entries.expiries.push(Reverse((expires, key)));
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

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
}
