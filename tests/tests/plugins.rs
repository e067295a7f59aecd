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
