//! CPU time the servers spent during a phase, per request: a figure that other work on a
//! shared machine disturbs far less than throughput or latency do (they take the cores away;
//! they do not make our instructions more numerous).
//!
//! Linux only: the on-CPU nanoseconds of every thread of this process
//! (`/proc/self/task/<tid>/schedstat`, first field), and how often it was put on a CPU (third
//! field; the instruction-count driver reports it), except the load generator's threads (the
//! `load` runtime's and the main thread, which schedules the open loop). A few numbers read
//! from a file each; a crate for it would be heavier than the reading.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Thread id → (thread name, on-CPU nanoseconds, times put on a CPU), for the server threads.
#[derive(Debug, Clone, Default)]
pub struct Sample(HashMap<u32, (String, u64, u64)>);

/// Whether a thread name is one of sqlx's SQLite workers (the audit writer's, the catalog's
/// and the access log's database work runs there).
pub fn is_sqlite(comm: &str) -> bool {
    comm.starts_with("sqlx-sqlite")
}

/// The name of the load generator's threads: the `load` runtime's workers, the open loop's
/// readers ([`crate::wire`]), and the system recorder's thread ([`crate::system`]).
pub const GENERATOR_THREAD: &str = "load";

/// Every thread of this process now, as (id, its `/proc` directory). Empty where `/proc` does
/// not tell.
pub(crate) fn threads() -> Vec<(u32, PathBuf)> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    tasks.flatten().filter_map(|task| Some((task.file_name().to_str()?.parse::<u32>().ok()?, task.path()))).collect()
}

/// A thread's name, from its `/proc` directory (empty if unreadable).
pub(crate) fn comm(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("comm")).unwrap_or_default().trim_end().to_string()
}

/// Whether a thread is the load generator's: named [`GENERATOR_THREAD`], or the main thread,
/// which schedules the open loop.
pub(crate) fn is_generator(tid: u32, comm: &str) -> bool {
    tid == std::process::id() || comm == GENERATOR_THREAD
}

/// A `schedstat` file's three fields: nanoseconds on a CPU, nanoseconds runnable but waiting
/// for one, and times put on one.
pub(crate) fn schedstat(text: &str) -> Option<[u64; 3]> {
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

/// The server threads of this process now: every thread but the load generator's, as (id,
/// name, its `/proc` directory). Empty where `/proc` does not tell.
pub(crate) fn server_threads() -> Vec<(u32, String, PathBuf)> {
    threads_of(false)
}

/// The load generator's threads of this process now (see [`is_generator`]), as
/// [`server_threads`] lists the others.
pub(crate) fn generator_threads() -> Vec<(u32, String, PathBuf)> {
    threads_of(true)
}

fn threads_of(generator: bool) -> Vec<(u32, String, PathBuf)> {
    threads()
        .into_iter()
        .filter_map(|(tid, dir)| {
            let comm = comm(&dir);
            (is_generator(tid, &comm) == generator).then_some((tid, comm, dir))
        })
        .collect()
}

/// Reads the server threads' CPU time and run count now (`schedstat`'s first and third
/// fields); empty where `/proc` does not tell them.
pub fn sample() -> Sample {
    let threads = server_threads()
        .into_iter()
        .filter_map(|(tid, comm, dir)| {
            let [on_cpu, _, runs] = schedstat(&std::fs::read_to_string(dir.join("schedstat")).ok()?)?;
            Some((tid, (comm, on_cpu, runs)))
        })
        .collect();
    Sample(threads)
}

impl Sample {
    /// CPU time spent since `earlier` by the threads alive now (a thread that ended in between
    /// is not counted; tokio's idle threads end after 10 s).
    pub fn since(&self, earlier: &Sample) -> Option<Duration> {
        self.since_where(earlier, |_| true)
    }

    /// [`Sample::since`] for the threads whose name passes `which`.
    pub fn since_where(&self, earlier: &Sample, which: impl Fn(&str) -> bool) -> Option<Duration> {
        if self.0.is_empty() {
            return None;
        }
        let ns = self
            .0
            .iter()
            .filter(|(_, (comm, _, _))| which(comm))
            .map(|(tid, (_, now, _))| now.saturating_sub(earlier.0.get(tid).map_or(0, |(_, ns, _)| *ns)))
            .sum();
        Some(Duration::from_nanos(ns))
    }

    /// How many times the threads alive now were put on a CPU since `earlier`: each is a
    /// wake-up or a return after preemption.
    pub fn runs_since(&self, earlier: &Sample) -> Option<u64> {
        if self.0.is_empty() {
            return None;
        }
        Some(self.0.iter().map(|(tid, (_, _, now))| now.saturating_sub(earlier.0.get(tid).map_or(0, |(_, _, runs)| *runs))).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_per_thread() {
        let before = Sample(HashMap::from([(1, ("server".into(), 100, 4)), (2, ("server".into(), 50, 2))]));
        let after = Sample(HashMap::from([(1, ("server".into(), 400, 7)), (3, ("sqlx-sqlite-wor".into(), 25, 1))]));
        assert_eq!(after.since(&before), Some(Duration::from_nanos(325)));
        assert_eq!(after.since_where(&before, is_sqlite), Some(Duration::from_nanos(25)));
        assert_eq!(Sample::default().since(&before), None);
        assert_eq!(after.runs_since(&before), Some(4));
        assert_eq!(Sample::default().runs_since(&before), None);
    }

    #[test]
    fn a_busy_thread_is_seen() {
        if !std::path::Path::new("/proc/thread-self/schedstat").exists() {
            return;
        }
        let own = || std::fs::read_to_string("/proc/thread-self/schedstat").unwrap().split_whitespace().next().unwrap().parse::<u64>().unwrap();
        let before = sample();
        let (busy_tx, busy_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::spawn(move || {
            // Spin until this thread has run 30 ms of CPU, however loaded the machine is.
            let start = own();
            while own() - start < 30_000_000 {}
            busy_tx.send(()).unwrap();
            stop_rx.recv().ok();
        });
        busy_rx.recv().unwrap();
        let after = sample();
        stop_tx.send(()).unwrap();
        worker.join().unwrap();
        assert!(after.since(&before).unwrap() >= Duration::from_millis(30));
    }
}
