//! Settlements without an answer are brought to a final state by `reconcile`.

use std::panic::{AssertUnwindSafe, catch_unwind};

use onecard_sdk::testing::{DEFAULT_NOW_MS, Harness};
use serde_json::{Value, json};

use super::fake::{self, Fault};
use super::outpatient::{ready, settle, visit};
use super::*;

fn reconcile(h: &Harness, params: Value) -> Request {
    h.request("reconcile", &params.to_string()).with_config(CONFIG)
}

#[test]
fn a_settlement_lost_with_its_instance_is_reversed_once_its_grace_is_over() {
    let mut h = Harness::new();
    let fake = fake::install(&mut h, 0);
    let id = ready(&mut h, 20_000);
    fake.borrow_mut().fail_next("2207", Fault::Crash);
    let crashed = catch_unwind(AssertUnwindSafe(|| h.call::<Hospital>(&settle(&h, &id, 20_000))));
    assert!(crashed.is_err());
    let record = visit(&h, &id);
    assert_eq!(record["settlement"]["state"], "sending");
    assert_eq!(record["settlement"]["msgid"], fake.borrow().last("2207").0, "the message id was stored before it left");

    h.refused_before_sending(&settle(&h, &id, 20_000), "SETTLEMENT_IN_PROGRESS");
    h.refused_before_sending(&reconcile(&h, json!({"mdtrt_id": id})), "SETTLEMENT_IN_PROGRESS");

    h.set_now_ms(DEFAULT_NOW_MS + 120_000);
    let b = h.ok(&reconcile(&h, json!({"mdtrt_id": id})));
    assert_eq!(b["state"], "reversed");
    assert_eq!(b["msgid"], record["settlement"]["msgid"]);
    assert!(fake.borrow().settlements.is_empty());
    assert_eq!(h.ledger(), []);

    let settled = h.ok(&settle(&h, &id, 20_000));
    assert_eq!(ledger_sum(&h, settled["msgid"].as_str().unwrap()), settled["self_pay_fen"].as_u64().unwrap());
}

#[test]
fn an_uncertain_settlement_is_reversed_by_reconcile_when_the_system_answers_again() {
    let mut h = Harness::new();
    let fake = fake::install(&mut h, 0);
    let id = ready(&mut h, 20_000);
    fake.borrow_mut().fail_next("2207", Fault::LostAnswer);
    fake.borrow_mut().fail_next("2601", Fault::Unreachable);
    assert_eq!(h.call::<Hospital>(&settle(&h, &id, 20_000)).unwrap_err().code(), "SETTLEMENT_UNCERTAIN");

    fake.borrow_mut().fail_next("2601", Fault::Status(502));
    let err = h.refused(&reconcile(&h, json!({"mdtrt_id": id})), "SETTLEMENT_UNCERTAIN", &[&format!("visit:{id}")]);
    assert!(err.message().contains("reconcile"));
    assert_eq!(fake.borrow().settlements.len(), 1, "still settled at the insurance system");

    let b = h.ok(&reconcile(&h, json!({"mdtrt_id": id})));
    assert_eq!(b["state"], "reversed");
    assert!(fake.borrow().settlements.is_empty());
    assert_eq!(visit(&h, &id)["reversals"].as_array().unwrap().len(), 1);
    assert_eq!(h.ledger(), []);
}

#[test]
fn reconciling_a_settled_or_open_visit_reports_it_and_sends_nothing() {
    let mut h = Harness::new();
    fake::install(&mut h, 0);
    let id = ready(&mut h, 20_000);
    let from = h.calls().len();
    assert_eq!(h.ok(&reconcile(&h, json!({"mdtrt_id": id})))["state"], "open");
    let b = h.ok(&settle(&h, &id, 20_000));
    let from_paid = h.calls().len();
    let paid = h.ok(&reconcile(&h, json!({"mdtrt_id": id})));
    assert_eq!((paid["state"].as_str(), &paid["msgid"]), (Some("paid"), &b["msgid"]));
    assert_eq!(messages(&h.calls()[from_paid..]), Vec::<String>::new());
    assert_eq!(writes(&h.calls()[from_paid..]), []);
    assert!(messages(&h.calls()[from..]).iter().all(|p| p == "/api/2207"));
}

#[test]
fn reconcile_names_one_known_visit_or_order() {
    let mut h = Harness::new();
    fake::install(&mut h, 0);
    h.refused_before_sending(&reconcile(&h, json!({"mdtrt_id": "MD404"})), "VISIT_UNKNOWN");
    h.refused_before_sending(&reconcile(&h, json!({"order_id": "RX-404"})), "ORDER_UNKNOWN");
    let both = reconcile(&h, json!({"mdtrt_id": "MD1", "order_id": "RX-1"}));
    assert!(h.refused_before_sending(&both, "INVALID_PARAMS").message().contains("exactly one"));
}
