//! What a fresh, sandboxed instance per request costs.
//!
//! - `instantiate_and_call`: one fresh parks instance + one `enter` (the request path);
//! - `warm_call`: the same `enter` on one instance reused (the floor the sandbox adds nothing to);
//! - `native`: the same entry logic compiled natively, run through the SDK's in-memory host.
//!
//! Every iteration admits a new card holder, so each takes the full admit path (entitlement,
//! anti-passback compare-and-swap, capacity increment). Run: `cargo bench -p onecard-gateway
//! --bench runtime`; figures go in docs/PERFORMANCE.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use onecard_gateway::capabilities::clock::ClockState;
use onecard_gateway::capabilities::{AppEnv, Capability, Grants, HostState, InstanceLimits};
use onecard_gateway::runtime::{Runtime, RuntimeConfig, sha256_hex};

#[path = "common/parks_request.rs"]
mod parks_request;

use parks_request::{CONFIG, NOW_MS, request};


fn benches(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let runtime = Runtime::new(RuntimeConfig { max_instances: 64, ..RuntimeConfig::default() }).unwrap();
    let bytes = std::fs::read(onecard_plugin_artifacts::PARKS).unwrap();
    let plugin = tokio.block_on(runtime.load(&bytes, &sha256_hex(&bytes), &Grants::of([Capability::Kv]))).unwrap();
    let env = AppEnv::in_memory("parks");
    // Deadlines are not what is measured here: a generous one keeps a descheduled iteration on a
    // busy machine from failing the run.
    let deadline = Duration::from_secs(10);
    let mut group = c.benchmark_group("parks_enter");

    let mut n = 0u64;
    group.bench_function("instantiate_and_call", |b| {
        b.iter(|| {
            n += 1;
            let req = request(n);
            let state = HostState::new(&env, runtime.instance_limits(), &req.request_id, req.card.clone(), ClockState::fixed(NOW_MS));
            let invocation = tokio.block_on(plugin.handle(state, &req, deadline));
            black_box(invocation.result.expect("admitted"));
        })
    });

    // One instance serves every iteration, so its host-call budget must outlast the run.
    let unmetered = InstanceLimits { max_host_calls: u32::MAX, ..runtime.instance_limits() };
    let state = HostState::new(&env, unmetered, "warm", None, ClockState::fixed(NOW_MS));
    let mut warm = tokio.block_on(plugin.warm(state, Duration::from_secs(3600))).unwrap();
    group.bench_function("warm_call", |b| {
        b.iter(|| {
            n += 1;
            let req = request(n);
            black_box(tokio.block_on(warm.handle(&req)).unwrap().expect("admitted"));
        })
    });

    let mut harness = onecard_sdk::testing::Harness::new();
    group.bench_function("native", |b| {
        b.iter(|| {
            n += 1;
            let req = native_request(&harness, n);
            black_box(harness.call::<parks::Parks>(&req).expect("admitted"));
        })
    });
    group.finish();
}

fn native_request(harness: &onecard_sdk::testing::Harness, n: u64) -> onecard_sdk::Request {
    harness
        .request("enter", "{}")
        .with_card(&format!("holder-{n}"))
        .with_attribute("holder.age", "67")
        .with_venue("west-lake", "WL-G1")
        .with_config(CONFIG)
        .with_idempotency_key(&format!("idem-{n}"))
}

criterion_group! {
    name = runtime;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(runtime);
