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

/// Shards of one value (a power of two: a shard is picked by ten bits of a hash).
pub const SHARDS: usize = 1024;

/// Where in a 64-bit hash the shard's bits start. A map inside a shard may take its own bits
/// from the same hash: hashbrown (`std`'s `HashMap`) picks the bucket from the low bits and a
/// tag from the top seven. Bits 32 to 41 are neither, for any table under 2^32 buckets. With
/// the low bits, as until session 23, every key of a shard had the same ten low bits: in a
/// table of 1 024 buckets every lookup started at the same place and probed past the whole
/// shard.
const SHARD_BITS_FROM: u32 = 32;

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
        lock(&self.shards[index(hash)])
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

/// The shard of a key whose hash is `hash`.
fn index(hash: u64) -> usize {
    (hash >> SHARD_BITS_FROM) as usize & (SHARDS - 1)
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

    /// The keys of one shard must still differ in the bits a map inside it uses (the low ones
    /// for the bucket, the top seven for the tag): else they all probe from the same bucket.
    #[test]
    fn the_keys_of_one_shard_differ_in_the_bits_its_map_uses() {
        let hasher = RandomState::new();
        let in_shard_0: Vec<u64> = (0..SHARDS * 64).map(|i| hasher.hash_one(i)).filter(|&hash| index(hash) == 0).collect();
        assert!(in_shard_0.len() >= 32, "{} keys in shard 0, about 64 expected", in_shard_0.len());
        let distinct = |bits: fn(u64) -> u64| in_shard_0.iter().map(|&hash| bits(hash)).collect::<std::collections::HashSet<_>>().len();
        let buckets = distinct(|hash| hash & 1023);
        let tags = distinct(|hash| hash >> 57);
        assert!(buckets * 4 >= in_shard_0.len() * 3, "{} keys of one shard start at only {buckets} of 1 024 buckets", in_shard_0.len());
        assert!(tags >= 24, "{} keys of one shard have only {tags} of 128 tags", in_shard_0.len());
    }
}
