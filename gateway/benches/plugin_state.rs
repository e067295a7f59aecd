//! What pruning expired plugin state costs a gateway whose store holds a marker per admitted
//! card holder (the parks plugin's anti-passback markers, which expire at the end of the day).
//!
//! - `whole_pass`: every entry visited at once ([`MemoryKv::prune_expired`], what the gateway
//!   ran on a request worker once a minute until session 11);
//! - `one_step`: one of the 1 024 shards ([`MemoryKv::prune_expired_step`], what it runs now
//!   every 59 ms on a runtime worker); the time one shard's lock is held;
//! - `file_delete`: the plugin-state file's `DELETE … WHERE expires_at_ms <= now`
//!   ([`SqlKv::prune_expired`]), which the gateway also ran once a minute on the journal
//!   writer's connection and now runs only when it opens the file.
//!
//! At 200 000 entries (about what a load run leaves), none expired: the common case, where the
//! walk finds nothing to drop. Run: `cargo bench -p onecard-gateway --bench plugin_state`;
//! figures go in docs/PERFORMANCE.md.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use onecard_gateway::capabilities::kv::{JournaledKv, KvBackend, MemoryKv, SqlKv};

const ENTRIES: usize = 200_000;

fn benches(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let kv = MemoryKv::new();
    tokio.block_on(async {
        for n in 0..ENTRIES {
            let key = format!("inside:{:064x}", n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            kv.set("parks", &key, b"WL-G1".to_vec(), Some(Duration::from_secs(86_400))).await.unwrap();
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("bench-kv.db").display().to_string();
    let file = tokio.block_on(async {
        let journaled = JournaledKv::open(&url).await.unwrap();
        for n in 0..ENTRIES {
            let key = format!("inside:{:064x}", n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            journaled.set("parks", &key, b"WL-G1".to_vec(), Some(Duration::from_secs(86_400))).await.unwrap();
        }
        journaled.flush().await;
        SqlKv::connect(&url).await.unwrap()
    });
    let mut group = c.benchmark_group("plugin_state_prune");
    group.bench_function("whole_pass", |b| b.iter(|| kv.prune_expired()));
    group.bench_function("one_step", |b| b.iter(|| kv.prune_expired_step()));
    group.sample_size(10);
    group.bench_function("file_delete", |b| b.iter(|| tokio.block_on(file.prune_expired()).unwrap()));
    group.finish();
}

criterion_group!(plugin_state, benches);
criterion_main!(plugin_state);
