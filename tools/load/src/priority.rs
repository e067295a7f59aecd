//! The load generator's threads run at a higher CPU priority than the servers' during a run
//! (`--server-nice`, default 10 levels apart), so that less of the generator's own lateness is
//! charged to the servers.
//!
//! Why: the generator shares the machine's cores with the servers it measures, and each
//! open-loop latency counts from the request's *scheduled* time. When the kernel runs a server
//! thread while the generator's pacing thread or the task that sends a request waits, the
//! request leaves late and the server is charged for the wait. Measured on the session 9 VM
//! (docs/PERFORMANCE.md, "Runs V to Y"): at equal priority the generator started the 1 %
//! latest requests 1.5–2 ms after their time, almost half of the 5 ms goal; a generator on a
//! machine of its own would not be late at all. With the servers 10 levels below, that p99 was
//! 1.0–1.4 ms instead of 1.4–2.0 in three interleaved pairs. The generator still uses the
//! same cores, so every microsecond it spends is still taken from the servers: the figures stay
//! on the pessimistic side of a separate client machine.
//!
//! How ([`separate`]): where the process may raise a thread's priority (as root, or with
//! `CAP_SYS_NICE`), the generator's threads go `steps` levels above the process's own nice
//! value and the servers' stay at it, level with every other process of the machine, as a
//! gateway runs in production. Elsewhere the servers' threads go `steps` levels below instead
//! (no privilege needed), as every run did until session 23. That also puts them below every
//! other process: at nice 10 against 0 the kernel gives a server thread about a tenth of a CPU
//! both want (weights 110 and 1 024), so a burst of another service's work (the machine's
//! message broker, say) became a burst of slow answers ten times longer than it would be in
//! production.
//!
//! Threads inherit the priority of the thread that starts them; the run applies the setting
//! again before every measured phase, for threads started since.
//!
//! For the same reason the open loop's pacing thread asks for precise wake-ups
//! ([`PreciseSleeps`]).

/// Highest nice value Linux accepts (the lowest priority).
pub const MAX_NICE: u8 = 19;

/// Lowest nice value Linux accepts (the highest priority).
#[cfg(target_os = "linux")]
const MIN_NICE: i32 = -20;

/// Whose priority a run changed, and to which nice value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Separation {
    /// The generator's threads were raised to this; the servers' kept the process's own.
    GeneratorRaised(i32),
    /// Raising was not allowed: the servers' threads were lowered to this; the generator's kept
    /// the process's own.
    ServersLowered(i32),
    /// Nothing was changed: threads are told apart by name only on Linux.
    Unchanged,
}

impl std::fmt::Display for Separation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Separation::GeneratorRaised(nice) => write!(f, "the generator's threads at nice {nice}, the servers' at the process's own"),
            Separation::ServersLowered(nice) => write!(f, "the servers' threads at nice {nice} (the generator's could not be raised), the generator's at the process's own"),
            Separation::Unchanged => write!(f, "unchanged (threads are told apart only on Linux)"),
        }
    }
}

/// Puts every generator thread of this process `steps` nice levels above every server thread
/// (see [`crate::cpu::server_threads`]): the generator's up where allowed, else the servers'
/// down (at most to [`MAX_NICE`]). `0` puts both at the process's own nice value.
#[cfg(target_os = "linux")]
pub fn separate(steps: u8) -> anyhow::Result<Separation> {
    use rustix::process::getpriority_process;
    // The main thread is a generator thread: its nice before the first change is the process's.
    static OWN: std::sync::OnceLock<i32> = std::sync::OnceLock::new();
    apply(*OWN.get_or_init(|| getpriority_process(None).unwrap_or(0)), steps, true)
}

/// [`separate`] from the process's nice value `own`, trying to raise the generator's threads
/// only when `may_raise` (tests try the other way where raising is allowed).
#[cfg(target_os = "linux")]
fn apply(own: i32, steps: u8, may_raise: bool) -> anyhow::Result<Separation> {
    let raised = (own - i32::from(steps)).max(MIN_NICE);
    if may_raise && set(&crate::cpu::generator_threads(), raised).is_ok() {
        set(&crate::cpu::server_threads(), own)?;
        return Ok(Separation::GeneratorRaised(raised));
    }
    let lowered = (own + i32::from(steps)).min(i32::from(MAX_NICE));
    set(&crate::cpu::generator_threads(), own)?;
    set(&crate::cpu::server_threads(), lowered)?;
    Ok(Separation::ServersLowered(lowered))
}

/// Sets each of `threads` (id, name, …) to `nice`; a thread that ended since it was listed is
/// skipped.
#[cfg(target_os = "linux")]
fn set(threads: &[(u32, String, std::path::PathBuf)], nice: i32) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use rustix::process::{Pid, setpriority_process};
    for (tid, comm, _) in threads {
        let Some(pid) = i32::try_from(*tid).ok().and_then(Pid::from_raw) else { continue };
        match setpriority_process(Some(pid), nice) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => {}
            Err(e) => return Err(e).with_context(|| format!("setting thread {tid} ({comm}) to nice {nice}")),
        }
    }
    Ok(())
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
pub fn separate(_steps: u8) -> anyhow::Result<Separation> {
    Ok(Separation::Unchanged)
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

    /// Runs `check` with a server thread and a generator thread (named as the load runtime's
    /// are) alive, given their ids.
    fn with_threads(check: impl FnOnce(&HashMap<&str, Pid>)) {
        let (tx, rx) = std::sync::mpsc::channel();
        let barrier = Barrier::new(3);
        std::thread::scope(|s| {
            for name in ["server", "load"] {
                let (tx, barrier) = (tx.clone(), &barrier);
                let thread = std::thread::Builder::new().name(name.into()).spawn_scoped(s, move || {
                    tx.send((name, rustix::thread::gettid())).expect("send");
                    barrier.wait();
                });
                thread.expect("spawn");
            }
            let tids: HashMap<&str, Pid> = rx.iter().take(2).collect();
            check(&tids);
            barrier.wait();
        });
    }

    /// One test for both ways, so that no other test of this process changes priorities
    /// meanwhile: raising where allowed (as root on CI), and lowering the servers, as where
    /// raising is not.
    #[test]
    fn the_generator_runs_the_given_steps_above_the_servers_either_way() {
        let own = getpriority_process(None).expect("getpriority");
        with_threads(|tids| {
            match separate(5).expect("separated") {
                Separation::GeneratorRaised(raised) => {
                    assert_eq!(raised, (own - 5).max(MIN_NICE));
                    assert_eq!(nice_of(tids["server"]), own, "the servers keep the process's priority");
                    assert_eq!(nice_of(tids["load"]), raised);
                    assert_eq!(nice_of(getpid()), raised, "the main thread is the generator's");
                }
                Separation::ServersLowered(lowered) => {
                    assert_eq!(lowered, (own + 5).min(i32::from(MAX_NICE)));
                    assert_eq!(nice_of(tids["server"]), lowered);
                    assert_eq!(nice_of(tids["load"]), own, "the generator keeps the process's priority");
                }
                Separation::Unchanged => panic!("on Linux the threads are told apart"),
            }
            assert_eq!(apply(own, 5, false).expect("lowered"), Separation::ServersLowered((own + 5).min(i32::from(MAX_NICE))));
            assert_eq!(nice_of(tids["server"]), (own + 5).min(i32::from(MAX_NICE)));
            assert_eq!(nice_of(tids["load"]), own, "a generator raised before is put back");
            assert_eq!(nice_of(getpid()), own);
            separate(0).expect("level");
            assert_eq!((nice_of(tids["server"]), nice_of(tids["load"])), (own, own), "0 steps: both at the process's own");
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
