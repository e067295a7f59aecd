//! Native tests of the disbursement rules through the SDK's in-memory harness.
//!
//! The harness runs one call at a time, so "the same item sent twice concurrently" is tested by
//! its interleavings: a probe plugin (below) leaves the claim of a request still in flight, or of
//! one that paid and died, and the real call runs against it. The truly concurrent case runs
//! through the gateway in the end-to-end tests.

use onecard_sdk::payments::{Kind, Payment};
use onecard_sdk::testing::{DEFAULT_NOW_MS, Harness, HostCall};
use onecard_sdk::{CardStatus, HandleError, PaymentError, Plugin, PluginInfo, Request, Response};
use serde_json::{Value, json};

use crate::Subsidy;
use crate::claim::{self, Taken};

const CONFIG: &str = r#"{"policies":{
  "farm": {"name": "Farmland protection subsidy", "standard_fen": 150000, "household": true,
           "periods": {"2026": {"notice_ends": "2026-11-20"}, "2027": {"notice_ends": "2027-03-01"}}},
  "elder": {"name": "Elderly allowance", "standard_fen": 20000,
            "periods": {"2026-11": {"notice_ends": "2026-11-23"}}}
}}"#;

/// An item of `batch` paying `amount` to `who` under `policy`/`period`, with `who`'s own card:
/// alive, head of household, with a financial account.
fn item(h: &Harness, batch: &str, item: &str, policy: &str, period: &str, who: &str, amount: u64) -> Request {
    let params = json!({"batch_id": batch, "item_id": item, "policy": policy, "period": period, "beneficiary_ref": who, "amount_fen": amount});
    card(h.request("disburse", &params.to_string()), who, &[("holder.vital_status", "alive"), ("holder.household_role", "head")])
}

fn card(request: Request, who: &str, attributes: &[(&str, &str)]) -> Request {
    let mut request = request.with_card(who).with_config(CONFIG);
    for (scope, value) in attributes {
        request = request.with_attribute(scope, value);
    }
    request.with_attribute("holder.financial_account", &format!("acct-{who}"))
}

fn elder(h: &Harness, batch: &str, id: &str, who: &str) -> Request {
    item(h, batch, id, "elder", "2026-11", who, 20000)
}

fn body(r: Response) -> Value {
    serde_json::from_str(&r.body).unwrap()
}

fn reconcile(h: &mut Harness, batch: &str, extra: &str) -> Value {
    let request = h.request("reconcile", &format!(r#"{{"batch_id":"{batch}"{extra}}}"#)).with_config(CONFIG);
    body(h.call::<Subsidy>(&request).unwrap())
}

fn status(h: &mut Harness, policy: &str, period: &str, who: &str) -> Value {
    let params = json!({"policy": policy, "period": period, "beneficiary_ref": who}).to_string();
    let request = h.request("status", &params).with_config(CONFIG);
    body(h.call::<Subsidy>(&request).unwrap())
}

/// Keys a call wrote (sets, deletes, swaps that happened, counters).
fn written(calls: &[HostCall]) -> Vec<String> {
    calls
        .iter()
        .filter_map(|c| match c {
            HostCall::KvSet { key } | HostCall::KvDelete { key } | HostCall::KvIncrement { key, .. } => Some(key.clone()),
            HostCall::KvCompareAndSwap { key, swapped: true } => Some(key.clone()),
            _ => None,
        })
        .collect()
}

/// Expect the refusal `code`; check that no money moved, the claim of the item's (policy,
/// period, person) is as it was (a claim taken for a payment the bank refused is given back),
/// and the only other state written is the batch report's record of this refusal (when
/// `recorded`).
trait Refused {
    fn refused(&mut self, request: &Request, code: &str, recorded: bool) -> String;
}

impl Refused for Harness {
    fn refused(&mut self, request: &Request, code: &str, recorded: bool) -> String {
        refused(self, request, code, recorded)
    }
}

fn refused(h: &mut Harness, request: &Request, code: &str, recorded: bool) -> String {
    let params: Value = serde_json::from_str(&request.params).unwrap();
    let text = |k: &str| params[k].as_str().unwrap_or("-").to_owned();
    let claim_key = claim::key(&text("policy"), &text("period"), &text("beneficiary_ref"));
    let (before, ledger, claim) = (h.calls().len(), h.ledger().len(), h.kv_value(&claim_key));
    let err = h.call::<Subsidy>(request).unwrap_err();
    assert_eq!(err.code(), code, "{}", err.message());
    assert_eq!(h.ledger().len(), ledger, "{code}: no money moved");
    assert_eq!(h.kv_value(&claim_key), claim, "{code}: the claim is as it was");
    let (batch, id) = (text("batch_id"), text("item_id"));
    let (batch, id) = (batch.as_str(), id.as_str());
    let writes: Vec<String> =
        written(&h.calls()[before..]).into_iter().filter(|k| !k.starts_with("batch:") && *k != claim_key).collect();
    let expected = if recorded { vec![format!("item:{batch}:{id}")] } else { vec![] };
    assert_eq!(writes, expected, "{code}: only the batch report changes");
    if recorded {
        let report = reconcile(h, batch, "");
        let record = report["items"].as_array().unwrap().iter().find(|i| i["item_id"] == id).expect("the refusal is reported");
        assert_eq!((record["outcome"].as_str(), record["code"].as_str()), (Some("refused"), Some(code)));
    }
    err.message().to_owned()
}

#[test]
fn describes_its_actions() {
    let info = Subsidy::describe();
    let names: Vec<_> = info.actions.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["disburse", "reconcile", "status"]);
    for action in &info.actions {
        serde_json::from_str::<Value>(&action.params_schema).expect("schema is JSON");
    }
    assert_eq!(info.capabilities, ["kv", "payments"]);
    assert_eq!(info.actions[0].assurance, onecard_sdk::Assurance::RealPerson, "subsidy claims need all three assurances");
}

#[test]
fn an_item_is_credited_to_the_beneficiarys_own_account_once() {
    let mut h = Harness::new();
    let paid = body(h.call::<Subsidy>(&elder(&h, "b1", "i1", "p1")).unwrap());
    assert_eq!((paid["decision"].as_str(), paid["amount_fen"].as_u64(), paid["replayed"].as_bool()), (Some("paid"), Some(20000), Some(false)));
    let ledger = h.ledger();
    assert_eq!(ledger.len(), 1);
    let Payment { kind, account, amount_fen, reference, idempotency_key, .. } = &ledger[0];
    assert_eq!(*kind, Kind::Credit);
    assert_eq!((account.as_str(), *amount_fen), ("acct-p1", 20000));
    assert_eq!((reference.as_str(), idempotency_key.as_str()), ("b1/i1", "subsidy:elder:2026-11:p1"));
    assert_eq!(paid["receipt"], "rcpt-1");

    let resent = body(h.call::<Subsidy>(&elder(&h, "b1", "i1", "p1")).unwrap());
    assert_eq!((resent["replayed"].as_bool(), &resent["receipt"]), (Some(true), &paid["receipt"]));
    let payments = h.calls().iter().filter(|c| matches!(c, HostCall::Payment { .. })).count();
    assert_eq!(payments, 1, "a resent paid item does not reach the bank again");
    assert_eq!(status(&mut h, "elder", "2026-11", "p1")["state"], "paid");
    assert_eq!(status(&mut h, "elder", "2026-11", "p2")["state"], "unpaid");
}

#[test]
fn one_payment_per_policy_period_and_person() {
    let mut h = Harness::new();
    h.call::<Subsidy>(&elder(&h, "b1", "i1", "p1")).unwrap();
    let message = h.refused(&elder(&h, "b2", "i7", "p1"), "ALREADY_PAID", true);
    assert!(message.contains("batch b1 item i1"), "{message}");
    // Another period, another policy, another person: paid.
    h.call::<Subsidy>(&item(&h, "b2", "i8", "farm", "2026", "p1", 150000)).unwrap();
    h.call::<Subsidy>(&elder(&h, "b2", "i9", "p2")).unwrap();
    assert_eq!(h.ledger().iter().map(|p| p.amount_fen).collect::<Vec<_>>(), [20000, 150000, 20000]);
}

#[test]
fn every_eligibility_rule_refuses_with_its_code_and_changes_only_the_report() {
    let mut h = Harness::new();
    let alive_head = [("holder.vital_status", "alive"), ("holder.household_role", "head")];
    let farm = |h: &Harness, id: &str| item(h, "b1", id, "farm", "2026", "p1", 100000);
    h.refused(&item(&h, "b1", "1", "fishing", "2026", "p1", 100), "POLICY_UNKNOWN", true);
    h.refused(&item(&h, "b1", "2", "farm", "2025", "p1", 100), "PERIOD_UNKNOWN", true);
    let mut proxy = farm(&h, "3");
    proxy.card.as_mut().unwrap().holder_ref = "p1-son".into();
    h.refused(&proxy, "NOT_BENEFICIARY_CARD", true);
    let mut lost = farm(&h, "4");
    lost.card.as_mut().unwrap().status = CardStatus::TemporaryLoss;
    h.refused(&lost, "CARD_NOT_NORMAL", true);
    let base = farm(&h, "5");
    let deceased = card(Request { card: None, ..base.clone() }, "p1", &[("holder.vital_status", "deceased"), ("holder.household_role", "head")]);
    h.refused(&deceased, "PERSON_DECEASED", true);
    let unknown = card(Request { card: None, ..farm(&h, "6") }, "p1", &[("holder.household_role", "head")]);
    assert!(h.refused(&unknown, "PERSON_STATUS_UNKNOWN", true).contains("not shown"));
    let member = card(Request { card: None, ..farm(&h, "7") }, "p1", &[("holder.vital_status", "alive"), ("holder.household_role", "member")]);
    h.refused(&member, "NOT_HEAD_OF_HOUSEHOLD", true);
    h.refused(&item(&h, "b1", "8", "farm", "2026", "p1", 150001), "AMOUNT_ABOVE_STANDARD", true);
    h.refused(&item(&h, "b1", "9", "farm", "2027", "p1", 100), "NOTICE_PERIOD_OPEN", true);
    let mut locked = farm(&h, "10");
    locked.card.as_mut().unwrap().financial_locked = true;
    assert!(h.refused(&locked, "FINANCIAL_ACCOUNT_UNUSABLE", true).contains("locked"));
    let mut no_account = farm(&h, "11");
    no_account.card.as_mut().unwrap().attributes = alive_head.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
    assert!(h.refused(&no_account, "FINANCIAL_ACCOUNT_UNUSABLE", true).contains("no activated"));
    assert!(h.ledger().is_empty());
    assert_eq!(status(&mut h, "farm", "2026", "p1")["state"], "unpaid", "no claim was left behind");

    // A member of a household may receive a personal (non-household) subsidy.
    let member = card(Request { card: None, ..elder(&h, "b1", "12", "p1") }, "p1", &[("holder.vital_status", "alive"), ("holder.household_role", "member")]);
    h.call::<Subsidy>(&member).unwrap();
    let report = reconcile(&mut h, "b1", "");
    assert_eq!((report["refused_count"].as_u64(), report["paid_count"].as_u64()), (Some(11), Some(1)));
    assert_eq!(report["refused_by_code"]["FINANCIAL_ACCOUNT_UNUSABLE"], 2);
}

#[test]
fn the_notice_period_ends_on_its_date_local_time() {
    let mut h = Harness::new();
    // 2026-11-22 23:59 local: the elderly allowance's notice still runs.
    h.set_now_ms(DEFAULT_NOW_MS - (10 * 60 + 1) * 60_000);
    h.refused(&elder(&h, "b1", "i1", "p1"), "NOTICE_PERIOD_OPEN", true);
    h.set_now_ms(DEFAULT_NOW_MS - 10 * 60 * 60_000);
    h.call::<Subsidy>(&elder(&h, "b1", "i1", "p1")).unwrap();
    assert_eq!(reconcile(&mut h, "b1", "")["items"][0]["outcome"], "paid", "the paid outcome replaced the refusal");
}

#[test]
fn a_paid_item_resent_with_other_details_is_a_mismatch_and_changes_nothing() {
    let mut h = Harness::new();
    h.call::<Subsidy>(&elder(&h, "b1", "i1", "p1")).unwrap();
    let changed = item(&h, "b1", "i1", "elder", "2026-11", "p1", 19000);
    h.refused(&changed, "ITEM_MISMATCH", false);
}

#[test]
fn a_refused_payment_gives_the_claim_back_and_a_retry_pays() {
    let mut h = Harness::new();
    h.fail_payments(Some(PaymentError::Declined("account closed at the bank".into())));
    h.refused(&elder(&h, "b1", "i1", "p1"), "PAYMENT_DECLINED", true);
    assert_eq!(status(&mut h, "elder", "2026-11", "p1")["state"], "unpaid");
    h.fail_payments(Some(PaymentError::Timeout));
    let err = h.call::<Subsidy>(&elder(&h, "b1", "i1", "p1")).unwrap_err();
    assert_eq!(err.code(), "PAYMENT_TIMEOUT");
    assert_eq!(status(&mut h, "elder", "2026-11", "p1")["state"], "unpaid", "the claim was given back");
    assert_eq!(reconcile(&mut h, "b1", "")["items"][0]["code"], "PAYMENT_DECLINED", "a timeout is not an outcome");
    h.fail_payments(None);
    h.call::<Subsidy>(&elder(&h, "b1", "i1", "p1")).unwrap();
    assert_eq!(h.ledger().len(), 1);
    let report = reconcile(&mut h, "b1", "");
    assert_eq!((report["items_total"].as_u64(), report["paid_count"].as_u64(), report["refused_count"].as_u64()), (Some(1), Some(1), Some(0)));
}

/// Plays a request that is still paying, or that paid and died: `claim` takes the claim of the
/// params' triple for its item; `pay_and_die` also pays, without recording anything.
struct Probe;

impl Plugin for Probe {
    fn describe() -> PluginInfo {
        PluginInfo::new("probe", "0.0.0")
    }

    fn handle(request: Request) -> Result<Response, HandleError> {
        let p: Value = serde_json::from_str(&request.params).unwrap();
        let s = |k: &str| p[k].as_str().unwrap().to_owned();
        let key = claim::key(&s("policy"), &s("period"), &s("beneficiary_ref"));
        let now = onecard_sdk::clock::now().unix_ms;
        let taken = claim::take(&key, &s("batch_id"), &s("item_id"), now, 300_000)?;
        assert!(matches!(taken, Taken::Ours { .. }), "{taken:?}");
        if request.action == "pay_and_die" {
            onecard_sdk::payments::submit(&Payment {
                kind: Kind::Credit,
                account: format!("acct-{}", s("beneficiary_ref")),
                amount_fen: p["amount_fen"].as_u64().unwrap(),
                reference: format!("{}/{}", s("batch_id"), s("item_id")),
                idempotency_key: claim::idempotency_key(&s("policy"), &s("period"), &s("beneficiary_ref")),
                original_receipt: None,
            })?;
        }
        Response::json(&"ok")
    }
}

#[test]
fn the_same_item_sent_twice_at_once_pays_once() {
    let mut h = Harness::new();
    let first = elder(&h, "b1", "i1", "p1");
    // The first send holds the claim and is paying: the second send sees it.
    h.call::<Probe>(&Request { action: "claim".into(), ..first.clone() }).unwrap();
    h.refused(&first, "DISBURSEMENT_IN_PROGRESS", false);
    assert_eq!(status(&mut h, "elder", "2026-11", "p1")["state"], "in_progress");
    // Another batch's item for the same person meanwhile: also held off.
    h.refused(&elder(&h, "b2", "i1", "p1"), "DISBURSEMENT_IN_PROGRESS", false);
    assert!(h.ledger().is_empty());
}

#[test]
fn a_request_that_paid_and_died_is_taken_over_without_paying_twice() {
    let mut h = Harness::new();
    let sent = elder(&h, "b1", "i1", "p1");
    h.call::<Probe>(&Request { action: "pay_and_die".into(), ..sent.clone() }).unwrap();
    assert_eq!(h.ledger().len(), 1);
    h.set_now_ms(DEFAULT_NOW_MS + 300_000);
    h.refused(&sent, "DISBURSEMENT_IN_PROGRESS", false);
    h.set_now_ms(DEFAULT_NOW_MS + 300_001);
    let paid = body(h.call::<Subsidy>(&sent).unwrap());
    assert_eq!((paid["receipt"].as_str(), paid["amount_fen"].as_u64()), (Some("rcpt-1"), Some(20000)));
    assert_eq!(h.ledger().len(), 1, "the bank answered the same key with the same receipt");
    assert_eq!(status(&mut h, "elder", "2026-11", "p1")["state"], "paid");
    h.refused(&elder(&h, "b2", "i1", "p1"), "ALREADY_PAID", true);
}

#[test]
fn the_reconciliation_report_pages_and_its_totals_match_the_ledger() {
    let mut h = Harness::new();
    for i in 1..=4 {
        h.call::<Subsidy>(&elder(&h, "b9", &format!("i{i}"), &format!("p{i}"))).unwrap();
    }
    h.call::<Subsidy>(&item(&h, "b9", "i5", "farm", "2026", "p5", 123456)).unwrap();
    let mut proxy = elder(&h, "b9", "i6", "p6");
    proxy.card.as_mut().unwrap().holder_ref = "p7".into();
    h.call::<Subsidy>(&proxy).unwrap_err();
    h.call::<Subsidy>(&elder(&h, "b9", "i7", "p1")).unwrap_err();
    h.call::<Subsidy>(&elder(&h, "other", "i1", "p8")).unwrap();

    let all = reconcile(&mut h, "b9", "");
    assert_eq!((all["items_total"].as_u64(), all["next_offset"].clone()), (Some(7), Value::Null));
    assert_eq!((all["paid_count"].as_u64(), all["paid_fen"].as_u64()), (Some(5), Some(4 * 20000 + 123456)));
    assert_eq!(all["refused_by_code"], json!({"ALREADY_PAID": 1, "NOT_BENEFICIARY_CARD": 1}));
    let ledger_b9: u64 = h.ledger().iter().filter(|p| p.reference.starts_with("b9/")).map(|p| p.amount_fen).sum();
    assert_eq!(all["paid_fen"].as_u64(), Some(ledger_b9), "the report matches the bank's side");
    for paid in all["items"].as_array().unwrap().iter().filter(|i| i["outcome"] == "paid") {
        let receipt = paid["receipt"].as_str().unwrap();
        assert!(!receipt.is_empty());
    }

    let first = reconcile(&mut h, "b9", r#","limit":4"#);
    assert_eq!((first["items"].as_array().unwrap().len(), first["next_offset"].as_u64()), (4, Some(4)));
    let second = reconcile(&mut h, "b9", r#","offset":4,"limit":4"#);
    assert_eq!((second["items"].as_array().unwrap().len(), second["next_offset"].clone()), (3, Value::Null));
    let paged = first["paid_fen"].as_u64().unwrap() + second["paid_fen"].as_u64().unwrap();
    assert_eq!(Some(paged), all["paid_fen"].as_u64());
    assert_eq!(reconcile(&mut h, "nothing", "")["items_total"], 0);
}

#[test]
fn bad_parameters_name_the_field_and_change_nothing() {
    let mut h = Harness::new();
    let colon = item(&h, "b:1", "i1", "elder", "2026-11", "p1", 100);
    assert!(h.refused(&colon, "INVALID_PARAMS", false).contains("batch_id"));
    let zero = item(&h, "b1", "i1", "elder", "2026-11", "p1", 0);
    assert!(h.refused(&zero, "INVALID_PARAMS", false).contains("amount_fen"));
    let missing = card(h.request("disburse", r#"{"batch_id":"b1","item_id":"i1"}"#), "p1", &[]);
    assert!(h.refused(&missing, "INVALID_PARAMS", false).contains("policy"));
    let status = h.request("status", r#"{"policy":"fishing","period":"1","beneficiary_ref":"p1"}"#).with_config(CONFIG);
    assert_eq!(h.call::<Subsidy>(&status).unwrap_err().code(), "POLICY_UNKNOWN");
    let mut no_card = elder(&h, "b1", "i1", "p1");
    no_card.card = None;
    h.refused(&no_card, "CARD_REQUIRED", false);
}

#[test]
fn a_broken_configuration_is_a_plugin_fault() {
    let mut h = Harness::new();
    let request = elder(&h, "b1", "i1", "p1").with_config(&CONFIG.replace("2026-11-23", "23/11/2026"));
    let err = h.call::<Subsidy>(&request).unwrap_err();
    assert_eq!(err.code(), "PLUGIN_INTERNAL");
    assert!(err.message().contains("23/11/2026"), "{}", err.message());
    assert!(written(&h.calls()).is_empty());
}
