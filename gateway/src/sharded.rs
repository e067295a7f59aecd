//! [`Sharded`]: a value split into independently locked shards, for the in-memory maps every
//! request writes to (the replay cache, the plugin state).
//!
//! A `HashMap` that grows re-hashes everything it holds at once, under its lock and on the
//! request worker that inserted: with [`SHARDS`] maps each growth moves a thousandth of the
//! entries, and requests on other shards do not wait at all. Sixteen shards were not enough:
//! with the plugin state of a quarter of a million card holders, a shard grew to a 3 MB table
//! at a time inside a plugin's `kv` call, and the kernel clearing its new pages plus the
//! re-hashing held one worker for up to 50 ms while requests queued behind it
//! (docs/PERFORMANCE.md, session 22).

use std::fmt;
use std::sync::{Mutex, MutexGuard};

/// Shards of one value (a power of two: a shard is picked by a hash's low bits).
pub const SHARDS: usize = 1024;

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

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, RandomState};

    use super::*;

    /// A growth moves one shard's entries, so keys must reach every shard and none may hold
    /// much more than its share (200 keys each here): else a large store would again grow by
    /// big steps while a request waits.
    #[test]
    fn keys_spread_evenly_over_every_shard() {
        let sharded: Sharded<usize> = Sharded::default();
        let hasher = RandomState::new();
        let share = 200;
        for i in 0..SHARDS * share {
            *sharded.lock(hasher.hash_one(("parks", format!("entered:{i}")))) += 1;
        }
        let counts: Vec<usize> = sharded.each().map(|count| *count).collect();
        assert_eq!(counts.len(), SHARDS);
        assert_eq!(counts.iter().sum::<usize>(), SHARDS * share);
        let (fewest, most) = (counts.iter().min().copied().unwrap_or(0), counts.iter().max().copied().unwrap_or(0));
        assert!(fewest >= share / 2 && most <= share * 2, "shards hold {fewest} to {most} keys, {share} each expected");
    }
}
