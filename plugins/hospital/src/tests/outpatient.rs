//! Registration, fee upload, pre-settlement and settlement of an outpatient visit.

use onecard_sdk::PaymentError;
use onecard_sdk::payments::Kind;
use onecard_sdk::testing::{DEFAULT_NOW_MS, Harness};
use serde_json::{Value, json};

use super::fake::{self, Fault};
use super::*;

pub fn register(h: &mut Harness) -> String {
    let key = format!("reg-{}", h.calls().len());
    let r = req(h, "register", json!({"dept_code": "D01"})).with_idempotency_key(&key);
    h.ok(&r)["mdtrt_id"].as_str().unwrap().to_owned()
}

pub fn upload(h: &mut Harness, id: &str, lines: &[(&str, u32, u64)]) -> Value {
    let items: Vec<_> = lines.iter().map(|(sn, count, price)| json!({"sn": sn, "code": "XA01", "count": count, "unit_price_fen": price})).collect();
    let r = req(h, "upload_fees", json!({"mdtrt_id": id, "items": items}));
    h.ok(&r)
}

pub fn presettle(h: &mut Harness, id: &str) -> Value {
    let r = req(h, "presettle", json!({"mdtrt_id": id}));
    h.ok(&r)
}

pub fn settle(h: &Harness, id: &str, total: u64) -> Request {
    req(h, "settle", json!({"mdtrt_id": id, "total_fen": total}))
}

/// A registered visit with one fee line of `fee` fen, pre-settled.
pub fn ready(h: &mut Harness, fee: u64) -> String {
    let id = register(h);
    upload(h, &id, &[("1", 1, fee)]);
    presettle(h, &id);
    id
}

pub fn visit(h: &Harness, id: &str) -> Value {
    serde_json::from_slice(&h.kv_value(&format!("visit:{id}")).expect("visit stored")).unwrap()
}

#[test]
fn a_visit_settles_and_the_holder_pays_only_the_self_pay() {
    let mut h = Harness::new();
    let fake = fake::install(&mut h, 5_000);
    let id = register(&mut h);
    let up = upload(&mut h, &id, &[("1", 2, 12_500), ("2", 1, 5_000)]);
    assert_eq!(up["fees_total_fen"], 30_000);
    let pre = presettle(&mut h, &id);
    assert_eq!((pre["fund_fen"].as_u64(), pre["personal_account_fen"].as_u64(), pre["self_pay_fen"].as_u64()), (Some(14_000), Some(5_000), Some(11_000)));

    let b = h.ok(&settle(&h, &id, 30_000));
    let msgid = b["msgid"].as_str().unwrap();
    assert_eq!(b["total_fen"], 30_000);
    assert_eq!(b["fund_fen"].as_u64().unwrap() + b["personal_account_fen"].as_u64().unwrap() + b["self_pay_fen"].as_u64().unwrap(), 30_000);
    assert_eq!(b["self_pay_fen"], 11_000);
    assert_eq!(ledger_sum(&h, msgid), 11_000, "the ledger holds exactly the self-pay the response told");
    let entry = &h.ledger()[0];
    assert_eq!(entry.account, HOLDER);
    assert!(matches!(entry.kind, Kind::Debit));
    assert_eq!(entry.reference, format!("insurance-settlement:{}", b["setl_id"].as_str().unwrap()));
    assert_eq!(b["self_pay_receipt"].as_str(), Some("rcpt-1"));

    let fake = fake.borrow();
    assert_eq!(fake.infnos(), ["2201", "2204", "2206", "2207"]);
    assert_eq!(fake.last("2207").0, msgid);
    assert!(fake.settlements.contains_key(msgid));
    assert_eq!(fake.account_fen, 0, "the personal account part is paid inside the insurance system");
    assert_eq!(visit(&h, &id)["settlement"]["state"], "paid");
}

#[test]
fn message_ids_are_institution_code_local_time_and_a_daily_sequence() {
    let mut h = Harness::new();
    fake::install(&mut h, 0);
    let first = h.ok(&req(&h, "register", json!({"dept_code": "D01"})).with_idempotency_key("a"));
    h.set_now_ms(DEFAULT_NOW_MS + 61_000);
    let second = h.ok(&req(&h, "register", json!({"dept_code": "D01"})).with_idempotency_key("b"));
    assert_eq!(first["msgid"], "H33010600001202611231000000001");
    assert_eq!(second["msgid"], "H33010600001202611231001010002");
    h.set_now_ms(DEFAULT_NOW_MS + 86_400_000);
    let next_day = h.ok(&req(&h, "register", json!({"dept_code": "D01"})).with_idempotency_key("c"));
    assert_eq!(next_day["msgid"], "H33010600001202611241000000001");
}

#[test]
fn message_ids_run_out_after_9999_a_day() {
    let mut h = Harness::new();
    fake::install(&mut h, 0);
    for i in 0..9_999 {
        h.call::<Hospital>(&req(&h, "register", json!({"dept_code": "D01"})).with_idempotency_key(&i.to_string())).unwrap();
    }
    let last = req(&h, "register", json!({"dept_code": "D01"})).with_idempotency_key("last");
    let from = h.calls().len();
    assert_eq!(h.call::<Hospital>(&last).unwrap_err().code(), "MESSAGE_IDS_EXHAUSTED");
    assert_eq!(messages(&h.calls()[from..]), Vec::<String>::new());
    assert_eq!(writes(&h.calls()[from..]), []);
}

#[test]
fn the_settlement_message_id_is_stored_before_the_message_is_sent() {
    let mut h = Harness::new();
    fake::install(&mut h, 0);
    let id = ready(&mut h, 20_000);
    let from = h.calls().len();
    let b = h.ok(&settle(&h, &id, 20_000));
    let calls = &h.calls()[from..];
    let stored = calls.iter().position(|c| matches!(c, HostCall::KvCompareAndSwap { key, swapped: true } if *key == format!("visit:{id}")));
    let sent = calls.iter().position(|c| matches!(c, HostCall::Http { path, .. } if path == "/api/2207"));
    assert!(stored.unwrap() < sent.unwrap(), "the record with the message id is written before 2207 leaves");
    assert_eq!(visit(&h, &id)["settlement"]["msgid"], b["msgid"]);
}

#[test]
fn a_retried_settlement_is_answered_again_without_a_second_message_or_debit() {
    let mut h = Harness::new();
    let fake = fake::install(&mut h, 0);
    let id = ready(&mut h, 20_000);
    let first = h.ok(&settle(&h, &id, 20_000));
    let again = h.ok(&settle(&h, &id, 20_000));
    assert_eq!(again["replayed"], true);
    assert_eq!(again["msgid"], first["msgid"]);
    assert_eq!(again["self_pay_fen"], first["self_pay_fen"]);
    assert_eq!(fake.borrow().infnos().iter().filter(|i| **i == "2207").count(), 1);
    assert_eq!(h.ledger().len(), 1);
    assert_eq!(ledger_sum(&h, first["msgid"].as_str().unwrap()), first["self_pay_fen"].as_u64().unwrap());
}

#[test]
fn a_settlement_without_answer_is_reversed_and_never_resent() {
    for fault in [Fault::LostAnswer, Fault::Unreachable, Fault::Status(503)] {
        let mut h = Harness::new();
        let fake = fake::install(&mut h, 5_000);
        let id = ready(&mut h, 30_000);
        fake.borrow_mut().fail_next("2207", fault.clone());
        let err = h.call::<Hospital>(&settle(&h, &id, 30_000)).unwrap_err();
        assert_eq!(err.code(), "SETTLEMENT_REVERSED", "{fault:?}: {}", err.message());
        assert_eq!(h.ledger(), [], "{fault:?}: a reversed settlement leaves no ledger entry");
        let record = visit(&h, &id);
        assert_eq!(record["settlement"], Value::Null);
        let reversal = &record["reversals"][0];
        {
            let fake = fake.borrow();
            let (rmsgid, input) = fake.last("2601");
            assert_eq!(reversal["reversal_msgid"], rmsgid);
            assert_eq!(input["omsgid"], reversal["msgid"], "the reversal names the settlement's message id");
            assert_eq!(input["oinfno"], "2207");
            assert!(fake.settlements.is_empty(), "{fault:?}: nothing stays settled");
            assert_eq!(fake.account_fen, 5_000, "the personal account is restored");
        }

        // Settling again is a new settlement with a new message id, after the reversal.
        let b = h.ok(&settle(&h, &id, 30_000));
        assert_ne!(b["msgid"], reversal["msgid"]);
        assert_eq!(ledger_sum(&h, b["msgid"].as_str().unwrap()), b["self_pay_fen"].as_u64().unwrap());
        assert_eq!(h.ledger().len(), 1);
        let sent = fake.borrow().infnos().iter().filter(|i| **i == "2207").count();
        assert_eq!(sent, if matches!(fault, Fault::Unreachable) { 1 } else { 2 });
    }
}

#[test]
fn a_settlement_that_cannot_be_reversed_is_uncertain_and_blocks_settling() {
    let mut h = Harness::new();
    let fake = fake::install(&mut h, 0);
    let id = ready(&mut h, 20_000);
    fake.borrow_mut().fail_next("2207", Fault::LostAnswer);
    fake.borrow_mut().fail_next("2601", Fault::LostAnswer);
    let err = h.call::<Hospital>(&settle(&h, &id, 20_000)).unwrap_err();
    assert_eq!(err.code(), "SETTLEMENT_UNCERTAIN");
    assert_eq!(h.ledger(), []);
    assert_eq!(visit(&h, &id)["settlement"]["state"], "uncertain");
    h.refused_before_sending(&settle(&h, &id, 20_000), "SETTLEMENT_UNCERTAIN");
}

#[test]
fn an_insurance_refusal_changes_nothing() {
    let mut h = Harness::new();
    let fake = fake::install(&mut h, 0);
    let id = ready(&mut h, 20_000);
    fake.borrow_mut().fail_next("2207", Fault::Refuse("参保人待遇已暂停"));
    let err = h.refused(&settle(&h, &id, 20_000), "INSURANCE_REFUSED", &[&format!("visit:{id}")]);
    assert!(err.message().contains("参保人待遇已暂停"), "{}", err.message());
    assert!(fake.borrow().settlements.is_empty());
    assert!(!fake.borrow().infnos().contains(&"2601"), "a refusal needs no reversal");
}

#[test]
fn a_refused_or_unanswered_registration_opens_no_visit() {
    let mut h = Harness::new();
    let fake = fake::install(&mut h, 0);
    for (fault, code) in [
        (Fault::Refuse("无参保信息"), "INSURANCE_REFUSED"),
        (Fault::LostAnswer, "INSURANCE_UNAVAILABLE"),
        (Fault::EmptyOutput, "INSURANCE_MALFORMED"),
    ] {
        fake.borrow_mut().fail_next("2201", fault);
        let from = h.calls().len();
        let r = req(&h, "register", json!({"dept_code": "D01"})).with_idempotency_key(code);
        h.refused(&r, code, &[&format!("register:{HOLDER}:{code}")]);
        assert_eq!(writes(&h.calls()[from..]), [], "{code}");
    }
}

#[test]
fn a_retried_registration_answers_the_same_visit() {
    let mut h = Harness::new();
    let fake = fake::install(&mut h, 0);
    let r = req(&h, "register", json!({"dept_code": "D01"})).with_idempotency_key("once");
    let first = h.ok(&r);
    let again = h.ok(&r);
    assert_eq!(again["mdtrt_id"], first["mdtrt_id"]);
    assert_eq!(again["replayed"], true);
    assert_eq!(fake.borrow().infnos(), ["2201"]);
}

#[test]
fn the_confirmed_total_must_be_the_presettled_one() {
    let mut h = Harness::new();
    fake::install(&mut h, 0);
    let id = ready(&mut h, 20_000);
    let err = h.refused_before_sending(&settle(&h, &id, 19_999), "AMOUNT_MISMATCH");
    assert!(err.message().contains("20000"), "{}", err.message());
}

#[test]
fn a_settlement_answer_that_does_not_add_up_is_reversed() {
    let mut h = Harness::new();
    let fake = fake::install(&mut h, 0);
    let id = ready(&mut h, 20_000);
    fake.borrow_mut().fail_next("2207", Fault::SkewedSplit);
    h.refused(&settle(&h, &id, 20_000), "AMOUNT_MISMATCH", &[]);
    assert!(fake.borrow().settlements.is_empty(), "the settlement was reversed");
    assert_eq!(visit(&h, &id)["reversals"].as_array().unwrap().len(), 1);
}

#[test]
fn a_presettlement_needs_fees_and_a_settlement_needs_a_current_presettlement() {
    let mut h = Harness::new();
    let fake = fake::install(&mut h, 0);
    let id = register(&mut h);
    h.refused_before_sending(&req(&h, "presettle", json!({"mdtrt_id": id})), "FEES_NOT_UPLOADED");
    h.refused_before_sending(&settle(&h, &id, 100), "FEES_NOT_UPLOADED");
    upload(&mut h, &id, &[("1", 1, 20_000)]);
    h.refused_before_sending(&settle(&h, &id, 20_000), "NOT_PRESETTLED");
    presettle(&mut h, &id);
    upload(&mut h, &id, &[("2", 3, 1_000)]);
    h.refused_before_sending(&settle(&h, &id, 20_000), "NOT_PRESETTLED");
    let pre = presettle(&mut h, &id);
    assert_eq!(pre["total_fen"], 23_000);
    h.ok(&settle(&h, &id, 23_000));
    assert_eq!(fake.borrow().infnos(), ["2201", "2204", "2206", "2204", "2206", "2207"]);
}

#[test]
fn a_presettlement_that_disagrees_with_the_uploaded_fees_is_refused() {
    let mut h = Harness::new();
    let fake = fake::install(&mut h, 0);
    let id = register(&mut h);
    upload(&mut h, &id, &[("1", 1, 20_000)]);
    // The insurance system holds one more fee line than the hospital recorded.
    fake.borrow_mut().visits.get_mut(&id).unwrap().0.insert("x".into(), 500);
    let err = h.refused(&req(&h, "presettle", json!({"mdtrt_id": id})), "AMOUNT_MISMATCH", &[&format!("visit:{id}")]);
    assert!(err.message().contains("20500"), "{}", err.message());
}

#[test]
fn visits_are_the_holders_own() {
    let mut h = Harness::new();
    fake::install(&mut h, 0);
    let id = ready(&mut h, 20_000);
    h.refused_before_sending(&settle(&h, "MD9999", 20_000), "VISIT_UNKNOWN");
    let someone_else = settle(&h, &id, 20_000).with_card("holder-2");
    h.refused_before_sending(&someone_else, "VISIT_UNKNOWN");
    let upload_unknown = req(&h, "upload_fees", json!({"mdtrt_id": "MD9999", "items": [{"sn":"1","code":"X","count":1,"unit_price_fen":1}]}));
    h.refused_before_sending(&upload_unknown, "VISIT_UNKNOWN");
    h.refused_before_sending(&req(&h, "presettle", json!({"mdtrt_id": "MD9999"})), "VISIT_UNKNOWN");
}

#[test]
fn fees_cannot_change_once_settled() {
    let mut h = Harness::new();
    fake::install(&mut h, 0);
    let id = ready(&mut h, 20_000);
    h.ok(&settle(&h, &id, 20_000));
    let more = req(&h, "upload_fees", json!({"mdtrt_id": id, "items": [{"sn":"9","code":"X","count":1,"unit_price_fen":1}]}));
    h.refused_before_sending(&more, "VISIT_SETTLED");
    h.refused_before_sending(&req(&h, "presettle", json!({"mdtrt_id": id})), "VISIT_SETTLED");
}

#[test]
fn a_fee_line_is_uploaded_once() {
    let mut h = Harness::new();
    fake::install(&mut h, 0);
    let id = register(&mut h);
    upload(&mut h, &id, &[("1", 2, 500)]);
    let same = upload(&mut h, &id, &[("1", 2, 500)]);
    assert_eq!(same["fees_total_fen"], 1_000, "re-uploading a line does not count it twice");
    let changed = req(&h, "upload_fees", json!({"mdtrt_id": id, "items": [{"sn":"1","code":"XA01","count":3,"unit_price_fen":500}]}));
    h.refused_before_sending(&changed, "FEE_ITEM_CONFLICT");
    let twice = req(&h, "upload_fees", json!({"mdtrt_id": id, "items": [
        {"sn":"5","code":"A","count":1,"unit_price_fen":1}, {"sn":"5","code":"B","count":1,"unit_price_fen":2}]}));
    let err = h.refused_before_sending(&twice, "INVALID_PARAMS");
    assert!(err.message().contains("items[1].sn"), "{}", err.message());
}

#[test]
fn bad_parameters_name_the_field() {
    let mut h = Harness::new();
    fake::install(&mut h, 0);
    let bad = req(&h, "upload_fees", json!({"mdtrt_id": "MD1", "items": [{"sn":"1","code":"X","count":"two","unit_price_fen":1}]}));
    let err = h.refused_before_sending(&bad, "INVALID_PARAMS");
    assert!(err.message().contains("items[0].count"), "{}", err.message());
    let no_total = req(&h, "settle", json!({"mdtrt_id": "MD1"}));
    assert!(h.refused_before_sending(&no_total, "INVALID_PARAMS").message().contains("total_fen"));
}

#[test]
fn a_locked_financial_account_cannot_pay_a_self_pay() {
    let mut h = Harness::new();
    fake::install(&mut h, 0);
    let id = ready(&mut h, 20_000);
    let mut locked = settle(&h, &id, 20_000);
    locked.card.as_mut().unwrap().financial_locked = true;
    h.refused_before_sending(&locked, "CARD_FINANCIAL_LOCKED");

    // Without a self-pay the card's bank account is not touched, so a lock does not matter.
    let mut h = Harness::new();
    fake::install(&mut h, 1_000_000);
    let id = ready(&mut h, 20_000);
    let mut locked = settle(&h, &id, 20_000);
    locked.card.as_mut().unwrap().financial_locked = true;
    let b = h.ok(&locked);
    assert_eq!(b["self_pay_fen"], 0);
    assert_eq!(b["self_pay_receipt"], Value::Null);
    assert_eq!(h.ledger(), [], "nothing to pay moves no money");
}

#[test]
fn a_refused_self_pay_reverses_the_insurance_settlement() {
    for (error, code) in [
        (PaymentError::InsufficientFunds, "INSUFFICIENT_FUNDS"),
        (PaymentError::Declined("account frozen".into()), "PAYMENT_DECLINED"),
    ] {
        let mut h = Harness::new();
        let fake = fake::install(&mut h, 5_000);
        let id = ready(&mut h, 30_000);
        h.fail_payments(Some(error));
        let err = h.call::<Hospital>(&settle(&h, &id, 30_000)).unwrap_err();
        assert_eq!(err.code(), code);
        assert!(err.message().contains("reversed"), "{}", err.message());
        assert_eq!(h.ledger(), []);
        assert!(fake.borrow().settlements.is_empty());
        assert_eq!(fake.borrow().account_fen, 5_000);
        assert_eq!(visit(&h, &id)["settlement"], Value::Null);
    }
}

#[test]
fn a_self_pay_that_times_out_is_collected_on_retry_under_the_same_key() {
    let mut h = Harness::new();
    let fake = fake::install(&mut h, 0);
    let id = ready(&mut h, 20_000);
    h.fail_payments(Some(PaymentError::Timeout));
    let err = h.call::<Hospital>(&settle(&h, &id, 20_000)).unwrap_err();
    assert_eq!(err.code(), "SELF_PAY_PENDING");
    assert_eq!(h.ledger(), []);
    assert_eq!(visit(&h, &id)["settlement"]["state"], "settled");
    assert_eq!(fake.borrow().settlements.len(), 1, "the insurance settlement stands");

    h.fail_payments(None);
    let b = h.ok(&settle(&h, &id, 20_000));
    assert_eq!(ledger_sum(&h, b["msgid"].as_str().unwrap()), b["self_pay_fen"].as_u64().unwrap());
    assert_eq!(fake.borrow().infnos().iter().filter(|i| **i == "2207").count(), 1, "no second settlement message");
    assert!(!fake.borrow().infnos().contains(&"2601"));
}
