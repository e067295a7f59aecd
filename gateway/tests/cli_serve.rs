//! `onecard serve` as an operator runs it: the real binary on a fresh database, one request
//! refused (and so audited), then SIGTERM, as a process manager stops a service: a clean stop
//! with exit status 0, and the request's audit record on disk with its chain intact.
#![cfg(unix)]

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use onecard_audit::{AuditStore, verify};
use onecard_gateway::server::ServeConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_onecard_serve_after_writing_out_the_audit_trail() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("onecard.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\ndatabase = \"onecard.db\"\n").expect("config");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_onecard"))
        .args(["serve", "--config", config.to_str().expect("UTF-8")])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start onecard serve");
    let (lines, printed) = std::sync::mpsc::channel();
    let stdout = serve.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let base = loop {
        let line = printed.recv_timeout(Duration::from_secs(60)).expect("onecard serve prints where it listens");
        if let Some((_, url)) = line.split_once("listening on ") {
            break url.trim().to_owned();
        }
    };

    let answer = reqwest::Client::new().post(format!("{base}/v1/apps/parks/actions/enter")).body("{}").send().await.expect("an answer");
    assert_eq!(answer.status().as_u16(), 401, "no channel signature");

    let term = Command::new("kill").args(["-TERM", &serve.id().to_string()]).status().expect("kill");
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = serve.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "onecard serve did not stop within 30 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0), "a clean stop: {status}");
    let rest: Vec<String> = printed.try_iter().collect();
    assert_eq!(rest.last().map(String::as_str), Some("stopped"), "{rest:?}");

    let database = dir.path().join("onecard.db").display().to_string();
    let store = AuditStore::connect(&database, &ServeConfig::default().gateway.gateway_id).await.expect("the audit store");
    let report = verify(&store).await.expect("verify");
    assert_eq!((report.records, report.first_broken), (1, None), "the refused request's record, written before the stop");
}
