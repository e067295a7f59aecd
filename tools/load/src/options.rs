//! What a load run is asked to do (`onecard-load --help`), and the checks that refuse a run
//! that could not measure what it claims before anything is started.

use std::time::Duration;

use clap::{Args, ValueEnum};

/// Longest run: every request of a run is signed before it starts, and a card token is valid
/// at most 60 s after it was minted (plus 5 s of skew), so a longer run would send expired
/// tokens at its end.
pub const MAX_DURATION_SECS: u64 = 30;

/// Most rounds a run may ask for (each adds two closed and two open loops).
pub const MAX_ROUNDS: u32 = 10;

/// Which server(s) the run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Targets {
    /// The full gateway (`onecard serve`: every step of the request path, the parks plugin, audit).
    Full,
    /// The native baseline: the same signature and token checks in a bare axum handler.
    Native,
    /// Both, one after the other, in the same process.
    Both,
}

impl Targets {
    /// Whether the full gateway is measured.
    pub fn full(self) -> bool {
        matches!(self, Targets::Full | Targets::Both)
    }

    /// Whether the native baseline is measured.
    pub fn native(self) -> bool {
        matches!(self, Targets::Native | Targets::Both)
    }
}

/// The settings of a run. Defaults are those of the figures in docs/PERFORMANCE.md.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct Options {
    /// Seconds each measured phase lasts (1–30). Default 10.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Concurrent connections of the closed-loop (peak) phase. Default 32.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Requests per second of the open-loop phase. Default: half of the sustained peak (the
    /// closed loop's second half) measured on the full gateway (on the native baseline with `--target native`).
    #[arg(long)]
    pub rate: Option<u32>,
    /// Which server(s) to measure. Default both.
    #[arg(long, value_enum, default_value_t = Targets::Both)]
    pub target: Targets,
    /// The closed loop signs `max_rate × duration` requests in advance; a target faster than
    /// that ends its closed phase early (its throughput is still measured exactly). Default 8000.
    #[arg(long, default_value_t = 8000)]
    pub max_rate: u32,
    /// Requests sent before each target's measured phases and not measured (connections
    /// opened, caches warm). Default 500.
    #[arg(long, default_value_t = 500)]
    pub warmup: usize,
    /// Writes each open-loop phase's requests to `DIR/<target>-open.csv` (scheduled time after
    /// the phase's start, latency, and how late the generator started sending it, µs), to see
    /// when slow answers happened and whose wait they were, and what the machine and the
    /// process did every 10 ms meanwhile to `DIR/<target>-system.csv` (see the `system`
    /// module). Default: none.
    #[arg(long, value_name = "DIR")]
    pub timeline: Option<std::path::PathBuf>,
    /// How many nice levels the servers' threads run below the load generator's during the
    /// run (0–19; 0: the same priority), so that the generator sends on time on the cores it
    /// shares with them (see the `priority` module). Default 10.
    #[arg(long, default_value_t = 10)]
    pub server_nice: u8,
    /// How many times each phase runs, alternating the targets (full, native, full, …): the
    /// verdict takes the median of the rounds' full/native ratios and the p99 of every round's
    /// open-loop requests together, since two identical single rounds differ by up to a fifth
    /// on a shared VM (1–10). Default 3.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options { duration: 10, connections: 32, rate: None, target: Targets::Both, max_rate: 8000, warmup: 500, timeline: None, server_nice: 10, rounds: 3 }
    }
}

/// A run that cannot be done as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// `--duration` out of range.
    #[error("--duration is {0} s; it must be 1 to {MAX_DURATION_SECS} s (card tokens live at most 60 s and are signed before the run)")]
    Duration(u64),
    /// `--connections` zero or absurd.
    #[error("--connections is {0}; it must be 1 to 4096")]
    Connections(usize),
    /// `--rate` zero or above `--max-rate`.
    #[error("--rate is {rate}; it must be 1 to --max-rate ({max_rate})")]
    Rate {
        /// Asked.
        rate: u32,
        /// Ceiling.
        max_rate: u32,
    },
    /// `--max-rate` zero or absurd.
    #[error("--max-rate is {0}; it must be 1 to 100000")]
    MaxRate(u32),
    /// `--timeline` is not an existing directory (found before the run, not after it).
    #[error("--timeline {0:?} is not an existing directory")]
    Timeline(std::path::PathBuf),
    /// `--server-nice` above what Linux accepts.
    #[error("--server-nice is {0}; it must be 0 to {max}", max = crate::priority::MAX_NICE)]
    ServerNice(u8),
    /// `--rounds` zero or above [`MAX_ROUNDS`].
    #[error("--rounds is {0}; it must be 1 to {MAX_ROUNDS}")]
    Rounds(u32),
}

impl OptionsError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            OptionsError::Duration(_) => "LOAD_DURATION_OUT_OF_RANGE",
            OptionsError::Connections(_) => "LOAD_CONNECTIONS_OUT_OF_RANGE",
            OptionsError::Rate { .. } => "LOAD_RATE_OUT_OF_RANGE",
            OptionsError::MaxRate(_) => "LOAD_MAX_RATE_OUT_OF_RANGE",
            OptionsError::Timeline(_) => "LOAD_TIMELINE_NOT_A_DIRECTORY",
            OptionsError::ServerNice(_) => "LOAD_SERVER_NICE_OUT_OF_RANGE",
            OptionsError::Rounds(_) => "LOAD_ROUNDS_OUT_OF_RANGE",
        }
    }
}

impl Options {
    /// Checks the settings; nothing is started before this passes.
    pub fn validate(&self) -> Result<(), OptionsError> {
        if !(1..=MAX_DURATION_SECS).contains(&self.duration) {
            return Err(OptionsError::Duration(self.duration));
        }
        if !(1..=4096).contains(&self.connections) {
            return Err(OptionsError::Connections(self.connections));
        }
        if !(1..=100_000).contains(&self.max_rate) {
            return Err(OptionsError::MaxRate(self.max_rate));
        }
        if let Some(rate) = self.rate
            && !(1..=self.max_rate).contains(&rate)
        {
            return Err(OptionsError::Rate { rate, max_rate: self.max_rate });
        }
        if let Some(dir) = &self.timeline
            && !dir.is_dir()
        {
            return Err(OptionsError::Timeline(dir.clone()));
        }
        if self.server_nice > crate::priority::MAX_NICE {
            return Err(OptionsError::ServerNice(self.server_nice));
        }
        if !(1..=MAX_ROUNDS).contains(&self.rounds) {
            return Err(OptionsError::Rounds(self.rounds));
        }
        Ok(())
    }

    /// [`Options::duration`] as a duration.
    pub fn phase(&self) -> Duration {
        Duration::from_secs(self.duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Options::default().validate(), Ok(()));
    }

    #[test]
    fn bad_settings_are_refused_with_a_code() {
        let cases = [
            (Options { duration: 0, ..Options::default() }, "LOAD_DURATION_OUT_OF_RANGE"),
            (Options { duration: 31, ..Options::default() }, "LOAD_DURATION_OUT_OF_RANGE"),
            (Options { connections: 0, ..Options::default() }, "LOAD_CONNECTIONS_OUT_OF_RANGE"),
            (Options { max_rate: 0, ..Options::default() }, "LOAD_MAX_RATE_OUT_OF_RANGE"),
            (Options { rate: Some(0), ..Options::default() }, "LOAD_RATE_OUT_OF_RANGE"),
            (Options { rate: Some(9000), ..Options::default() }, "LOAD_RATE_OUT_OF_RANGE"),
            (Options { timeline: Some("/nonexistent/onecard-load".into()), ..Options::default() }, "LOAD_TIMELINE_NOT_A_DIRECTORY"),
            (Options { timeline: Some("Cargo.toml".into()), ..Options::default() }, "LOAD_TIMELINE_NOT_A_DIRECTORY"),
            (Options { server_nice: 20, ..Options::default() }, "LOAD_SERVER_NICE_OUT_OF_RANGE"),
            (Options { rounds: 0, ..Options::default() }, "LOAD_ROUNDS_OUT_OF_RANGE"),
            (Options { rounds: 11, ..Options::default() }, "LOAD_ROUNDS_OUT_OF_RANGE"),
        ];
        for (options, code) in cases {
            let e = options.validate().expect_err("refused");
            assert_eq!(e.code(), code, "{options:?}");
            assert!(!e.to_string().is_empty());
        }
    }
}
