//! [`Sharded`]: a value split into independently locked shards, for the in-memory maps every
//! request writes to (the replay cache, the plugin state).
//!
//! A `HashMap` that grows re-hashes everything it holds at once; behind one lock, a map of
//! hundreds of thousands of entries did so for milliseconds while every request waited. With
//! [`SHARDS`] maps each grows (and each lock is held) for a sixteenth of that, and requests on
//! other shards do not wait at all.

use std::fmt;
use std::sync::{Mutex, MutexGuard};

/// Shards of one value (a power of two: a shard is picked by a hash's low bits).
pub const SHARDS: usize = 16;

pub struct Sharded<T> {
    shards: Box<[Mutex<T>]>,
}

impl<T: Default> Default for Sharded<T> {
    fn default() -> Self {
        Sharded { shards: (0..SHARDS).map(|_| Mutex::default()).collect() }
    }
}

impl<T> Sharded<T> {
    /// The shard of a key whose hash is `hash`, locked.
    pub fn lock(&self, hash: u64) -> MutexGuard<'_, T> {
        lock(&self.shards[(hash as usize) & (SHARDS - 1)])
    }

    /// Shard `index` (modulo [`SHARDS`]), locked.
    pub fn shard(&self, index: usize) -> MutexGuard<'_, T> {
        lock(&self.shards[index & (SHARDS - 1)])
    }

    /// Every shard in turn, each locked while the caller holds it.
    pub fn each(&self) -> impl Iterator<Item = MutexGuard<'_, T>> {
        self.shards.iter().map(lock)
    }
}

fn lock<T>(shard: &Mutex<T>) -> MutexGuard<'_, T> {
    // Both users change a shard by single inserts and removes, so a panic while one is held
    // cannot leave it half-written: a poisoned lock is still usable.
    shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<T> fmt::Debug for Sharded<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sharded").field("shards", &SHARDS).finish_non_exhaustive()
    }
}
