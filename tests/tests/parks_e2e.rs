//! The parks plugin end to end: `onecard serve` with the real parks component filed a second time
//! as `gardens`, configured with venues that exercise every rule of DOMAIN.md's park entry, and
//! called by a venue operator's gates over HTTP (signed requests, card tokens).
//!
//! - every refusal the plugin gives, each with its own code and status, each audited, and each
//!   shown to change nothing: the holder is not marked inside and no place is taken;
//! - entitlements: seniors free by the consented age, residents discounted by the card's issuing
//!   region, annual passes, a venue that admits only entitled holders;
//! - anti-passback with exit, idempotent retries of one entry, capacity per day and per slot;
//! - the plugin's state (who is inside, today's count, passes) survives a gateway restart.
//!
//! Parks moves no money (the fee is what the gate charges the holder itself), so the gateway's
//! ledger for the application stays empty throughout.
#![allow(clippy::unwrap_used, reason = "test helpers too: a panic is the failure report (clippy.toml covers #[test] fns only)")]

use std::collections::BTreeMap;

use onecard_gateway::auth::random_nonce;
use onecard_tests::artifacts;
use onecard_tests::city::{Answer, CHANNEL, CityOptions, ExtraApp, TestCity, ssn_of};
use serde_json::{Value, json};

const APP: &str = "gardens";

/// Venues of the gardens department. Opening hours and slots are either all day or never, so the
/// test does not depend on the hour it runs at.
fn config() -> Value {
    let fees = json!({ "standard_fen": 1000, "senior_age": 60, "senior_fen": 0, "resident_regions": ["3301"], "resident_fen": 500 });
    json!({ "venues": {
        // One entry a day, one gate.
        "tiny": { "name": "Tiny Garden", "opens": "00:00", "closes": "24:00", "capacity_per_day": 1, "terminals": ["T-1"], "fees": fees },
        // Closed at every minute of the day.
        "night": { "name": "Night Garden", "opens": "00:00", "closes": "00:00", "capacity_per_day": 100, "fees": fees },
        // Entry by time slot: one place in the all-day slot; a slot that never admits.
        "slotted": { "name": "Slotted Garden", "opens": "00:00", "closes": "24:00", "capacity_per_day": 100, "fees": fees,
            "slots": [
                { "id": "all-day", "starts": "00:00", "ends": "24:00", "capacity": 1 },
                { "id": "never", "starts": "00:00", "ends": "00:00", "capacity": 10 },
            ] },
        // No ordinary ticket, no senior rule, residents of another city: annual passes only.
        "members": { "name": "Members' Garden", "opens": "00:00", "closes": "24:00", "capacity_per_day": 100,
            "fees": { "resident_regions": ["4401"] } },
    }})
}

fn extra_catalog() -> String {
    let mut toml = String::new();
    // Registered in the catalog: the four venues of the plugin's configuration and `ghost`, which
    // the department has not configured. `tiny` lists a gate (T-2) its configuration does not.
    for (venue, terminals) in [("tiny", r#"["T-1", "T-2"]"#), ("night", "[]"), ("slotted", "[]"), ("members", "[]"), ("ghost", "[]")] {
        toml.push_str(&format!(
            "[[venues]]\nid = \"{venue}\"\napplication = \"{APP}\"\nname = \"{venue}\"\noperator_channel = \"{CHANNEL}\"\nterminals = {terminals}\n\n"
        ));
    }
    for card in ["senior", "young", "adult"] {
        toml.push_str(&format!(
            "[[consents]]\nid = \"gardens-{card}\"\ncard_ref = \"ssn:{}\"\napplication = \"{APP}\"\nscopes = [\"holder.age\"]\npurpose = \"entitlement\"\nchannel = \"{CHANNEL}\"\nnot_before = \"2026-01-01T00:00:00Z\"\nnot_after = \"2036-01-01T00:00:00Z\"\n\n",
            ssn_of(card)
        ));
    }
    toml
}

async fn city() -> TestCity {
    let options = CityOptions {
        extra_catalog: extra_catalog(),
        apps: vec![ExtraApp {
            id: APP.into(),
            wasm: artifacts::PARKS.into(),
            config: config(),
            backends: BTreeMap::new(),
            card_status_policy: BTreeMap::new(),
        }],
        ..CityOptions::default()
    };
    TestCity::start(artifacts::PARKS, options).await
}

/// A gate's request: `card` at `venue` (through `terminal`), with `params` and `key`.
fn body(city: &TestCity, card: &str, venue: Option<&str>, terminal: Option<&str>, params: Value, key: &str) -> Value {
    let mut body = json!({ "credential": city.token(card), "params": params, "idempotency_key": key });
    if let Some(venue) = venue {
        body["venue"] = json!(venue);
    }
    if let Some(terminal) = terminal {
        body["terminal"] = json!(terminal);
    }
    body
}

async fn enter(city: &TestCity, card: &str, venue: &str, params: Value) -> Answer {
    let terminal = (venue == "tiny").then_some("T-1");
    city.call(APP, "enter", &body(city, card, Some(venue), terminal, params, &random_nonce())).await
}

async fn exit(city: &TestCity, card: &str, venue: &str) -> Answer {
    let terminal = (venue == "tiny").then_some("T-1");
    city.call(APP, "exit", &body(city, card, Some(venue), terminal, json!({}), &random_nonce())).await
}

/// What the venue knows of `card` today: `(inside, admitted_today)`.
async fn check(city: &TestCity, card: &str, venue: &str) -> (bool, i64) {
    let answer = city.call(APP, "check", &body(city, card, Some(venue), None, json!({}), &random_nonce())).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    (answer.body["result"]["inside"].as_bool().unwrap(), answer.body["result"]["admitted_today"].as_i64().unwrap())
}

fn admitted(answer: &Answer) -> &Value {
    assert_eq!((answer.status, answer.body["decision"].as_str()), (200, Some("allowed")), "{}", answer.body);
    assert_eq!(answer.body["result"]["decision"], "admit", "{}", answer.body);
    &answer.body["result"]
}

/// Asserts the plugin's refusal `code` with `status`, and the audit record it left.
async fn refused(city: &TestCity, answer: &Answer, code: &str, status: u16) {
    assert_eq!((answer.status, answer.code()), (status, code), "{}", answer.body);
    assert_eq!(answer.body["decision"], "refused");
    let record = city.audit(answer.request_id()).await;
    assert_eq!(record.code.as_deref(), Some(code));
    assert_eq!(record.status, i64::from(status));
    assert_eq!(record.app, APP);
    assert_ne!(record.outcome, "allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entitlements_price_each_holder_by_the_cheapest_rule() {
    let city = city().await;
    // Senior by the consented age: free.
    let senior = enter(&city, "senior", "slotted", json!({ "slot": "all-day" })).await;
    assert_eq!(admitted(&senior)["entitlement"], json!({ "kind": "senior", "fee_fen": 0 }));
    // 25 years old, card issued in 3301: the resident price, not the standard one.
    let young = enter(&city, "young", "tiny", json!({})).await;
    assert_eq!(admitted(&young)["entitlement"], json!({ "kind": "resident", "fee_fen": 500 }));

    // The members' garden admits only entitled holders: no pass yet.
    let refusal = enter(&city, "adult", "members", json!({})).await;
    refused(&city, &refusal, "NOT_ENTITLED", 422).await;
    assert_eq!(check(&city, "adult", "members").await, (false, 0), "a refusal takes no place and marks nobody inside");

    // An annual pass needs the holder present in person (实人): the channel's face check.
    let pass = city
        .call(APP, "issue_pass", &json!({ "credential": city.token("adult"), "params": { "valid_days": 365 }, "verified": ["real_person"], "idempotency_key": random_nonce() }))
        .await;
    assert_eq!(pass.status, 200, "{}", pass.body);
    assert_eq!(pass.body["result"]["pass"], "annual");
    let with_pass = enter(&city, "adult", "members", json!({})).await;
    assert_eq!(admitted(&with_pass)["entitlement"], json!({ "kind": "annual_pass", "fee_fen": 0 }));

    // Parks moves no money.
    assert!(city.ledger(APP).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_passback_exit_and_idempotent_retries() {
    let city = city().await;
    let key = random_nonce();
    let first = city.call(APP, "enter", &body(&city, "senior", Some("slotted"), None, json!({ "slot": "all-day" }), &key)).await;
    assert_eq!(admitted(&first)["replayed"], false);
    // The gate lost the answer and retries the same entry (a new scan, the same idempotency key):
    // answered again, nothing counted twice.
    let retry = city.call(APP, "enter", &body(&city, "senior", Some("slotted"), None, json!({ "slot": "all-day" }), &key)).await;
    assert_eq!(admitted(&retry)["replayed"], true);
    assert_eq!(admitted(&retry)["admitted_today"], 1);
    // A second entry without exit is refused and changes nothing.
    let second = enter(&city, "senior", "slotted", json!({ "slot": "all-day" })).await;
    refused(&city, &second, "ALREADY_INSIDE", 422).await;
    assert_eq!(check(&city, "senior", "slotted").await, (true, 1));

    assert_eq!(exit(&city, "senior", "slotted").await.body["result"]["decision"], "exit");
    assert_eq!(check(&city, "senior", "slotted").await, (false, 1));
    let again = exit(&city, "senior", "slotted").await;
    refused(&city, &again, "NOT_INSIDE", 422).await;
    assert_eq!(check(&city, "senior", "slotted").await, (false, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_per_day_and_per_slot() {
    let city = city().await;
    // One entry a day at the tiny garden: it counts entries, not people inside.
    admitted(&enter(&city, "senior", "tiny", json!({})).await);
    let full = enter(&city, "adult", "tiny", json!({})).await;
    refused(&city, &full, "CAPACITY_REACHED", 422).await;
    assert_eq!(check(&city, "adult", "tiny").await, (false, 1), "the refused holder is not inside and took no place");
    exit(&city, "senior", "tiny").await;
    let back = enter(&city, "senior", "tiny", json!({})).await;
    refused(&city, &back, "CAPACITY_REACHED", 422).await;

    // One place in the all-day slot; the day has 100. A full slot gives the day's place back.
    admitted(&enter(&city, "young", "slotted", json!({ "slot": "all-day" })).await);
    let slot_full = enter(&city, "adult", "slotted", json!({ "slot": "all-day" })).await;
    refused(&city, &slot_full, "CAPACITY_REACHED", 422).await;
    assert_eq!(check(&city, "adult", "slotted").await, (false, 1), "the day's count was given back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_of_the_gate_has_its_own_code_and_changes_nothing() {
    let city = city().await;
    let cases: Vec<(&str, Option<&str>, Option<&str>, Value, &str, u16)> = vec![
        // The request names no venue: the plugin cannot tell which gate this is.
        ("no venue", None, None, json!({}), "VENUE_REQUIRED", 400),
        // Registered in the catalog, but the department has not configured it.
        ("unconfigured venue", Some("ghost"), None, json!({}), "VENUE_UNKNOWN", 400),
        // A gate the catalog registers but the venue's own configuration does not admit through.
        ("gate not configured", Some("tiny"), Some("T-2"), json!({}), "TERMINAL_NOT_ALLOWED", 422),
        ("closed", Some("night"), None, json!({}), "VENUE_CLOSED", 422),
        ("slot missing", Some("slotted"), None, json!({}), "SLOT_REQUIRED", 400),
        ("slot unknown", Some("slotted"), None, json!({ "slot": "dawn" }), "SLOT_UNKNOWN", 400),
        ("outside the slot", Some("slotted"), None, json!({ "slot": "never" }), "OUTSIDE_SLOT", 422),
        ("no entitlement", Some("members"), None, json!({}), "NOT_ENTITLED", 422),
    ];
    for (what, venue, terminal, params, code, status) in cases {
        let answer = city.call(APP, "enter", &body(&city, "young", venue, terminal, params, &random_nonce())).await;
        assert_eq!((answer.status, answer.code()), (status, code), "{what}: {}", answer.body);
        refused(&city, &answer, code, status).await;
    }
    // Nothing changed anywhere: the holder is inside no venue, no venue counted an entry.
    for venue in ["tiny", "night", "slotted", "members"] {
        assert_eq!(check(&city, "young", venue).await, (false, 0), "{venue}");
    }
    // And the holder still enters where entitled.
    admitted(&enter(&city, "young", "tiny", json!({})).await);
    // The gateway's own refusals come before the plugin: a gate the catalog does not register.
    let unregistered = city.call(APP, "enter", &body(&city, "senior", Some("tiny"), Some("T-9"), json!({}), &random_nonce())).await;
    refused(&city, &unregistered, "TERMINAL_NOT_REGISTERED", 403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_venue_state_survives_a_gateway_restart() {
    let mut city = city().await;
    admitted(&enter(&city, "senior", "tiny", json!({})).await);
    let pass = city
        .call(APP, "issue_pass", &json!({ "credential": city.token("adult"), "params": { "valid_days": 365 }, "verified": ["real_person"], "idempotency_key": random_nonce() }))
        .await;
    assert_eq!(pass.status, 200, "{}", pass.body);

    city.restart().await;
    // Still inside, the day's one place still taken, the pass still valid.
    refused(&city, &enter(&city, "senior", "tiny", json!({})).await, "ALREADY_INSIDE", 422).await;
    assert_eq!(check(&city, "senior", "tiny").await, (true, 1));
    refused(&city, &enter(&city, "young", "tiny", json!({})).await, "CAPACITY_REACHED", 422).await;
    assert_eq!(admitted(&enter(&city, "adult", "members", json!({})).await)["entitlement"]["kind"], "annual_pass");
}
