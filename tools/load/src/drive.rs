//! The two ways of loading a server:
//!
//! - **closed loop** ([`closed`]): N connections each send their next request as soon as the
//!   last one was answered, for a fixed time — the peak throughput. Latency is per request.
//! - **open loop** ([`open`]): requests leave on a fixed timetable (request `i` at
//!   `start + i / rate`) whatever the server does, and each latency is measured from its
//!   *scheduled* time, so a server that stalls is charged for every request that should have
//!   left meanwhile (no coordinated omission).
//!
//! Both write requests rendered beforehand on connections opened beforehand ([`crate::wire`]).
//! Latencies go into an HDR histogram in microseconds.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::net::TcpStream;

use crate::wire::{self, Connections};

/// Longest latency the histogram tells apart, µs (longer ones saturate).
const MAX_LATENCY_US: u64 = 60_000_000;
/// How long a request may take before it counts as an error.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An empty latency histogram (1 µs – 60 s, 3 significant digits).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).unwrap_or_else(|_| unreachable!("constant bounds are valid"))
}

/// Answers counted by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Allowed entries.
    pub allowed: u64,
    /// Everything else, by error code (`HTTP_<status>` without one, `TRANSPORT` when no answer came).
    pub errors: BTreeMap<String, u64>,
    /// The first error's answer, for the operator.
    pub first_error: Option<String>,
}

/// A request's outcome: allowed, or the error code and the answer.
pub type Outcome = Result<(), (String, String)>;

impl Tally {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Ok(()) => self.allowed += 1,
            Err((code, detail)) => {
                *self.errors.entry(code).or_default() += 1;
                self.first_error.get_or_insert(detail);
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        self.allowed += other.allowed;
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// Requests that were not allowed.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// What one phase measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Requests sent.
    pub sent: usize,
    /// From the first send (or scheduled send) to the last answer.
    pub elapsed: Duration,
    /// Latencies, µs.
    pub latency: Histogram<u64>,
    /// Outcomes.
    pub tally: Tally,
    /// The closed loop ran out of prepared requests before its time was up.
    pub exhausted: bool,
    /// Allowed entries answered in the second half of the phase, and how long that half lasted:
    /// the sustained rate, once queues that absorb a burst (the audit queue) are full.
    pub second_half: (u64, Duration),
    /// CPU time the server threads spent during the phase (see [`crate::cpu`]).
    pub server_cpu: Option<Duration>,
    /// Of which in SQLite's worker threads.
    pub sqlite_cpu: Option<Duration>,
    /// The share of the machine's CPU time the host took during the phase (steal), 0–1.
    pub steal: Option<f64>,
    /// Open loop only: each request's times, in the order sent (`--timeline`).
    pub timeline: Vec<Timed>,
    /// Open loop only: when its timetable started (the origin of `timeline`'s times).
    pub timeline_origin: Option<Instant>,
    /// Open loop with `--timeline` only: what the machine did while its slow requests waited.
    pub slow: Option<crate::system::SlowCauses>,
}

/// One open-loop request's times, µs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timed {
    /// When it was due, after the phase's start.
    pub scheduled_us: u64,
    /// From when it was due to its answer: what the percentiles count.
    pub latency_us: u64,
    /// From when it was due to when the generator began sending it: the part of the latency
    /// that was the generator's own wait (at least 1, as every figure here).
    pub start_delay_us: u64,
}

impl Measured {
    /// Allowed entries per second.
    pub fn throughput(&self) -> f64 {
        rate(self.tally.allowed, self.elapsed)
    }

    /// Server CPU time per request sent.
    pub fn cpu_per_request(&self) -> Option<Duration> {
        per(self.server_cpu, self.sent)
    }

    /// SQLite worker CPU time per request sent.
    pub fn sqlite_per_request(&self) -> Option<Duration> {
        per(self.sqlite_cpu, self.sent)
    }

    /// Allowed entries per second in the second half of the phase.
    pub fn sustained(&self) -> f64 {
        rate(self.second_half.0, self.second_half.1)
    }
}

fn per(total: Option<Duration>, sent: usize) -> Option<Duration> {
    let sent = u32::try_from(sent).ok().filter(|n| *n > 0)?;
    total.map(|t| t / sent)
}

fn rate(count: u64, over: Duration) -> f64 {
    let secs = over.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

/// `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// An answer's outcome from its status and body.
pub(crate) fn judge(status: u16, body: &[u8]) -> Outcome {
    // Both servers answer `{"decision":"allowed",…}` compactly; reading the whole JSON for
    // every answer would cost the load generator more than the check needs.
    if (200..300).contains(&status) && contains(body, br#""decision":"allowed""#) {
        return Ok(());
    }
    let code = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("HTTP_{status}"));
    Err((code, format!("{status}: {}", String::from_utf8_lossy(body))))
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// Closed loop: each of `connections` (kept open, see [`wire::connect`]) sends its next
/// request (its rendered bytes) as soon as the last one was answered, until `duration` has
/// passed or the requests run out. The requests that were sent are the first
/// [`Measured::sent`] ones. Returns the connections that are still whole, for the next phase.
pub async fn closed(connections: Vec<TcpStream>, requests: Vec<Vec<u8>>, duration: Duration) -> anyhow::Result<(Measured, Vec<TcpStream>)> {
    let total = requests.len();
    // A plain mutex around the iterator: held only to take the next request.
    let queue = Arc::new(Mutex::new(requests.into_iter()));
    let start = Instant::now();
    let deadline = start + duration;
    let mut senders = Vec::with_capacity(connections.len());
    for mut stream in connections {
        let queue = Arc::clone(&queue);
        senders.push(tokio::spawn(async move {
            let (mut latency, mut tally, mut late, mut buffer) = (histogram(), Tally::default(), Vec::new(), Vec::new());
            let mut whole = true;
            while whole && Instant::now() < deadline {
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                let Some(request) = next else { break };
                let sent = Instant::now();
                let outcome = wire::exchange(&mut stream, &mut buffer, &request).await;
                let done = Instant::now();
                latency.saturating_record(micros(done - sent));
                match &outcome {
                    Ok(()) => late.push(done),
                    // The connection is broken or out of step: it carries nothing more.
                    Err((code, _)) => whole = code != wire::TRANSPORT,
                }
                tally.add(outcome);
            }
            (latency, tally, late, whole.then_some(stream))
        }));
    }
    let (mut latency, mut tally, mut done, mut kept) = (histogram(), Tally::default(), Vec::new(), Vec::new());
    for sender in senders {
        let (h, t, d, stream) = sender.await?;
        latency.add(h)?;
        tally.merge(t);
        done.extend(d);
        kept.extend(stream);
    }
    let elapsed = start.elapsed();
    let left = queue.lock().unwrap_or_else(|p| p.into_inner()).len();
    let second_half = second_half(&done, start, start + elapsed);
    let measured = Measured { sent: total - left, elapsed, latency, tally, exhausted: left == 0 && elapsed < duration, second_half, server_cpu: None, sqlite_cpu: None, steal: None, timeline: Vec::new(), timeline_origin: None, slow: None };
    Ok((measured, kept))
}

/// Open loop at `rate` requests per second on `connections` (see [`crate::wire`]): request
/// `i` (its rendered bytes) is written at `start + i / rate` by this thread, and its latency
/// counts from that scheduled time.
pub fn open(mut connections: Connections, requests: &[Vec<u8>], rate: u32) -> anyhow::Result<Measured> {
    let interval = Duration::from_secs(1).checked_div(rate.max(1)).unwrap_or(Duration::from_secs(1));
    let sent = requests.len();
    // A short lead, so that the first request is not late for the loop's own start.
    let start = Instant::now() + Duration::from_millis(20);
    let scheduled = |i: usize| u32::try_from(i).map(|i| interval * i);
    let precise = crate::priority::PreciseSleeps::on_this_thread();
    for (i, request) in requests.iter().enumerate() {
        let due = start + scheduled(i)?;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        connections.send(i, request)?;
    }
    drop(precise);
    let mut answers = connections.finish()?;
    anyhow::ensure!(answers.len() == sent, "{sent} requests sent, {} answered or failed", answers.len());
    answers.sort_unstable_by_key(|a| a.index);
    let (mut latency, mut tally, mut last, mut allowed) = (histogram(), Tally::default(), start, Vec::with_capacity(sent));
    let mut timeline = Vec::with_capacity(sent);
    for answer in answers {
        let due = start + scheduled(answer.index)?;
        let took = answer.done.saturating_duration_since(due);
        latency.saturating_record(micros(took));
        timeline.push(Timed { scheduled_us: micros(due - start), latency_us: micros(took), start_delay_us: micros(answer.began.saturating_duration_since(due)) });
        if answer.outcome.is_ok() {
            allowed.push(answer.done);
        }
        tally.add(answer.outcome);
        last = last.max(answer.done);
    }
    let second_half = second_half(&allowed, start, last);
    Ok(Measured { sent, elapsed: last.saturating_duration_since(start), latency, tally, exhausted: false, second_half, server_cpu: None, sqlite_cpu: None, steal: None, timeline, timeline_origin: Some(start), slow: None })
}

/// How many of `done` fall in the second half of `[start, end]`, and that half's length.
fn second_half(done: &[Instant], start: Instant, end: Instant) -> (u64, Duration) {
    let half = end.saturating_duration_since(start) / 2;
    let mid = start + half;
    (done.iter().filter(|d| **d >= mid).count() as u64, end.saturating_duration_since(mid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_counts_outcomes_and_keeps_the_first_error() {
        let mut a = Tally::default();
        a.add(Ok(()));
        a.add(Err(("ALREADY_INSIDE".into(), "first".into())));
        let mut b = Tally::default();
        b.add(Err(("ALREADY_INSIDE".into(), "second".into())));
        b.add(Err(("TRANSPORT".into(), "third".into())));
        a.merge(b);
        assert_eq!(a.allowed, 1);
        assert_eq!(a.error_count(), 3);
        assert_eq!(a.errors["ALREADY_INSIDE"], 2);
        assert_eq!(a.first_error.as_deref(), Some("first"));
    }

    #[test]
    fn throughput_counts_allowed_entries_only() {
        let mut tally = Tally::default();
        for _ in 0..10 {
            tally.add(Ok(()));
        }
        tally.add(Err(("X".into(), "x".into())));
        let m = Measured { sent: 11, elapsed: Duration::from_secs(2), latency: histogram(), tally, exhausted: false, second_half: (3, Duration::from_secs(1)), server_cpu: Some(Duration::from_millis(5)), sqlite_cpu: None, steal: None, timeline: Vec::new(), timeline_origin: None, slow: None };
        assert!((m.throughput() - 5.0).abs() < 1e-9);
        assert!((m.sustained() - 3.0).abs() < 1e-9);
        assert_eq!(m.cpu_per_request(), Some(Duration::from_millis(5) / 11));
    }

    #[test]
    fn second_half_counts_late_answers() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let (count, over) = second_half(&[at(100), at(499), at(500), at(900)], start, at(1000));
        assert_eq!((count, over), (2, Duration::from_millis(500)));
    }

    #[test]
    fn finds_the_allowed_marker() {
        assert!(contains(br#"{"decision":"allowed","request_id":"x"}"#, br#""decision":"allowed""#));
        assert!(!contains(br#"{"decision":"refused"}"#, br#""decision":"allowed""#));
    }
}
