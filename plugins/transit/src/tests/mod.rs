//! Native tests of the transit rules through the SDK's in-memory harness: `rules` covers each
//! rule and refusal, `random_day` checks a seeded random day of taps against an independent
//! fare computation, `worklog` the queue the uploads drain.

use std::cell::RefCell;
use std::rc::Rc;

use onecard_sdk::http::{IncomingResponse, OutgoingRequest};
use onecard_sdk::testing::{Harness, HostCall};
use onecard_sdk::{Plugin, Request, Response};
use serde_json::Value;

use crate::Transit;

mod random_day;
mod rules;
mod worklog;

/// A line of six stations by distance; `A` admits only through its two gates.
pub const CONFIG: &str = r#"{
  "stations": {
    "A": {"name": "Alpha", "position_m": 0, "terminals": ["A-G1", "A-G2"]},
    "B": {"name": "Bravo", "position_m": 2500},
    "C": {"name": "Charlie", "position_m": 6000},
    "D": {"name": "Delta", "position_m": 9000},
    "E": {"name": "Echo", "position_m": 15000},
    "F": {"name": "Foxtrot", "position_m": 30000}
  },
  "fares": {"distance": {
    "bands": [{"up_to_m": 6000, "fare_fen": 250}, {"up_to_m": 12000, "fare_fen": 390}, {"up_to_m": 22000, "fare_fen": 510}],
    "distances": [{"from": "F", "to": "A", "meters": 8000}]
  }},
  "max_fare_fen": 730,
  "concessions": {"senior": {"pay_percent": 0}, "student": {"pay_percent": 50}, "child": {"pay_percent": 45}}
}"#;

/// 2026-11-23 10:00 local (+08:00).
pub use onecard_sdk::testing::DEFAULT_NOW_MS as MONDAY_10AM;
pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 3_600_000;

/// A tap (`tap_in`/`tap_out`) of `holder` at `station`, through the station's first gate.
pub fn tap(h: &Harness, action: &str, holder: &str, station: &str, key: &str) -> Request {
    let gate = if station == "A" { "A-G1" } else { "G" };
    h.request(action, "{}")
        .with_card(holder)
        .with_attribute("holder.financial_account", &format!("acct-{holder}"))
        .with_venue(station, gate)
        .with_config(CONFIG)
        .with_idempotency_key(key)
}

pub fn upload(h: &Harness) -> Request {
    h.request("upload_pending", r#"{"max_trips":100}"#).with_config(CONFIG)
}

pub fn history(h: &Harness, holder: &str) -> Request {
    h.request("trip_history", r#"{"limit":50}"#).with_card(holder).with_config(CONFIG)
}

pub fn body(r: Response) -> Value {
    serde_json::from_str(&r.body).unwrap()
}

/// Host calls that change state: kv writes, counters, swaps that happened, uploads. (A payment
/// attempt is not a change; the ledger, which holds only payments that moved money, is checked.)
pub fn mutations(calls: &[HostCall]) -> Vec<HostCall> {
    calls
        .iter()
        .filter(|c| match c {
            HostCall::KvSet { .. } | HostCall::KvDelete { .. } | HostCall::KvIncrement { .. } => true,
            HostCall::Http { .. } => true,
            HostCall::KvCompareAndSwap { swapped, .. } => *swapped,
            _ => false,
        })
        .cloned()
        .collect()
}

/// Calls on the harness (methods, so that `h.ok(&tap(&h, ..))` borrows in two phases).
pub trait Calls {
    /// Call, expect success, and return the JSON body.
    fn ok(&mut self, request: &Request) -> Value;
    /// Call, expect the refusal `code`, check that nothing changed, and return the message.
    fn refused(&mut self, request: &Request, code: &str) -> String;
}

impl Calls for Harness {
    fn ok(&mut self, request: &Request) -> Value {
        match self.call::<Transit>(request) {
            Ok(response) => body(response),
            Err(e) => panic!("{} refused: {}: {}", request.action, e.code(), e.message()),
        }
    }

    fn refused(&mut self, request: &Request, code: &str) -> String {
        let (before, ledger) = (self.calls().len(), self.ledger().len());
        let err = self.call::<Transit>(request).unwrap_err();
        assert_eq!(err.code(), code, "{}", err.message());
        assert_eq!(mutations(&self.calls()[before..]), [], "a refusal ({code}) changes nothing");
        assert_eq!(self.ledger().len(), ledger);
        err.message().to_owned()
    }
}

/// A fare system that accepts every trip and records what it received.
pub fn fare_system(h: &mut Harness) -> Rc<RefCell<Vec<(String, Value)>>> {
    let received = Rc::new(RefCell::new(Vec::new()));
    let log = Rc::clone(&received);
    h.on_http(move |backend, request: &OutgoingRequest| {
        assert_eq!(backend, "fare-system");
        assert_eq!(request.path, "/trips");
        let key = request.headers.iter().find(|(k, _)| k == "idempotency-key").map(|(_, v)| v.clone()).unwrap_or_default();
        let trip: Value = serde_json::from_slice(&request.body).unwrap();
        let duplicate = log.borrow().iter().any(|(k, _)| *k == key);
        log.borrow_mut().push((key, trip));
        Ok(IncomingResponse { status: 200, headers: vec![], body: format!(r#"{{"accepted":true,"duplicate":{duplicate}}}"#).into_bytes() })
    });
    received
}

#[test]
fn describes_its_actions() {
    let info = Transit::describe();
    let names: Vec<_> = info.actions.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["tap_in", "tap_out", "upload_pending", "pay_arrears", "trip_history"]);
    for action in &info.actions {
        serde_json::from_str::<Value>(&action.params_schema).expect("schema is JSON");
    }
    let money: Vec<_> = info.actions.iter().filter(|a| a.moves_money).map(|a| a.name.as_str()).collect();
    assert_eq!(money, ["upload_pending", "pay_arrears"], "taps never move money");
    assert_eq!(info.capabilities, ["http", "kv", "payments"]);
}
