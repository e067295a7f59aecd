//! The example city end to end: started in-process on loopback ports over a temporary data
//! folder, the sample calls played through the venue client, the money checked at the sandbox
//! bank and e-CNY operator, the audit chain verified; a restart files nothing new and the
//! gateway's ledger refuses to pay a subsidy twice across it; a changed
//! filing is filed anew; the placeholders of catalog.toml agree with the components.

use std::collections::BTreeSet;
use std::path::Path;

use onecard_audit::{AuditStore, verify};
use onecard_catalog::Store;
use onecard_catalog::workflow::FilingState;
use onecard_city::calls;
use onecard_city::filing::{self, FilingChange};
use onecard_city::{City, CityOptions};
use onecard_gateway::runtime::{Runtime, RuntimeConfig};
use serde_json::Value;

fn options(data: &Path, sandbox_port: u16) -> CityOptions {
    CityOptions {
        data_dir: Some(data.to_path_buf()),
        listen: Some("127.0.0.1:0".into()),
        sandbox_listen: ([127, 0, 0, 1], sandbox_port).into(),
        ..CityOptions::default()
    }
}

/// Starts the city, retrying while the previous city's sandbox port is being released.
async fn start(data: &Path, sandbox_port: u16) -> City {
    let mut last = None;
    for _ in 0..50 {
        match onecard_city::start(&options(data, sandbox_port)).await {
            Ok(city) => return city,
            Err(e) if e.code() == "CITY_SANDBOX_FAILED" && sandbox_port != 0 => {
                last = Some(e);
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the city starts: {e}"),
        }
    }
    panic!("the sandbox port stays busy: {last:?}")
}

async fn sandbox_state(city: &City, double: &str) -> Value {
    reqwest::get(format!("{}/{double}/_state", city.sandbox_url)).await.expect("sandbox").json().await.expect("json")
}

fn step<'a>(steps: &'a [calls::Step], app: &str, action: &str) -> &'a calls::Step {
    steps.iter().find(|s| s.app == app && s.action == action).unwrap_or_else(|| panic!("no step {app}/{action}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_calls_are_decided_as_expected_and_the_audit_chain_verifies() {
    let data = tempfile::tempdir().expect("data dir");
    let city = start(data.path(), 0).await;
    assert!(city.filed.iter().all(|f| f.change == FilingChange::First), "{:?}", city.filed);
    assert!(city.admin_token.starts_with("oc_"));
    let health = reqwest::get(format!("{}/health", city.gateway_url)).await.expect("health");
    assert!(health.status().is_success(), "{}", health.status());

    let cards = onecard_city::city::read_card_refs(&city.data_dir).expect("cards.json");
    assert_eq!(cards["zhang"], city.holders["zhang"].card_ref);
    let setup = calls::Setup { gateway: city.gateway_url.clone(), cards };
    let steps = calls::run(&setup, &mut |_| {}).await.expect("the calls are made");
    for s in &steps {
        assert!(s.as_expected(), "{} — {}/{}: {}", s.title, s.app, s.action, s.decision);
    }

    // Park entry: a senior enters free; a holder without consent is refused before the plugin.
    let enter = step(&steps, "parks", "enter").decision.result().expect("allowed").clone();
    assert_eq!((enter["decision"].as_str(), enter["entitlement"]["kind"].as_str(), enter["entitlement"]["fee_fen"].as_u64()), (Some("admit"), Some("senior"), Some(0)));
    let refused: Vec<_> = steps.iter().filter_map(|s| s.decision.code()).collect();
    assert_eq!(refused, vec!["CONSENT_REQUIRED", "PERSON_DECEASED"], "only the two expected refusals");

    // Money: what the responses told is what the doubles moved.
    let settle = step(&steps, "hospital", "settle").decision.result().expect("settled").clone();
    let self_pay = settle["self_pay_fen"].as_u64().expect("self pay");
    assert_eq!(settle["fund_fen"].as_u64().unwrap() + settle["personal_account_fen"].as_u64().unwrap() + self_pay, 30200);
    let bank = sandbox_state(&city, "bank").await;
    let entries = bank["ledger"]["entries"].as_array().expect("bank entries").clone();
    let moved = |kind: &str, account: &str| -> u64 {
        entries
            .iter()
            .filter(|e| e["settlement"]["kind"] == kind && e["settlement"]["account"] == account)
            .map(|e| e["settlement"]["amount_fen"].as_u64().unwrap_or(0))
            .sum()
    };
    let zhang = &city.holders["zhang"];
    let li = &city.holders["li"];
    assert_eq!(moved("debit", &zhang.card_ref), self_pay, "hospital self-pay");
    assert_eq!(moved("credit", &zhang.attributes["holder.financial_account"]), 120000, "subsidy to zhang's own card");
    assert_eq!(moved("debit", &li.attributes["holder.financial_account"]), 300, "li's metro fare");
    assert_eq!(moved("credit", &city.holders["chen"].attributes["holder.financial_account"]), 0, "nothing paid for the deceased");
    let ecny = sandbox_state(&city, "ecny").await;
    let balance = step(&steps, "ecny", "balance").decision.result().expect("balance")["balance_fen"].as_u64();
    assert_eq!(balance, Some(20000 - 3550));
    assert!(ecny.to_string().contains("16450"), "the operator holds the balance: {ecny}");

    // Every decision is in the audit trail, and the chain verifies.
    city.running.gateway.audit.flush().await.expect("flush");
    let store = AuditStore::connect(&city.config.database, &city.config.gateway.gateway_id).await.expect("audit store");
    let report = verify(&store).await.expect("verify");
    assert_eq!(report.first_broken, None);
    assert_eq!(report.records, steps.len() as u64, "one record per decision");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_files_nothing_new_and_the_city_answers_again() {
    let data = tempfile::tempdir().expect("data dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
    let first = start(data.path(), port).await;
    let token = first.admin_token.clone();
    let cards = onecard_city::city::read_card_refs(&first.data_dir).expect("cards.json");
    let steps = calls::run(&calls::Setup { gateway: first.gateway_url.clone(), cards }, &mut |_| {}).await.expect("calls");
    assert!(steps.iter().all(calls::Step::as_expected), "before the restart");
    let mut first = first;
    first.running.shutdown().await.expect("a clean shutdown");
    drop(first);
    // The demo forgets plugin state at every start (`forget_plugin_state`), the hospital's daily
    // message-id sequence with it; a message id is its second plus that sequence, so a city
    // started again within the second of the first one's last settlement would issue one of
    // its ids again (and the ledger would refuse the duplicate, LEDGER_CONFLICT). A gateway
    // that is not a demo keeps its plugin state across restarts.
    let into_second = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").subsec_millis();
    tokio::time::sleep(std::time::Duration::from_millis(u64::from(1_010 - into_second))).await;
    let city = start(data.path(), port).await;
    assert!(city.filed.iter().all(|f| f.change == FilingChange::Unchanged && f.number == 1), "{:?}", city.filed);
    assert!(city.catalog_changes.is_empty(), "re-applying the same catalog changes nothing: {:?}", city.catalog_changes);
    assert_ne!(city.admin_token, token, "a fresh token");
    let store = Store::open(&city.config.database).await.expect("store");
    assert!(store.authenticate(&token).await.is_err(), "the previous city token is revoked");
    assert!(store.authenticate(&city.admin_token).await.is_ok());

    let cards = onecard_city::city::read_card_refs(&city.data_dir).expect("cards.json");
    let setup = calls::Setup { gateway: city.gateway_url.clone(), cards };
    let steps = calls::run(&setup, &mut |_| {}).await.expect("calls");
    for s in &steps {
        assert!(s.as_expected(), "after the restart: {} — {}", s.title, s.decision);
    }
    // Paid before the restart: the gateway's ledger refuses a second payment of the same
    // (policy, period, person), although the restarted bank double would pay again.
    let subsidy = steps.iter().find(|s| s.app == "subsidy" && s.decision.code() != Some("PERSON_DECEASED")).expect("subsidy");
    assert_eq!(subsidy.decision.code(), Some("LEDGER_CONFLICT"), "{}", subsidy.decision);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_plugin_filing_is_filed_anew_and_the_old_one_terminated() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("c.db").display().to_string()).await.expect("store");
    let runtime = Runtime::new(RuntimeConfig { max_instances: 8, ..RuntimeConfig::default() }).expect("runtime");
    let (filed, _) = filing::file_city(&store, &runtime, "http://127.0.0.1:7301").await.expect("first filing");
    assert!(filed.iter().all(|f| f.change == FilingChange::First));
    let (again, report) = filing::file_city(&store, &runtime, "http://127.0.0.1:7301").await.expect("again");
    assert!(again.iter().all(|f| f.change == FilingChange::Unchanged) && report.changes.is_empty(), "{report:?}");

    // Another backend address changes the filing content, as a rebuilt plugin's hash does.
    let before = store.dump().await.expect("dump");
    let (moved, _) = filing::file_city(&store, &runtime, "http://127.0.0.1:9999").await.expect("re-filed");
    assert_ne!(store.dump().await.expect("dump"), before);
    let transit = moved.iter().find(|f| f.app == "transit").expect("transit");
    assert_eq!((transit.number, &transit.change), (2, &FilingChange::Replaced { previous: 1 }));
    let parks = moved.iter().find(|f| f.app == "parks").expect("parks");
    assert_eq!(parks.change, FilingChange::Unchanged, "parks has no backends");
    let catalog = store.catalog().await.expect("catalog");
    let app = catalog.application("transit").expect("transit");
    let states: Vec<_> = app.filings.iter().map(|f| (f.number, f.state)).collect();
    assert_eq!(states, vec![(1, FilingState::Terminated), (2, FilingState::Online)]);
    assert_eq!(app.filings[1].backends["fare-system"], "http://127.0.0.1:9999/fare");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_placeholders_agree_with_the_components() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("c.db").display().to_string()).await.expect("store");
    let runtime = Runtime::new(RuntimeConfig { max_instances: 8, ..RuntimeConfig::default() }).expect("runtime");
    let contents = filing::contents(&store, &runtime, "http://127.0.0.1:7301").await.expect("contents");
    let toml = onecard_catalog::declarative::parse(filing::CATALOG_TOML).expect("catalog.toml");
    for content in &contents {
        let real = &content.filing.manifest;
        let placeholder = &toml.application(&content.app).expect("app").filings[0].manifest;
        let names = |m: &onecard_catalog::model::Manifest| m.actions.iter().map(|a| a.name.clone()).collect::<BTreeSet<_>>();
        assert_eq!(names(placeholder), names(real), "{}: action names", content.app);
        assert_eq!(placeholder.data_scopes, real.data_scopes, "{}: data scopes", content.app);
        assert_eq!(placeholder.plugin, real.plugin);
        for action in &placeholder.actions {
            let filed = real.action(&action.name).expect("action");
            assert_eq!(action.scopes, filed.scopes, "{}/{}: scopes", content.app, action.name);
            assert_eq!(action.moves_money, filed.moves_money, "{}/{}: moves money", content.app, action.name);
        }
        assert_eq!(placeholder.capabilities.iter().filter(|c| **c != onecard_catalog::model::Capability::Card).collect::<Vec<_>>(), real.capabilities.iter().filter(|c| **c != onecard_catalog::model::Capability::Card).collect::<Vec<_>>(), "{}", content.app);
        assert_eq!(content.filing.backends.keys().cloned().collect::<Vec<_>>().is_empty(), content.app == "parks");
    }
}

/// The city as an operator runs it (`cargo run -p onecard-city`), stopped as a process manager
/// stops a service (SIGTERM): it answers the sample calls, then shuts down cleanly with exit
/// status 0, and every decision is in the audit trail, whose chain verifies, and the plugin
/// state is in its file.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_city_cleanly_and_keeps_every_decision() {
    use std::io::BufRead as _;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    let data = tempfile::tempdir().expect("data dir");
    let dir = data.path().to_str().expect("a UTF-8 temp path");
    let mut city = Command::new(env!("CARGO_BIN_EXE_onecard-city"))
        .args(["--data", dir, "--listen", "127.0.0.1:0", "--sandbox-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start onecard-city");
    let (lines, printed) = std::sync::mpsc::channel();
    let stdout = city.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let gateway = loop {
        let line = printed.recv_timeout(Duration::from_secs(180)).expect("the city prints its gateway address");
        if let Some(rest) = line.trim().strip_prefix("gateway") {
            break rest.split_whitespace().next().expect("an address").to_owned();
        }
    };

    let cards = onecard_city::city::read_card_refs(data.path()).expect("cards.json");
    let steps = calls::run(&calls::Setup { gateway, cards }, &mut |_| {}).await.expect("calls");
    assert!(steps.iter().all(calls::Step::as_expected), "the sample calls");

    let term = Command::new("kill").args(["-TERM", &city.id().to_string()]).status().expect("kill");
    assert!(term.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = city.try_wait().expect("wait") {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the city did not stop within 30 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0), "a clean shutdown: {status}");
    let rest: Vec<String> = printed.try_iter().collect();
    assert!(rest.iter().any(|l| l.starts_with("stopping")), "{rest:?}");

    let config = onecard_gateway::server::ServeConfig::read(&onecard_city::paths::config_file()).expect("onecard.toml");
    let store = AuditStore::connect(&data.path().join("city.db").display().to_string(), &config.gateway.gateway_id).await.expect("audit store");
    let report = verify(&store).await.expect("verify");
    assert_eq!(report.first_broken, None);
    assert_eq!(report.records, steps.len() as u64, "one record per decision, none lost at the stop");
    let kv = onecard_gateway::capabilities::kv::sqlite_file_beside(&data.path().join("city.db").display().to_string());
    let kv = sqlx::SqlitePool::connect(&format!("sqlite://{kv}?mode=ro")).await.expect("the plugin-state file");
    let hospital: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM plugin_kv_log WHERE namespace = 'hospital'").fetch_one(&kv).await.expect("count");
    assert!(hospital > 0, "the hospital's plugin state is in its file");
}
