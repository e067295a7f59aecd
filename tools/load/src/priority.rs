//! The servers' threads run at a lower CPU priority than the load generator's during a run
//! (`--server-nice`, default 10), so that less of the generator's own lateness is charged to
//! the servers.
//!
//! Why: the generator shares the machine's cores with the servers it measures, and each
//! open-loop latency counts from the request's *scheduled* time. When the kernel runs a server
//! thread while the generator's pacing thread or the task that sends a request waits, the
//! request leaves late and the server is charged for the wait. Measured on the session 9 VM
//! (docs/PERFORMANCE.md, "Runs V to Y"): at equal priority the generator started the 1 %
//! latest requests 1.5–2 ms after their time, almost half of the 5 ms goal; a generator on a
//! machine of its own would not be late at all. With the servers at nice 10 that p99 was
//! 1.0–1.4 ms instead of 1.4–2.0 in three interleaved pairs. The generator still uses the
//! same cores, so every microsecond it spends is still taken from the servers: the figures stay
//! on the pessimistic side of a separate client machine.
//!
//! Only the servers' threads are changed (a lower priority needs no privilege; a higher one
//! for the generator would). Threads a server thread starts later inherit its priority; the
//! run applies the setting again before every measured phase for those started elsewhere.
//!
//! For the same reason the open loop's pacing thread asks for precise wake-ups
//! ([`PreciseSleeps`]).

/// Highest nice value Linux accepts (the lowest priority).
pub const MAX_NICE: u8 = 19;

/// Sets every server thread of this process (see [`crate::cpu::server_threads`]) `steps` nice
/// levels below the calling thread (the generator's main thread), at most to [`MAX_NICE`];
/// returns how many threads were set. `0` puts them back level with the generator.
#[cfg(target_os = "linux")]
pub fn lower_servers(steps: u8) -> anyhow::Result<usize> {
    use anyhow::Context as _;
    use rustix::process::{Pid, getpriority_process, setpriority_process};
    let nice = (getpriority_process(None)? + i32::from(steps)).min(i32::from(MAX_NICE));
    let mut set = 0;
    for (tid, comm, _) in crate::cpu::server_threads() {
        let Some(pid) = i32::try_from(tid).ok().and_then(Pid::from_raw) else { continue };
        match setpriority_process(Some(pid), nice) {
            Ok(()) => set += 1,
            // The thread ended since it was listed.
            Err(rustix::io::Errno::SRCH) => {}
            Err(e) => return Err(e).with_context(|| format!("setting thread {tid} ({comm}) to nice {nice}")),
        }
    }
    Ok(set)
}

/// While alive, the calling thread's sleeps end as close to their time as the kernel can
/// manage: its timer slack is 1 ns instead of Linux's default 50 µs, by which the kernel may
/// delay a sleeping thread's wake-up to group it with others. For the open loop's pacing
/// thread, whose every wake-up is a request's scheduled time (session 16 measured its median
/// lateness at 81 µs with the default). Dropping it restores the thread's earlier slack.
#[derive(Debug)]
pub struct PreciseSleeps {
    #[cfg(target_os = "linux")]
    earlier: Option<u64>,
}

impl PreciseSleeps {
    /// Sets the calling thread's timer slack to 1 ns (nothing where that cannot be set).
    pub fn on_this_thread() -> PreciseSleeps {
        #[cfg(target_os = "linux")]
        {
            use rustix::thread::{current_timer_slack, set_current_timer_slack};
            let earlier = current_timer_slack().ok();
            let one = std::num::NonZeroU64::new(1);
            PreciseSleeps { earlier: earlier.filter(|_| set_current_timer_slack(one).is_ok()) }
        }
        #[cfg(not(target_os = "linux"))]
        PreciseSleeps {}
    }
}

impl Drop for PreciseSleeps {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if let Some(earlier) = self.earlier {
            let _ = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(earlier));
        }
    }
}

/// Elsewhere threads are not told apart by name here: nothing is changed.
#[cfg(not(target_os = "linux"))]
pub fn lower_servers(_steps: u8) -> anyhow::Result<usize> {
    Ok(0)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::collections::HashMap;
    use std::sync::Barrier;

    use rustix::process::{Pid, getpid, getpriority_process};

    use super::*;

    fn nice_of(pid: Pid) -> i32 {
        getpriority_process(Some(pid)).expect("getpriority")
    }

    #[test]
    fn server_threads_are_lowered_and_the_generator_is_not() {
        let own = getpriority_process(None).expect("getpriority");
        let (tx, rx) = std::sync::mpsc::channel();
        let barrier = Barrier::new(3);
        std::thread::scope(|s| {
            // A server thread, and a generator thread (named as the load runtime's are).
            for name in ["server", "load"] {
                let (tx, barrier) = (tx.clone(), &barrier);
                let thread = std::thread::Builder::new().name(name.into()).spawn_scoped(s, move || {
                    tx.send((name, rustix::thread::gettid())).expect("send");
                    barrier.wait();
                });
                thread.expect("spawn");
            }
            let tids: HashMap<&str, Pid> = rx.iter().take(2).collect();
            assert!(lower_servers(MAX_NICE).expect("lowered") >= 1);
            assert_eq!(nice_of(tids["server"]), i32::from(MAX_NICE));
            assert_eq!(nice_of(tids["load"]), own, "the generator keeps its priority");
            assert_eq!(nice_of(getpid()), own, "the main thread keeps its priority");
            barrier.wait();
        });
    }

    #[test]
    fn precise_sleeps_last_as_long_as_their_guard() {
        use rustix::thread::current_timer_slack;
        let before = current_timer_slack().expect("timer slack");
        {
            let _precise = PreciseSleeps::on_this_thread();
            assert_eq!(current_timer_slack().expect("timer slack"), 1);
        }
        assert_eq!(current_timer_slack().expect("timer slack"), before);
    }
}
