//! The open loop's system timeline (`--timeline DIR`, `<target>-system.csv`): every
//! [`EVERY`], what the machine and this process did, so that a slow episode in
//! `<target>-open.csv` can be told apart: the VM's vCPUs taken by the host (steal), the kernel
//! stalling the process (pressure, page faults), or the process waiting on itself (its threads
//! runnable but not running, or not runnable at all).
//!
//! Linux only, like [`crate::cpu`]: `/proc/stat` (steal, iowait, idle, in clock ticks of
//! 10 ms), `/proc/pressure/*` (µs during which some or all tasks stalled on a resource),
//! `/proc/self/stat` (page faults) and each thread's `schedstat` (on-CPU time, time runnable
//! but waiting for a CPU, times put on a CPU), summed over three groups: the servers, SQLite's
//! workers, and the load generator (with this recorder's own thread); and the bytes SQLite's
//! workers wrote (each thread's `io`, `wchar`), where a WAL checkpoint shows as megabytes in one
//! row against the kilobytes of a commit. A row holds what each counter added since the row
//! before. Where a file is missing, its columns stay 0.
//!
//! [`slow_causes`] reads the rows back against the open loop's requests: of those slower than
//! the goal's bound, how many were slow while the host (steal), or other processes and the
//! kernel's own threads, took a large share of the machine. `/proc/stat` counts in ticks, so
//! a single row's share is coarse; summed over a window of several rows it is not biased.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cpu::{GENERATOR_THREAD, comm, is_generator, is_sqlite, schedstat, threads};
use crate::drive::Timed;

/// Time between two rows: short enough to place a stall of tens of milliseconds, long enough
/// that reading ~30 `schedstat` files costs well under 1 % of a core.
pub const EVERY: Duration = Duration::from_millis(10);

/// The CSV's columns after `t_us` (the row's time from the open loop's start, negative before it).
const COLUMNS: [&str; 20] = [
    "steal_ms",
    "iowait_ms",
    "idle_ms",
    "cpu_some_us",
    "io_some_us",
    "io_full_us",
    "memory_some_us",
    "minor_faults",
    "major_faults",
    "server_cpu_us",
    "server_wait_us",
    "server_runs",
    "sqlite_cpu_us",
    "sqlite_wait_us",
    "sqlite_runs",
    "load_cpu_us",
    "load_wait_us",
    "load_runs",
    "sqlite_write_kb",
    "threads",
];

/// One row: when it was read, and each column's increase since the row before ([`COLUMNS`];
/// `threads` is the count, not an increase).
#[derive(Debug, Clone)]
pub struct Row {
    at: Instant,
    values: [u64; COLUMNS.len()],
}

/// A running recorder; [`Recorder::finish`] stops it and returns its rows.
#[derive(Debug)]
pub struct Recorder {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Row>>,
}

/// Starts recording a row every [`EVERY`] on a thread of its own.
pub fn record() -> anyhow::Result<Recorder> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    // Named as the generator's threads are, so that [`crate::cpu`] does not count it as a server's.
    let thread = std::thread::Builder::new().name(GENERATOR_THREAD.into()).spawn(move || {
        let mut counters = Counters::default();
        counters.read();
        let mut rows = Vec::new();
        let mut next = Instant::now() + EVERY;
        while !stopped.load(Ordering::Relaxed) {
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            next += EVERY;
            rows.push(Row { at: Instant::now(), values: counters.read() });
        }
        rows
    })?;
    Ok(Recorder { stop, thread })
}

impl Recorder {
    /// Stops the recorder and returns its rows.
    pub fn finish(self) -> Vec<Row> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// `rows` as CSV, each row's time in µs from `origin`.
pub fn csv(rows: &[Row], origin: Instant) -> String {
    let mut out = format!("t_us,{}\n", COLUMNS.join(","));
    for row in rows {
        let t = match row.at.checked_duration_since(origin) {
            Some(after) => i128::try_from(after.as_micros()).unwrap_or(i128::MAX),
            None => -i128::try_from(origin.duration_since(row.at).as_micros()).unwrap_or(i128::MAX),
        };
        let _ = write!(out, "{t}");
        for v in row.values {
            let _ = write!(out, ",{v}");
        }
        out.push('\n');
    }
    out
}

/// A share of the machine's CPU time at or above which the host, or other processes, took
/// enough of it to make requests slow: at the open loop's rate this process leaves about a
/// fifth to two fifths of the machine idle (session 19: 22–38 %), so a fifth taken leaves it
/// little or no room for its own bursts.
pub const TAKEN: f64 = 0.2;

/// How far before a slow request was due its window starts: work that took the machine just
/// before leaves a backlog the request waits behind.
const BEFORE: Duration = Duration::from_millis(50);

/// What the machine did while an open loop's slow requests waited ([`slow_causes`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlowCauses {
    /// Requests slower than the bound.
    pub slow: usize,
    /// Of which, slow while the host took at least [`TAKEN`] of the machine (steal).
    pub steal: usize,
    /// Of which (the rest), slow while other processes and the kernel's own threads took at
    /// least [`TAKEN`] of it: the machine's busy time that was not this process's.
    pub others: usize,
}

/// The machine's CPUs (`/proc/stat`'s `cpuN` lines); 1 where it does not tell.
pub fn machine_cpus() -> u32 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let n = stat.lines().filter(|l| l.strip_prefix("cpu").and_then(|r| r.chars().next()).is_some_and(|c| c.is_ascii_digit())).count();
    u32::try_from(n).unwrap_or(1).max(1)
}

/// Of `requests` (an open loop's, due from `origin`), those slower than `bound_us`, and what
/// took the machine's `cpus` in each one's window: from [`BEFORE`] before it was due until it
/// was answered, the rows that overlap it summed. Steal is counted first: a host taking the
/// vCPUs also stalls other processes, and a thread's `schedstat` counts the time stolen from it
/// as its own, which hides other processes' time in the same rows.
pub fn slow_causes(rows: &[Row], origin: Instant, requests: &[Timed], bound_us: u64, cpus: u32) -> SlowCauses {
    // Each row as (start, end, machine µs, steal µs, others µs): a row covers the time since
    // the row before (the first, one interval).
    let mut spans = Vec::with_capacity(rows.len());
    let mut start = rows.first().map(|r| r.at.checked_sub(EVERY).unwrap_or(r.at));
    for row in rows {
        let from = start.unwrap_or(row.at);
        // A row's counters and length are milliseconds to seconds: far inside i64.
        let machine = row.at.saturating_duration_since(from).as_micros() as i64 * i64::from(cpus);
        let us = |column: usize| row.values[column] as i64;
        let ms = |column: usize| us(column) * 1_000;
        // Columns: steal, iowait and idle in ms; this process's threads' CPU in µs.
        let busy = machine - ms(0) - ms(1) - ms(2);
        let ours = us(Group::Server as usize) + us(Group::Sqlite as usize) + us(Group::Load as usize);
        spans.push((from, row.at, machine, ms(0), busy - ours));
        start = Some(row.at);
    }
    let mut causes = SlowCauses::default();
    for request in requests.iter().filter(|r| r.latency_us > bound_us) {
        let due = origin + Duration::from_micros(request.scheduled_us);
        let (from, to) = (due.checked_sub(BEFORE).unwrap_or(due), due + Duration::from_micros(request.latency_us));
        let first = spans.partition_point(|s| s.1 <= from);
        let (machine, steal, others) = spans[first..]
            .iter()
            .take_while(|s| s.0 < to)
            .fold((0i64, 0i64, 0i64), |(m, st, o), s| (m + s.2, st + s.3, o + s.4));
        causes.slow += 1;
        let share = |part: i64| machine > 0 && part as f64 >= TAKEN * machine as f64;
        if share(steal) {
            causes.steal += 1;
        } else if share(others) {
            causes.others += 1;
        }
    }
    causes
}

/// A thread's group: the columns its `schedstat` adds to (server, SQLite, load generator).
#[derive(Debug, Clone, Copy)]
enum Group {
    Server = 9,
    Sqlite = 12,
    Load = 15,
}

/// The column of the bytes SQLite's workers wrote.
const SQLITE_WRITE: usize = 18;

/// A known thread: its group, its open `schedstat` and the three fields as last read; for
/// SQLite's workers also its open `io` and the bytes written as last read.
#[derive(Debug)]
struct Thread {
    group: Group,
    schedstat: File,
    last: [u64; 3],
    io: Option<(File, u64)>,
}

/// The cumulative counters as last read.
#[derive(Debug, Default)]
struct Counters {
    system: [u64; 9],
    threads: HashMap<u32, Thread>,
}

impl Counters {
    /// Reads every counter; returns what each added since the last read (the thread count as is).
    fn read(&mut self) -> [u64; COLUMNS.len()] {
        let mut out = [0; COLUMNS.len()];
        let system = system_counters();
        for (i, (now, last)) in system.iter().zip(&mut self.system).enumerate() {
            out[i] = now.saturating_sub(*last);
            *last = *now;
        }
        let alive = self.refresh_threads();
        for thread in self.threads.values_mut() {
            if let Some(now) = read_schedstat(&thread.schedstat) {
                let at = thread.group as usize;
                out[at] += now[0].saturating_sub(thread.last[0]) / 1_000;
                out[at + 1] += now[1].saturating_sub(thread.last[1]) / 1_000;
                out[at + 2] += now[2].saturating_sub(thread.last[2]);
                thread.last = now;
            }
            if let Some((file, last)) = &mut thread.io
                && let Some(now) = read_wchar(file)
            {
                out[SQLITE_WRITE] += now.saturating_sub(*last) / 1_024;
                *last = now;
            }
        }
        out[COLUMNS.len() - 1] = alive as u64;
        out
    }

    /// Opens the `schedstat` (and `io`) of threads started since the last read (their fields
    /// count from zero), forgets those that ended; returns how many are alive.
    fn refresh_threads(&mut self) -> usize {
        let alive = threads();
        self.threads.retain(|tid, _| alive.iter().any(|(t, _)| t == tid));
        for (tid, dir) in &alive {
            if self.threads.contains_key(tid) {
                continue;
            }
            let comm = comm(dir);
            let group = if is_generator(*tid, &comm) {
                Group::Load
            } else if is_sqlite(&comm) {
                Group::Sqlite
            } else {
                Group::Server
            };
            if let Ok(schedstat) = File::open(dir.join("schedstat")) {
                let io = matches!(group, Group::Sqlite).then(|| File::open(dir.join("io")).ok()).flatten().map(|f| (f, 0));
                self.threads.insert(*tid, Thread { group, schedstat, last: [0; 3], io });
            }
        }
        alive.len()
    }
}

/// The machine's CPU time so far, ms, all CPUs together: `[user, nice, system, idle, iowait,
/// irq, softirq, steal]` (`/proc/stat`'s first line, in ticks of 10 ms: USER_HZ is 100).
fn machine_cpu_ms() -> Option<[u64; 8]> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let mut fields = stat.lines().next()?.split_whitespace().skip(1).map(|f| f.parse::<u64>().ok().map(|t| t * 10));
    let mut out = [0; 8];
    for slot in &mut out {
        *slot = fields.next().flatten()?;
    }
    Some(out)
}

/// The machine's CPU time so far (all CPUs) and how much of it the host took (steal): a phase
/// during which the host took a share of the VM's CPUs measured a smaller machine.
pub fn cpu_and_steal() -> Option<(Duration, Duration)> {
    let ms = machine_cpu_ms()?;
    Some((Duration::from_millis(ms.iter().sum()), Duration::from_millis(ms[7])))
}

/// The machine's and the process's counters, in [`COLUMNS`]' order (ms, µs, faults).
fn system_counters() -> [u64; 9] {
    let mut out = [0; 9];
    if let Some(ms) = machine_cpu_ms() {
        (out[0], out[1], out[2]) = (ms[7], ms[4], ms[3]);
    }
    let pressure = |resource: &str, kind: &str| -> u64 {
        let text = std::fs::read_to_string(format!("/proc/pressure/{resource}")).unwrap_or_default();
        text.lines()
            .find(|l| l.starts_with(kind))
            .and_then(|l| l.rsplit("total=").next())
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    };
    (out[3], out[4], out[5], out[6]) = (pressure("cpu", "some"), pressure("io", "some"), pressure("io", "full"), pressure("memory", "some"));
    // /proc/self/stat: the fields after the parenthesised name; minflt is the 10th field, majflt the 12th.
    if let Some(rest) = std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| s.rsplit_once(')').map(|(_, r)| r.to_owned())) {
        let fields: Vec<u64> = rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
        (out[7], out[8]) = (fields.get(7).copied().unwrap_or(0), fields.get(9).copied().unwrap_or(0));
    }
    out
}

/// A kept-open `/proc` file's text, read again from its start into `buf` (no path lookup per
/// read).
fn reread<'a>(mut file: &File, buf: &'a mut [u8]) -> Option<&'a str> {
    file.seek(SeekFrom::Start(0)).ok()?;
    let n = file.read(buf).ok()?;
    std::str::from_utf8(&buf[..n]).ok()
}

/// A `schedstat` file's fields.
fn read_schedstat(file: &File) -> Option<[u64; 3]> {
    schedstat(reread(file, &mut [0u8; 128])?)
}

/// The `wchar` field of a thread's `io` file (bytes passed to `write` and its kin).
fn read_wchar(file: &File) -> Option<u64> {
    reread(file, &mut [0u8; 512])?.lines().find_map(|l| l.strip_prefix("wchar:")).and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_follow_the_process() {
        if !std::path::Path::new("/proc/thread-self/schedstat").exists() {
            return;
        }
        let recorder = record().unwrap();
        // A server-group thread spinning for 50 ms of its own CPU time, then alive (blocked)
        // until the recorder has finished: a thread's time is read only while it lives.
        let own = || read_schedstat(&File::open("/proc/thread-self/schedstat").unwrap()).unwrap()[0];
        let (spun, done_spinning) = std::sync::mpsc::channel();
        let (finished, wait_finished) = std::sync::mpsc::channel::<()>();
        let spinner = std::thread::Builder::new()
            .name("server".into())
            .spawn(move || {
                let start = own();
                while own() - start < 50_000_000 {}
                spun.send(()).unwrap();
                let _ = wait_finished.recv();
            })
            .unwrap();
        done_spinning.recv().unwrap();
        std::thread::sleep(EVERY * 3);
        let rows = recorder.finish();
        finished.send(()).unwrap();
        spinner.join().unwrap();
        assert!(rows.len() >= 3, "{} rows", rows.len());
        let server_cpu_us: u64 = rows.iter().map(|r| r.values[Group::Server as usize]).sum();
        assert!(server_cpu_us >= 40_000, "server CPU {server_cpu_us} µs");
        assert!(rows.iter().all(|r| r.values[COLUMNS.len() - 1] >= 1));
        let origin = rows[1].at;
        let text = csv(&rows, origin);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0].split(',').count(), COLUMNS.len() + 1);
        assert_eq!(lines.len(), rows.len() + 1);
        assert!(lines[1].starts_with('-'), "a row before the origin has a negative time: {}", lines[1]);
        assert!(lines[2].starts_with("0,"), "{}", lines[2]);
    }

    /// Rows on 2 CPUs (20 ms of machine time per 10 ms): a quiet one, one the host took 10 ms
    /// of, one other processes took 18 ms of (20 − 0 idle − 2 this process's), two quiet ones,
    /// then a quiet 70 ms. A request slow over the first two rows (steal 25 % of its window) and
    /// one over the first three (steal 17 %, others 30 %) are told apart; one slow in the last
    /// row (its window reaching back [`BEFORE`] into it only) is neither; a fast one is not
    /// counted.
    #[test]
    fn slow_requests_are_told_apart_by_what_took_the_machine() {
        let origin = Instant::now();
        let row = |n: u64, steal_ms: u64, idle_ms: u64, server_us: u64| {
            let mut values = [0; COLUMNS.len()];
            (values[0], values[2], values[Group::Server as usize]) = (steal_ms, idle_ms, server_us);
            Row { at: origin + EVERY * u32::try_from(n).unwrap(), values }
        };
        let rows = [row(1, 0, 12, 8_000), row(2, 10, 0, 10_000), row(3, 0, 0, 2_000), row(4, 0, 12, 8_000), row(5, 0, 12, 8_000), row(12, 0, 120, 20_000)];
        let at = |scheduled_ms: u64, latency_ms: u64| Timed { scheduled_us: scheduled_ms * 1_000, latency_us: latency_ms * 1_000, start_delay_us: 1 };
        let requests = [at(10, 6), at(21, 6), at(110, 8), at(12, 2)];
        let causes = slow_causes(&rows, origin, &requests, 5_000, 2);
        assert_eq!(causes, SlowCauses { slow: 3, steal: 1, others: 1 });
        assert_eq!(slow_causes(&rows, origin, &requests, 10_000, 2), SlowCauses::default(), "none over 10 ms");
        assert!(machine_cpus() >= 1);
    }

    #[test]
    fn sqlite_workers_writes_are_counted() {
        if !std::path::Path::new("/proc/thread-self/io").exists() {
            return;
        }
        let mut counters = Counters::default();
        counters.read();
        // A thread named as sqlx's SQLite workers are writes 1 MiB, then waits, alive, until
        // the counters were read.
        let (wrote, written) = std::sync::mpsc::channel();
        let (read, done) = std::sync::mpsc::channel::<()>();
        let file = tempfile::tempfile().unwrap();
        let worker = std::thread::Builder::new()
            .name("sqlx-sqlite-worker-0".into())
            .spawn(move || {
                for _ in 0..16 {
                    std::io::Write::write_all(&mut &file, &[7u8; 65_536]).unwrap();
                }
                wrote.send(()).unwrap();
                let _ = done.recv();
            })
            .unwrap();
        written.recv().unwrap();
        let row = counters.read();
        read.send(()).unwrap();
        worker.join().unwrap();
        assert!((1_024..1_100).contains(&row[SQLITE_WRITE]), "SQLite's workers wrote {} KiB", row[SQLITE_WRITE]);
        assert_eq!(counters.read()[SQLITE_WRITE], 0, "nothing more was written");
    }
}
