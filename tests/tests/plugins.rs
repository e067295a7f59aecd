//! Every scenario plugin, built to wasm and run through the runtime as the gateway runs it.
//!
//! Each plugin under `plugins/` must have a module of tests here: `foreach_plugin!` below names
//! every plugin crate, and a plugin without a `mod <name>` fails to compile. Each plugin's
//! `plugin.toml` (what the department files) must agree with what its component describes.

use std::sync::Arc;
use std::time::Duration;

use onecard_gateway::capabilities::{Capability, Grants};
use onecard_tests::{artifacts, call, card, env, load, request, runtime};
use serde_json::Value;

macro_rules! assert_plugin_has_tests {
    ($name:ident, $dir:expr) => {
        #[allow(unused_imports)]
        use self::$name as _;
    };
}
artifacts::foreach_plugin!(assert_plugin_has_tests);

/// `plugin.toml` agrees with the component's `describe`, for every plugin.
mod manifests {
    macro_rules! manifest_matches_describe {
        ($name:ident, $dir:expr) => {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::check_manifest($dir, &paste_path(stringify!($name))).await;
            }
        };
    }
    fn paste_path(name: &str) -> String {
        format!("{}/{}.wasm", std::path::Path::new(onecard_tests::artifacts::PARKS).parent().unwrap().display(), name)
    }
    onecard_tests::artifacts::foreach_plugin!(manifest_matches_describe);
}

async fn check_manifest(dir: &str, wasm: &str) {
    let manifest: toml::Table = std::fs::read_to_string(format!("{dir}/plugin.toml")).expect("plugin.toml").parse().expect("valid TOML");
    let rt = runtime();
    let plugin = load(&rt, wasm, &Grants::all()).await;
    let info = plugin.info();
    assert_eq!(manifest["id"].as_str(), Some(info.id.as_str()));
    assert_eq!(manifest["version"].as_str(), Some(info.version.as_str()));
    assert_eq!(manifest["wit"].as_str(), plugin.wit_version().map(|v| format!("onecard:plugin@{v}")).as_deref());
    let caps: Vec<&str> = manifest["capabilities"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(caps, info.capabilities);
    let actions = manifest["actions"].as_table().expect("[actions]");
    assert_eq!(actions.len(), info.actions.len(), "same number of actions");
    for spec in &info.actions {
        let filed = actions.get(&spec.name).unwrap_or_else(|| panic!("action `{}` missing from plugin.toml", spec.name));
        assert_eq!(filed["description"].as_str(), Some(spec.description.as_str()));
        assert_eq!(filed["assurance"].as_str(), Some(spec.assurance.as_str()));
        assert_eq!(filed["needs_card"].as_bool(), Some(spec.needs_card));
        assert_eq!(filed["moves_money"].as_bool(), Some(spec.moves_money));
        let scopes: Vec<&str> = filed["scopes"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(scopes, spec.scopes);
        let schema_file = format!("{dir}/{}", filed["params_schema"].as_str().unwrap());
        let filed_schema: Value = serde_json::from_str(&std::fs::read_to_string(&schema_file).unwrap()).unwrap();
        let described: Value = serde_json::from_str(&spec.params_schema).unwrap();
        assert_eq!(filed_schema, described, "{schema_file}");
    }
}

mod parks {
    use super::*;

    const CONFIG: &str = include_str!("../../examples/city/parks-config.json");

    fn enter(holder: &str, age: &str) -> onecard_gateway::bindings::onecard::plugin::types::Request {
        let mut r = request("parks", "enter", "{}");
        r.venue = Some("west-lake".into());
        r.terminal = Some("WL-G1".into());
        r.config = CONFIG.replace("\"capacity_per_day\": 2,", "\"capacity_per_day\": 10,");
        r.card = Some(card(holder, &[("holder.age", age)]));
        r.idempotency_key = format!("enter-{holder}");
        r
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_entries_never_exceed_capacity_and_each_holder_enters_once() {
        let rt = Arc::new(runtime());
        let plugin = Arc::new(load(&rt, artifacts::PARKS, &Grants::of([Capability::Kv])).await);
        let env = env("parks");
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..40 {
            let (rt, plugin, env) = (Arc::clone(&rt), Arc::clone(&plugin), env.clone());
            calls.spawn(async move { call(&rt, &plugin, &env, &enter(&format!("h{}", i % 20), "30"), Duration::from_millis(500)).await.result });
        }
        let results: Vec<_> = calls.join_all().await;
        let admitted = results.iter().filter(|r| r.as_ref().is_ok_and(|resp| !resp.body.contains("\"replayed\":true"))).count();
        let full = results.iter().filter(|r| r.as_ref().is_err_and(|e| e.code() == "CAPACITY_REACHED")).count();
        assert_eq!(admitted, 10, "exactly the capacity is admitted: {results:?}");
        assert!(full >= 10, "distinct holders beyond capacity are refused: {full}");
        assert!(results.iter().all(|r| r.as_ref().map_or_else(|e| ["CAPACITY_REACHED", "ALREADY_INSIDE"].contains(&e.code()), |_| true)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_component_decides_like_the_native_code() {
        let rt = runtime();
        let plugin = load(&rt, artifacts::PARKS, &Grants::of([Capability::Kv])).await;
        let env = env("parks");
        let first = call(&rt, &plugin, &env, &enter("s", "67"), Duration::from_millis(500)).await.result.unwrap();
        let body: Value = serde_json::from_str(&first.body).unwrap();
        assert_eq!(body["entitlement"]["kind"], "senior");
        let mut again = enter("s", "67");
        again.idempotency_key = "second".into();
        let refused = call(&rt, &plugin, &env, &again, Duration::from_millis(500)).await.result.unwrap_err();
        assert_eq!(refused.code(), "ALREADY_INSIDE");
    }
}

/// Call `plugin` once at `unix_ms` (China time), on a fresh instance with `env`'s backends.
async fn call_at(
    rt: &onecard_gateway::runtime::Runtime,
    plugin: &onecard_gateway::runtime::LoadedPlugin,
    env: &onecard_gateway::capabilities::AppEnv,
    request: &onecard_gateway::bindings::onecard::plugin::types::Request,
    unix_ms: i64,
) -> onecard_gateway::runtime::Invocation {
    use onecard_gateway::capabilities::HostState;
    use onecard_gateway::capabilities::clock::ClockState;
    let state = HostState::new(env, rt.instance_limits(), &request.request_id, request.card.clone(), ClockState::fixed(unix_ms));
    plugin.handle(state, request, Duration::from_secs(2)).await
}

mod transit {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use onecard_gateway::bindings::onecard::plugin::http::IncomingResponse;
    use onecard_gateway::bindings::onecard::plugin::types::Request;
    use onecard_gateway::capabilities::AppEnv;
    use onecard_gateway::capabilities::http::{BackendTarget, ScriptedHttp};
    use onecard_gateway::capabilities::payments::MemoryLedger;
    use onecard_tests::MONDAY_10AM_MS;

    use super::*;

    const CONFIG: &str = r#"{
      "stations": {
        "wulin": {"name": "Wulin Square", "position_m": 0},
        "fengqi": {"name": "Fengqi Road", "position_m": 1800},
        "binjiang": {"name": "Binjiang", "position_m": 14000}
      },
      "fares": {"distance": {"bands": [{"up_to_m": 6000, "fare_fen": 200}, {"up_to_m": 12000, "fare_fen": 300}, {"up_to_m": 22000, "fare_fen": 400}]}},
      "max_fare_fen": 800,
      "concessions": {"student": {"pay_percent": 50}}
    }"#;

    const CAPS: [Capability; 3] = [Capability::Http, Capability::Kv, Capability::Payments];

    /// Trips the fare system received: (Idempotency-Key, body).
    type Received = Arc<Mutex<Vec<(String, Value)>>>;

    fn transit_env() -> (AppEnv, Arc<MemoryLedger>, Received) {
        let ledger = Arc::new(MemoryLedger::new());
        let received: Received = Arc::default();
        let log = Arc::clone(&received);
        let http = ScriptedHttp::new(move |backend, request| {
            assert_eq!((backend, request.path.as_str()), ("fare-system", "/trips"));
            let key = request.headers.iter().find(|(k, _)| k == "idempotency-key").map(|(_, v)| v.clone()).unwrap_or_default();
            let mut log = log.lock().unwrap();
            let duplicate = log.iter().any(|(k, _)| *k == key);
            log.push((key, serde_json::from_slice(&request.body).unwrap()));
            Ok(IncomingResponse { status: 200, headers: vec![], body: format!(r#"{{"accepted":true,"duplicate":{duplicate}}}"#).into_bytes() })
        });
        let backends = BTreeMap::from([("fare-system".to_string(), BackendTarget { base_url: "http://fares.invalid".into(), timeout_ms: 500 })]);
        let env = AppEnv { http_backends: Arc::new(backends), http: Arc::new(http), settlement: ledger.clone(), ..env("transit") };
        (env, ledger, received)
    }

    fn tap(action: &str, holder: &str, station: &str, key: &str) -> Request {
        let mut r = request("transit", action, "{}");
        r.venue = Some(station.into());
        r.terminal = Some("G1".into());
        r.config = CONFIG.into();
        let account = format!("acct-{holder}");
        r.card = Some(card(holder, &[("holder.category", "student"), ("holder.financial_account", &account)]));
        r.idempotency_key = key.into();
        r
    }

    fn upload() -> Request {
        let mut r = request("transit", "upload_pending", "{}");
        r.config = CONFIG.into();
        r
    }

    fn ok(invocation: onecard_gateway::runtime::Invocation) -> Value {
        serde_json::from_str(&invocation.result.unwrap().body).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_trip_is_told_at_the_gate_debited_and_uploaded_once() {
        let rt = runtime();
        let plugin = load(&rt, artifacts::TRANSIT, &Grants::of(CAPS)).await;
        let (env, ledger, received) = transit_env();
        let entered = ok(call_at(&rt, &plugin, &env, &tap("tap_in", "s1", "wulin", "k1"), MONDAY_10AM_MS).await);
        let exited = ok(call_at(&rt, &plugin, &env, &tap("tap_out", "s1", "binjiang", "k2"), MONDAY_10AM_MS + 1_800_000).await);
        assert_eq!(exited["trip_id"], entered["trip_id"]);
        assert_eq!((exited["full_fare_fen"].as_u64(), exited["fare_fen"].as_u64()), (Some(400), Some(200)), "student half fare");
        assert!(ledger.entries().is_empty() && received.lock().unwrap().is_empty(), "the gate waited on no backend");

        for _ in 0..2 {
            let run = ok(call_at(&rt, &plugin, &env, &upload(), MONDAY_10AM_MS + 3_600_000).await);
            assert_eq!(run["remaining"], 0);
        }
        let trip_id = exited["trip_id"].as_str().unwrap();
        let entries = ledger.entries();
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!((entries[0].0.as_str(), entries[0].1.amount_fen), ("transit", 200));
        assert_eq!((entries[0].1.idempotency_key.as_str(), entries[0].1.account.as_str()), (trip_id, "acct-s1"));
        let received = received.lock().unwrap();
        assert_eq!(received.len(), 1);
        assert_eq!((received[0].0.as_str(), received[0].1["fare_fen"].as_u64()), (trip_id, Some(200)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_taps_of_one_card_open_one_trip_and_charge_it_once() {
        let rt = Arc::new(runtime());
        let plugin = Arc::new(load(&rt, artifacts::TRANSIT, &Grants::of(CAPS)).await);
        let (env, ledger, _) = transit_env();
        let mut taps = tokio::task::JoinSet::new();
        for i in 0..12 {
            let (rt, plugin, env) = (Arc::clone(&rt), Arc::clone(&plugin), env.clone());
            let request = tap("tap_in", "c1", "fengqi", &format!("gate-retry-{}", i % 3));
            taps.spawn(async move { call_at(&rt, &plugin, &env, &request, MONDAY_10AM_MS).await.result });
        }
        let results = taps.join_all().await;
        let mut trips = std::collections::BTreeSet::new();
        for result in &results {
            match result {
                Ok(response) => {
                    let body: Value = serde_json::from_str(&response.body).unwrap();
                    assert_eq!(body["charged"], serde_json::json!([]), "nothing is charged by a double tap");
                    trips.insert(body["trip_id"].as_str().unwrap().to_owned());
                }
                Err(e) => assert_eq!(e.code(), "CONCURRENT_TAP", "{e}"),
            }
        }
        assert_eq!(trips.len(), 1, "one trip opened: {results:?}");
        let exited = ok(call_at(&rt, &plugin, &env, &tap("tap_out", "c1", "wulin", "out"), MONDAY_10AM_MS + 600_000).await);
        assert_eq!(trips.first(), exited["trip_id"].as_str().map(str::to_owned).as_ref());
        ok(call_at(&rt, &plugin, &env, &upload(), MONDAY_10AM_MS + 3_600_000).await);
        let amounts: Vec<u64> = ledger.entries().iter().map(|(_, p)| p.amount_fen).collect();
        assert_eq!(amounts, [100]);
    }
}

mod subsidy {
    use onecard_gateway::bindings::onecard::plugin::types::Request;
    use onecard_gateway::capabilities::AppEnv;
    use onecard_gateway::capabilities::payments::MemoryLedger;
    use onecard_tests::MONDAY_10AM_MS;

    use super::*;

    const CONFIG: &str = r#"{"policies": {"farm-2026": {"name": "Farmland protection subsidy", "standard_fen": 150000,
        "household": true, "periods": {"2026": {"notice_ends": "2026-11-20"}}}}}"#;

    const CAPS: [Capability; 2] = [Capability::Kv, Capability::Payments];

    fn subsidy_env() -> (AppEnv, Arc<MemoryLedger>) {
        let ledger = Arc::new(MemoryLedger::new());
        (AppEnv { settlement: ledger.clone(), ..env("subsidy") }, ledger)
    }

    fn disburse(batch: &str, item: &str, person: &str, amount: u64) -> Request {
        let params = serde_json::json!({"batch_id": batch, "item_id": item, "policy": "farm-2026", "period": "2026",
            "beneficiary_ref": person, "amount_fen": amount});
        let mut r = request("subsidy", "disburse", &params.to_string());
        r.config = CONFIG.into();
        let account = format!("acct-{person}");
        r.card = Some(card(person, &[("holder.vital_status", "alive"), ("holder.household_role", "head"), ("holder.financial_account", &account)]));
        r.idempotency_key = format!("{batch}/{item}");
        r
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_item_sent_many_times_at_once_pays_once() {
        let rt = Arc::new(runtime());
        let plugin = Arc::new(load(&rt, artifacts::SUBSIDY, &Grants::of(CAPS)).await);
        let (env, ledger) = subsidy_env();
        let mut sends = tokio::task::JoinSet::new();
        for i in 0..16 {
            let (rt, plugin, env) = (Arc::clone(&rt), Arc::clone(&plugin), env.clone());
            // The same item resent, and the same person in a second batch by mistake.
            let request = if i % 4 == 3 { disburse("b2", "dup", "p1", 120000) } else { disburse("b1", "i1", "p1", 120000) };
            sends.spawn(async move { call_at(&rt, &plugin, &env, &request, MONDAY_10AM_MS).await.result });
        }
        let results = sends.join_all().await;
        let paid = results.iter().filter(|r| r.as_ref().is_ok_and(|b| b.body.contains("\"replayed\":false"))).count();
        assert_eq!(paid, 1, "{results:?}");
        for result in &results {
            if let Err(e) = result {
                assert!(["DISBURSEMENT_IN_PROGRESS", "ALREADY_PAID"].contains(&e.code()), "{e}");
            }
        }
        let entries = ledger.entries();
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!((entries[0].1.amount_fen, entries[0].1.idempotency_key.as_str()), (120000, "subsidy:farm-2026:2026:p1"));

        let mut report = request("subsidy", "reconcile", r#"{"batch_id":"b1"}"#);
        report.config = CONFIG.into();
        let report: Value = serde_json::from_str(&call_at(&rt, &plugin, &env, &report, MONDAY_10AM_MS).await.result.unwrap().body).unwrap();
        assert_eq!((report["paid_count"].as_u64(), report["paid_fen"].as_u64()), (Some(1), Some(120000)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_component_refuses_like_the_native_code() {
        let rt = runtime();
        let plugin = load(&rt, artifacts::SUBSIDY, &Grants::of(CAPS)).await;
        let (env, ledger) = subsidy_env();
        let mut proxy = disburse("b1", "i1", "p1", 1000);
        proxy.card.as_mut().unwrap().holder_ref = "p1-son".into();
        let err = call_at(&rt, &plugin, &env, &proxy, MONDAY_10AM_MS).await.result.unwrap_err();
        assert_eq!(err.code(), "NOT_BENEFICIARY_CARD");
        let err = call_at(&rt, &plugin, &env, &disburse("b1", "i2", "p2", 150001), MONDAY_10AM_MS).await.result.unwrap_err();
        assert_eq!(err.code(), "AMOUNT_ABOVE_STANDARD");
        assert!(ledger.entries().is_empty());
    }
}

mod hospital {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use onecard_gateway::bindings::onecard::plugin::http::{HttpError, IncomingResponse, OutgoingRequest};
    use onecard_gateway::capabilities::AppEnv;
    use onecard_gateway::capabilities::http::{BackendTarget, ScriptedHttp};
    use onecard_gateway::capabilities::payments::MemoryLedger;
    use serde_json::json;

    use super::*;

    const CONFIG: &str = r#"{"institution_code":"H33010600001"}"#;

    /// An application environment whose `backend` answers with `http` and whose payments land in
    /// the returned ledger.
    pub(super) fn env_with(app: &str, backend: &str, http: ScriptedHttp) -> (AppEnv, Arc<MemoryLedger>) {
        let ledger = Arc::new(MemoryLedger::new());
        let mut env = env(app);
        let target = BackendTarget { base_url: "http://sandbox.invalid".into(), timeout_ms: 1_000 };
        env.http_backends = Arc::new(BTreeMap::from([(backend.to_string(), target)]));
        env.http = Arc::new(http);
        env.settlement = Arc::clone(&ledger) as _;
        (env, ledger)
    }

    pub(super) fn reply(body: &Value) -> Result<IncomingResponse, HttpError> {
        Ok(IncomingResponse { status: 200, headers: vec![], body: serde_json::to_vec(body).expect("JSON") })
    }

    /// A one-visit insurance system: fees of 300 CNY split 140 fund / 50 account / 110 self-pay.
    /// `lose` settlement answers are lost (processed, then the client times out).
    fn insurance(lose: usize, received: Arc<Mutex<Vec<(String, Value)>>>) -> ScriptedHttp {
        let lost = Mutex::new(lose);
        ScriptedHttp::new(move |_: &str, request: &OutgoingRequest| {
            let message: Value = serde_json::from_slice(&request.body).expect("a JSON message");
            let infno = message["infno"].as_str().expect("infno").to_owned();
            received.lock().expect("lock").push((infno.clone(), message.clone()));
            let split = json!({"setl_id": "SETL-1", "mdtrt_id": "MDT1", "medfee_sumamt": "300.00", "fund_pay": "140.00", "acct_pay": "50.00", "psn_cash_pay": "110.00"});
            let output = match infno.as_str() {
                "2201" => json!({"mdtrt_id": "MDT1", "psn_no": "P1"}),
                "2204" | "2601" => json!({}),
                "2206" => split,
                "2207" => {
                    let mut lost = lost.lock().expect("lock");
                    if *lost > 0 {
                        *lost -= 1;
                        return Err(HttpError::Timeout);
                    }
                    split
                }
                other => panic!("unexpected infno {other}"),
            };
            reply(&json!({"infcode": 0, "msgid": message["msgid"], "output": output}))
        })
    }

    fn req(action: &str, params: Value) -> onecard_gateway::bindings::onecard::plugin::types::Request {
        let mut r = request("hospital", action, &params.to_string());
        r.config = CONFIG.into();
        r.card = Some(card("holder-1", &[]));
        r
    }

    async fn prepare(rt: &onecard_gateway::runtime::Runtime, plugin: &onecard_gateway::runtime::LoadedPlugin, env: &AppEnv) {
        let items = json!([{"sn": "1", "code": "XA01", "count": 2, "unit_price_fen": 15_000}]);
        for r in [
            req("register", json!({"dept_code": "D01"})),
            req("upload_fees", json!({"mdtrt_id": "MDT1", "items": items})),
            req("presettle", json!({"mdtrt_id": "MDT1"})),
        ] {
            call(rt, plugin, env, &r, Duration::from_secs(2)).await.result.expect("visit prepared");
        }
    }

    fn grants() -> Grants {
        Grants::of([Capability::Http, Capability::Kv, Capability::Payments])
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_component_reverses_an_unanswered_settlement_and_charges_only_the_self_pay() {
        let rt = runtime();
        let plugin = load(&rt, artifacts::HOSPITAL, &grants()).await;
        let received = Arc::new(Mutex::new(Vec::new()));
        let (env, ledger) = env_with("hospital", "insurance", insurance(1, Arc::clone(&received)));
        prepare(&rt, &plugin, &env).await;

        let settle = req("settle", json!({"mdtrt_id": "MDT1", "total_fen": 30_000}));
        let reversed = call(&rt, &plugin, &env, &settle, Duration::from_secs(2)).await.result.unwrap_err();
        assert_eq!(reversed.code(), "SETTLEMENT_REVERSED");
        assert!(ledger.entries().is_empty(), "a reversed settlement leaves no ledger entry");
        let (lost_msgid, reversal) = {
            let received = received.lock().unwrap();
            let lost = received.iter().find(|(i, _)| i == "2207").unwrap().1["msgid"].clone();
            (lost, received.last().unwrap().clone())
        };
        assert_eq!(reversal.0, "2601");
        assert_eq!(reversal.1["input"]["omsgid"], lost_msgid);

        let settled = call(&rt, &plugin, &env, &settle, Duration::from_secs(2)).await.result.unwrap();
        let body: Value = serde_json::from_str(&settled.body).unwrap();
        assert_ne!(body["msgid"], lost_msgid, "a new settlement, never the lost one re-sent");
        assert_eq!((body["fund_fen"].as_u64(), body["personal_account_fen"].as_u64(), body["self_pay_fen"].as_u64()), (Some(14_000), Some(5_000), Some(11_000)));
        let entries = ledger.entries();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].1.idempotency_key, body["msgid"].as_str().unwrap());
        assert_eq!(entries[0].1.amount_fen, 11_000, "the ledger holds the self-pay the response told");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_settlements_of_one_visit_send_one_message_and_charge_once() {
        let rt = Arc::new(runtime());
        let plugin = Arc::new(load(&rt, artifacts::HOSPITAL, &grants()).await);
        let received = Arc::new(Mutex::new(Vec::new()));
        let (env, ledger) = env_with("hospital", "insurance", insurance(0, Arc::clone(&received)));
        prepare(&rt, &plugin, &env).await;

        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (rt, plugin, env) = (Arc::clone(&rt), Arc::clone(&plugin), env.clone());
            calls.spawn(async move {
                let settle = req("settle", json!({"mdtrt_id": "MDT1", "total_fen": 30_000}));
                call(&rt, &plugin, &env, &settle, Duration::from_secs(2)).await.result
            });
        }
        let results = calls.join_all().await;
        let sent = received.lock().unwrap().iter().filter(|(i, _)| i == "2207").count();
        assert_eq!(sent, 1, "one settlement message: {results:?}");
        assert_eq!(ledger.entries().len(), 1);
        for result in &results {
            match result {
                Ok(response) => assert!(response.body.contains("\"self_pay_fen\":11000")),
                Err(e) => assert!(["SETTLEMENT_IN_PROGRESS", "CONCURRENT_UPDATE"].contains(&e.code()), "{e:?}"),
            }
        }
        assert!(results.iter().any(Result::is_ok));
    }
}

mod ecny {
    use onecard_gateway::bindings::onecard::plugin::http::{HttpError, Method, OutgoingRequest};
    use onecard_gateway::capabilities::http::ScriptedHttp;
    use serde_json::json;

    use super::hospital::{env_with, reply};
    use super::*;

    const CONFIG: &str = r#"{"merchants":{"m-canteen":{"name":"市民中心食堂"}}}"#;

    /// An operator with one wallet `W1` holding `balance` fen.
    fn operator(balance: u64) -> ScriptedHttp {
        ScriptedHttp::new(move |_: &str, request: &OutgoingRequest| match (request.method, request.path.as_str()) {
            (Method::Post, "/wallets") => reply(&json!({"wallet_id": "W1"})),
            (Method::Get, "/wallets/W1") => reply(&json!({"wallet_id": "W1", "balance_fen": balance, "tier": "class4"})),
            _ => Err(HttpError::Unavailable("unexpected request".into())),
        })
    }

    fn req(action: &str, params: Value) -> onecard_gateway::bindings::onecard::plugin::types::Request {
        let mut r = request("ecny", action, &params.to_string());
        r.config = CONFIG.into();
        r.card = Some(card("holder-1", &[]));
        r
    }

    fn grants() -> Grants {
        Grants::of([Capability::Http, Capability::Kv, Capability::Payments])
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_payments_never_exceed_the_daily_limit() {
        let rt = Arc::new(runtime());
        let plugin = Arc::new(load(&rt, artifacts::ECNY, &grants()).await);
        let (env, ledger) = env_with("ecny", "ecny", operator(0));
        call(&rt, &plugin, &env, &req("load_wallet", json!({"tier": "class4"})), Duration::from_secs(2)).await.result.unwrap();

        let mut calls = tokio::task::JoinSet::new();
        for i in 0..20 {
            let (rt, plugin, env) = (Arc::clone(&rt), Arc::clone(&plugin), env.clone());
            calls.spawn(async move {
                let pay = req("pay", json!({"op_id": format!("p{i}"), "merchant": "m-canteen", "amount_fen": 100_000}));
                call(&rt, &plugin, &env, &pay, Duration::from_secs(2)).await.result
            });
        }
        let results = calls.join_all().await;
        let paid = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(paid, 5, "class4 pays 5,000 CNY a day: {results:?}");
        assert!(results.iter().filter_map(|r| r.as_ref().err()).all(|e| e.code() == "DAILY_LIMIT_EXCEEDED"));
        let entries = ledger.entries();
        assert_eq!(entries.iter().map(|(_, p)| p.amount_fen).sum::<u64>(), 500_000);
        assert!(entries.iter().all(|(_, p)| p.account == "W1" && p.reference.starts_with("merchant:m-canteen:")));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_component_keeps_the_balance_limit_like_the_native_code() {
        let rt = runtime();
        let plugin = load(&rt, artifacts::ECNY, &grants()).await;
        let (env, ledger) = env_with("ecny", "ecny", operator(990_000));
        let before_load = call(&rt, &plugin, &env, &req("top_up", json!({"op_id": "t0", "amount_fen": 1})), Duration::from_secs(2)).await;
        assert_eq!(before_load.result.unwrap_err().code(), "WALLET_NOT_LOADED");
        call(&rt, &plugin, &env, &req("load_wallet", json!({"tier": "class4"})), Duration::from_secs(2)).await.result.unwrap();
        let over = call(&rt, &plugin, &env, &req("top_up", json!({"op_id": "t1", "amount_fen": 10_001})), Duration::from_secs(2)).await;
        assert_eq!(over.result.unwrap_err().code(), "BALANCE_LIMIT_EXCEEDED");
        assert!(ledger.entries().is_empty());
        let ok = call(&rt, &plugin, &env, &req("top_up", json!({"op_id": "t2", "amount_fen": 10_000})), Duration::from_secs(2)).await;
        let body: Value = serde_json::from_str(&ok.result.unwrap().body).unwrap();
        assert_eq!(body["balance_fen"], 1_000_000);
        assert_eq!(ledger.entries().iter().map(|(_, p)| p.amount_fen).sum::<u64>(), 10_000);
    }
}
