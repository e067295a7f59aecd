//! Native unit tests of the entry rules, through the SDK's in-memory harness.

use onecard_sdk::testing::{DEFAULT_NOW_MS, Harness};
use onecard_sdk::{Plugin, Request};
use serde_json::Value;

use crate::Parks;

const CONFIG: &str = r#"{"venues":{
  "west-lake": {"name":"West Lake","opens":"06:00","closes":"22:00","capacity_per_day":2,
     "terminals":["G1","G2"],
     "fees":{"standard_fen":1000,"senior_age":60,"senior_fen":0,"resident_regions":["3301"],"resident_fen":500}},
  "museum": {"name":"City Museum","opens":"09:00","closes":"17:00","capacity_per_day":100,
     "slots":[{"id":"am","starts":"09:00","ends":"12:00","capacity":1}],
     "fees":{"senior_age":65,"senior_fen":0}}
}}"#;

fn enter(h: &Harness, holder: &str) -> Request {
    h.request("enter", "{}").with_card(holder).with_venue("west-lake", "G1").with_config(CONFIG).with_idempotency_key(&format!("k-{holder}-{}", h.calls().len()))
}

fn body(r: onecard_sdk::Response) -> Value {
    serde_json::from_str(&r.body).unwrap()
}

#[test]
fn describes_its_actions() {
    let info = Parks::describe();
    let names: Vec<_> = info.actions.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["enter", "exit", "check", "issue_pass"]);
    for action in &info.actions {
        serde_json::from_str::<Value>(&action.params_schema).expect("schema is JSON");
    }
    assert_eq!(info.capabilities, ["kv"]);
}

#[test]
fn senior_enters_free_resident_discounted_visitor_pays() {
    let mut h = Harness::new();
    let senior = enter(&h, "s").with_attribute("holder.age", "67");
    let b = body(h.call::<Parks>(&senior).unwrap());
    assert_eq!(b["entitlement"]["kind"], "senior");
    assert_eq!(b["entitlement"]["fee_fen"], 0);
    let mut resident = enter(&h, "r");
    resident.card.as_mut().unwrap().issuing_region = "330106".into();
    let b = body(h.call::<Parks>(&resident).unwrap());
    assert_eq!(b["entitlement"]["kind"], "resident");
    assert_eq!(b["entitlement"]["fee_fen"], 500);
    assert_eq!(b["admitted_today"], 2);
}

#[test]
fn a_venue_without_a_ticket_admits_only_the_entitled() {
    let mut h = Harness::new();
    let young = h.request("enter", r#"{"slot":"am"}"#).with_card("y").with_attribute("holder.age", "30").with_venue("museum", "M1").with_config(CONFIG);
    assert_eq!(h.call::<Parks>(&young).unwrap_err().code(), "NOT_ENTITLED");
    assert!(h.kv_value("inside:museum:y").is_none(), "a refusal leaves no state");
}

#[test]
fn no_second_entry_without_exit_but_a_retry_is_answered_again() {
    let mut h = Harness::new();
    let first = enter(&h, "a");
    h.call::<Parks>(&first).unwrap();
    let retry = h.call::<Parks>(&first).unwrap();
    assert_eq!(body(retry)["replayed"], true);
    let second = enter(&h, "a").with_idempotency_key("another");
    assert_eq!(h.call::<Parks>(&second).unwrap_err().code(), "ALREADY_INSIDE");
    let exit = h.request("exit", "{}").with_card("a").with_venue("west-lake", "G2").with_config(CONFIG);
    h.call::<Parks>(&exit).unwrap();
    assert_eq!(h.call::<Parks>(&exit).unwrap_err().code(), "NOT_INSIDE");
    let again = enter(&h, "a").with_idempotency_key("third");
    h.call::<Parks>(&again).unwrap();
}

#[test]
fn daily_capacity_holds_and_a_refusal_gives_the_place_back() {
    let mut h = Harness::new();
    h.call::<Parks>(&enter(&h, "a")).unwrap();
    h.call::<Parks>(&enter(&h, "b")).unwrap();
    let third = enter(&h, "c");
    assert_eq!(h.call::<Parks>(&third).unwrap_err().code(), "CAPACITY_REACHED");
    assert!(h.kv_value("inside:west-lake:c").is_none());
    assert_eq!(h.kv_value("count:west-lake:2026-11-23").as_deref(), Some(&b"2"[..]));
}

#[test]
fn slot_capacity_holds_and_a_slot_is_required_where_venues_have_them() {
    let mut h = Harness::new();
    let in_slot = |h: &Harness, holder: &str, params: &str| {
        h.request("enter", params).with_card(holder).with_attribute("holder.age", "70").with_venue("museum", "M1").with_config(CONFIG)
    };
    assert_eq!(h.call::<Parks>(&in_slot(&h, "a", "{}")).unwrap_err().code(), "SLOT_REQUIRED");
    assert_eq!(h.call::<Parks>(&in_slot(&h, "a", r#"{"slot":"pm"}"#)).unwrap_err().code(), "SLOT_UNKNOWN");
    h.call::<Parks>(&in_slot(&h, "a", r#"{"slot":"am"}"#)).unwrap();
    h.set_now_ms(DEFAULT_NOW_MS + 3 * 3_600_000); // 13:00, after the morning slot
    assert_eq!(h.call::<Parks>(&in_slot(&h, "c", r#"{"slot":"am"}"#)).unwrap_err().code(), "OUTSIDE_SLOT");
    h.set_now_ms(DEFAULT_NOW_MS);
    assert_eq!(h.call::<Parks>(&in_slot(&h, "b", r#"{"slot":"am"}"#)).unwrap_err().code(), "CAPACITY_REACHED");
    assert_eq!(h.kv_value("count:museum:2026-11-23").as_deref(), Some(&b"1"[..]), "the day count was given back");
}

#[test]
fn closed_outside_opening_hours_and_only_registered_gates_admit() {
    let mut h = Harness::new();
    h.set_now_ms(DEFAULT_NOW_MS + 13 * 3_600_000); // 23:00 local
    assert_eq!(h.call::<Parks>(&enter(&h, "a")).unwrap_err().code(), "VENUE_CLOSED");
    h.set_now_ms(DEFAULT_NOW_MS);
    let wrong_gate = enter(&h, "a").with_venue("west-lake", "G9");
    assert_eq!(h.call::<Parks>(&wrong_gate).unwrap_err().code(), "TERMINAL_NOT_ALLOWED");
    let unknown = enter(&h, "a").with_venue("zoo", "G1");
    assert_eq!(h.call::<Parks>(&unknown).unwrap_err().code(), "VENUE_UNKNOWN");
}

#[test]
fn an_annual_pass_enters_free_until_it_expires() {
    let mut h = Harness::new();
    let issue = h.request("issue_pass", r#"{"valid_days":1}"#).with_card("p").with_config(CONFIG);
    h.call::<Parks>(&issue).unwrap();
    let b = body(h.call::<Parks>(&enter(&h, "p")).unwrap());
    assert_eq!(b["entitlement"]["kind"], "annual_pass");
    h.set_now_ms(DEFAULT_NOW_MS + 2 * 86_400_000 + 3_600_000);
    let later = enter(&h, "p").with_idempotency_key("later");
    let b = body(h.call::<Parks>(&later).unwrap());
    assert_eq!(b["entitlement"]["kind"], "resident", "the pass expired; the card is still a resident's");
}

#[test]
fn bad_parameters_name_the_field() {
    let mut h = Harness::new();
    let bad = h.request("enter", r#"{"slot":7}"#).with_card("a").with_venue("west-lake", "G1").with_config(CONFIG);
    let err = h.call::<Parks>(&bad).unwrap_err();
    assert_eq!(err.code(), "INVALID_PARAMS");
    assert!(err.message().contains("slot"), "{}", err.message());
    assert!(h.calls().iter().all(|c| !matches!(c, onecard_sdk::testing::HostCall::KvCompareAndSwap { .. })));
}
