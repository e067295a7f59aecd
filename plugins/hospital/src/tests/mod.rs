//! Native tests of the hospital plugin, through the SDK's harness and a scripted insurance system.

mod fake;
mod outpatient;
mod pharmacy;
mod reconcile;

use onecard_sdk::testing::{Harness, HostCall};
use onecard_sdk::{HandleError, Plugin, Request, Response};
use serde_json::{Value, json};

use crate::Hospital;

pub const CONFIG: &str = r#"{"institution_code":"H33010600001"}"#;
pub const HOLDER: &str = "holder-1";

pub fn req(h: &Harness, action: &str, params: Value) -> Request {
    h.request(action, &params.to_string()).with_config(CONFIG).with_card(HOLDER)
}

pub fn body(response: Response) -> Value {
    serde_json::from_str(&response.body).unwrap()
}

/// kv writes among `calls`, leaving out the message-id sequence (every message sent uses one).
pub fn writes(calls: &[HostCall]) -> Vec<HostCall> {
    calls
        .iter()
        .filter(|c| match c {
            HostCall::KvSet { .. } | HostCall::KvDelete { .. } => true,
            HostCall::KvCompareAndSwap { swapped, .. } => *swapped,
            HostCall::KvIncrement { key, .. } => !key.starts_with("msgseq:"),
            _ => false,
        })
        .cloned()
        .collect()
}

/// Messages (insurance paths) among `calls`.
pub fn messages(calls: &[HostCall]) -> Vec<String> {
    calls.iter().filter_map(|c| if let HostCall::Http { path, .. } = c { Some(path.clone()) } else { None }).collect()
}

/// Calling the plugin and checking what a call changed.
pub trait Calls {
    /// Expect success; the response body.
    fn ok(&mut self, request: &Request) -> Value;
    /// Expect `code`; the `keys` hold the same bytes afterwards and the ledger did not move.
    fn refused(&mut self, request: &Request, code: &str, keys: &[&str]) -> HandleError;
    /// Like [`Calls::refused`], and the plugin wrote nothing at all and sent no message.
    fn refused_before_sending(&mut self, request: &Request, code: &str) -> HandleError;
}

impl Calls for Harness {
    fn ok(&mut self, request: &Request) -> Value {
        match self.call::<Hospital>(request) {
            Ok(response) => body(response),
            Err(e) => panic!("{}: {}", e.code(), e.message()),
        }
    }

    fn refused(&mut self, request: &Request, code: &str, keys: &[&str]) -> HandleError {
        let before: Vec<_> = keys.iter().map(|k| self.kv_value(k)).collect();
        let ledger = self.ledger();
        let err = self.call::<Hospital>(request).unwrap_err();
        assert_eq!(err.code(), code, "{}", err.message());
        let after: Vec<_> = keys.iter().map(|k| self.kv_value(k)).collect();
        assert_eq!(before, after, "{code} changed kv");
        assert_eq!(self.ledger(), ledger, "{code} moved money");
        err
    }

    fn refused_before_sending(&mut self, request: &Request, code: &str) -> HandleError {
        let from = self.calls().len();
        let err = self.refused(request, code, &[]);
        let calls = &self.calls()[from..];
        assert_eq!(writes(calls), [], "{code} wrote kv");
        assert_eq!(messages(calls), Vec::<String>::new(), "{code} sent a message");
        assert!(!calls.iter().any(|c| matches!(c, HostCall::KvIncrement { .. })), "{code} used a message id");
        err
    }
}

/// Sum of the ledger entries under `key`.
pub fn ledger_sum(h: &Harness, key: &str) -> u64 {
    h.ledger().iter().filter(|p| p.idempotency_key == key).map(|p| p.amount_fen).sum()
}

#[test]
fn describes_its_actions() {
    let info = Hospital::describe();
    let names: Vec<_> = info.actions.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["register", "upload_fees", "presettle", "settle", "pharmacy_purchase", "reconcile"]);
    for action in &info.actions {
        serde_json::from_str::<Value>(&action.params_schema).expect("schema is JSON");
    }
    let moves: Vec<_> = info.actions.iter().filter(|a| a.moves_money).map(|a| a.name.as_str()).collect();
    assert_eq!(moves, ["settle", "pharmacy_purchase"]);
    assert_eq!(info.capabilities, ["http", "kv", "payments"]);
}

#[test]
fn a_bad_institution_code_is_a_configuration_fault() {
    let mut h = Harness::new();
    let bad = req(&h, "register", json!({"dept_code": "D01"})).with_config(r#"{"institution_code":"H3301"}"#);
    let err = h.call::<Hospital>(&bad).unwrap_err();
    assert_eq!(err.code(), "PLUGIN_INTERNAL");
    assert!(err.message().contains("institution_code"), "{}", err.message());
    let unknown_field = req(&h, "register", json!({"dept_code": "D01"})).with_config(r#"{"institution_code":"H33010600001","colour":1}"#);
    assert!(h.call::<Hospital>(&unknown_field).unwrap_err().message().contains("colour"));
}
