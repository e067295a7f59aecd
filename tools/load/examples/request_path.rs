//! Sends N parks entries, C at a time, through the full gateway (the load tool's test city) or
//! the native baseline, and prints the servers' CPU time and wake-ups per entry. Under
//! `valgrind --tool=callgrind` it gives an instruction count per entry that, unlike the load
//! test's timings, does not move with the machine or its neighbours, so changes of a few per
//! cent to the request path can be seen (docs/PERFORMANCE.md, "Instructions per admission").
//!
//! ```text
//! cargo build --release -p onecard-load --example request_path
//! request_path TARGET N [C [pause]]          # TARGET: full | native; C: 1 by default
//! valgrind --tool=callgrind --dump-before='*measured_phase*' \
//!     target/release/examples/request_path full 600 4
//! ```
//!
//! The second callgrind dump (`callgrind.out.PID.2`) holds exactly the measured entries: the
//! servers' work (the request path, and the background writers until the audit queue is
//! flushed) and the client's (the load tool's, the same for both targets), on every thread. The
//! instance pool is shrunk to four slots: valgrind cannot reserve the default.
//!
//! With `pause`, it waits for a line on stdin before the measured entries, for profilers that
//! attach to a running process (`perf record -p PID`).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use onecard_load::{cpu, drive, wire};
use onecard_load::full::{self, FullTarget};
use onecard_load::native::NativeServer;
use tokio::net::TcpStream;

#[global_allocator]
static ALLOCATOR: onecard_gateway::Allocator = onecard_gateway::Allocator;

/// Entries sent before counting starts: connections, lazy statics, first compiled paths.
const WARMUP: usize = 50;

// Markers for `--dump-before`; their bodies differ so that the compiler keeps two symbols.
#[inline(never)]
fn measured_phase_starts() {
    std::hint::black_box(());
}

#[inline(never)]
fn measured_phase_ends() {
    std::hint::black_box(1);
}

/// Sends every request on `connections`, as the load test's closed loop does; returns them.
async fn send_all(connections: Vec<TcpStream>, requests: Vec<Vec<u8>>) -> anyhow::Result<Vec<TcpStream>> {
    let (sent, connections) = drive::closed(connections, requests, Duration::from_secs(24 * 3600)).await?;
    anyhow::ensure!(sent.tally.error_count() == 0, "refused: {:?}", sent.tally.first_error);
    Ok(connections)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let target = args.next().unwrap_or_else(|| "full".into());
    let count: usize = args.next().map_or(Ok(200), |n| n.parse()).context("N is a number")?;
    let connections: usize = args.next().map_or(Ok(1), |n| n.parse()).context("C is a number")?;
    let pause = args.next().is_some_and(|a| a == "pause");
    let servers = tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("server").enable_all().build()?;
    let clients = tokio::runtime::Builder::new_current_thread().enable_all().build()?;

    let mut full = servers.block_on(FullTarget::start_with(|config| config.runtime.max_instances = 4))?;
    let signers = full.signers();
    let (base, cards, _native) = match target.as_str() {
        "full" => (full.city.base.clone(), servers.block_on(full.fresh_cards(WARMUP + count))?.to_vec(), None),
        "native" => {
            let (channels, issuer_keys) = servers.block_on(full.keys())?;
            let native = servers.block_on(NativeServer::start(channels, issuer_keys))?;
            (native.base.clone(), (0..WARMUP + count).map(full::card_ref).collect(), Some(native))
        }
        other => anyhow::bail!("the target is `full` or `native`, not {other:?}"),
    };
    let (host, addr) = wire::host(&base)?;
    let mut requests: Vec<Vec<u8>> = signers.prepare(&cards, WARMUP + count)?.iter().map(|r| r.http1(host)).collect();
    let measured = requests.split_off(WARMUP);
    let opened = clients.block_on(wire::connect(addr, connections))?;
    let opened = clients.block_on(send_all(opened, requests))?;
    servers.block_on(full.settle())?;

    if pause {
        // For profilers that attach to a running process (`perf record -p`): say when, wait.
        eprintln!("ready: press Enter to send the {count} measured entries");
        std::io::stdin().read_line(&mut String::new())?;
    }
    measured_phase_starts();
    let (started, cpu) = (Instant::now(), cpu::sample());
    clients.block_on(send_all(opened, measured))?;
    servers.block_on(full.settle())?;
    let cpu_after = cpu::sample();
    measured_phase_ends();
    let per_request = |total: f64| total / count.max(1) as f64;
    eprintln!(
        "{target}: {count} entries admitted in {:?} (with the 0.5 s settle); per entry: server CPU {:.1} µs (SQLite threads {:.1} µs), server threads put on a CPU {:.1} times",
        started.elapsed(),
        per_request(cpu_after.since(&cpu).unwrap_or_default().as_secs_f64() * 1e6),
        per_request(cpu_after.since_where(&cpu, cpu::is_sqlite).unwrap_or_default().as_secs_f64() * 1e6),
        per_request(cpu_after.runs_since(&cpu).unwrap_or_default() as f64),
    );
    Ok(())
}
