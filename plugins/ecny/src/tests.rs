//! Native tests of the e-CNY plugin, through the SDK's harness and a scripted operator.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use onecard_sdk::http::{IncomingResponse, Method};
use onecard_sdk::payments::Kind;
use onecard_sdk::testing::{DEFAULT_NOW_MS, Harness, HostCall};
use onecard_sdk::{HandleError, HttpError, PaymentError, Plugin, Request};
use serde_json::{Value, json};

use crate::Ecny;

const CONFIG: &str = r#"{"merchants":{"m-canteen":{"name":"市民中心食堂"},"m-pharmacy":{"name":"社区药房"}}}"#;
const HOLDER: &str = "holder-1";
const DAY: &str = "2026-11-23";

/// The e-CNY operator's wallet API as the sandbox double answers it.
#[derive(Debug, Default)]
struct Operator {
    /// wallet id -> (holder, tier, balance)
    wallets: BTreeMap<String, (String, String, u64)>,
    opens: u32,
    /// Answer the next request with this instead.
    fault: Option<Fault>,
}

#[derive(Debug, Clone)]
enum Fault {
    Down,
    Status(u16, &'static str),
    Garbage,
    Crash,
}

fn install(h: &mut Harness) -> Rc<RefCell<Operator>> {
    let operator = Rc::new(RefCell::new(Operator::default()));
    let script = Rc::clone(&operator);
    h.on_http(move |backend, request| {
        assert_eq!(backend, "ecny");
        let mut op = script.borrow_mut();
        let reply = |status: u16, body: Value| Ok(IncomingResponse { status, headers: vec![], body: serde_json::to_vec(&body).unwrap() });
        match op.fault.take() {
            Some(Fault::Down) => return Err(HttpError::Timeout),
            Some(Fault::Status(status, error)) => return reply(status, json!({"error": error, "message": error})),
            Some(Fault::Garbage) => return Ok(IncomingResponse { status: 200, headers: vec![], body: b"<html>".to_vec() }),
            Some(Fault::Crash) => panic!("the instance died while the operator was opening the wallet"),
            None => {}
        }
        match (request.method, request.path.as_str()) {
            (Method::Post, "/wallets") => {
                op.opens += 1;
                let body: Value = serde_json::from_slice(&request.body).unwrap();
                let holder = body["holder_ref"].as_str().unwrap().to_owned();
                let tier = body["tier"].as_str().unwrap().to_owned();
                let existing = op.wallets.iter().find(|(_, (h, _, _))| *h == holder).map(|(id, _)| id.clone());
                let id = existing.unwrap_or_else(|| format!("W{:03}", op.wallets.len() + 1));
                op.wallets.entry(id.clone()).or_insert((holder, tier, 0));
                reply(200, json!({"wallet_id": id}))
            }
            (Method::Get, path) => match op.wallets.get(path.trim_start_matches("/wallets/")) {
                Some((_, tier, balance)) => reply(200, json!({"wallet_id": path.trim_start_matches("/wallets/"), "balance_fen": balance, "tier": tier})),
                None => reply(404, json!({"error": "not_found"})),
            },
            other => panic!("unexpected request {other:?}"),
        }
    });
    operator
}

fn req(h: &Harness, action: &str, params: Value) -> Request {
    h.request(action, &params.to_string()).with_config(CONFIG).with_card(HOLDER)
}

fn body(response: onecard_sdk::Response) -> Value {
    serde_json::from_str(&response.body).unwrap()
}

trait Calls {
    fn ok(&mut self, request: &Request) -> Value;
    /// Expect `code` and no change: the wallet binding, the operation records named, the daily
    /// total and the ledger are as they were.
    fn refused(&mut self, request: &Request, code: &str, keys: &[&str]) -> HandleError;
}

impl Calls for Harness {
    fn ok(&mut self, request: &Request) -> Value {
        match self.call::<Ecny>(request) {
            Ok(r) => body(r),
            Err(e) => panic!("{}: {}", e.code(), e.message()),
        }
    }

    fn refused(&mut self, request: &Request, code: &str, keys: &[&str]) -> HandleError {
        let mut keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        keys.push(format!("wallet:{HOLDER}"));
        let before: Vec<_> = keys.iter().map(|k| self.kv_value(k)).collect();
        let (ledger, spent) = (self.ledger(), paid_today(self, "W001"));
        let err = self.call::<Ecny>(request).unwrap_err();
        assert_eq!(err.code(), code, "{}", err.message());
        let after: Vec<_> = keys.iter().map(|k| self.kv_value(k)).collect();
        assert_eq!(before, after, "{code} changed kv");
        assert_eq!(paid_today(self, "W001"), spent, "{code} changed the daily total");
        assert_eq!(self.ledger(), ledger, "{code} moved money");
        err
    }
}

fn paid_today(h: &Harness, wallet: &str) -> u64 {
    h.kv_value(&format!("daily:{wallet}:{DAY}")).map_or(0, |v| String::from_utf8(v).unwrap().parse().unwrap())
}

fn load(h: &mut Harness, tier: &str) -> String {
    let r = req(h, "load_wallet", json!({"tier": tier})).with_idempotency_key("load-1");
    h.ok(&r)["wallet_id"].as_str().unwrap().to_owned()
}

fn pay(h: &Harness, op: &str, merchant: &str, amount: u64) -> Request {
    req(h, "pay", json!({"op_id": op, "merchant": merchant, "amount_fen": amount}))
}

fn top_up(h: &Harness, op: &str, amount: u64) -> Request {
    req(h, "top_up", json!({"op_id": op, "amount_fen": amount}))
}

fn ledger_sum(h: &Harness, key: &str) -> u64 {
    h.ledger().iter().filter(|p| p.idempotency_key == key).map(|p| p.amount_fen).sum()
}

#[test]
fn describes_its_actions() {
    let info = Ecny::describe();
    let names: Vec<_> = info.actions.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["load_wallet", "top_up", "pay", "balance"]);
    for action in &info.actions {
        serde_json::from_str::<Value>(&action.params_schema).expect("schema is JSON");
    }
    assert_eq!(info.capabilities, ["http", "kv", "payments"]);
}

#[test]
fn a_wallet_is_loaded_once_and_a_retry_answers_the_same_wallet() {
    let mut h = Harness::new();
    let operator = install(&mut h);
    let first = h.ok(&req(&h, "load_wallet", json!({"tier": "class4"})).with_idempotency_key("k1"));
    assert_eq!(first["wallet_id"], "W001");
    assert_eq!(first["limits"]["single_payment_limit_fen"], 200_000);
    let again = h.ok(&req(&h, "load_wallet", json!({"tier": "class4"})).with_idempotency_key("k1"));
    assert_eq!((again["wallet_id"].as_str(), again["replayed"].as_bool()), (Some("W001"), Some(true)));
    assert_eq!(operator.borrow().opens, 1);
    h.refused(&req(&h, "load_wallet", json!({"tier": "class2"})).with_idempotency_key("k2"), "WALLET_ALREADY_LOADED", &[]);
    assert_eq!(operator.borrow().opens, 1);
}

#[test]
fn an_unknown_tier_or_a_failed_opening_loads_nothing() {
    let mut h = Harness::new();
    let operator = install(&mut h);
    let err = h.refused(&req(&h, "load_wallet", json!({"tier": "class9"})), "TIER_UNKNOWN", &[]);
    assert!(err.message().contains("`tier`"), "{}", err.message());
    operator.borrow_mut().fault = Some(Fault::Down);
    h.refused(&req(&h, "load_wallet", json!({"tier": "class4"})), "ECNY_UNAVAILABLE", &[]);
    operator.borrow_mut().fault = Some(Fault::Status(422, "tier not offered"));
    let err = h.refused(&req(&h, "load_wallet", json!({"tier": "class4"})), "ECNY_REFUSED", &[]);
    assert!(err.message().contains("tier not offered"));
    assert_eq!(h.kv_value(&format!("wallet:{HOLDER}")), None);
    // The retry after the timeout finds the wallet the operator may have opened.
    assert_eq!(load(&mut h, "class4"), "W001");
}

#[test]
fn an_opening_in_progress_holds_off_other_loads_until_it_expires() {
    let mut h = Harness::new();
    let operator = install(&mut h);
    operator.borrow_mut().fault = Some(Fault::Crash);
    let first = req(&h, "load_wallet", json!({"tier": "class4"})).with_idempotency_key("k1");
    assert!(catch_unwind(AssertUnwindSafe(|| h.call::<Ecny>(&first))).is_err());
    h.refused(&req(&h, "load_wallet", json!({"tier": "class4"})).with_idempotency_key("k2"), "WALLET_LOAD_IN_PROGRESS", &[]);
    h.set_now_ms(DEFAULT_NOW_MS + 60_000);
    let b = h.ok(&req(&h, "load_wallet", json!({"tier": "class4"})).with_idempotency_key("k2"));
    assert_eq!(b["wallet_id"], "W001");
}

#[test]
fn a_top_up_credits_the_wallet_through_the_settlement_port() {
    let mut h = Harness::new();
    let operator = install(&mut h);
    let wallet = load(&mut h, "class4");
    operator.borrow_mut().wallets.get_mut(&wallet).unwrap().2 = 3_000;
    let b = h.ok(&top_up(&h, "t1", 50_000));
    assert_eq!((b["amount_fen"].as_u64(), b["balance_fen"].as_u64()), (Some(50_000), Some(53_000)));
    let key = format!("ecny:top-up:{wallet}:t1");
    assert_eq!(ledger_sum(&h, &key), 50_000, "the ledger holds what the response told");
    let entry = &h.ledger()[0];
    assert!(matches!(entry.kind, Kind::Credit));
    assert_eq!(entry.account, wallet);

    let again = h.ok(&top_up(&h, "t1", 50_000));
    assert_eq!(again["replayed"], true);
    assert_eq!(again["receipt"], b["receipt"]);
    assert_eq!(h.ledger().len(), 1, "a retried top-up moves no money twice");
    let reused = h.refused(&top_up(&h, "t1", 60_000), "OP_ID_REUSED", &[&format!("op:{wallet}:t1")]);
    assert!(reused.message().contains("op_id"));
}

#[test]
fn a_top_up_never_takes_the_balance_over_the_tier_limit() {
    let mut h = Harness::new();
    let operator = install(&mut h);
    let wallet = load(&mut h, "class4");
    operator.borrow_mut().wallets.get_mut(&wallet).unwrap().2 = 990_000;
    let err = h.refused(&top_up(&h, "t1", 10_001), "BALANCE_LIMIT_EXCEEDED", &[&format!("op:{wallet}:t1")]);
    assert!(err.message().contains("10000 fen"), "{}", err.message());
    // The operator has the last word (a concurrent top-up may have raised the balance).
    h.fail_payments(Some(PaymentError::LimitExceeded("balance cap".into())));
    h.refused(&top_up(&h, "t2", 10_000), "BALANCE_LIMIT_EXCEEDED", &[&format!("op:{wallet}:t2")]);
    h.fail_payments(None);
    assert_eq!(h.ok(&top_up(&h, "t3", 10_000))["balance_fen"], 1_000_000);
}

#[test]
fn money_moves_only_with_a_loaded_wallet_and_an_unlocked_card() {
    let mut h = Harness::new();
    let _operator = install(&mut h);
    h.refused(&top_up(&h, "t1", 100), "WALLET_NOT_LOADED", &[]);
    h.refused(&pay(&h, "p1", "m-canteen", 100), "WALLET_NOT_LOADED", &[]);
    h.refused(&req(&h, "balance", json!({})), "WALLET_NOT_LOADED", &[]);
    let wallet = load(&mut h, "class4");
    let mut locked = pay(&h, "p1", "m-canteen", 100);
    locked.card.as_mut().unwrap().financial_locked = true;
    h.refused(&locked, "CARD_FINANCIAL_LOCKED", &[&format!("op:{wallet}:p1")]);
    let mut locked = top_up(&h, "t1", 100);
    locked.card.as_mut().unwrap().financial_locked = true;
    h.refused(&locked, "CARD_FINANCIAL_LOCKED", &[&format!("op:{wallet}:t1")]);
    h.refused(&pay(&h, "p1", "m-casino", 100), "MERCHANT_UNKNOWN", &[]);
}

#[test]
fn a_payment_debits_the_wallet_to_the_merchant() {
    let mut h = Harness::new();
    install(&mut h);
    let wallet = load(&mut h, "class4");
    let b = h.ok(&pay(&h, "p1", "m-canteen", 1_850));
    assert_eq!((b["amount_fen"].as_u64(), b["paid_today_fen"].as_u64(), b["daily_remaining_fen"].as_u64()), (Some(1_850), Some(1_850), Some(498_150)));
    assert_eq!(b["merchant_name"], "市民中心食堂");
    let key = format!("ecny:pay:{wallet}:p1");
    assert_eq!(ledger_sum(&h, &key), 1_850);
    let entry = &h.ledger()[0];
    assert!(matches!(entry.kind, Kind::Debit));
    assert_eq!((entry.account.as_str(), entry.reference.as_str()), (wallet.as_str(), "merchant:m-canteen:p1"));

    let again = h.ok(&pay(&h, "p1", "m-canteen", 1_850));
    assert_eq!(again["replayed"], true);
    assert_eq!(h.ledger().len(), 1);
    assert_eq!(paid_today(&h, &wallet), 1_850, "a retry counts once towards the day");
    h.refused(&pay(&h, "p1", "m-pharmacy", 1_850), "OP_ID_REUSED", &[&format!("op:{wallet}:p1")]);
}

#[test]
fn one_payment_may_not_exceed_the_single_limit() {
    let mut h = Harness::new();
    install(&mut h);
    let wallet = load(&mut h, "class4");
    h.refused(&pay(&h, "p1", "m-canteen", 200_001), "SINGLE_LIMIT_EXCEEDED", &[&format!("op:{wallet}:p1")]);
    h.ok(&pay(&h, "p2", "m-canteen", 200_000));
}

#[test]
fn the_day_total_may_not_exceed_the_daily_limit_and_resets_the_next_day() {
    let mut h = Harness::new();
    install(&mut h);
    let wallet = load(&mut h, "class4");
    h.ok(&pay(&h, "p1", "m-canteen", 200_000));
    h.ok(&pay(&h, "p2", "m-canteen", 200_000));
    let err = h.refused(&pay(&h, "p3", "m-canteen", 100_001), "DAILY_LIMIT_EXCEEDED", &[&format!("op:{wallet}:p3")]);
    assert!(err.message().contains("100000 fen remain"), "{}", err.message());
    let last = h.ok(&pay(&h, "p4", "m-canteen", 100_000));
    assert_eq!(last["daily_remaining_fen"], 0);
    assert_eq!(h.ledger().iter().map(|p| p.amount_fen).sum::<u64>(), 500_000);
    h.set_now_ms(DEFAULT_NOW_MS + 86_400_000);
    assert_eq!(h.ok(&pay(&h, "p5", "m-canteen", 100_000))["paid_today_fen"], 100_000);
}

#[test]
fn a_refused_payment_gives_its_reservation_back() {
    let mut h = Harness::new();
    install(&mut h);
    let wallet = load(&mut h, "class4");
    h.ok(&pay(&h, "p0", "m-canteen", 1_000));
    for (error, code) in [
        (PaymentError::InsufficientFunds, "INSUFFICIENT_FUNDS"),
        (PaymentError::Declined("merchant closed".into()), "PAYMENT_DECLINED"),
    ] {
        h.fail_payments(Some(error));
        h.refused(&pay(&h, "p1", "m-canteen", 5_000), code, &[&format!("op:{wallet}:p1")]);
    }
    h.fail_payments(None);
    assert_eq!(h.ok(&pay(&h, "p1", "m-canteen", 5_000))["paid_today_fen"], 6_000);
}

#[test]
fn an_unconfirmed_payment_keeps_its_reservation_and_completes_on_retry() {
    let mut h = Harness::new();
    install(&mut h);
    let wallet = load(&mut h, "class4");
    h.fail_payments(Some(PaymentError::Timeout));
    let err = h.call::<Ecny>(&pay(&h, "p1", "m-canteen", 5_000)).unwrap_err();
    assert_eq!(err.code(), "PAYMENT_PENDING");
    assert_eq!(paid_today(&h, &wallet), 5_000, "an unknown outcome stays counted");
    h.fail_payments(None);
    let b = h.ok(&pay(&h, "p1", "m-canteen", 5_000));
    assert_eq!(b["paid_today_fen"], 5_000, "the retry does not reserve twice");
    assert_eq!(ledger_sum(&h, &format!("ecny:pay:{wallet}:p1")), 5_000);
    let reservations = h.calls().iter().filter(|c| matches!(c, HostCall::KvCompareAndSwap { key, swapped: true } if key.starts_with("daily:"))).count();
    assert_eq!(reservations, 1, "reserved once, on the first attempt");
}

#[test]
fn the_balance_is_the_operators_and_the_allowance_is_todays() {
    let mut h = Harness::new();
    let operator = install(&mut h);
    let wallet = load(&mut h, "class2");
    operator.borrow_mut().wallets.get_mut(&wallet).unwrap().2 = 123_456;
    h.ok(&pay(&h, "p1", "m-canteen", 6_000));
    let b = h.ok(&req(&h, "balance", json!({})));
    assert_eq!(b["balance_fen"], 123_456);
    assert_eq!(b["tier"], "class2");
    assert_eq!(b["paid_today_fen"], 6_000);
    assert_eq!(b["daily_remaining_fen"], 10_000_000 - 6_000);
    operator.borrow_mut().fault = Some(Fault::Down);
    h.refused(&req(&h, "balance", json!({})), "ECNY_UNAVAILABLE", &[]);
    operator.borrow_mut().fault = Some(Fault::Garbage);
    h.refused(&req(&h, "balance", json!({})), "ECNY_MALFORMED", &[]);
}

#[test]
fn an_unconfirmed_top_up_completes_on_retry_under_the_same_key() {
    let mut h = Harness::new();
    install(&mut h);
    let wallet = load(&mut h, "class4");
    h.fail_payments(Some(PaymentError::Unavailable("operator down".into())));
    assert_eq!(h.call::<Ecny>(&top_up(&h, "t1", 7_000)).unwrap_err().code(), "PAYMENT_PENDING");
    assert!(h.kv_value(&format!("op:{wallet}:t1")).is_some(), "the operation stays pending");
    h.fail_payments(None);
    let b = h.ok(&top_up(&h, "t1", 7_000));
    assert_eq!(b["amount_fen"], 7_000);
    assert_eq!(b["balance_fen"], Value::Null, "the balance before a pending top-up is not known");
    assert_eq!(ledger_sum(&h, &format!("ecny:top-up:{wallet}:t1")), 7_000);
    assert_eq!(h.ledger().len(), 1);
}

#[test]
fn bad_parameters_name_the_field() {
    let mut h = Harness::new();
    install(&mut h);
    load(&mut h, "class4");
    let err = h.refused(&req(&h, "pay", json!({"op_id": "p1", "merchant": "m-canteen", "amount_fen": -5})), "INVALID_PARAMS", &[]);
    assert!(err.message().contains("amount_fen"), "{}", err.message());
}
