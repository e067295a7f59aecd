//! The e-CNY plugin end to end: `onecard serve` with the real ecny component, the sandbox's e-CNY
//! operator (wallet API and settlement port, in process, over HTTP), signed requests.
//!
//! Money balances: per wallet operation, what the holder is told equals the gateway's audit
//! ledger entry and the operator's entry, and the wallet's balance is the sum of both. The daily
//! payment limit holds across many concurrent payments. Every refusal the plugin can give through
//! the gateway has its own assertion with its code, and each one changed nothing: the operator's
//! `/_state`, the gateway's ledger and the wallet's own account of itself (`balance`) say so.
//! Requests racing for one wallet or one operation are held at the operator (its `hold` switch)
//! until both are in flight, so the race is forced, not hoped for.
//!
//! Not reachable through the gateway: the plugin's own `CARD_FINANCIAL_LOCKED`. `top_up` and
//! `pay` move money, and the catalog accepts no money-moving action whose card-status policy
//! skips the financial account, so the gateway refuses a locked card first (`CARD_LOCKED`, shown
//! here).

use std::collections::BTreeMap;
use std::sync::Arc;

use onecard_audit::LedgerRecord;
use onecard_gateway::auth::random_nonce;
use onecard_gateway::server::ServeConfig;
use onecard_tests::artifacts;
use onecard_tests::city::{Answer, CityOptions, ExtraApp, TestCity};
use serde_json::{Value, json};

const APP: &str = "ecny";
/// The holder: the only test card with a face enrolled (loading a hard wallet needs 实人).
const HOLDER: &str = "adult";
/// The test tier's limits, fen: small, so that tests reach them with few payments.
const BALANCE_LIMIT: u64 = 100_000;
const SINGLE_LIMIT: u64 = 30_000;
const DAILY_LIMIT: u64 = 50_000;

fn config() -> Value {
    let tier = json!({ "balance_limit_fen": BALANCE_LIMIT, "single_payment_limit_fen": SINGLE_LIMIT, "daily_payment_limit_fen": DAILY_LIMIT });
    json!({
        // `class9` is a tier of this service the operator does not offer.
        "tiers": { "class4": tier, "class9": tier },
        "merchants": { "canteen": { "name": "市民中心食堂" }, "pharmacy": { "name": "社区药房" } },
    })
}

fn fast_backends(config: &mut ServeConfig) {
    config.runtime.deadline_ms = 2_000;
    config.catalog.backend_timeout_ms = 300;
}

fn patient_backends(config: &mut ServeConfig) {
    config.runtime.deadline_ms = 10_000;
    config.catalog.backend_timeout_ms = 5_000;
}

struct Ecny {
    city: TestCity,
    sandbox: String,
    http: reqwest::Client,
}

/// Everything a refusal must leave as it was.
#[derive(Debug, PartialEq)]
struct World {
    operator: Value,
    ledger: Vec<LedgerRecord>,
    /// What the `balance` action tells (the result, or the refusal code).
    told: Value,
}

impl Ecny {
    async fn start(configure: fn(&mut ServeConfig)) -> Ecny {
        let (addr, _server) = onecard_sandbox::spawn("127.0.0.1:0".parse().expect("address")).await.expect("sandbox");
        let sandbox = format!("http://{addr}");
        let operator = format!("{sandbox}/ecny");
        let app = ExtraApp {
            id: APP.into(),
            wasm: artifacts::ECNY.into(),
            config: config(),
            backends: BTreeMap::from([("ecny".to_string(), operator.clone()), ("settlement".to_string(), operator)]),
            card_status_policy: BTreeMap::new(),
        };
        let options = CityOptions { configure, apps: vec![app], ..CityOptions::default() };
        let city = TestCity::start(artifacts::PARKS, options).await;
        Ecny { city, sandbox, http: reqwest::Client::new() }
    }

    /// Calls `action` for `card` with a fresh credential, a face check, a fresh idempotency key.
    async fn call(&self, action: &str, card: &str, params: Value) -> Answer {
        self.send(action, json!({ "credential": self.city.token(card), "params": params, "idempotency_key": random_nonce(), "verified": ["real_person"] }))
            .await
    }

    async fn send(&self, action: &str, body: Value) -> Answer {
        self.city.call(APP, action, &body).await
    }

    async fn ok(&self, action: &str, params: Value) -> Value {
        let answer = self.call(action, HOLDER, params).await;
        assert_eq!(answer.status, 200, "{action}: {}", answer.body);
        answer.body["result"].clone()
    }

    async fn load(&self) -> String {
        let loaded = self.ok("load_wallet", json!({ "tier": "class4" })).await;
        loaded["wallet_id"].as_str().expect("wallet_id").to_string()
    }

    async fn top_up(&self, op: &str, amount_fen: u64) -> Answer {
        self.call("top_up", HOLDER, json!({ "op_id": op, "amount_fen": amount_fen })).await
    }

    async fn pay(&self, op: &str, merchant: &str, amount_fen: u64) -> Answer {
        self.call("pay", HOLDER, json!({ "op_id": op, "merchant": merchant, "amount_fen": amount_fen })).await
    }

    /// The operator's `/_state` without its fault switches.
    async fn operator(&self) -> Value {
        let mut state: Value =
            self.http.get(format!("{}/ecny/_state", self.sandbox)).send().await.expect("sandbox").json().await.expect("json");
        state.as_object_mut().expect("object").remove("faults");
        state
    }

    async fn faults(&self, faults: Value) {
        let response = self.http.put(format!("{}/ecny/_faults", self.sandbox)).json(&faults).send().await.expect("sandbox");
        assert_eq!(response.status(), 200);
    }

    /// Waits until `n` requests wait on the operator's hold (or 10 s pass).
    async fn held(&self, n: u64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let state: Value = self.http.get(format!("{}/ecny/_state", self.sandbox)).send().await.expect("sandbox").json().await.expect("json");
            if state["faults"]["held"].as_u64() == Some(n) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{n} requests never reached the operator: {}", state["faults"]);
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    async fn told(&self) -> Value {
        let answer = self.call("balance", HOLDER, json!({})).await;
        if answer.status == 200 { answer.body["result"].clone() } else { json!(answer.code()) }
    }

    /// The operator's state without its log of refused settlements (a refused payment is logged
    /// there and moves nothing), the gateway's ledger, and what the wallet tells.
    async fn world(&self) -> World {
        let mut operator = self.operator().await;
        operator["ledger"].as_object_mut().expect("ledger").remove("refused");
        World { operator, ledger: self.city.ledger(APP).await, told: self.told().await }
    }

    async fn refused(&self, what: &str, answer: &Answer, code: &str, status: u16) {
        assert_eq!((answer.status, answer.code()), (status, code), "{what}: {}", answer.body);
        assert_eq!(answer.body["decision"], "refused", "{what}");
        let record = self.city.audit(answer.request_id()).await;
        assert_eq!(record.code.as_deref(), Some(code), "{what}");
        assert_ne!(record.outcome, "allowed", "{what}");
        assert_eq!(record.ledger_sha256, None, "{what}: a refusal commits no ledger entry");
    }

    /// Asserts that one operation balances: what the holder was told is one gateway ledger
    /// entry and one operator entry under the operation's idempotency key, same amount, same
    /// receipt, on the wallet.
    async fn assert_balanced(&self, kind: &str, told: &Value) {
        let wallet = told["wallet_id"].as_str().expect("wallet_id");
        let op = told["op_id"].as_str().expect("op_id");
        let amount = told["amount_fen"].as_u64().expect("amount_fen");
        let (key, entry_kind) = match kind {
            "pay" => (format!("ecny:pay:{wallet}:{op}"), "debit"),
            _ => (format!("ecny:top-up:{wallet}:{op}"), "credit"),
        };
        let ledger = self.city.ledger(APP).await;
        let gateway: Vec<&LedgerRecord> = ledger.iter().filter(|r| r.entry.idempotency_key == key).collect();
        assert_eq!(gateway.len(), 1, "one gateway ledger entry for {key}: {ledger:?}");
        let entry = &gateway[0].entry;
        assert_eq!((entry.kind.as_str(), entry.account.as_str(), entry.amount_fen), (entry_kind, wallet, amount));
        assert_eq!(Some(entry.receipt_id.as_str()), told["receipt"].as_str());
        let operator = self.operator().await;
        let at_operator: Vec<&Value> =
            operator["ledger"]["entries"].as_array().expect("entries").iter().filter(|e| e["settlement"]["idempotency_key"] == key).collect();
        assert_eq!(at_operator.len(), 1, "one operator entry for {key}");
        assert_eq!(at_operator[0]["settlement"]["amount_fen"], amount);
        assert_eq!(at_operator[0]["settlement"]["kind"], entry_kind);
        assert_eq!(at_operator[0]["settlement"]["account"], wallet);
        assert_eq!(at_operator[0]["receipt"]["receipt_id"].as_str(), Some(entry.receipt_id.as_str()));
    }

    /// Credits and debits of the gateway's ledger and of the operator sum to what the holders
    /// were told, and the wallet holds credits − debits.
    async fn assert_totals(&self, wallet: &str, credits: u64, debits: u64) {
        let ledger = self.city.ledger(APP).await;
        let sum = |kind: &str| ledger.iter().filter(|r| r.entry.kind == kind).map(|r| r.entry.amount_fen).sum::<u64>();
        assert_eq!((sum("credit"), sum("debit")), (credits, debits), "gateway ledger");
        let operator = self.operator().await;
        let entries = operator["ledger"]["entries"].as_array().expect("entries");
        let at_operator = |kind: &str| {
            entries.iter().filter(|e| e["settlement"]["kind"] == kind).map(|e| e["settlement"]["amount_fen"].as_u64().expect("amount")).sum::<u64>()
        };
        assert_eq!((at_operator("credit"), at_operator("debit")), (credits, debits), "operator");
        assert_eq!(operator["ledger"]["balances"][wallet].as_u64(), Some(credits - debits), "wallet balance");
        let told = self.told().await;
        assert_eq!(told["balance_fen"].as_u64(), Some(credits - debits), "{told}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_loads_tops_up_pays_and_balances() {
    let e = Ecny::start(patient_backends).await;
    let load_key = random_nonce();
    let load_body = |e: &Ecny| json!({ "credential": e.city.token(HOLDER), "params": { "tier": "class4" }, "idempotency_key": load_key, "verified": ["real_person"] });
    let loaded = e.send("load_wallet", load_body(&e)).await;
    assert_eq!(loaded.status, 200, "{}", loaded.body);
    let wallet = loaded.body["result"]["wallet_id"].as_str().expect("wallet").to_string();
    assert_eq!(e.operator().await["wallets"][&wallet]["holder_ref"], e.city.cards[HOLDER].as_str());
    // A retried load (same idempotency key) answers the same wallet.
    let again = e.send("load_wallet", load_body(&e)).await;
    assert_eq!((again.status, &again.body["result"]["wallet_id"], &again.body["result"]["replayed"]), (200, &json!(wallet), &json!(true)));

    let top_up = e.top_up("t-1", 60_000).await;
    assert_eq!(top_up.status, 200, "{}", top_up.body);
    assert_eq!(top_up.body["result"]["balance_fen"], 60_000);
    e.assert_balanced("top_up", &top_up.body["result"]).await;

    let canteen = e.pay("p-1", "canteen", 1_234).await;
    assert_eq!(canteen.status, 200, "{}", canteen.body);
    assert_eq!(canteen.body["result"]["merchant_name"], "市民中心食堂");
    assert_eq!((canteen.body["result"]["paid_today_fen"].as_u64(), canteen.body["result"]["daily_remaining_fen"].as_u64()), (Some(1_234), Some(DAILY_LIMIT - 1_234)));
    e.assert_balanced("pay", &canteen.body["result"]).await;
    let pharmacy = e.pay("p-2", "pharmacy", 20_000).await;
    assert_eq!(pharmacy.status, 200, "{}", pharmacy.body);
    assert_eq!(pharmacy.body["result"]["paid_today_fen"], 21_234);
    e.assert_balanced("pay", &pharmacy.body["result"]).await;
    let record = e.city.audit(pharmacy.request_id()).await;
    assert!(record.ledger_sha256.is_some(), "the payment was committed with its decision");

    // A retried payment (same op id, new request) is answered again and moves nothing.
    let before = e.world().await;
    let retry = e.pay("p-2", "pharmacy", 20_000).await;
    assert_eq!((retry.status, &retry.body["result"]["replayed"]), (200, &json!(true)), "{}", retry.body);
    assert_eq!(retry.body["result"]["receipt"], pharmacy.body["result"]["receipt"]);
    assert_eq!(e.world().await, before);

    let told = e.told().await;
    assert_eq!((told["paid_today_fen"].as_u64(), told["daily_remaining_fen"].as_u64()), (Some(21_234), Some(DAILY_LIMIT - 21_234)));
    e.assert_totals(&wallet, 60_000, 21_234).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_limit_holds_across_concurrent_payments() {
    let e = Arc::new(Ecny::start(patient_backends).await);
    let wallet = e.load().await;
    let top_up = e.top_up("t-1", BALANCE_LIMIT).await;
    assert_eq!(top_up.status, 200, "{}", top_up.body);

    // Twelve payments of 70.00 at once, 840.00 in all: the day allows 500.00, so seven fit.
    const PAYMENTS: u64 = 12;
    const AMOUNT: u64 = 7_000;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..PAYMENTS {
        let e = Arc::clone(&e);
        tasks.spawn(async move { e.pay(&format!("c-{n}"), "canteen", AMOUNT).await });
    }
    let mut paid = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        let answer = answer.expect("task");
        match answer.status {
            200 => paid.push(answer.body["result"].clone()),
            _ => e.refused("a payment beyond the daily limit", &answer, "DAILY_LIMIT_EXCEEDED", 422).await,
        }
    }
    let total: u64 = paid.iter().map(|p| p["amount_fen"].as_u64().expect("amount")).sum();
    assert!(total <= DAILY_LIMIT, "paid {total} fen, the limit is {DAILY_LIMIT}");
    assert_eq!(paid.len() as u64, DAILY_LIMIT / AMOUNT, "every payment that fits is made, no more");
    for told in &paid {
        e.assert_balanced("pay", told).await;
        assert!(told["paid_today_fen"].as_u64().expect("paid today") <= DAILY_LIMIT, "{told}");
    }
    e.assert_totals(&wallet, BALANCE_LIMIT, total).await;
    let allowed_with_money = e.city.records().await.iter().filter(|r| r.fields.action == "pay" && r.fields.ledger_sha256.is_some()).count();
    assert_eq!(allowed_with_money, paid.len(), "one ledger-carrying audit record per payment");

    // What is left of the day, exactly: one fen more is refused, the rest is paid.
    let remaining = DAILY_LIMIT - total;
    let over = e.pay("last-over", "canteen", remaining + 1).await;
    e.refused("one fen beyond the limit", &over, "DAILY_LIMIT_EXCEEDED", 422).await;
    let last = e.pay("last", "canteen", remaining).await;
    assert_eq!(last.status, 200, "{}", last.body);
    assert_eq!((last.body["result"]["paid_today_fen"].as_u64(), last.body["result"]["daily_remaining_fen"].as_u64()), (Some(DAILY_LIMIT), Some(0)));
    e.assert_totals(&wallet, BALANCE_LIMIT, DAILY_LIMIT).await;
}

/// One refusal to provoke.
struct Case {
    what: &'static str,
    /// Fault switches of the operator set just before the call.
    fault: Option<Value>,
    action: &'static str,
    /// The request body (a fresh credential of the holder is added unless it names `card`).
    body: Value,
    code: &'static str,
    status: u16,
}

fn case(what: &'static str, action: &'static str, params: Value, code: &'static str, status: u16) -> Case {
    Case { what, fault: None, action, body: json!({ "params": params, "idempotency_key": random_nonce(), "verified": ["real_person"] }), code, status }
}

impl Ecny {
    async fn run(&self, cases: Vec<Case>) {
        for case in cases {
            let before = self.world().await;
            if let Some(faults) = &case.fault {
                self.faults(faults.clone()).await;
            }
            let mut body = case.body.clone();
            let card = body.get("card").and_then(Value::as_str).unwrap_or(HOLDER).to_string();
            body.as_object_mut().expect("object").remove("card");
            body["credential"] = json!(self.city.token(&card));
            let answer = self.send(case.action, body).await;
            self.refused(case.what, &answer, case.code, case.status).await;
            assert_eq!(self.world().await, before, "{}: nothing changed at the operator, in the ledger or in what the wallet tells", case.what);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_code_and_changes_nothing() {
    let e = Ecny::start(fast_backends).await;
    let unavailable = || Some(json!({ "fail_next": 1 }));
    let malformed = |body: Value| Some(json!({ "malformed_next": 1, "malformed_body": body }));

    // Before the card carries a wallet.
    e.run(vec![
        case("top up without a wallet", "top_up", json!({ "op_id": "t-0", "amount_fen": 100 }), "WALLET_NOT_LOADED", 422),
        case("pay without a wallet", "pay", json!({ "op_id": "p-0", "merchant": "canteen", "amount_fen": 100 }), "WALLET_NOT_LOADED", 422),
        case("balance without a wallet", "balance", json!({}), "WALLET_NOT_LOADED", 422),
        case("a tier this service does not have", "load_wallet", json!({ "tier": "class1" }), "TIER_UNKNOWN", 400),
        case("a tier the operator does not offer", "load_wallet", json!({ "tier": "class9" }), "ECNY_REFUSED", 422),
        Case { fault: unavailable(), ..case("load while the operator is down", "load_wallet", json!({ "tier": "class4" }), "ECNY_UNAVAILABLE", 502) },
        Case { fault: malformed(json!({})), ..case("an opening answer without a wallet", "load_wallet", json!({ "tier": "class4" }), "ECNY_MALFORMED", 502) },
        Case {
            body: json!({ "params": { "tier": "class4" }, "idempotency_key": random_nonce() }),
            ..case("load without a face check", "load_wallet", json!({}), "ASSURANCE_NOT_MET", 403)
        },
        Case {
            body: json!({ "card": "young", "params": { "tier": "class4" }, "idempotency_key": random_nonce(), "verified": ["real_person"] }),
            ..case("load on a card without an enrolled face", "load_wallet", json!({}), "ASSURANCE_NOT_MET", 403)
        },
    ])
    .await;
    assert_eq!(e.operator().await["wallets"], json!({}), "no wallet was opened");

    let wallet = e.load().await;
    let top_up = e.top_up("t-1", 30_000).await;
    assert_eq!(top_up.status, 200, "{}", top_up.body);
    let paid = e.pay("p-1", "canteen", 25_000).await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    // The wallet holds 50.00; 250.00 are paid today of 500.00.

    e.run(vec![
        case("load a second wallet", "load_wallet", json!({ "tier": "class4" }), "WALLET_ALREADY_LOADED", 422),
        case("top up beyond the balance limit", "top_up", json!({ "op_id": "t-2", "amount_fen": BALANCE_LIMIT - 5_000 + 1 }), "BALANCE_LIMIT_EXCEEDED", 422),
        case("an op id reused for another top-up", "top_up", json!({ "op_id": "t-1", "amount_fen": 1_000 }), "OP_ID_REUSED", 400),
        Case { fault: unavailable(), ..case("top up while the operator is down", "top_up", json!({ "op_id": "t-3", "amount_fen": 1_000 }), "ECNY_UNAVAILABLE", 502) },
        case("pay an unknown merchant", "pay", json!({ "op_id": "p-2", "merchant": "casino", "amount_fen": 100 }), "MERCHANT_UNKNOWN", 422),
        case("pay beyond the single-payment limit", "pay", json!({ "op_id": "p-3", "merchant": "canteen", "amount_fen": SINGLE_LIMIT + 1 }), "SINGLE_LIMIT_EXCEEDED", 422),
        case("pay beyond the daily limit", "pay", json!({ "op_id": "p-4", "merchant": "canteen", "amount_fen": 25_001 }), "DAILY_LIMIT_EXCEEDED", 422),
        case("pay more than the wallet holds", "pay", json!({ "op_id": "p-5", "merchant": "canteen", "amount_fen": 10_000 }), "INSUFFICIENT_FUNDS", 422),
        case("an op id reused for another payment", "pay", json!({ "op_id": "p-1", "merchant": "canteen", "amount_fen": 1_000 }), "OP_ID_REUSED", 400),
        Case { fault: unavailable(), ..case("balance while the operator is down", "balance", json!({}), "ECNY_UNAVAILABLE", 502) },
        Case {
            fault: malformed(json!({ "wallet_id": &wallet, "balance_fen": "5000" })),
            ..case("an unreadable balance before a top-up", "top_up", json!({ "op_id": "t-6", "amount_fen": 1_000 }), "ECNY_MALFORMED", 502)
        },
        Case {
            fault: malformed(json!({ "wallet_id": "W999999", "balance_fen": 5_000 })),
            ..case("a balance answered for another wallet", "balance", json!({}), "ECNY_MALFORMED", 502)
        },
        Case {
            fault: Some(json!({ "fail_next": 1, "status": 422 })),
            ..case("a payment the operator declines", "pay", json!({ "op_id": "p-8", "merchant": "canteen", "amount_fen": 1_000 }), "PAYMENT_DECLINED", 422)
        },
        Case {
            body: json!({ "params": { "op_id": "p-6", "merchant": "canteen", "amount_fen": 100 } }),
            ..case("pay without an idempotency key", "pay", json!({}), "IDEMPOTENCY_KEY_REQUIRED", 400)
        },
        Case {
            body: json!({ "params": { "op_id": "t-4", "amount_fen": 100 } }),
            ..case("top up without an idempotency key", "top_up", json!({}), "IDEMPOTENCY_KEY_REQUIRED", 400)
        },
    ])
    .await;

    // The refused operations left no record behind: their op ids are free, and the reservation
    // of the payment the operator refused was given back.
    let told = e.told().await;
    assert_eq!((told["balance_fen"].as_u64(), told["paid_today_fen"].as_u64()), (Some(5_000), Some(25_000)), "{told}");
    let fits = e.pay("p-5", "canteen", 5_000).await;
    assert_eq!(fits.status, 200, "{}", fits.body);
    e.assert_balanced("pay", &fits.body["result"]).await;
    let top = e.top_up("t-2", BALANCE_LIMIT).await;
    assert_eq!(top.status, 200, "{}", top.body);
    e.assert_totals(&wallet, 30_000 + BALANCE_LIMIT, 30_000).await;

    // A financially locked card moves no money; the gateway refuses before the plugin runs.
    let issuer = onecard_catalog::roles::Principal { name: "issuer".into(), role: onecard_catalog::roles::Role::CardIssuer, department: None, city: None, channel: None };
    let lock = onecard_catalog::store::CardUpdate { status: None, social_locked: None, financial_locked: Some(true), note: Some("bank account frozen".into()) };
    onecard_catalog::service::update_card(&e.city.store, &issuer, &e.city.cards[HOLDER], lock).await.expect("lock");
    e.city.synced().await;
    e.run(vec![
        case("pay on a locked financial account", "pay", json!({ "op_id": "p-7", "merchant": "canteen", "amount_fen": 100 }), "CARD_LOCKED", 403),
        case("top up on a locked financial account", "top_up", json!({ "op_id": "t-5", "amount_fen": 100 }), "CARD_LOCKED", 403),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_whose_answer_was_lost_completes_once_when_sent_again() {
    let e = Ecny::start(fast_backends).await;
    let wallet = e.load().await;
    let top_up = e.top_up("t-1", 40_000).await;
    assert_eq!(top_up.status, 200, "{}", top_up.body);

    // The operator makes the payment (a payment's first backend request is the debit) but its
    // answer never comes: pending for the holder, no gateway ledger entry.
    e.faults(json!({ "timeout_next": 1 })).await;
    let lost = e.pay("p-1", "canteen", 12_000).await;
    e.refused("a payment without answer", &lost, "PAYMENT_PENDING", 502).await;
    assert!(e.city.ledger(APP).await.iter().all(|r| r.entry.kind != "debit"), "no receipt, no gateway entry");
    assert_eq!(e.operator().await["ledger"]["balances"][&wallet], 28_000, "the operator did debit");
    // Its amount stays reserved against the day until the outcome is known.
    assert_eq!(e.told().await["paid_today_fen"], 12_000);

    // Sent again with the same op id: the same receipt, one entry everywhere, money moved once.
    let again = e.pay("p-1", "canteen", 12_000).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["result"]["replayed"], false);
    assert_eq!(again.body["result"]["paid_today_fen"], 12_000, "reserved once");
    e.assert_balanced("pay", &again.body["result"]).await;
    e.assert_totals(&wallet, 40_000, 12_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_racing_for_one_wallet_or_one_operation_are_served_once() {
    let e = Ecny::start(patient_backends).await;

    // A load waits at the operator, its opening marked on the card; a second load (another
    // request) meanwhile is refused and changes nothing.
    e.faults(json!({ "hold": true })).await;
    let first = e.call("load_wallet", HOLDER, json!({ "tier": "class4" }));
    let meanwhile = async {
        e.held(1).await;
        let before = e.world().await;
        let second = e.call("load_wallet", HOLDER, json!({ "tier": "class4" })).await;
        e.refused("a load while another is under way", &second, "WALLET_LOAD_IN_PROGRESS", 422).await;
        assert_eq!(e.world().await, before, "the refused load changed nothing");
        e.faults(json!({})).await;
    };
    let (first, ()) = tokio::join!(first, meanwhile);
    assert_eq!(first.status, 200, "{}", first.body);
    let wallet = first.body["result"]["wallet_id"].as_str().expect("wallet_id").to_string();
    assert_eq!(e.operator().await["wallets"].as_object().expect("wallets").len(), 1, "one wallet opened");

    // Two top-ups with one op id: both read the balance at the operator before either claims the
    // operation; one credits, the other is refused and moves nothing.
    e.faults(json!({ "hold": true })).await;
    let release = async {
        e.held(2).await;
        e.faults(json!({})).await;
    };
    let (a, b, ()) = tokio::join!(e.top_up("t-1", 20_000), e.top_up("t-1", 20_000), release);
    let (credited, refused) = if a.status == 200 { (a, b) } else { (b, a) };
    assert_eq!(credited.status, 200, "{}", credited.body);
    e.refused("the same top-up in flight twice", &refused, "OPERATION_IN_PROGRESS", 422).await;
    e.assert_balanced("top_up", &credited.body["result"]).await;
    e.assert_totals(&wallet, 20_000, 0).await;

    // Sent again, the operation is answered as it was, and moves nothing.
    let again = e.top_up("t-1", 20_000).await;
    assert_eq!((again.status, &again.body["result"]["replayed"]), (200, &json!(true)), "{}", again.body);
    assert_eq!(again.body["result"]["receipt"], credited.body["result"]["receipt"]);
    e.assert_totals(&wallet, 20_000, 0).await;
}
