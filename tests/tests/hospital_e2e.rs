//! The hospital plugin end to end: `onecard serve` with the real hospital component, the
//! sandbox's medical-insurance system and bank (in process, over HTTP), signed requests.
//!
//! Money balances: per settlement, what the holder is told (the split and the self-pay) equals
//! the gateway's audit ledger and the bank's entries. A settlement without answer is reversed and
//! leaves no charge anywhere. Every refusal the plugin can give through the gateway has its own
//! assertion with its code, and each one changed nothing: the sandbox's `/_state`, the gateway's
//! ledger and (where the plugin keeps state) a later successful call say so. Two requests racing
//! for one visit are held at the insurance system (its `hold` switch) until both are in flight,
//! so the race is forced, not hoped for. The day's message ids running out is set up by moving
//! the plugin's day counter in the gateway's key-value store (9,996 messages through the gateway
//! take minutes); the last ids and the refusal go through the gateway.
//!
//! Not reachable through the gateway: the plugin's own `CARD_FINANCIAL_LOCKED` (`settle` and
//! `pharmacy_purchase` move money, so the gateway's card-status policy refuses a locked card
//! first, `CARD_LOCKED`, shown here).

use std::collections::BTreeMap;
use std::time::Duration;

use onecard_audit::LedgerRecord;
use onecard_gateway::auth::random_nonce;
use onecard_gateway::server::ServeConfig;
use onecard_tests::artifacts;
use onecard_tests::city::{Answer, CityOptions, ExtraApp, TestCity};
use serde_json::{Value, json};

const APP: &str = "hospital";
/// The hospital's designated-institution code (12 characters).
const INSTITUTION: &str = "H33010600001";

/// One 300.00 CNY fee line. The sandbox splits it: fund 140.00 (70 % above the 100.00
/// deductible), personal account 50.00 (a new person's opening balance), self-pay 110.00.
fn consultation() -> Value {
    json!([{ "sn": "1", "code": "001101000010000", "count": 2, "unit_price_fen": 15_000 }])
}
const CONSULTATION_FEN: u64 = 30_000;
const CONSULTATION_SELF_PAY_FEN: u64 = 11_000;

/// Gateway settings of these tests: plugins wait on backends, so their deadline is well above the
/// backend timeout.
fn fast_backends(config: &mut ServeConfig) {
    config.runtime.deadline_ms = 2_000;
    config.catalog.backend_timeout_ms = 300;
}

fn patient_backends(config: &mut ServeConfig) {
    config.runtime.deadline_ms = 5_000;
    config.catalog.backend_timeout_ms = 2_000;
}

/// A city with the hospital application on a fresh sandbox.
struct Hospital {
    city: TestCity,
    sandbox: String,
    http: reqwest::Client,
}

/// Everything a refusal must leave as it was.
#[derive(Debug, PartialEq)]
struct World {
    insurance: Value,
    bank: Value,
    ledger: Vec<LedgerRecord>,
}

/// The hospital application: the insurance system and the bank (the self-pay's settlement port)
/// are the sandbox's.
fn hospital_app(sandbox: &str) -> ExtraApp {
    ExtraApp {
        id: APP.into(),
        wasm: artifacts::HOSPITAL.into(),
        config: json!({ "institution_code": INSTITUTION }),
        backends: BTreeMap::from([
            ("insurance".to_string(), format!("{sandbox}/insurance")),
            ("settlement".to_string(), format!("{sandbox}/bank")),
        ]),
        card_status_policy: BTreeMap::new(),
    }
}

impl Hospital {
    async fn start(configure: fn(&mut ServeConfig)) -> Hospital {
        let (addr, _server) = onecard_sandbox::spawn("127.0.0.1:0".parse().expect("address")).await.expect("sandbox");
        let sandbox = format!("http://{addr}");
        let options = CityOptions { configure, apps: vec![hospital_app(&sandbox)], ..CityOptions::default() };
        let city = TestCity::start(artifacts::PARKS, options).await;
        Hospital { city, sandbox, http: reqwest::Client::new() }
    }

    /// Calls `action` with a fresh credential of `card` (if any) and a fresh idempotency key.
    async fn call(&self, action: &str, card: Option<&str>, params: Value) -> Answer {
        let mut body = json!({ "params": params, "idempotency_key": random_nonce() });
        if let Some(card) = card {
            body["credential"] = json!(self.city.token(card));
        }
        self.city.call(APP, action, &body).await
    }

    async fn ok(&self, action: &str, card: Option<&str>, params: Value) -> Value {
        let answer = self.call(action, card, params).await;
        assert_eq!(answer.status, 200, "{action}: {}", answer.body);
        answer.body["result"].clone()
    }

    async fn register(&self, card: &str) -> String {
        let result = self.ok("register", Some(card), json!({ "dept_code": "D-INTERNAL" })).await;
        result["mdtrt_id"].as_str().expect("mdtrt_id").to_string()
    }

    /// Registers a visit of `card`, uploads the consultation and pre-settles it.
    async fn presettled_visit(&self, card: &str) -> String {
        let id = self.register(card).await;
        self.ok("upload_fees", None, json!({ "mdtrt_id": id, "items": consultation() })).await;
        let split = self.ok("presettle", None, json!({ "mdtrt_id": id })).await;
        assert_eq!(split["total_fen"], CONSULTATION_FEN, "{split}");
        assert_eq!(split["self_pay_fen"], CONSULTATION_SELF_PAY_FEN, "{split}");
        id
    }

    async fn settle(&self, card: &str, id: &str, total_fen: u64) -> Answer {
        self.call("settle", Some(card), json!({ "mdtrt_id": id, "total_fen": total_fen })).await
    }

    /// The sandbox's `/_state` of `backend`, without its fault switches.
    async fn state(&self, backend: &str) -> Value {
        let mut state: Value =
            self.http.get(format!("{}/{backend}/_state", self.sandbox)).send().await.expect("sandbox").json().await.expect("json");
        state.as_object_mut().expect("object").remove("faults");
        state
    }

    async fn faults(&self, backend: &str, faults: Value) {
        let response = self.http.put(format!("{}/{backend}/_faults", self.sandbox)).json(&faults).send().await.expect("sandbox");
        assert_eq!(response.status(), 200);
    }

    /// Waits until `n` requests wait on the hold of `backend`'s fault switches (or 10 s pass).
    async fn held(&self, backend: &str, n: u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let state: Value =
                self.http.get(format!("{}/{backend}/_state", self.sandbox)).send().await.expect("sandbox").json().await.expect("json");
            if state["faults"]["held"].as_u64() == Some(n) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{n} requests never reached {backend}: {}", state["faults"]);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sets the balance of `card`'s account at the bank (the plugin debits the holder's card).
    async fn fund(&self, card: &str, balance_fen: u64) {
        let url = format!("{}/bank/_balances/{}", self.sandbox, self.city.cards[card]);
        let response = self.http.put(url).json(&json!({ "balance_fen": balance_fen })).send().await.expect("sandbox");
        assert_eq!(response.status(), 200);
    }

    async fn balance(&self, card: &str) -> u64 {
        self.state("bank").await["ledger"]["balances"][&self.city.cards[card]].as_u64().unwrap_or(0)
    }

    async fn world(&self) -> World {
        World { insurance: self.state("insurance").await, bank: self.state("bank").await, ledger: self.city.ledger(APP).await }
    }

    /// The money of the world: what the insurance holds settled and the bank's balances and
    /// entries (not the logs of messages received or refused).
    async fn money(&self) -> World {
        let insurance = self.state("insurance").await;
        let bank = self.state("bank").await;
        World {
            insurance: json!({ "persons": insurance["persons"], "visits": insurance["visits"], "settlements": insurance["settlements"] }),
            bank: json!({ "balances": bank["ledger"]["balances"], "entries": bank["ledger"]["entries"] }),
            ledger: self.city.ledger(APP).await,
        }
    }

    /// Asserts a refusal with `code` and `status` and that its audit record carries no money.
    async fn refused(&self, what: &str, answer: &Answer, code: &str, status: u16) {
        assert_eq!((answer.status, answer.code()), (status, code), "{what}: {}", answer.body);
        assert_eq!(answer.body["decision"], "refused", "{what}");
        let record = self.city.audit(answer.request_id()).await;
        assert_eq!(record.code.as_deref(), Some(code), "{what}");
        assert_ne!(record.outcome, "allowed", "{what}");
        assert_eq!(record.ledger_sha256, None, "{what}: a refusal commits no ledger entry");
    }

    /// Asserts that a settlement answer balances: its parts sum to the total, the self-pay is one
    /// gateway ledger entry and one bank entry under the settlement's message id, and the insurance
    /// system holds the same split under that id.
    async fn assert_balanced(&self, card: &str, told: &Value) {
        let msgid = told["msgid"].as_str().expect("msgid");
        let part = |name: &str| told[name].as_u64().unwrap_or_else(|| panic!("{name} in {told}"));
        let (total, fund, account, self_pay) = (part("total_fen"), part("fund_fen"), part("personal_account_fen"), part("self_pay_fen"));
        assert_eq!(fund + account + self_pay, total, "{told}");

        let settled = &self.state("insurance").await["settlements"][msgid];
        let held = |name: &str| settled[name].as_u64().unwrap_or_else(|| panic!("{name} of {msgid} at the insurance"));
        assert_eq!((held("total_fen"), held("fund_fen"), held("account_fen"), held("self_pay_fen")), (total, fund, account, self_pay));

        let ledger = self.city.ledger(APP).await;
        let gateway: Vec<&LedgerRecord> = ledger.iter().filter(|r| r.entry.idempotency_key == msgid).collect();
        let bank_state = self.state("bank").await;
        let bank: Vec<&Value> =
            bank_state["ledger"]["entries"].as_array().expect("entries").iter().filter(|e| e["settlement"]["idempotency_key"] == msgid).collect();
        if self_pay == 0 {
            assert!(gateway.is_empty() && bank.is_empty(), "no self-pay, no money moved: {gateway:?} {bank:?}");
            assert_eq!(told["self_pay_receipt"], Value::Null);
            return;
        }
        assert_eq!(gateway.len(), 1, "one gateway ledger entry per settlement: {ledger:?}");
        let entry = &gateway[0].entry;
        assert_eq!((entry.kind.as_str(), entry.account.as_str(), entry.amount_fen), ("debit", self.city.cards[card].as_str(), self_pay));
        assert_eq!(Some(entry.receipt_id.as_str()), told["self_pay_receipt"].as_str());
        assert_eq!(bank.len(), 1, "one bank entry per settlement: {bank:?}");
        assert_eq!(bank[0]["settlement"]["amount_fen"], self_pay);
        assert_eq!(bank[0]["settlement"]["kind"], "debit");
        assert_eq!(bank[0]["receipt"]["receipt_id"].as_str(), Some(entry.receipt_id.as_str()));
    }

    /// The gateway's ledger and the bank's entries for this application sum to `told_fen`.
    async fn assert_totals(&self, told_fen: u64) {
        let gateway: u64 = self.city.ledger(APP).await.iter().map(|r| r.entry.amount_fen).sum();
        let bank: u64 = self.state("bank").await["ledger"]["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| e["settlement"]["amount_fen"].as_u64().expect("amount"))
            .sum();
        assert_eq!((gateway, bank), (told_fen, told_fen), "gateway ledger, bank, holder");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outpatient_visit_settles_and_the_money_balances() {
    let h = Hospital::start(fast_backends).await;
    h.fund("senior", 50_000).await;
    let id = h.presettled_visit("senior").await;

    let answer = h.settle("senior", &id, CONSULTATION_FEN).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let told = answer.body["result"].clone();
    assert_eq!(
        (told["fund_fen"].as_u64(), told["personal_account_fen"].as_u64(), told["self_pay_fen"].as_u64()),
        (Some(14_000), Some(5_000), Some(CONSULTATION_SELF_PAY_FEN)),
        "{told}"
    );
    assert_eq!(told["replayed"], false);
    h.assert_balanced("senior", &told).await;
    assert_eq!(h.balance("senior").await, 50_000 - CONSULTATION_SELF_PAY_FEN);
    let record = h.city.audit(answer.request_id()).await;
    assert!(record.ledger_sha256.is_some(), "the debit was committed with the decision");

    // Settling again (a retried request) answers the same settlement and moves nothing.
    let before = h.world().await;
    let again = h.settle("senior", &id, CONSULTATION_FEN).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["result"]["replayed"], true);
    assert_eq!(again.body["result"]["msgid"], told["msgid"]);
    assert_eq!(again.body["result"]["self_pay_receipt"], told["self_pay_receipt"]);
    assert_eq!(h.world().await, before);
    h.assert_totals(CONSULTATION_SELF_PAY_FEN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pharmacy_purchase_settles_in_one_step_and_balances() {
    let h = Hospital::start(fast_backends).await;
    h.fund("senior", 10_000).await;
    let items = json!([{ "sn": "1", "code": "XA01", "count": 2, "unit_price_fen": 10_000 }]);
    let params = json!({ "order_id": "RX-0001", "items": items, "total_fen": 20_000 });
    let answer = h.call("pharmacy_purchase", Some("senior"), params.clone()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let told = answer.body["result"].clone();
    // 200.00: fund 70.00 above the deductible, personal account 50.00, self-pay 80.00.
    assert_eq!((told["total_fen"].as_u64(), told["self_pay_fen"].as_u64()), (Some(20_000), Some(8_000)), "{told}");
    h.assert_balanced("senior", &told).await;
    assert_eq!(h.balance("senior").await, 2_000);

    let before = h.world().await;
    let again = h.call("pharmacy_purchase", Some("senior"), params).await;
    assert_eq!((again.status, &again.body["result"]["replayed"]), (200, &json!(true)), "{}", again.body);
    assert_eq!(h.world().await, before, "a retried purchase moves nothing");
    h.assert_totals(8_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_whose_backend_times_out_is_reversed_and_the_ledger_shows_no_charge() {
    let h = Hospital::start(fast_backends).await;
    h.fund("senior", 50_000).await;
    let id = h.presettled_visit("senior").await;
    let money_before = h.money().await;

    // The insurance system settles the 2207 but its answer never comes.
    h.faults("insurance", json!({ "timeout_next": 1 })).await;
    let answer = h.settle("senior", &id, CONSULTATION_FEN).await;
    h.refused("settle without answer", &answer, "SETTLEMENT_REVERSED", 502).await;
    assert_eq!(answer.body["error"]["blame"], "backend");

    // The reversal (2601) referencing the settlement's message id reached the insurance system.
    let insurance = h.state("insurance").await;
    let received = insurance["received"].as_array().expect("received");
    let settlement = received.iter().find(|m| m["infno"] == "2207").expect("the 2207 was received");
    let msgid = settlement["msgid"].as_str().expect("msgid");
    let reversal = received.iter().find(|m| m["infno"] == "2601").expect("a reversal was sent");
    assert_eq!((reversal["input"]["omsgid"].as_str(), reversal["input"]["oinfno"].as_str()), (Some(msgid), Some("2207")));
    assert_eq!(reversal["infcode"], 0);
    // No ledger entry anywhere: the settlement no longer stands, the bank and the gateway hold nothing.
    assert_eq!(insurance["settlements"], json!({}));
    assert_eq!(h.money().await, money_before, "insurance, bank and gateway ledger as before");
    assert!(h.city.ledger(APP).await.is_empty());
    assert_eq!(h.balance("senior").await, 50_000);

    // A new settlement of the same visit works, under a new message id, and balances.
    let again = h.settle("senior", &id, CONSULTATION_FEN).await;
    assert_eq!(again.status, 200, "{}", again.body);
    let told = again.body["result"].clone();
    assert_ne!(told["msgid"].as_str(), Some(msgid));
    h.assert_balanced("senior", &told).await;
    h.assert_totals(CONSULTATION_SELF_PAY_FEN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_pay_whose_answer_was_lost_is_collected_once_on_retry() {
    let h = Hospital::start(fast_backends).await;
    h.fund("senior", 50_000).await;
    let id = h.presettled_visit("senior").await;

    // The bank debits the self-pay but its answer never comes.
    h.faults("bank", json!({ "timeout_next": 1 })).await;
    let answer = h.settle("senior", &id, CONSULTATION_FEN).await;
    h.refused("self-pay without answer", &answer, "SELF_PAY_PENDING", 502).await;
    assert!(h.city.ledger(APP).await.is_empty(), "no receipt, no ledger entry yet");
    let state = h.ok("reconcile", None, json!({ "mdtrt_id": id })).await;
    assert_eq!(state["state"], "settled_self_pay_pending");

    let again = h.settle("senior", &id, CONSULTATION_FEN).await;
    assert_eq!(again.status, 200, "{}", again.body);
    let told = again.body["result"].clone();
    h.assert_balanced("senior", &told).await;
    assert_eq!(h.balance("senior").await, 50_000 - CONSULTATION_SELF_PAY_FEN, "debited once");
    h.assert_totals(CONSULTATION_SELF_PAY_FEN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_that_cannot_be_reversed_stays_uncertain_until_reconciled() {
    let h = Hospital::start(fast_backends).await;
    h.fund("senior", 50_000).await;
    let id = h.presettled_visit("senior").await;
    let money_before = h.money().await;

    // Neither the settlement's nor the reversal's answer comes.
    h.faults("insurance", json!({ "timeout_next": 2 })).await;
    let answer = h.settle("senior", &id, CONSULTATION_FEN).await;
    h.refused("settle and reversal without answer", &answer, "SETTLEMENT_UNCERTAIN", 502).await;
    assert!(h.city.ledger(APP).await.is_empty());
    assert_eq!(h.state("bank").await["ledger"]["entries"], json!([]), "nothing charged");

    // Until reconciled the visit can be neither settled again nor changed.
    let blocked = h.settle("senior", &id, CONSULTATION_FEN).await;
    h.refused("settle while uncertain", &blocked, "SETTLEMENT_UNCERTAIN", 502).await;
    let upload = h.call("upload_fees", None, json!({ "mdtrt_id": id, "items": consultation() })).await;
    h.refused("upload while uncertain", &upload, "VISIT_SETTLED", 422).await;

    let reconciled = h.ok("reconcile", None, json!({ "mdtrt_id": id })).await;
    assert_eq!(reconciled["state"], "reversed");
    assert_eq!(h.money().await, money_before, "nothing stands, nothing charged");

    let again = h.settle("senior", &id, CONSULTATION_FEN).await;
    assert_eq!(again.status, 200, "{}", again.body);
    h.assert_balanced("senior", &again.body["result"]).await;
    h.assert_totals(CONSULTATION_SELF_PAY_FEN).await;
}

/// One refusal to provoke.
struct Case {
    what: &'static str,
    /// Fault switches of a backend set just before the call.
    fault: Option<(&'static str, Value)>,
    action: &'static str,
    card: Option<&'static str>,
    params: Value,
    /// Send without an idempotency key.
    no_idempotency_key: bool,
    code: &'static str,
    status: u16,
}

fn case(what: &'static str, action: &'static str, card: Option<&'static str>, params: Value, code: &'static str, status: u16) -> Case {
    Case { what, fault: None, action, card, params, no_idempotency_key: false, code, status }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_code_and_changes_nothing() {
    let h = Hospital::start(fast_backends).await;
    h.fund("senior", 50_000).await;
    let open = h.presettled_visit("senior").await;
    let no_fees = h.register("senior").await;
    let not_presettled = h.register("senior").await;
    h.ok("upload_fees", None, json!({ "mdtrt_id": not_presettled, "items": consultation() })).await;
    let settled = h.presettled_visit("senior").await;
    let settled_told = h.ok("settle", Some("senior"), json!({ "mdtrt_id": settled, "total_fen": CONSULTATION_FEN })).await;
    let drugs = json!([{ "sn": "1", "code": "XA01", "count": 1, "unit_price_fen": 2_000 }]);
    let rx1_told = h.ok("pharmacy_purchase", Some("senior"), json!({ "order_id": "RX-1", "items": drugs, "total_fen": 2_000 })).await;
    // The settled visit used up the personal account: the purchase is all self-pay.
    assert_eq!(rx1_told["self_pay_fen"], 2_000, "{rx1_told}");

    let conflicting = json!([{ "sn": "1", "code": "001101000010000", "count": 3, "unit_price_fen": 15_000 }]);
    let twice = json!([
        { "sn": "7", "code": "A", "count": 1, "unit_price_fen": 100 },
        { "sn": "7", "code": "B", "count": 1, "unit_price_fen": 200 }
    ]);
    let cases = vec![
        case("upload to an unknown visit", "upload_fees", None, json!({ "mdtrt_id": "MDT-NONE", "items": consultation() }), "VISIT_UNKNOWN", 422),
        case("upload to a settled visit", "upload_fees", None, json!({ "mdtrt_id": settled, "items": consultation() }), "VISIT_SETTLED", 422),
        case("a fee line changed under its serial number", "upload_fees", None, json!({ "mdtrt_id": open, "items": conflicting }), "FEE_ITEM_CONFLICT", 400),
        case("a serial number twice in one upload", "upload_fees", None, json!({ "mdtrt_id": open, "items": twice }), "INVALID_PARAMS", 400),
        case("pre-settle an unknown visit", "presettle", None, json!({ "mdtrt_id": "MDT-NONE" }), "VISIT_UNKNOWN", 422),
        case("pre-settle a visit without fees", "presettle", None, json!({ "mdtrt_id": no_fees }), "FEES_NOT_UPLOADED", 422),
        case("pre-settle a settled visit", "presettle", None, json!({ "mdtrt_id": settled }), "VISIT_SETTLED", 422),
        case("settle an unknown visit", "settle", Some("senior"), json!({ "mdtrt_id": "MDT-NONE", "total_fen": 1 }), "VISIT_UNKNOWN", 422),
        case("settle another holder's visit", "settle", Some("young"), json!({ "mdtrt_id": open, "total_fen": CONSULTATION_FEN }), "VISIT_UNKNOWN", 422),
        case("settle a visit without fees", "settle", Some("senior"), json!({ "mdtrt_id": no_fees, "total_fen": 1 }), "FEES_NOT_UPLOADED", 422),
        case("settle before pre-settling", "settle", Some("senior"), json!({ "mdtrt_id": not_presettled, "total_fen": CONSULTATION_FEN }), "NOT_PRESETTLED", 422),
        case("settle another total than the pre-settled one", "settle", Some("senior"), json!({ "mdtrt_id": open, "total_fen": CONSULTATION_FEN - 1 }), "AMOUNT_MISMATCH", 422),
        case(
            "drug lines that do not add up to the confirmed total",
            "pharmacy_purchase",
            Some("senior"),
            json!({ "order_id": "RX-2", "items": [{ "sn": "1", "code": "XA01", "count": 3, "unit_price_fen": 1_000 }], "total_fen": 2_999 }),
            "AMOUNT_MISMATCH",
            422,
        ),
        case(
            "an order id reused for another amount",
            "pharmacy_purchase",
            Some("senior"),
            json!({ "order_id": "RX-1", "items": [{ "sn": "1", "code": "XA01", "count": 2, "unit_price_fen": 2_000 }], "total_fen": 4_000 }),
            "ORDER_CONFLICT",
            422,
        ),
        case(
            "an order id reused by another holder",
            "pharmacy_purchase",
            Some("young"),
            json!({ "order_id": "RX-1", "items": [{ "sn": "1", "code": "XA01", "count": 1, "unit_price_fen": 2_000 }], "total_fen": 2_000 }),
            "ORDER_CONFLICT",
            422,
        ),
        case(
            "a drug line twice in one purchase",
            "pharmacy_purchase",
            Some("senior"),
            json!({ "order_id": "RX-3", "items": twice, "total_fen": 300 }),
            "INVALID_PARAMS",
            400,
        ),
        case("reconcile an unknown visit", "reconcile", None, json!({ "mdtrt_id": "MDT-NONE" }), "VISIT_UNKNOWN", 422),
        case("reconcile an unknown order", "reconcile", None, json!({ "order_id": "RX-NONE" }), "ORDER_UNKNOWN", 422),
        case("reconcile naming a visit and an order", "reconcile", None, json!({ "mdtrt_id": open, "order_id": "RX-1" }), "INVALID_PARAMS", 400),
        case("register without a card", "register", None, json!({ "dept_code": "D-INTERNAL" }), "CREDENTIAL_REQUIRED", 401),
        case("settle without a card", "settle", None, json!({ "mdtrt_id": open, "total_fen": CONSULTATION_FEN }), "CREDENTIAL_REQUIRED", 401),
        Case { no_idempotency_key: true, ..case("settle without an idempotency key", "settle", Some("senior"), json!({ "mdtrt_id": open, "total_fen": CONSULTATION_FEN }), "IDEMPOTENCY_KEY_REQUIRED", 400) },
        Case {
            fault: Some(("insurance", json!({ "fail_next": 1 }))),
            ..case("register while the insurance system is down", "register", Some("senior"), json!({ "dept_code": "D-INTERNAL" }), "INSURANCE_UNAVAILABLE", 502)
        },
        Case {
            fault: Some(("insurance", json!({ "fail_next": 1 }))),
            ..case(
                "upload while the insurance system is down",
                "upload_fees",
                None,
                json!({ "mdtrt_id": open, "items": [{ "sn": "2", "code": "B", "count": 1, "unit_price_fen": 100 }] }),
                "INSURANCE_UNAVAILABLE",
                502,
            )
        },
        Case {
            fault: Some(("insurance", json!({ "fail_next": 1 }))),
            ..case("pre-settle while the insurance system is down", "presettle", None, json!({ "mdtrt_id": open }), "INSURANCE_UNAVAILABLE", 502)
        },
        Case {
            fault: Some(("insurance", json!({ "malformed_next": 1, "malformed_body": { "infcode": 0, "output": { "psn_no": "P000001" } } }))),
            ..case("a registration answer without the visit's id", "register", Some("senior"), json!({ "dept_code": "D-INTERNAL" }), "INSURANCE_MALFORMED", 502)
        },
        Case {
            fault: Some((
                "insurance",
                json!({ "malformed_next": 1, "malformed_body": { "infcode": 0, "output": { "medfee_sumamt": "300.00", "fund_pay": "140.00", "acct_pay": "50.00", "psn_cash_pay": "100.00" } } }),
            )),
            ..case("a pre-settlement whose parts do not add up", "presettle", None, json!({ "mdtrt_id": open }), "INSURANCE_MALFORMED", 502)
        },
    ];

    for case in cases {
        let before = h.world().await;
        if let Some((backend, faults)) = &case.fault {
            h.faults(backend, faults.clone()).await;
        }
        let answer = if case.no_idempotency_key {
            let body = json!({ "credential": h.city.token(case.card.expect("card")), "params": case.params });
            h.city.call(APP, case.action, &body).await
        } else {
            h.call(case.action, case.card, case.params.clone()).await
        };
        h.refused(case.what, &answer, case.code, case.status).await;
        assert_eq!(h.world().await, before, "{}: nothing changed in the sandbox or the gateway's ledger", case.what);
    }

    // The plugin's own records did not change either: the open visit settles for its pre-settled
    // total, and the visit without pre-settlement goes on where it was.
    let told = h.ok("settle", Some("senior"), json!({ "mdtrt_id": open, "total_fen": CONSULTATION_FEN })).await;
    h.assert_balanced("senior", &told).await;
    h.assert_balanced("senior", &settled_told).await;
    h.assert_balanced("senior", &rx1_told).await;
    h.ok("presettle", None, json!({ "mdtrt_id": not_presettled })).await;
    let self_pay = |t: &Value| t["self_pay_fen"].as_u64().expect("self_pay_fen");
    let told_total = self_pay(&told) + self_pay(&settled_told) + self_pay(&rx1_told);
    h.assert_totals(told_total).await;
    assert_eq!(h.balance("senior").await, 50_000 - told_total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_pay_the_bank_refuses_reverses_the_settlement_and_charges_nothing() {
    let h = Hospital::start(fast_backends).await;
    // Less than either self-pay below (110.00 for the visit, 80.00 for the purchase).
    h.fund("senior", 7_999).await;
    let id = h.presettled_visit("senior").await;
    let before = h.money().await;

    let answer = h.settle("senior", &id, CONSULTATION_FEN).await;
    h.refused("self-pay beyond the balance", &answer, "INSUFFICIENT_FUNDS", 422).await;
    assert_eq!(h.money().await, before, "the insurance settlement was reversed; nothing charged");
    let insurance = h.state("insurance").await;
    let received = insurance["received"].as_array().expect("received");
    let settlement = received.iter().find(|m| m["infno"] == "2207").expect("settled first");
    assert!(received.iter().any(|m| m["infno"] == "2601" && m["input"]["omsgid"] == settlement["msgid"]), "{received:?}");

    let items = json!([{ "sn": "1", "code": "XA01", "count": 2, "unit_price_fen": 10_000 }]);
    let purchase = json!({ "order_id": "RX-9", "items": items, "total_fen": 20_000 });
    // The visit's settlement restored the personal account: the purchase's self-pay is 80.00.
    let answer = h.call("pharmacy_purchase", Some("senior"), purchase.clone()).await;
    h.refused("pharmacy self-pay beyond the balance", &answer, "INSUFFICIENT_FUNDS", 422).await;
    assert_eq!(h.money().await, before);

    h.fund("senior", 50_000).await;
    // The bank declines the self-pay, or finds it beyond the account's limit: reversed alike.
    let before = h.money().await;
    for (bank_status, code) in [(422, "PAYMENT_DECLINED"), (429, "PAYMENT_LIMIT_EXCEEDED")] {
        h.faults("bank", json!({ "fail_next": 1, "status": bank_status })).await;
        let answer = h.settle("senior", &id, CONSULTATION_FEN).await;
        h.refused(code, &answer, code, 422).await;
        assert_eq!(h.money().await, before, "{code}: the insurance settlement was reversed; nothing charged");
        let insurance = h.state("insurance").await;
        let received = insurance["received"].as_array().expect("received");
        let settlement = received.iter().rev().find(|m| m["infno"] == "2207").expect("settled first");
        assert!(received.iter().any(|m| m["infno"] == "2601" && m["input"]["omsgid"] == settlement["msgid"]), "{code}: {received:?}");
    }

    let told = h.ok("settle", Some("senior"), json!({ "mdtrt_id": id, "total_fen": CONSULTATION_FEN })).await;
    h.assert_balanced("senior", &told).await;
    let bought = h.ok("pharmacy_purchase", Some("senior"), purchase).await;
    h.assert_balanced("senior", &bought).await;
    let told_total = told["self_pay_fen"].as_u64().unwrap() + bought["self_pay_fen"].as_u64().unwrap();
    h.assert_totals(told_total).await;
    assert_eq!(h.balance("senior").await, 50_000 - told_total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fees_lost_in_flight_are_caught_at_pre_settlement() {
    let h = Hospital::start(fast_backends).await;
    h.fund("senior", 50_000).await;
    let id = h.register("senior").await;
    h.ok("upload_fees", None, json!({ "mdtrt_id": id, "items": consultation() })).await;
    let extra = json!([{ "sn": "2", "code": "250101015", "count": 1, "unit_price_fen": 4_000 }]);

    // The insurance system takes the second line, but the hospital never learns it did.
    h.faults("insurance", json!({ "timeout_next": 1 })).await;
    let lost = h.call("upload_fees", None, json!({ "mdtrt_id": id, "items": extra })).await;
    h.refused("upload without answer", &lost, "INSURANCE_UNAVAILABLE", 502).await;

    let before = h.money().await;
    let answer = h.call("presettle", None, json!({ "mdtrt_id": id })).await;
    h.refused("pre-settle with diverging fees", &answer, "AMOUNT_MISMATCH", 422).await;
    assert_eq!(h.money().await, before);
    let settle = h.settle("senior", &id, CONSULTATION_FEN).await;
    h.refused("settle after a failed pre-settlement", &settle, "NOT_PRESETTLED", 422).await;

    // Uploading the line again brings both sides together; the visit settles and balances.
    h.ok("upload_fees", None, json!({ "mdtrt_id": id, "items": extra })).await;
    let split = h.ok("presettle", None, json!({ "mdtrt_id": id })).await;
    assert_eq!(split["total_fen"], CONSULTATION_FEN + 4_000);
    let told = h.ok("settle", Some("senior"), json!({ "mdtrt_id": id, "total_fen": CONSULTATION_FEN + 4_000 })).await;
    h.assert_balanced("senior", &told).await;
    h.assert_totals(told["self_pay_fen"].as_u64().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_in_flight_is_neither_sent_twice_nor_reconciled() {
    let h = Hospital::start(patient_backends).await;
    h.fund("senior", 50_000).await;
    let id = h.presettled_visit("senior").await;

    h.faults("insurance", json!({ "delay_ms": 800 })).await;
    let first = h.settle("senior", &id, CONSULTATION_FEN);
    let meanwhile = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let second = h.settle("senior", &id, CONSULTATION_FEN).await;
        let reconcile = h.call("reconcile", None, json!({ "mdtrt_id": id })).await;
        (second, reconcile)
    };
    let (first, (second, reconcile)) = tokio::join!(first, meanwhile);
    h.faults("insurance", json!({})).await;

    assert_eq!(first.status, 200, "{}", first.body);
    h.refused("a second settle while the first is in flight", &second, "SETTLEMENT_IN_PROGRESS", 422).await;
    h.refused("reconcile while the settlement is in flight", &reconcile, "SETTLEMENT_IN_PROGRESS", 422).await;
    let settlements = h.state("insurance").await["settlements"].as_object().expect("settlements").len();
    assert_eq!(settlements, 1, "sent once");
    h.assert_balanced("senior", &first.body["result"]).await;
    h.assert_totals(CONSULTATION_SELF_PAY_FEN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fees_lost_after_pre_settlement_make_the_insurance_refuse_the_settlement() {
    let h = Hospital::start(fast_backends).await;
    h.fund("senior", 50_000).await;
    let id = h.presettled_visit("senior").await;
    let extra = json!([{ "sn": "2", "code": "250101015", "count": 1, "unit_price_fen": 4_000 }]);

    // After the pre-settlement the insurance system takes another line, but the hospital never
    // learns it did: the two sides now count different fees.
    h.faults("insurance", json!({ "timeout_next": 1 })).await;
    let lost = h.call("upload_fees", None, json!({ "mdtrt_id": id, "items": extra })).await;
    h.refused("upload without answer", &lost, "INSURANCE_UNAVAILABLE", 502).await;

    // The settlement of the pre-settled total is refused by the insurance system itself.
    let before = h.money().await;
    let answer = h.settle("senior", &id, CONSULTATION_FEN).await;
    h.refused("settle fees the insurance counts otherwise", &answer, "INSURANCE_REFUSED", 422).await;
    assert_eq!(h.money().await, before, "nothing settled, nothing charged");
    let received = h.state("insurance").await["received"].clone();
    let settlement = received.as_array().expect("received").iter().find(|m| m["infno"] == "2207").expect("the 2207 was sent");
    assert_eq!(settlement["infcode"], -1, "refused by the insurance system");
    assert!(h.city.ledger(APP).await.is_empty());

    // The visit is open as it was: the line uploaded again, pre-settled and settled, balanced.
    h.ok("upload_fees", None, json!({ "mdtrt_id": id, "items": extra })).await;
    let split = h.ok("presettle", None, json!({ "mdtrt_id": id })).await;
    assert_eq!(split["total_fen"], CONSULTATION_FEN + 4_000);
    let told = h.ok("settle", Some("senior"), json!({ "mdtrt_id": id, "total_fen": CONSULTATION_FEN + 4_000 })).await;
    h.assert_balanced("senior", &told).await;
    h.assert_totals(told["self_pay_fen"].as_u64().expect("self_pay_fen")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pre_settlements_of_one_visit_at_once_store_one_and_refuse_the_other() {
    let h = Hospital::start(patient_backends).await;
    h.fund("senior", 50_000).await;
    let id = h.register("senior").await;
    h.ok("upload_fees", None, json!({ "mdtrt_id": id, "items": consultation() })).await;
    let before = h.money().await;

    // Both read the visit, then wait at the insurance system until both are there.
    h.faults("insurance", json!({ "hold": true })).await;
    let presettle = || h.call("presettle", None, json!({ "mdtrt_id": id }));
    let release = async {
        h.held("insurance", 2).await;
        h.faults("insurance", json!({})).await;
    };
    let (first, second, ()) = tokio::join!(presettle(), presettle(), release);

    let (stored, refused) = match (first.status, second.status) {
        (200, _) => (first, second),
        _ => (second, first),
    };
    assert_eq!(stored.status, 200, "{}", stored.body);
    assert_eq!(stored.body["result"]["total_fen"], CONSULTATION_FEN);
    h.refused("the second pre-settlement to store", &refused, "CONCURRENT_UPDATE", 422).await;
    assert_eq!(h.money().await, before, "a pre-settlement moves nothing");

    // The stored pre-settlement stands: the visit settles on it and balances.
    let told = h.ok("settle", Some("senior"), json!({ "mdtrt_id": id, "total_fen": CONSULTATION_FEN })).await;
    assert_eq!(told["self_pay_fen"], stored.body["result"]["self_pay_fen"]);
    h.assert_balanced("senior", &told).await;
    h.assert_totals(CONSULTATION_SELF_PAY_FEN).await;
}

/// A day has 9,999 message ids (a 4-digit sequence). Sending 9,996 messages through the gateway
/// first takes minutes on a test machine (measured: 330 s for all 9,999), so the plugin's own day
/// counter in the gateway's key-value store stands in for them; the last ids are still handed out
/// by the plugin to messages sent through the gateway, and the refusal comes from the plugin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_days_message_ids_are_used_up_nothing_is_sent_or_charged() {
    let h = Hospital::start(fast_backends).await;
    h.fund("senior", 50_000).await;
    let id = h.presettled_visit("senior").await;

    // The day's counter (created by the messages above) as if 9,996 messages had been sent. Its
    // name (`msgseq:` and the plugin's local date) is read from the plugin-state file, which the
    // gateway writes behind; the new value goes through the gateway's own key-value store.
    sqlx::any::install_default_drivers();
    let kv_file = onecard_gateway::capabilities::kv::sqlite_file_beside(&h.city.database);
    let file = sqlx::AnyPool::connect(&format!("sqlite://{kv_file}")).await.expect("the plugin-state file");
    let mut counter = None;
    for _ in 0..250 {
        counter = sqlx::query_scalar::<_, String>("SELECT key FROM plugin_kv_log WHERE namespace = $1 AND key LIKE 'msgseq:%' LIMIT 1")
            .bind(APP.to_string())
            .fetch_optional(&file)
            .await
            .expect("read the plugin-state file");
        if counter.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let counter = counter.expect("the day's message counter was written");
    let enforced = h.city.running.gateway.state.load().expect("a catalog");
    let kv = &enforced.app(APP).expect("the hospital application").env.kv;
    kv.set(APP, &counter, b"9996".to_vec(), None).await.expect("set the day's message counter");

    // Registrations are told the day's last ids, up to 9999.
    let mut sequences = Vec::new();
    while sequences.last() != Some(&9_999) {
        let answer = h.call("register", Some("senior"), json!({ "dept_code": "D-INTERNAL" })).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let msgid = answer.body["result"]["msgid"].as_str().expect("msgid");
        sequences.push(msgid[msgid.len() - 4..].parse::<u32>().expect("sequence"));
        assert!(sequences.len() <= 3, "the counter did not hold: {sequences:?}");
    }
    assert_eq!(sequences, [9_997, 9_998, 9_999]);

    let before = h.money().await;
    let received = h.state("insurance").await["received"].as_array().expect("received").len();
    let settle = h.settle("senior", &id, CONSULTATION_FEN).await;
    h.refused("settle without a message id", &settle, "MESSAGE_IDS_EXHAUSTED", 422).await;
    let register = h.call("register", Some("senior"), json!({ "dept_code": "D-INTERNAL" })).await;
    h.refused("register without a message id", &register, "MESSAGE_IDS_EXHAUSTED", 422).await;
    assert_eq!(h.money().await, before, "nothing settled or charged");
    assert_eq!(h.state("insurance").await["received"].as_array().expect("received").len(), received, "no message was sent");
    // The visit stays open and pre-settled, to be settled when the next day's ids come.
    let state = h.ok("reconcile", None, json!({ "mdtrt_id": id })).await;
    assert_eq!(state["state"], "open");
    h.assert_totals(0).await;
}

/// The catalog accepts no money-moving action whose policy skips the financial account (its
/// `apply` refuses such an entry), so the plugin's own `CARD_FINANCIAL_LOCKED` check is a second
/// line the gateway never lets a request reach: the gateway refuses first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_financially_locked_card_pays_nothing() {
    let h = Hospital::start(fast_backends).await;
    h.fund("senior", 50_000).await;
    let id = h.presettled_visit("senior").await;

    let issuer = onecard_catalog::roles::Principal {
        name: "issuer".into(),
        role: onecard_catalog::roles::Role::CardIssuer,
        department: None,
        city: None,
        channel: None,
    };
    let lock = onecard_catalog::store::CardUpdate { status: None, social_locked: None, financial_locked: Some(true), note: Some("bank account frozen".into()) };
    onecard_catalog::service::update_card(&h.city.store, &issuer, &h.city.cards["senior"], lock).await.expect("lock");
    h.city.synced().await;

    let before = h.world().await;
    let settle = h.settle("senior", &id, CONSULTATION_FEN).await;
    h.refused("settle on a locked financial account", &settle, "CARD_LOCKED", 403).await;
    let items = json!([{ "sn": "1", "code": "XA01", "count": 1, "unit_price_fen": 2_000 }]);
    let purchase = h.call("pharmacy_purchase", Some("senior"), json!({ "order_id": "RX-5", "items": items, "total_fen": 2_000 })).await;
    h.refused("purchase on a locked financial account", &purchase, "CARD_LOCKED", 403).await;
    assert_eq!(h.world().await, before);
    // Actions that move no money still serve the card.
    h.ok("reconcile", None, json!({ "mdtrt_id": id })).await;
    let visit = h.register("senior").await;
    assert!(!visit.is_empty());
}
