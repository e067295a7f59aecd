//! The load tool end to end at a low rate for a second per phase, against both targets, in two
//! rounds: every request is a genuine admission (fresh holder, fresh token, fresh nonce), so a
//! single refusal means the tool or the request path broke. No timing is asserted.

use onecard_load::{Mode, Options, Target, Targets, run};

#[test]
fn a_short_low_rate_run_admits_every_request_on_both_targets() {
    let timelines = tempfile::tempdir().expect("tempdir");
    let options = Options {
        duration: 1,
        connections: 2,
        rate: Some(20),
        target: Targets::Both,
        max_rate: 200,
        warmup: 10,
        timeline: Some(timelines.path().to_path_buf()),
        server_nice: 10,
        rounds: 2,
    };
    let report = run(&options).expect("the run completes");
    for row in &report.rows {
        assert_eq!(row.measured.tally.error_count(), 0, "{:?} {:?}: {:?}", row.target, row.mode, row.measured.tally);
        assert!(row.measured.tally.allowed > 0, "{:?} {:?} sent nothing", row.target, row.mode);
        assert_eq!(row.measured.tally.allowed as usize, row.measured.sent);
        assert_eq!(row.measured.latency.len(), row.measured.tally.allowed);
    }
    let phases: Vec<(u32, Target, Mode)> = report.rows.iter().map(|r| (r.round, r.target, r.mode)).collect();
    let (closed, open) = (Mode::Closed(2), Mode::Open(20));
    assert_eq!(
        phases,
        [
            (1, Target::Full, closed),
            (1, Target::Native, closed),
            (2, Target::Full, closed),
            (2, Target::Native, closed),
            (1, Target::Full, open),
            (1, Target::Native, open),
            (2, Target::Full, open),
            (2, Target::Native, open),
        ],
        "the closed loops of every round, the targets alternating, then the open loops"
    );
    assert!(report.rows[4..].iter().all(|r| r.measured.sent == 20), "an open loop of 1 s at 20 req/s sends 20 requests");
    assert_eq!(report.round_ratios().len(), 2);
    assert!(report.ratio().is_some());
    // `--timeline`: one line per open-loop request, on the timetable, with its latency and the
    // part of it the generator was late to send.
    // With several rounds, each round's files end in `-r<round>`.
    for (target, round) in [("full", "r1"), ("native", "r1"), ("full", "r2"), ("native", "r2")] {
        let csv = std::fs::read_to_string(timelines.path().join(format!("{target}-open-{round}.csv"))).expect("timeline written");
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some("scheduled_us,latency_us,start_delay_us"));
        let rows: Vec<[u64; 3]> = lines
            .map(|l| {
                let fields: Vec<u64> = l.split(',').map(|f| f.parse().expect("µs")).collect();
                fields.try_into().expect("three fields")
            })
            .collect();
        assert_eq!(rows.len(), 20, "{target}");
        assert_eq!(rows[1][0], 50_000, "{target}: 20 req/s leave every 50 ms");
        assert!(rows.iter().all(|[_, latency, late]| 0 < *late && late <= latency), "{target}: {rows:?}");
        // And what the machine did every 10 ms of each measured loop (the closed loop here may
        // run out of its 200 prepared requests well before its second).
        for (phase, rows) in [("system", 50), ("closed-system", 1)] {
            let csv = std::fs::read_to_string(timelines.path().join(format!("{target}-{phase}-{round}.csv"))).expect("system timeline written");
            assert!(csv.starts_with("t_us,steal_ms,"), "{target}-{phase}");
            assert!(csv.lines().count() > rows, "{target}-{phase}: a row every 10 ms of the loop");
        }
    }
    if std::path::Path::new("/proc/stat").exists() {
        assert!(report.rows.iter().all(|r| r.measured.steal.is_some_and(|s| (0.0..=1.0).contains(&s))), "every phase knows the host's share");
    }
}

#[test]
fn bad_options_are_refused_before_anything_starts() {
    let options = Options { duration: 0, ..Options::default() };
    let e = run(&options).expect_err("refused");
    let e = e.downcast_ref::<onecard_load::OptionsError>().expect("an options error, not a failure to start a server");
    assert_eq!(e.code(), "LOAD_DURATION_OUT_OF_RANGE");
}
