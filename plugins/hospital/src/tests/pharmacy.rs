//! A purchase at the pharmacy counter, settled in one step (2102).

use onecard_sdk::testing::Harness;
use serde_json::{Value, json};

use super::fake::{self, Fault};
use super::*;

fn purchase(h: &Harness, order: &str, lines: &[(u32, u64)], total: u64) -> Request {
    let items: Vec<_> =
        lines.iter().enumerate().map(|(i, (count, price))| json!({"sn": i.to_string(), "code": "XC01", "count": count, "unit_price_fen": price})).collect();
    req(h, "pharmacy_purchase", json!({"order_id": order, "items": items, "total_fen": total}))
}

fn order(h: &Harness, id: &str) -> Option<Value> {
    h.kv_value(&format!("pharmacy:{id}")).map(|b| serde_json::from_slice(&b).unwrap())
}

#[test]
fn a_purchase_settles_in_one_step_and_the_ledger_holds_the_self_pay() {
    let mut h = Harness::new();
    let fake = fake::install(&mut h, 2_000);
    let b = h.ok(&purchase(&h, "RX-1", &[(2, 6_000), (1, 3_000)], 15_000));
    assert_eq!(b["order_id"], "RX-1");
    assert_eq!((b["fund_fen"].as_u64(), b["personal_account_fen"].as_u64(), b["self_pay_fen"].as_u64()), (Some(3_500), Some(2_000), Some(9_500)));
    let msgid = b["msgid"].as_str().unwrap();
    assert_eq!(ledger_sum(&h, msgid), 9_500);
    let fake = fake.borrow();
    assert_eq!(fake.infnos(), ["2102"]);
    let (sent, input) = fake.last("2102");
    assert_eq!(sent, msgid);
    assert_eq!(input["medfee_sumamt"], "150.00");
    assert_eq!(input["drugdetail"][0]["pric"], "60.00");
    assert_eq!(input["drugdetail"][0]["det_item_fee_sumamt"], "120.00");

    drop(fake);
    let again = h.ok(&purchase(&h, "RX-1", &[(2, 6_000), (1, 3_000)], 15_000));
    assert_eq!(again["replayed"], true);
    assert_eq!(h.ledger().len(), 1);
}

#[test]
fn an_unanswered_purchase_is_reversed_and_can_be_bought_again() {
    let mut h = Harness::new();
    let fake = fake::install(&mut h, 0);
    fake.borrow_mut().fail_next("2102", Fault::LostAnswer);
    let err = h.call::<Hospital>(&purchase(&h, "RX-2", &[(1, 8_000)], 8_000)).unwrap_err();
    assert_eq!(err.code(), "SETTLEMENT_REVERSED");
    assert_eq!(h.ledger(), []);
    let (_, reversal) = fake.borrow().last("2601");
    assert_eq!(reversal["oinfno"], "2102");
    assert_eq!(reversal["omsgid"], fake.borrow().last("2102").0);
    assert!(fake.borrow().settlements.is_empty());
    assert_eq!(order(&h, "RX-2").unwrap()["reversals"].as_array().unwrap().len(), 1);

    let b = h.ok(&purchase(&h, "RX-2", &[(1, 8_000)], 8_000));
    assert_eq!(ledger_sum(&h, b["msgid"].as_str().unwrap()), 8_000);
}

#[test]
fn a_refused_purchase_leaves_no_order() {
    let mut h = Harness::new();
    let fake = fake::install(&mut h, 0);
    fake.borrow_mut().fail_next("2102", Fault::Refuse("药品不在目录内"));
    let err = h.refused(&purchase(&h, "RX-3", &[(1, 8_000)], 8_000), "INSURANCE_REFUSED", &["pharmacy:RX-3"]);
    assert!(err.message().contains("药品不在目录内"));
    assert_eq!(order(&h, "RX-3"), None);
}

#[test]
fn the_lines_must_add_up_to_the_confirmed_total() {
    let mut h = Harness::new();
    fake::install(&mut h, 0);
    h.refused_before_sending(&purchase(&h, "RX-4", &[(2, 6_000)], 11_000), "AMOUNT_MISMATCH");
}

#[test]
fn an_order_id_belongs_to_one_holder_and_amount() {
    let mut h = Harness::new();
    fake::install(&mut h, 0);
    h.ok(&purchase(&h, "RX-5", &[(1, 8_000)], 8_000));
    let other_holder = purchase(&h, "RX-5", &[(1, 8_000)], 8_000).with_card("holder-2");
    h.refused_before_sending(&other_holder, "ORDER_CONFLICT");
    h.refused_before_sending(&purchase(&h, "RX-5", &[(1, 9_000)], 9_000), "ORDER_CONFLICT");
}

#[test]
fn a_locked_financial_account_is_refused_before_anything_is_sent() {
    let mut h = Harness::new();
    fake::install(&mut h, 0);
    let mut locked = purchase(&h, "RX-6", &[(1, 8_000)], 8_000);
    locked.card.as_mut().unwrap().financial_locked = true;
    h.refused_before_sending(&locked, "CARD_FINANCIAL_LOCKED");
}
