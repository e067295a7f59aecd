//! `onecard-load`: drives the parks `enter` action with fresh signed requests and fresh card
//! tokens, through the full gateway and through a native baseline that does the same signature
//! checks in a bare axum handler, both in one process, one after the other, in the same run;
//! prints throughput and p50/p99/p99.9 (docs/PERFORMANCE.md, "Request path under load").
//!
//! A run, for each target: a warm-up (not measured), a closed-loop phase (peak throughput), and
//! then for each target an open-loop phase at one common rate (by default half of the full
//! path's sustained peak: the closed loop's rate in its second half, once the audit queue
//! that absorbs a burst is full). With `--rounds N` the closed loops run N times, the targets
//! alternating, the common rate is half of the full path's median peak, and then the open
//! loops run N times ([`report`] says how the rounds are judged). Servers and load generator
//! run in this process, on the same cores: the servers on a tokio runtime of their own, the
//! generator on another (closed loops) and on threads of its own (open loops, [`wire`]); the
//! servers' threads at a lower priority ([`priority`]).
#![forbid(unsafe_code)]

pub mod cpu;
pub mod drive;
pub mod full;
pub mod native;
pub mod options;
pub mod priority;
pub mod report;
pub mod requests;
pub mod system;
pub mod wire;

use std::time::Duration;

use anyhow::Context as _;
use tokio::runtime::Runtime;

pub use options::{Options, OptionsError, Targets};
pub use report::{Mode, Report, Row, Target};

use crate::drive::Measured;
use crate::full::FullTarget;
use crate::native::NativeServer;
use crate::requests::Signers;

/// Holders the native baseline's tokens name (it keeps no anti-passback state, so they repeat).
const NATIVE_CARDS: usize = 1000;
/// The closed loop prepares this many times the warm-up's rate, capped by `--max-rate` (a
/// warm-up of 500 requests on fresh connections runs well below the peak).
const POOL_MARGIN: f64 = 3.0;
/// … or this many times the target's peak in an earlier round, a much closer estimate: each
/// full-path request prepared is a holder registered in the catalog.
const POOL_MARGIN_AFTER_A_ROUND: f64 = 1.3;
/// Pause between phases, for the machine to settle.
const PAUSE: Duration = Duration::from_millis(500);

/// A runtime of one worker per core.
fn runtime(name: &str) -> anyhow::Result<Runtime> {
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(threads).thread_name(name).enable_all().build()?)
}

/// The two servers and what the run needs to drive them.
struct Bench {
    servers: Runtime,
    /// The closed loops' client.
    clients: Runtime,
    full: FullTarget,
    native: NativeServer,
    signers: Signers,
    native_cards: Vec<String>,
}

impl Bench {
    /// `http://ip:port` of `target`.
    fn base(&self, target: Target) -> &str {
        match target {
            Target::Full => &self.full.city.base,
            Target::Native => &self.native.base,
        }
    }

    /// `ip:port` of `target`, and its address.
    fn host(&self, target: Target) -> anyhow::Result<(String, std::net::SocketAddr)> {
        let (host, addr) = wire::host(self.base(target))?;
        Ok((host.to_string(), addr))
    }

    /// `count` requests for `target` (fresh holders for the full gateway), as HTTP/1.1 bytes.
    fn prepare(&mut self, target: Target, count: usize) -> anyhow::Result<Vec<Vec<u8>>> {
        let prepared = match target {
            Target::Full => {
                let cards = self.servers.block_on(self.full.fresh_cards(count))?.to_vec();
                self.signers.prepare(&cards, count)?
            }
            Target::Native => self.signers.prepare(&self.native_cards, count)?,
        };
        let (host, _) = self.host(target)?;
        Ok(prepared.iter().map(|r| r.http1(&host)).collect())
    }

    /// The first `sent` requests of the last [`Bench::prepare`] were sent.
    fn spent(&mut self, target: Target, sent: usize) {
        if target == Target::Full {
            self.full.entered(sent);
        }
    }

    /// After a phase: its holders are inside, the gateway's background work is done.
    fn after(&mut self, target: Target, measured: &Measured) -> anyhow::Result<()> {
        self.spent(target, measured.sent);
        if target == Target::Full {
            self.servers.block_on(self.full.settle())?;
        }
        std::thread::sleep(PAUSE);
        Ok(())
    }

    /// Warm-up then the closed loop of `round`; `earlier` is the target's peak in an earlier
    /// round, req/s. Returns the measured phase.
    fn closed(&mut self, target: Target, options: &Options, round: Round, earlier: Option<f64>) -> anyhow::Result<Measured> {
        let (_, addr) = self.host(target)?;
        let connections = self.clients.block_on(wire::connect(addr, options.connections))?;
        let warmup = options.warmup.max(options.connections);
        let requests = self.prepare(target, warmup)?;
        let (warm, connections) = self.clients.block_on(drive::closed(connections, requests, options.phase()))?;
        anyhow::ensure!(warm.tally.error_count() == 0, "{} refused warm-up requests: {:?}", target.name(), warm.tally.first_error);
        self.after(target, &warm)?;
        let estimate = earlier.map_or(warm.throughput() * POOL_MARGIN, |peak| peak * POOL_MARGIN_AFTER_A_ROUND).max(100.0);
        let pool = (estimate.min(f64::from(options.max_rate)) * options.phase().as_secs_f64()).ceil() as usize;
        eprintln!("{round}{}: warm-up {:.0} req/s; preparing {pool} requests for the closed loop", target.name(), warm.throughput());
        let requests = self.prepare(target, pool)?;
        eprintln!("{round}{}: closed loop for {} s…", target.name(), options.duration);
        let recorder = options.timeline.is_some().then(system::record).transpose()?;
        let started = std::time::Instant::now();
        let measured = measure(options, || Ok(self.clients.block_on(drive::closed(connections, requests, options.phase()))?.0))?;
        let system = recorder.map(system::Recorder::finish);
        self.after(target, &measured)?;
        write_system(options, &round.file(target, "closed-system"), system, Some(started))?;
        Ok(measured)
    }

    /// The open loop of `round` at `rate`.
    fn open(&mut self, target: Target, options: &Options, round: Round, rate: u32) -> anyhow::Result<Measured> {
        let (_, addr) = self.host(target)?;
        // Connections opened and used once before the timetable starts, as a gate controller keeps them.
        let mut connections = wire::Connections::open(addr, options.connections, cpu::GENERATOR_THREAD)?;
        let opening = self.prepare(target, options.connections)?;
        connections.warm(&opening)?;
        self.spent(target, opening.len());
        let count = usize::try_from(u64::from(rate) * options.duration)?;
        let requests = self.prepare(target, count)?;
        // The wall-clock start lets the gateway's own logs (`ONECARD_LOG`) be read against the timeline.
        eprintln!("{round}{}: open loop at {rate} req/s for {} s from {}…", target.name(), options.duration, chrono::Utc::now().format("%H:%M:%S%.3f UTC"));
        let recorder = options.timeline.is_some().then(system::record).transpose()?;
        let mut measured = measure(options, || drive::open(connections, &requests, rate))?;
        let system = recorder.map(system::Recorder::finish);
        if let (Some(rows), Some(origin)) = (&system, measured.timeline_origin) {
            measured.slow = Some(system::slow_causes(rows, origin, &measured.timeline, report::GOAL_P99_US, system::machine_cpus()));
        }
        self.after(target, &measured)?;
        if let Some(dir) = &options.timeline {
            write_timeline(&dir.join(round.file(target, "open")), &measured.timeline)?;
            write_system(options, &round.file(target, "system"), system, measured.timeline_origin)?;
        }
        Ok(measured)
    }
}

/// One round of a run, for its messages and its `--timeline` files.
#[derive(Debug, Clone, Copy)]
struct Round {
    /// From 1.
    number: u32,
    /// Of how many.
    of: u32,
}

impl Round {
    /// `<target>-<phase>.csv`, with `-r<number>` before `.csv` when the run has several rounds.
    fn file(self, target: Target, phase: &str) -> String {
        match self.of {
            1 => format!("{}-{phase}.csv", target.name()),
            _ => format!("{}-{phase}-r{}.csv", target.name(), self.number),
        }
    }
}

/// Prefixes a progress message with the round, when the run has several.
impl std::fmt::Display for Round {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.of > 1 { write!(f, "round {}/{}: ", self.number, self.of) } else { Ok(()) }
    }
}

/// Runs one measured phase: first puts the generator's threads above the servers' (again: a
/// thread started since the last phase has the priority of the thread that started it, such
/// as a new SQLite connection of the holders' registration, started by the generator's main
/// thread), then records the servers' CPU time over the phase.
fn measure(options: &Options, phase: impl FnOnce() -> anyhow::Result<Measured>) -> anyhow::Result<Measured> {
    priority::separate(options.server_nice)?;
    let (before, machine_before) = (cpu::sample(), system::cpu_and_steal());
    let mut measured = phase()?;
    let (after, machine_after) = (cpu::sample(), system::cpu_and_steal());
    measured.server_cpu = after.since(&before);
    measured.sqlite_cpu = after.since_where(&before, cpu::is_sqlite);
    if let (Some((cpu0, steal0)), Some((cpu1, steal1))) = (machine_before, machine_after) {
        let cpu = cpu1.saturating_sub(cpu0);
        measured.steal = (!cpu.is_zero()).then(|| steal1.saturating_sub(steal0).as_secs_f64() / cpu.as_secs_f64());
    }
    Ok(measured)
}

/// Writes a phase's system timeline to `--timeline`'s `name`, its times from `origin`.
fn write_system(options: &Options, name: &str, rows: Option<Vec<system::Row>>, origin: Option<std::time::Instant>) -> anyhow::Result<()> {
    if let (Some(dir), Some(rows), Some(origin)) = (&options.timeline, rows, origin) {
        let path = dir.join(name);
        std::fs::write(&path, system::csv(&rows, origin)).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Writes an open loop's requests as CSV: `scheduled_us,latency_us,start_delay_us`.
fn write_timeline(path: &std::path::Path, timeline: &[drive::Timed]) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    let mut csv = String::from("scheduled_us,latency_us,start_delay_us\n");
    for t in timeline {
        writeln!(csv, "{},{},{}", t.scheduled_us, t.latency_us, t.start_delay_us)?;
    }
    std::fs::write(path, csv).with_context(|| format!("writing {}", path.display()))
}

/// Runs the load test as `options` say and returns the measured phases.
pub fn run(options: &Options) -> anyhow::Result<Report> {
    options.validate()?;
    let servers = runtime("server")?;
    let clients = runtime(cpu::GENERATOR_THREAD)?;
    eprintln!("starting the full gateway (test city) and the native baseline…");
    let full = servers.block_on(FullTarget::start()).context("starting the full gateway")?;
    let (channels, issuer_keys) = servers.block_on(full.keys())?;
    let native = servers.block_on(NativeServer::start(channels, issuer_keys))?;
    let signers = full.signers();
    let native_cards = (0..NATIVE_CARDS).map(full::card_ref).collect();
    let mut bench = Bench { servers, clients, full, native, signers, native_cards };

    let targets: Vec<Target> = [(options.target.full(), Target::Full), (options.target.native(), Target::Native)]
        .into_iter()
        .filter_map(|(on, t)| on.then_some(t))
        .collect();
    let rounds = (1..=options.rounds).map(|number| Round { number, of: options.rounds });
    let mut report = Report { priority: Some(priority::separate(options.server_nice)?), ..Report::default() };
    for round in rounds.clone() {
        for &target in &targets {
            let earlier = report.sustained_peak(target);
            let measured = bench.closed(target, options, round, earlier)?;
            eprintln!("{round}{}: closed loop {:.0} req/s ({:.0} req/s in its second half)", target.name(), measured.throughput(), measured.sustained());
            report.rows.push(Row { round: round.number, target, mode: Mode::Closed(options.connections), measured });
        }
    }
    let rate = match options.rate {
        Some(rate) => rate,
        None => {
            let peak = targets.first().and_then(|&t| report.sustained_peak(t)).unwrap_or(0.0);
            ((peak / 2.0).floor() as u32).clamp(1, options.max_rate)
        }
    };
    for round in rounds {
        for &target in &targets {
            let measured = bench.open(target, options, round, rate)?;
            report.rows.push(Row { round: round.number, target, mode: Mode::Open(rate), measured });
        }
    }
    eprintln!("{} load-test holders registered in the catalog", bench.full.registered());
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_one_round_keeps_the_timeline_files_unnumbered() {
        let only = Round { number: 1, of: 1 };
        assert_eq!(only.file(Target::Full, "open"), "full-open.csv");
        assert_eq!(only.to_string(), "");
        let second = Round { number: 2, of: 3 };
        assert_eq!(second.file(Target::Native, "closed-system"), "native-closed-system-r2.csv");
        assert_eq!(second.to_string(), "round 2/3: ");
    }
}
