//! The result of a run: one row per measured phase, the full/native ratio and the verdict on
//! the goal of issue 4 (full path ≥ 50 % of native peak throughput, p99 ≤ 5 ms at half of the
//! full path's peak), printed as a Markdown table for docs/PERFORMANCE.md.

use std::fmt;

use crate::drive::Measured;

/// The goal: full-path peak at least this share of the native peak.
pub const GOAL_RATIO: f64 = 0.5;
/// The goal: p99 at half of the full path's peak, at most this many microseconds.
pub const GOAL_P99_US: u64 = 5_000;

/// A phase during which the host took at least this share of the machine's CPU time (steal) is
/// named under the table: its figures measured a smaller, slower machine.
pub const DISTURBED_STEAL: f64 = 0.01;

/// Which server a row measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The full gateway.
    Full,
    /// The native baseline.
    Native,
}

impl Target {
    /// Its name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Target::Full => "full",
            Target::Native => "native",
        }
    }
}

/// How a row loaded the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Closed loop over this many connections.
    Closed(usize),
    /// Open loop at this many requests per second.
    Open(u32),
}

/// One measured phase.
#[derive(Debug, Clone)]
pub struct Row {
    /// Server.
    pub target: Target,
    /// Load.
    pub mode: Mode,
    /// Measurements.
    pub measured: Measured,
}

impl Row {
    /// A latency quantile in milliseconds.
    pub fn ms(&self, quantile: f64) -> f64 {
        self.measured.latency.value_at_quantile(quantile) as f64 / 1000.0
    }

    fn find(rows: &[Row], target: Target, closed: bool) -> Option<&Row> {
        rows.iter().find(|r| r.target == target && matches!(r.mode, Mode::Closed(_)) == closed)
    }
}

/// A whole run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Phases in the order they ran.
    pub rows: Vec<Row>,
}

impl Report {
    /// Requests that were not allowed, over every phase.
    pub fn errors(&self) -> u64 {
        self.rows.iter().map(|r| r.measured.tally.error_count()).sum()
    }

    /// Full-path peak over native peak (sustained: the closed loops' second halves), when both
    /// were measured.
    pub fn ratio(&self) -> Option<f64> {
        let full = Row::find(&self.rows, Target::Full, true)?.measured.sustained();
        let native = Row::find(&self.rows, Target::Native, true)?.measured.sustained();
        (native > 0.0).then(|| full / native)
    }

    /// The phases during which the host took at least [`DISTURBED_STEAL`] of the machine.
    pub fn disturbed(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.measured.steal.is_some_and(|s| s >= DISTURBED_STEAL))
    }

    /// The full path's open-loop p99, µs.
    pub fn full_open_p99_us(&self) -> Option<u64> {
        Row::find(&self.rows, Target::Full, false).map(|r| r.measured.latency.value_at_quantile(0.99))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| target | mode | offered | requests | throughput (req/s) | 2nd half (req/s) | p50 (ms) | p99 (ms) | p99.9 (ms) | max (ms) | server CPU/req (µs) | of which SQLite (µs) | steal (%) | errors |")?;
        writeln!(f, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")?;
        for row in &self.rows {
            let m = &row.measured;
            let (mode, offered) = match row.mode {
                Mode::Closed(c) => (format!("closed, {c} connections"), "as fast as answered".to_string()),
                Mode::Open(r) => ("open loop".to_string(), format!("{r} req/s")),
            };
            let errors = if m.tally.errors.is_empty() {
                "0".to_string()
            } else {
                m.tally.errors.iter().map(|(c, n)| format!("{n} {c}")).collect::<Vec<_>>().join(", ")
            };
            let micros = |d: Option<std::time::Duration>| d.map_or("-".to_string(), |c| c.as_micros().to_string());
            let (cpu, sqlite) = (micros(m.cpu_per_request()), micros(m.sqlite_per_request()));
            let steal = m.steal.map_or("-".to_string(), |s| format!("{:.1}", s * 100.0));
            let exhausted = if m.exhausted { " (requests ran out)" } else { "" };
            writeln!(
                f,
                "| {} | {mode} | {offered} | {}{exhausted} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {cpu} | {sqlite} | {steal} | {errors} |",
                row.target.name(),
                m.sent,
                m.throughput(),
                m.sustained(),
                row.ms(0.5),
                row.ms(0.99),
                row.ms(0.999),
                m.latency.max() as f64 / 1000.0,
            )?;
        }
        if self.disturbed().next().is_some() {
            writeln!(f)?;
        }
        for row in self.disturbed() {
            let mode = match row.mode {
                Mode::Closed(_) => "closed loop",
                Mode::Open(_) => "open loop",
            };
            let steal = row.measured.steal.unwrap_or(0.0) * 100.0;
            writeln!(f, "the host took {steal:.1} % of the machine's CPU time during the {} {mode} (steal): that phase measured a smaller machine", row.target.name())?;
        }
        if let Some(ratio) = self.ratio() {
            let verdict = if ratio >= GOAL_RATIO { "met" } else { "NOT met" };
            writeln!(f, "\nfull / native sustained peak throughput: {:.1} % (goal ≥ {:.0} %: {verdict})", ratio * 100.0, GOAL_RATIO * 100.0)?;
        }
        if let Some(p99) = self.full_open_p99_us() {
            let verdict = if p99 <= GOAL_P99_US { "met" } else { "NOT met" };
            writeln!(f, "full path p99 in the open loop: {:.2} ms (goal ≤ {:.0} ms: {verdict})", p99 as f64 / 1000.0, GOAL_P99_US as f64 / 1000.0)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::drive::{Tally, histogram};

    fn row(target: Target, mode: Mode, allowed: u64, secs: u64, p99_us: u64) -> Row {
        let mut latency = histogram();
        for _ in 0..100 {
            latency.record(p99_us).unwrap();
        }
        let tally = Tally { allowed, ..Tally::default() };
        let second_half = (allowed / 2, Duration::from_secs(secs) / 2);
        Row { target, mode, measured: Measured { sent: allowed as usize, elapsed: Duration::from_secs(secs), latency, tally, exhausted: false, second_half, server_cpu: None, sqlite_cpu: None, steal: None, timeline: Vec::new(), timeline_origin: None } }
    }

    #[test]
    fn ratio_and_verdicts() {
        let report = Report {
            rows: vec![
                row(Target::Full, Mode::Closed(32), 3000, 10, 9000),
                row(Target::Native, Mode::Closed(32), 10000, 10, 3000),
                row(Target::Full, Mode::Open(150), 1500, 10, 4000),
            ],
        };
        assert!((report.ratio().unwrap() - 0.3).abs() < 1e-9);
        let p99 = report.full_open_p99_us().unwrap();
        assert!((3996..=4004).contains(&p99), "{p99}");
        let text = report.to_string();
        assert!(text.contains("30.0 % (goal ≥ 50 %: NOT met)"), "{text}");
        assert!(text.contains("(goal ≤ 5 ms: met)"), "{text}");
        assert_eq!(text.lines().filter(|l| l.starts_with("| full") || l.starts_with("| native")).count(), 3);
    }

    #[test]
    fn no_ratio_without_both_peaks() {
        let report = Report { rows: vec![row(Target::Full, Mode::Closed(1), 10, 1, 100)] };
        assert_eq!(report.ratio(), None);
        assert!(!report.to_string().contains("full / native"));
    }

    #[test]
    fn phases_the_host_took_cpu_from_are_named() {
        let mut open = row(Target::Native, Mode::Open(150), 1500, 10, 4000);
        open.measured.steal = Some(0.123);
        let mut closed = row(Target::Full, Mode::Closed(32), 3000, 10, 9000);
        closed.measured.steal = Some(0.009);
        let report = Report { rows: vec![closed, open, row(Target::Full, Mode::Open(150), 1500, 10, 4000)] };
        let text = report.to_string();
        assert_eq!(report.disturbed().count(), 1, "under 1 % is not a disturbance");
        assert!(text.contains("the host took 12.3 % of the machine's CPU time during the native open loop (steal)"), "{text}");
        assert!(text.contains("| 0.9 | 0 |") && text.contains("| 12.3 | 0 |") && text.contains("| - | 0 |"), "{text}");
    }
}
