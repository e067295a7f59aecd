//! The result of a run: one row per measured phase, the full/native ratio and the verdict on
//! the goal of issue 4 (full path ≥ 50 % of native peak throughput, p99 ≤ 5 ms at half of the
//! full path's peak), printed as a Markdown table for docs/PERFORMANCE.md.
//!
//! A run of several rounds is judged on all of them: the ratio is the median of the rounds'
//! own ratios (a round's two closed loops run one right after the other, so a slow spell of
//! the shared machine spoils the ratio of the round it falls in, not every round's), and the
//! p99 is that of every round's open-loop requests together, as if the open loop had lasted
//! all the rounds' time.

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
    /// The round it belongs to, from 1.
    pub round: u32,
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

    fn is(&self, target: Target, closed: bool) -> bool {
        self.target == target && matches!(self.mode, Mode::Closed(_)) == closed
    }
}

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    match values.len() {
        0 => None,
        n if n % 2 == 1 => Some(values[mid]),
        _ => Some((values[mid - 1] + values[mid]) / 2.0),
    }
}

/// A whole run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Phases in the order they ran.
    pub rows: Vec<Row>,
    /// The threads' priorities during every phase (`--server-nice`).
    pub priority: Option<crate::priority::Separation>,
}

impl Report {
    /// Requests that were not allowed, over every phase.
    pub fn errors(&self) -> u64 {
        self.rows.iter().map(|r| r.measured.tally.error_count()).sum()
    }

    fn phases(&self, target: Target, closed: bool) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(move |r| r.is(target, closed))
    }

    /// Each round's full-path peak over its native peak (sustained: the closed loops' second
    /// halves), in round order, for the rounds that measured both.
    pub fn round_ratios(&self) -> Vec<f64> {
        self.phases(Target::Full, true)
            .filter_map(|full| {
                let native = self.phases(Target::Native, true).find(|n| n.round == full.round)?.measured.sustained();
                (native > 0.0).then(|| full.measured.sustained() / native)
            })
            .collect()
    }

    /// The median of [`Report::round_ratios`]: the ratio the goal is judged on.
    pub fn ratio(&self) -> Option<f64> {
        median(self.round_ratios())
    }

    /// The median of `target`'s sustained peaks over the rounds, req/s.
    pub fn sustained_peak(&self, target: Target) -> Option<f64> {
        median(self.phases(target, true).map(|r| r.measured.sustained()).collect())
    }

    /// The phases during which the host took at least [`DISTURBED_STEAL`] of the machine.
    pub fn disturbed(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.measured.steal.is_some_and(|s| s >= DISTURBED_STEAL))
    }

    /// The full path's open-loop p99 over every round's requests together, µs.
    pub fn full_open_p99_us(&self) -> Option<u64> {
        let mut rounds = self.phases(Target::Full, false);
        let mut all = rounds.next()?.measured.latency.clone();
        for row in rounds {
            // Every histogram has the same bounds (`drive::histogram`), so adding cannot fail.
            all.add(&row.measured.latency).ok()?;
        }
        Some(all.value_at_quantile(0.99))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| round | target | mode | offered | requests | throughput (req/s) | 2nd half (req/s) | p50 (ms) | p99 (ms) | p99.9 (ms) | max (ms) | server CPU/req (µs) | of which SQLite (µs) | steal (%) | errors |")?;
        writeln!(f, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")?;
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
                "| {} | {} | {mode} | {offered} | {}{exhausted} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {cpu} | {sqlite} | {steal} | {errors} |",
                row.round,
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
            writeln!(f, "the host took {steal:.1} % of the machine's CPU time during round {}'s {} {mode} (steal): that phase measured a smaller machine", row.round, row.target.name())?;
        }
        let explained: Vec<_> = self.rows.iter().filter_map(|r| Some((r, r.measured.slow?))).filter(|(_, s)| s.slow > 0).collect();
        if !explained.is_empty() {
            writeln!(f)?;
        }
        for (row, slow) in explained {
            let neither = slow.slow - slow.steal - slow.others;
            writeln!(
                f,
                "round {}'s {} open loop: {} requests took over {:.0} ms; {} of them while the host took at least {:.0} % of the machine's CPU time (steal), {} while other processes and kernel threads did, {neither} while neither did",
                row.round,
                row.target.name(),
                slow.slow,
                GOAL_P99_US as f64 / 1000.0,
                slow.steal,
                crate::system::TAKEN * 100.0,
                slow.others,
            )?;
        }
        if let Some(priority) = self.priority {
            writeln!(f, "\npriorities during every phase: {priority}")?;
        }
        if let Some(ratio) = self.ratio() {
            let verdict = if ratio >= GOAL_RATIO { "met" } else { "NOT met" };
            write!(f, "\nfull / native sustained peak throughput: {:.1} % (goal ≥ {:.0} %: {verdict})", ratio * 100.0, GOAL_RATIO * 100.0)?;
            let rounds = self.round_ratios();
            if rounds.len() > 1 {
                let each: Vec<String> = rounds.iter().map(|r| format!("{:.1} %", r * 100.0)).collect();
                write!(f, ", the median of {} rounds: {}", rounds.len(), each.join(", "))?;
            }
            writeln!(f)?;
        }
        if let Some(p99) = self.full_open_p99_us() {
            let verdict = if p99 <= GOAL_P99_US { "met" } else { "NOT met" };
            write!(f, "full path p99 in the open loop: {:.2} ms (goal ≤ {:.0} ms: {verdict})", p99 as f64 / 1000.0, GOAL_P99_US as f64 / 1000.0)?;
            let rounds: Vec<String> = self.phases(Target::Full, false).map(|r| format!("{:.2}", r.ms(0.99))).collect();
            if rounds.len() > 1 {
                write!(f, ", over the {} rounds' requests together; each round alone: {} ms", rounds.len(), rounds.join(", "))?;
            }
            writeln!(f)?;
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
        in_round(1, target, mode, allowed, secs, p99_us)
    }

    fn in_round(round: u32, target: Target, mode: Mode, allowed: u64, secs: u64, p99_us: u64) -> Row {
        let mut latency = histogram();
        for _ in 0..100 {
            latency.record(p99_us).unwrap();
        }
        let tally = Tally { allowed, ..Tally::default() };
        let second_half = (allowed / 2, Duration::from_secs(secs) / 2);
        Row { round, target, mode, measured: Measured { sent: allowed as usize, elapsed: Duration::from_secs(secs), latency, tally, exhausted: false, second_half, server_cpu: None, sqlite_cpu: None, steal: None, timeline: Vec::new(), timeline_origin: None, slow: None } }
    }

    #[test]
    fn ratio_and_verdicts() {
        let report = Report {
            rows: vec![
                row(Target::Full, Mode::Closed(32), 3000, 10, 9000),
                row(Target::Native, Mode::Closed(32), 10000, 10, 3000),
                row(Target::Full, Mode::Open(150), 1500, 10, 4000),
            ],
            priority: None,
        };
        assert!((report.ratio().unwrap() - 0.3).abs() < 1e-9);
        let p99 = report.full_open_p99_us().unwrap();
        assert!((3996..=4004).contains(&p99), "{p99}");
        let text = report.to_string();
        assert!(text.contains("30.0 % (goal ≥ 50 %: NOT met)"), "{text}");
        assert!(text.contains("(goal ≤ 5 ms: met)"), "{text}");
        assert_eq!(text.lines().filter(|l| l.starts_with("| 1 | full") || l.starts_with("| 1 | native")).count(), 3);
        assert!(!text.contains("rounds"), "one round names no rounds: {text}");
        assert!(!text.contains("priorities"), "{text}");
        let raised = Report { priority: Some(crate::priority::Separation::GeneratorRaised(-10)), ..report }.to_string();
        assert!(raised.contains("priorities during every phase: the generator's threads at nice -10, the servers' at the process's own"), "{raised}");
    }

    #[test]
    fn several_rounds_are_judged_on_the_median_ratio_and_every_open_loop_request() {
        let closed = Mode::Closed(32);
        let open = Mode::Open(150);
        let report = Report {
            rows: vec![
                in_round(1, Target::Full, closed, 6000, 10, 9000),
                in_round(1, Target::Native, closed, 10000, 10, 3000),
                in_round(2, Target::Full, closed, 4000, 10, 9000),
                in_round(2, Target::Native, closed, 10000, 10, 3000),
                in_round(3, Target::Full, closed, 5500, 10, 9000),
                in_round(3, Target::Native, closed, 10000, 10, 3000),
                // 100 latencies per row: one round's slow requests are a third of all.
                in_round(1, Target::Full, open, 1500, 10, 4000),
                in_round(1, Target::Native, open, 1500, 10, 1000),
                in_round(2, Target::Full, open, 1500, 10, 20000),
                in_round(3, Target::Full, open, 1500, 10, 4500),
            ],
            priority: None,
        };
        let ratios: Vec<String> = report.round_ratios().iter().map(|r| format!("{r:.2}")).collect();
        assert_eq!(ratios, ["0.60", "0.40", "0.55"]);
        assert!((report.ratio().unwrap() - 0.55).abs() < 1e-9, "the median, not the mean (0.517) nor the best");
        assert!((report.sustained_peak(Target::Full).unwrap() - 550.0).abs() < 1e-9);
        let p99 = report.full_open_p99_us().unwrap();
        assert!((19_980..=20_020).contains(&p99), "the slow round counts in full: {p99}");
        let text = report.to_string();
        assert!(text.contains("55.0 % (goal ≥ 50 %: met), the median of 3 rounds: 60.0 %, 40.0 %, 55.0 %"), "{text}");
        assert!(text.contains("(goal ≤ 5 ms: NOT met), over the 3 rounds' requests together; each round alone: 4.00, 20.02, 4.50 ms"), "{text}");
        assert_eq!(text.lines().filter(|l| l.starts_with("| 2 | full")).count(), 2);
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0]), Some(3.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn no_ratio_without_both_peaks() {
        let report = Report { rows: vec![row(Target::Full, Mode::Closed(1), 10, 1, 100)], priority: None };
        assert_eq!(report.ratio(), None);
        assert!(!report.to_string().contains("full / native"));
    }

    #[test]
    fn phases_the_host_took_cpu_from_are_named() {
        let mut open = row(Target::Native, Mode::Open(150), 1500, 10, 4000);
        open.measured.steal = Some(0.123);
        let mut closed = row(Target::Full, Mode::Closed(32), 3000, 10, 9000);
        closed.measured.steal = Some(0.009);
        let report = Report { rows: vec![closed, open, row(Target::Full, Mode::Open(150), 1500, 10, 4000)], priority: None };
        let text = report.to_string();
        assert_eq!(report.disturbed().count(), 1, "under 1 % is not a disturbance");
        assert!(text.contains("the host took 12.3 % of the machine's CPU time during round 1's native open loop (steal)"), "{text}");
        assert!(text.contains("| 0.9 | 0 |") && text.contains("| 12.3 | 0 |") && text.contains("| - | 0 |"), "{text}");
    }

    #[test]
    fn what_took_the_machine_while_slow_requests_waited_is_named() {
        let mut full = row(Target::Full, Mode::Open(150), 1500, 10, 4000);
        full.measured.slow = Some(crate::system::SlowCauses { slow: 925, steal: 388, others: 481 });
        let mut quiet = row(Target::Native, Mode::Open(150), 1500, 10, 4000);
        quiet.measured.slow = Some(crate::system::SlowCauses::default());
        let text = Report { rows: vec![full, quiet], priority: None }.to_string();
        assert!(
            text.contains("round 1's full open loop: 925 requests took over 5 ms; 388 of them while the host took at least 20 % of the machine's CPU time (steal), 481 while other processes and kernel threads did, 56 while neither did"),
            "{text}"
        );
        assert!(!text.contains("native open loop:"), "an open loop without slow requests has no line: {text}");
    }
}
