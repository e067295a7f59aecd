//! What remembering one more nonce costs a gateway's in-memory replay cache
//! ([`MemoryNonceStore::check_and_remember`]) that already holds many: every request does it
//! twice (the channel's nonce and the card credential's), and every one is new, so each looks up
//! a value the cache does not hold and inserts it.
//!
//! `remember_new/N`: the cache holds about N values (500 000 is about what a three-round
//! `onecard-load` run leaves; 2 000 000 is a busy city's ten minutes) and stays that size, as a
//! gateway's does at a steady rate: the store's clock moves 1 ms per call and values live N ms,
//! so each new one outlives one expired one.
//! Run: `cargo bench -p onecard-gateway --bench replay_cache`; figures go in
//! docs/PERFORMANCE.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use onecard_gateway::auth::nonce::{MemoryNonceStore, NonceStore};

fn benches(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut group = c.benchmark_group("replay_cache");
    for held in [500_000_usize, 2_000_000] {
        let (start, calls) = (Instant::now(), Arc::new(AtomicU64::new(0)));
        let clock = {
            let calls = calls.clone();
            Arc::new(move || start + Duration::from_millis(calls.fetch_add(1, Ordering::Relaxed)))
        };
        let store = MemoryNonceStore::with_clock(held * 2, clock);
        let ttl = Duration::from_millis(held as u64);
        let (mut next, tokio) = (0_u64, &tokio);
        let mut remember = move || {
            next += 1;
            tokio.block_on(store.check_and_remember("channel:3300000001", &format!("{next:032x}"), ttl)).unwrap();
        };
        for _ in 0..held {
            remember();
        }
        group.bench_function(BenchmarkId::new("remember_new", held), |b| b.iter(&mut remember));
    }
    group.finish();
}

criterion_group!(replay_cache, benches);
criterion_main!(replay_cache);
