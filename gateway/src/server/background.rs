//! SQLite's worker threads run a few CPU priority levels below the request path.
//!
//! Why: on SQLite everything the gateway writes (the audit trail, the holder-access log, the
//! plugin-state journal) is written behind the request path, by batching writers whose
//! statements run on sqlx's worker threads, one per connection. Their work comes in bursts: a
//! log checkpoint or an access-log fold takes several milliseconds of one CPU. On the
//! project's 2-vCPU machines such a burst took one of the two CPUs from the requests, and under
//! `onecard-load` the slow requests fell in those windows (docs/PERFORMANCE.md, sessions 19 and
//! 24). Nothing waits on these threads but the queues in front of them, which absorb a burst
//! (and refuse new work, `AUDIT_BACKPRESSURE`, if they fill); a request waits on every
//! microsecond a CPU spends elsewhere. So when both want a CPU, the request path should get it:
//! RocksDB lowers its compaction threads' priority for the same reason.
//!
//! How much: at nice 5 against the request path's 0 the kernel gives a SQLite thread about a
//! quarter of a CPU both want (weights 335 and 1 024), and all of an idle one. That is about
//! what the writers took at the gateway's peak under `onecard-load` (15–26 µs per admission at
//! 6 600–9 200 admissions a second); in session 25's runs no request was refused.
//!
//! How: sqlx starts each connection's thread from whichever thread opened the connection, at
//! that thread's priority, and offers no hook that runs on it. So a task lists the process's
//! threads every [`EVERY`] and lowers each SQLite worker above the target (`own + levels`,
//! `own` the priority of the thread that started the task) to it; a thread someone put lower
//! still stays where it is. A connection opened later (a pool reopens them) is lowered within
//! that time. Only on Linux, where a thread's priority can be set by its id.

use std::time::Duration;

use tokio::task::JoinHandle;

/// Nice levels between the request path and SQLite's worker threads, by default.
pub const DEFAULT_LEVELS: u8 = 5;

/// How often the task looks for new SQLite worker threads.
const EVERY: Duration = Duration::from_secs(1);

/// The name sqlx gives each SQLite connection's thread (`sqlx-sqlite-worker-N`), as the kernel
/// keeps it (15 bytes).
const SQLITE_WORKER: &str = "sqlx-sqlite-wor";

/// Starts the task that keeps SQLite's worker threads `levels` nice levels below the calling
/// thread (none when `levels` is 0, or off Linux).
pub fn spawn(levels: u8) -> Option<JoinHandle<()>> {
    let target = target(levels)?;
    Some(tokio::spawn(async move {
        let mut every = tokio::time::interval(EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(e) = lower_sqlite_workers(target) {
                tracing::warn!(error = %e, "cannot lower the priority of SQLite's threads; stopping");
                return;
            }
        }
    }))
}

/// The nice value `levels` below the calling thread's (at most the lowest priority, 19).
#[cfg(target_os = "linux")]
fn target(levels: u8) -> Option<i32> {
    let own = rustix::process::getpriority_process(None).ok()?;
    (levels > 0).then(|| (own + i32::from(levels)).min(19))
}

#[cfg(not(target_os = "linux"))]
fn target(_levels: u8) -> Option<i32> {
    None
}

/// Puts every SQLite worker thread of this process whose nice value is below `target` at it;
/// returns how many it changed. A thread that ends meanwhile is skipped.
#[cfg(target_os = "linux")]
pub fn lower_sqlite_workers(target: i32) -> std::io::Result<usize> {
    use rustix::process::{Pid, getpriority_process, setpriority_process};
    let mut changed = 0;
    for entry in std::fs::read_dir("/proc/self/task")? {
        let entry = entry?;
        let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) else { continue };
        if comm.trim_end() != SQLITE_WORKER {
            continue;
        }
        let Some(pid) = entry.file_name().to_str().and_then(|tid| tid.parse().ok()).and_then(Pid::from_raw) else { continue };
        match getpriority_process(Some(pid)) {
            Ok(nice) if nice < target => match setpriority_process(Some(pid), target) {
                Ok(()) => changed += 1,
                Err(rustix::io::Errno::SRCH) => {}
                Err(e) => return Err(e.into()),
            },
            Ok(_) | Err(rustix::io::Errno::SRCH) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(changed)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use rustix::process::{Pid, getpriority_process};

    /// A thread named as sqlx names its SQLite workers, and its id.
    fn named_thread(name: &str) -> (Pid, std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
        let (id_tx, id_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                id_tx.send(rustix::thread::gettid()).expect("the test waits for the id");
                let _ = stop_rx.recv();
            })
            .expect("spawn");
        (id_rx.recv().expect("the thread's id"), stop_tx, thread)
    }

    #[test]
    fn sqlite_workers_are_lowered_and_nothing_else_is_touched() {
        let own = getpriority_process(None).unwrap();
        let target = (own + 3).min(19);
        let (worker, stop_worker, worker_thread) = named_thread("sqlx-sqlite-worker-7");
        let (other, stop_other, other_thread) = named_thread("tokio-runtime-w");
        assert!(lower_sqlite_workers(target).unwrap() >= 1);
        assert_eq!(getpriority_process(Some(worker)).unwrap(), target);
        assert_eq!(getpriority_process(Some(other)).unwrap(), own, "only SQLite's workers are lowered");
        assert_eq!(getpriority_process(None).unwrap(), own, "nor the calling thread");
        // Lowered further by someone else: never raised back.
        rustix::process::setpriority_process(Some(worker), 19).unwrap();
        lower_sqlite_workers(target).unwrap();
        assert_eq!(getpriority_process(Some(worker)).unwrap(), 19);
        for (stop, thread) in [(stop_worker, worker_thread), (stop_other, other_thread)] {
            stop.send(()).unwrap();
            thread.join().unwrap();
        }
    }

    #[test]
    fn the_setting_is_five_levels_unless_configured() {
        use crate::server::ServeConfig;
        assert_eq!(ServeConfig::default().sqlite_nice, DEFAULT_LEVELS);
        assert_eq!(toml::from_str::<ServeConfig>("sqlite_nice = 0").unwrap().sqlite_nice, 0);
        let err = toml::from_str::<ServeConfig>("sqlite_nice = 300").unwrap_err().to_string();
        assert!(err.contains("sqlite_nice"), "{err}");
    }

    #[test]
    fn no_levels_means_no_task() {
        assert_eq!(target(0), None);
        let own = getpriority_process(None).unwrap();
        assert_eq!(target(5), Some((own + 5).min(19)));
        assert_eq!(target(u8::MAX), Some(19));
    }
}
