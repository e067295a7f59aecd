//! Run the parks plugin's `enter` N times, each on a fresh instance (or, with `warm`, on one
//! reused instance), for profilers: `valgrind --tool=callgrind` or `strace -c` on this binary
//! gives per-request instruction and syscall counts that a busy machine does not blur.
//!
//! `cargo build --profile bench -p onecard-gateway --example fresh_instances`, then
//! `valgrind --tool=callgrind target/release/examples/fresh_instances [fresh|warm] [N] [POOL]`
//! (POOL: pooling-allocator slots, 64 by default; valgrind's address space holds about 4).

use std::time::{Duration, Instant};

use onecard_gateway::capabilities::clock::ClockState;
use onecard_gateway::capabilities::{AppEnv, Capability, Grants, HostState, InstanceLimits};
use onecard_gateway::runtime::{Runtime, RuntimeConfig, sha256_hex};

#[path = "../benches/common/parks_request.rs"]
mod parks_request;

use parks_request::{NOW_MS, request};


fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "fresh".into());
    let count: u64 = args.next().map(|n| n.parse().expect("N is a number")).unwrap_or(10_000);
    // valgrind cannot reserve the pool of 64 slots of 4 GiB + guards: pass a small pool to it.
    let max_instances: u32 = args.next().map(|n| n.parse().expect("POOL is a number")).unwrap_or(64);

    let tokio = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let runtime = Runtime::new(RuntimeConfig { max_instances, ..RuntimeConfig::default() }).unwrap();
    let bytes = std::fs::read(onecard_plugin_artifacts::PARKS).unwrap();
    let plugin = tokio.block_on(runtime.load(&bytes, &sha256_hex(&bytes), &Grants::of([Capability::Kv]))).unwrap();
    let env = AppEnv::in_memory("parks");
    let deadline = Duration::from_secs(10);

    let started = Instant::now();
    match mode.as_str() {
        "fresh" => {
            for n in 0..count {
                let req = request(n);
                let state = HostState::new(&env, runtime.instance_limits(), &req.request_id, req.card.clone(), ClockState::fixed(NOW_MS));
                let invocation = tokio.block_on(plugin.handle(state, &req, deadline));
                std::hint::black_box(invocation.result.expect("admitted"));
            }
        }
        "warm" => {
            let unmetered = InstanceLimits { max_host_calls: u32::MAX, ..runtime.instance_limits() };
            let state = HostState::new(&env, unmetered, "warm", None, ClockState::fixed(NOW_MS));
            let mut warm = tokio.block_on(plugin.warm(state, Duration::from_secs(3600))).unwrap();
            for n in 0..count {
                let req = request(n);
                std::hint::black_box(tokio.block_on(warm.handle(&req)).unwrap().expect("admitted"));
            }
        }
        other => panic!("mode is `fresh` or `warm`, not {other:?}"),
    }
    let per_call = started.elapsed() / count.max(1) as u32;
    eprintln!("{mode}: {count} calls, {per_call:?} per call");
}
