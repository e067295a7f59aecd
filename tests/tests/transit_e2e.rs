//! The transit plugin end to end: `onecard serve` with the real transit component filed online,
//! gates calling it over HTTP with signed requests and card tokens, the money settled by the
//! sandbox bank (`/bank/settlements`) and the trips uploaded to the sandbox fare system (`/fare`).
//!
//! - every refusal the plugin can give through the gateway, each with its code, each shown to
//!   change nothing: neither the bank's ledger, nor the fare system, nor the gateway's audit
//!   ledger, nor the holder's trips;
//! - a day of random taps (a seeded PRNG) whose fares match a computation written here
//!   independently of the plugin, and whose money balances: per trip, the bank's debit, the
//!   gateway's ledger entry and what the gate told the holder agree.
//!
//! Not covered here, because no test can force them through the gateway: `CONCURRENT_TAP` (two
//! taps of one card whose key-value reads and compare-and-swap interleave; taps call no backend,
//! so nothing can hold one of them in flight, and taps that do not interleave are both answered)
//! and `KV_CONTENDED` (a per-holder list changed by others between read and compare-and-swap 16
//! times in a row). `CARD_FINANCIAL_LOCKED` is reachable (entries are not money-moving actions, so
//! the gateway's card-status policy lets them through) and covered.
//!
//! The gateway runs on real time. The service day starts twelve hours from the test's start (the
//! boundary is configurable), so a day of taps never straddles two service days, whatever the
//! hour the test runs at; repeated taps are all within the replay window (five minutes).
#![allow(clippy::unwrap_used, reason = "test helpers too: a panic is the failure report (clippy.toml covers #[test] fns only)")]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::LazyLock;

use onecard_audit::canonical::{StoredLedger, ledger_digest};
use onecard_audit::{AuditRecord, AuditStore, LedgerRecord};
use onecard_tests::artifacts;
use onecard_tests::city::{Answer, CHANNEL, CityOptions, ExtraApp, TestCity, ssn_of, test_ssn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const APP: &str = "transit";

/// Stations: id, position along the line (m).
const STATIONS: [(&str, u64); 6] = [("s01", 0), ("s02", 1_800), ("s03", 5_200), ("s04", 9_000), ("s05", 14_500), ("s06", 23_000)];
/// Fare bands: up to this many metres, this fare.
const BANDS: [(u64, u64); 3] = [(6_000, 200), (12_000, 300), (20_000, 450)];
/// The branch line: s06–s01 is 9 km of track, not 23.
const PAIR: (&str, &str, u64) = ("s06", "s01", 9_000);
const MAX_FARE: u64 = 730;
/// Concessions by `holder.category`: the share paid, percent.
const CONCESSIONS: [(&str, u64); 3] = [("senior", 0), ("student", 50), ("disabled", 25)];

/// The holders of the day: card name, `holder.category`, financial account.
const RIDERS: [(&str, Option<&str>, &str); 4] =
    [("senior", Some("senior"), "ACCT-SENIOR"), ("young", Some("student"), "ACCT-YOUNG"), ("adult", None, "ACCT-ADULT"), ("revoked", Some("disabled"), "ACCT-REVOKED")];
const FUNDED_FEN: u64 = 1_000_000;

/// A card whose financial account is locked, and a card that shows no account (both registered
/// by this test's extra catalog, both consenting).
static LOCKED_SSN: LazyLock<String> = LazyLock::new(|| test_ssn(20));
static NO_ACCOUNT_SSN: LazyLock<String> = LazyLock::new(|| test_ssn(21));

/// `HH:MM` China time twelve hours from now: the next service-day boundary is far from the test.
fn service_day_starts() -> String {
    let minutes = (TestCity::now() / 60 + 8 * 60 + 12 * 60) % (24 * 60);
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

fn config() -> Value {
    let stations: serde_json::Map<String, Value> = STATIONS
        .iter()
        .map(|(id, pos)| {
            // The gate s01-G9 is registered in the catalog but not in the operator's station table.
            (id.to_string(), json!({ "name": format!("Station {id}"), "position_m": pos, "terminals": [format!("{id}-G1"), format!("{id}-G2")] }))
        })
        .collect();
    json!({
        "stations": stations,
        "fares": { "distance": {
            "bands": BANDS.iter().map(|(m, f)| json!({ "up_to_m": m, "fare_fen": f })).collect::<Vec<_>>(),
            "distances": [{ "from": PAIR.0, "to": PAIR.1, "meters": PAIR.2 }],
        }},
        "max_fare_fen": MAX_FARE,
        "service_day_starts": service_day_starts(),
        "concessions": CONCESSIONS.iter().map(|(c, p)| (c.to_string(), json!({ "pay_percent": p }))).collect::<serde_json::Map<_, _>>(),
    })
}

fn consent(id: &str, ssn: &str) -> String {
    format!(
        "[[consents]]\nid = \"{id}\"\ncard_ref = \"ssn:{ssn}\"\napplication = \"{APP}\"\nscopes = [\"holder.category\", \"holder.financial_account\"]\npurpose = \"fares and concessions\"\nchannel = \"{CHANNEL}\"\nnot_before = \"2026-01-01T00:00:00Z\"\nnot_after = \"2036-01-01T00:00:00Z\"\n\n"
    )
}

fn card(ssn: &str, n: u32, flags: &str) -> String {
    format!(
        "[[cards]]\ncard_ref = \"ssn:{ssn}\"\ncard_number = \"T{n:08}\"\ncard_id_code = \"330100D15600000500000000000001{n:02X}\"\nissuing_region = \"330100\"\nstatus = \"normal\"\nreal_name = true\nreal_card = true\nbank_activated = true\nvalid_until = \"2035-12-31T00:00:00Z\"\n{flags}\n\n"
    )
}

fn extra_catalog() -> String {
    let mut toml = String::new();
    for (id, _) in STATIONS {
        let extra = if id == "s01" { ", \"s01-G9\"" } else { "" };
        toml.push_str(&format!(
            "[[venues]]\nid = \"{id}\"\napplication = \"{APP}\"\nname = \"Station {id}\"\noperator_channel = \"{CHANNEL}\"\nterminals = [\"{id}-G1\", \"{id}-G2\"{extra}]\n\n"
        ));
    }
    // Registered to the application in the catalog, but not a station the operator configured.
    toml.push_str(&format!("[[venues]]\nid = \"s99\"\napplication = \"{APP}\"\nname = \"Closed station\"\noperator_channel = \"{CHANNEL}\"\n\n"));
    for (name, _, _) in RIDERS {
        toml.push_str(&consent(&format!("transit-{name}"), &ssn_of(name)));
    }
    toml.push_str(&card(&LOCKED_SSN, 20, "financial_locked = true"));
    toml.push_str(&consent("transit-locked", &LOCKED_SSN));
    toml.push_str(&card(&NO_ACCOUNT_SSN, 21, ""));
    toml.push_str(&consent("transit-no-account", &NO_ACCOUNT_SSN));
    toml
}

/// A test city with transit online, its backends in a sandbox, riders' accounts funded (except
/// `adult`'s when `fund_adult` is false).
struct Transit {
    city: TestCity,
    sandbox: SocketAddr,
}

impl Transit {
    async fn start(fund_adult: bool) -> Transit {
        let (sandbox, _task) = onecard_sandbox::spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let backends = BTreeMap::from([
            ("settlement".to_string(), format!("http://{sandbox}/bank")),
            ("fare-system".to_string(), format!("http://{sandbox}/fare")),
        ]);
        let mut holders = Vec::new();
        for (name, category, account) in RIDERS {
            if let Some(category) = category {
                holders.push((name, "holder.category", category.to_string()));
            }
            holders.push((name, "holder.financial_account", account.to_string()));
        }
        holders.push((LazyLock::force(&NO_ACCOUNT_SSN_REF).as_str(), "holder.category", "student".to_string()));
        let options = CityOptions {
            extra_catalog: extra_catalog(),
            // Generous plugin deadline: upload runs make several backend calls, on a shared machine.
            configure: |c| c.runtime.deadline_ms = 5_000,
            apps: vec![ExtraApp {
                id: APP.into(),
                wasm: artifacts::TRANSIT.into(),
                config: config(),
                backends,
                card_status_policy: BTreeMap::new(),
            }],
            holders,
        };
        let transit = Transit { city: TestCity::start(artifacts::PARKS, options).await, sandbox };
        for (name, _, account) in RIDERS {
            if fund_adult || name != "adult" {
                transit.fund(account, FUNDED_FEN).await;
            }
        }
        transit
    }

    async fn fund(&self, account: &str, fen: u64) {
        let response = self.city.http.put(format!("http://{}/bank/_balances/{account}", self.sandbox)).json(&json!({ "balance_fen": fen })).send().await.unwrap();
        assert!(response.status().is_success());
    }

    async fn faults(&self, faults: Value) {
        self.faults_of("bank", faults).await;
    }

    /// Sets the fault switches of the sandbox's `backend` (`bank` or `fare`).
    async fn faults_of(&self, backend: &str, faults: Value) {
        let response = self.city.http.put(format!("http://{}/{backend}/_faults", self.sandbox)).json(&faults).send().await.unwrap();
        assert!(response.status().is_success(), "{faults}");
    }

    async fn sandbox(&self, path: &str) -> Value {
        self.city.http.get(format!("http://{}{path}", self.sandbox)).send().await.unwrap().json().await.unwrap()
    }

    /// A tap of `card` (a card name, or a card reference) at `station`'s gate G1.
    async fn tap(&self, action: &str, card: &str, station: Option<&str>, terminal: Option<&str>) -> Answer {
        let credential = match self.city.cards.get(card) {
            Some(_) => self.city.token(card),
            None => self.city.token_for(card),
        };
        let mut body = json!({ "credential": credential, "idempotency_key": onecard_gateway::auth::random_nonce() });
        if let Some(station) = station {
            body["venue"] = json!(station);
            body["terminal"] = json!(terminal.map_or_else(|| format!("{station}-G1"), str::to_string));
        }
        self.city.call(APP, action, &body).await
    }

    async fn pay_arrears(&self, card: &str) -> Answer {
        let body = json!({ "credential": self.city.token(card), "idempotency_key": onecard_gateway::auth::random_nonce() });
        self.city.call(APP, "pay_arrears", &body).await
    }

    async fn upload(&self, max_trips: u64) -> Answer {
        let answer = self.upload_answer(max_trips).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer
    }

    /// `upload_pending`, whatever it answers.
    async fn upload_answer(&self, max_trips: u64) -> Answer {
        let body = json!({ "params": { "max_trips": max_trips }, "idempotency_key": onecard_gateway::auth::random_nonce() });
        self.city.call(APP, "upload_pending", &body).await
    }

    async fn history(&self, card: &str) -> Value {
        let credential = match self.city.cards.get(card) {
            Some(_) => self.city.token(card),
            None => self.city.token_for(card),
        };
        let answer = self.city.call(APP, "trip_history", &json!({ "credential": credential, "params": { "limit": 50 } })).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body["result"].clone()
    }

    async fn audit(&self) -> AuditStore {
        self.city.running.gateway.audit.flush().await.unwrap();
        AuditStore::connect(&self.city.database, &self.city.running.gateway.config.gateway_id).await.unwrap()
    }

    async fn records(&self) -> Vec<AuditRecord> {
        self.audit().await.records(0, 1_000_000).await.unwrap()
    }

    /// Everything a refusal must leave as it was: the bank's entries and balances, the fare
    /// system's trips, the records that committed ledger entries, and the card's trips.
    async fn snapshot(&self, card: &str) -> Value {
        let bank = self.sandbox("/bank/_state").await;
        let fare = self.sandbox("/fare/_state").await;
        let ledgers: Vec<String> = self.records().await.into_iter().filter_map(|r| r.fields.ledger_sha256).collect();
        json!({
            "bank_entries": bank["ledger"]["entries"],
            "bank_balances": bank["ledger"]["balances"],
            "fare_trips": fare["trips"],
            "ledgers": ledgers,
            "history": self.history(card).await,
        })
    }

    /// Asserts `answer` is the refusal `code` with `status`, audited without a ledger entry.
    async fn refused(&self, answer: &Answer, code: &str, status: u16) {
        assert_eq!((answer.status, answer.code()), (status, code), "{}", answer.body);
        assert_eq!(answer.body["decision"], "refused");
        let record = self.city.audit(answer.request_id()).await;
        assert_eq!(record.code.as_deref(), Some(code));
        assert_eq!(record.ledger_sha256, None, "{code}: a refusal commits no ledger entry");
    }

    async fn ledger(&self, key: &str) -> Option<LedgerRecord> {
        self.audit().await.ledger_entry(APP, key).await.unwrap()
    }
}

static NO_ACCOUNT_SSN_REF: LazyLock<String> = LazyLock::new(|| format!("ssn:{}", *NO_ACCOUNT_SSN));

async fn card_ref(transit: &Transit, ssn: &str) -> String {
    transit.city.store.card_ref(ssn).await.unwrap()
}

/// A refusal at the gate: its code, the tap, and the HTTP status.
struct GateCase {
    code: &'static str,
    action: &'static str,
    card: String,
    station: Option<&'static str>,
    terminal: Option<&'static str>,
    status: u16,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_code_and_changes_nothing() {
    let t = Transit::start(false).await;
    let locked = card_ref(&t, &LOCKED_SSN).await;
    let no_account = card_ref(&t, &NO_ACCOUNT_SSN).await;

    // Refusals at the gate.
    let gate = |code, action, card: &str, station, terminal, status| GateCase { code, action, card: card.to_string(), station, terminal, status };
    let cases = [
        gate("STATION_REQUIRED", "tap_in", "young", None, None, 400),
        gate("STATION_UNKNOWN", "tap_in", "young", Some("s99"), Some("s99-G1"), 400),
        gate("TERMINAL_NOT_ALLOWED", "tap_in", "young", Some("s01"), Some("s01-G9"), 422),
        gate("CARD_FINANCIAL_LOCKED", "tap_in", &locked, Some("s02"), None, 422),
        gate("FINANCIAL_ACCOUNT_MISSING", "tap_in", &no_account, Some("s02"), None, 422),
        gate("FINANCIAL_ACCOUNT_MISSING", "tap_out", &no_account, Some("s03"), None, 422),
    ];
    for c in cases {
        let before = t.snapshot(&c.card).await;
        let answer = t.tap(c.action, &c.card, c.station, c.terminal).await;
        t.refused(&answer, c.code, c.status).await;
        assert_eq!(t.snapshot(&c.card).await, before, "{} ({}) changed something", c.code, c.action);
    }

    // NO_ARREARS: a holder who owes nothing.
    let before = t.snapshot("young").await;
    t.refused(&t.pay_arrears("young").await, "NO_ARREARS", 422).await;
    assert_eq!(t.snapshot("young").await, before, "NO_ARREARS changed something");

    // A trip the (empty) account cannot pay becomes arrears.
    let entered = t.tap("tap_in", "adult", Some("s01"), None).await;
    assert_eq!(entered.status, 200, "{}", entered.body);
    let exited = t.tap("tap_out", "adult", Some("s04"), None).await;
    assert_eq!(exited.status, 200, "{}", exited.body);
    let trip_id = exited.body["result"]["trip_id"].as_str().unwrap().to_string();
    assert_eq!(exited.body["result"]["fare_fen"], 300, "s01–s04 is 9 km: the 300 fen band");
    let upload = t.upload(20).await;
    assert_eq!(upload.body["result"]["unpaid"], json!([trip_id]), "{}", upload.body);
    assert_eq!(t.city.audit(upload.request_id()).await.ledger_sha256, None, "a refused debit is no ledger entry");
    assert!(t.ledger(&trip_id).await.is_none());
    let history = t.history("adult").await;
    assert_eq!(history["arrears_fen"], 300);

    // FARE_ARREARS: no new trip while the holder owes fares.
    let before = t.snapshot("adult").await;
    t.refused(&t.tap("tap_in", "adult", Some("s02"), None).await, "FARE_ARREARS", 422).await;
    assert_eq!(t.snapshot("adult").await, before, "FARE_ARREARS changed something");

    // The bank's refusals of pay_arrears: the account is still empty, then the bank declines,
    // then its limit is exceeded.
    t.refused(&t.pay_arrears("adult").await, "INSUFFICIENT_FUNDS", 422).await;
    assert_eq!(t.snapshot("adult").await, before, "INSUFFICIENT_FUNDS changed something");
    t.fund("ACCT-ADULT", 1_000).await;
    let before = t.snapshot("adult").await;
    // The bank down (503) is no refusal of the holder's but a backend failure (502).
    for (bank_status, code, status) in [(422, "PAYMENT_DECLINED", 422), (429, "PAYMENT_LIMIT_EXCEEDED", 422), (503, "PAYMENT_UNAVAILABLE", 502)] {
        t.faults(json!({ "fail_next": 1, "status": bank_status })).await;
        t.refused(&t.pay_arrears("adult").await, code, status).await;
        assert_eq!(t.snapshot("adult").await, before, "{code} changed something");
    }

    // Paid at last: the bank's debit, the gateway's ledger entry and the answer agree.
    let paid = t.pay_arrears("adult").await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    assert_eq!(paid.body["result"]["paid"], json!([trip_id]));
    assert_eq!(paid.body["result"]["total_fen"], 300);
    let entry = t.ledger(&trip_id).await.expect("the arrears payment is in the ledger").entry;
    assert_eq!((entry.kind.as_str(), entry.account.as_str(), entry.amount_fen), ("debit", "ACCT-ADULT", 300));
    let bank = t.sandbox("/bank/_state").await;
    assert_eq!(bank["ledger"]["balances"]["ACCT-ADULT"], 700);
    let debits: Vec<&Value> = bank["ledger"]["entries"].as_array().unwrap().iter().filter(|e| e["settlement"]["account"] == "ACCT-ADULT").collect();
    assert_eq!(debits.len(), 1);
    assert_eq!(debits[0]["settlement"]["idempotency_key"], trip_id.as_str());
    assert_eq!(debits[0]["receipt"]["receipt_id"], entry.receipt_id.as_str());
    let record = t.city.audit(paid.request_id()).await;
    assert_eq!(record.ledger_sha256, Some(ledger_digest(&[StoredLedger::from_entry(&entry)])));

    // The trip is uploaded without a second debit, and the holder travels again.
    let upload = t.upload(20).await;
    assert_eq!(upload.body["result"]["uploaded"], json!([trip_id]), "{}", upload.body);
    assert_eq!(t.city.audit(upload.request_id()).await.ledger_sha256, None, "no second debit");
    assert_eq!(t.sandbox("/bank/_state").await["ledger"]["entries"].as_array().unwrap().len(), 1);
    let again = t.tap("tap_in", "adult", Some("s02"), None).await;
    assert_eq!(again.status, 200, "{}", again.body);
}

/// A run of `upload_pending` stopped by a failing backend: the bank down leaves the trip to be
/// debited later; the fare system down (an error status, or the connection cut) after the debit
/// leaves the trip debited once — the bank's entry and the gateway's ledger entry agree — and
/// the next run uploads it without debiting again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_backend_stops_the_upload_and_the_money_still_balances() {
    let t = Transit::start(true).await;
    let entered = t.tap("tap_in", "young", Some("s01"), None).await;
    assert_eq!(entered.status, 200, "{}", entered.body);
    let exited = t.tap("tap_out", "young", Some("s04"), None).await;
    assert_eq!(exited.status, 200, "{}", exited.body);
    let trip_id = exited.body["result"]["trip_id"].as_str().unwrap().to_string();
    // s01–s04: the 300 fen band, half of it for a student.
    const FARE: u64 = 150;
    assert_eq!(exited.body["result"]["fare_fen"], FARE);
    let trip_state = |history: &Value| history["trips"][0]["state"].clone();

    // The bank is down: nothing is debited, the trip waits.
    let before = t.snapshot("young").await;
    assert_eq!(trip_state(&before["history"]), "pending");
    t.faults(json!({ "fail_next": 1, "status": 503 })).await;
    t.refused(&t.upload_answer(20).await, "PAYMENT_UNAVAILABLE", 502).await;
    assert_eq!(t.snapshot("young").await, before, "PAYMENT_UNAVAILABLE changed something");

    // The fare system answers 503 after the debit: the run stops with the trip debited, and that
    // debit is committed with the run's audit record.
    t.faults_of("fare", json!({ "fail_next": 1, "status": 503 })).await;
    let stopped = t.upload_answer(20).await;
    assert_eq!((stopped.status, stopped.code()), (502, "FARE_SYSTEM_UNAVAILABLE"), "{}", stopped.body);
    assert_eq!(stopped.body["decision"], "refused");
    let entry = t.ledger(&trip_id).await.expect("the debit is in the gateway's ledger").entry;
    assert_eq!((entry.kind.as_str(), entry.account.as_str(), entry.amount_fen), ("debit", "ACCT-YOUNG", FARE));
    let record = t.city.audit(stopped.request_id()).await;
    assert_eq!(record.code.as_deref(), Some("FARE_SYSTEM_UNAVAILABLE"));
    assert_eq!(record.status, 502);
    assert_eq!(record.ledger_sha256, Some(ledger_digest(&[StoredLedger::from_entry(&entry)])), "the debit commits with the failed run");
    let bank = t.sandbox("/bank/_state").await;
    let entries = bank["ledger"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["settlement"]["idempotency_key"], trip_id.as_str());
    assert_eq!(entries[0]["settlement"]["amount_fen"], FARE);
    assert_eq!(entries[0]["receipt"]["receipt_id"], entry.receipt_id.as_str());
    assert_eq!(bank["ledger"]["balances"]["ACCT-YOUNG"], FUNDED_FEN - FARE);
    assert_eq!(t.sandbox("/fare/_state").await["trips"], json!([]), "nothing uploaded");
    let debited = t.snapshot("young").await;
    assert_eq!(trip_state(&debited["history"]), "paid");

    // The fare system's connection breaks: nothing changes, the trip stays debited once.
    t.faults_of("fare", json!({ "disconnect_next": 1 })).await;
    t.refused(&t.upload_answer(20).await, "BACKEND_UNAVAILABLE", 502).await;
    assert_eq!(t.snapshot("young").await, debited, "BACKEND_UNAVAILABLE changed something");

    // Both back: the trip is uploaded without a second debit.
    let upload = t.upload(20).await;
    assert_eq!(upload.body["result"]["uploaded"], json!([trip_id]), "{}", upload.body);
    assert_eq!(t.city.audit(upload.request_id()).await.ledger_sha256, None, "no second debit");
    let bank = t.sandbox("/bank/_state").await;
    assert_eq!(bank["ledger"]["entries"].as_array().unwrap().len(), 1);
    assert_eq!(bank["ledger"]["balances"]["ACCT-YOUNG"], FUNDED_FEN - FARE);
    assert_eq!(t.city.ledger(APP).await.len(), 1, "one gateway ledger entry");
    let fare_trips = t.sandbox("/fare/trips").await;
    assert_eq!(fare_trips.as_array().unwrap().len(), 1);
    assert_eq!((fare_trips[0]["trip_id"].as_str(), fare_trips[0]["fare_fen"].as_u64()), (Some(trip_id.as_str()), Some(FARE)));
    assert_eq!(trip_state(&t.history("young").await), "uploaded");
}

/// What this test expects of one trip, computed here.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    rider: &'static str,
    rule: &'static str,
    entry: Option<&'static str>,
    exit: Option<&'static str>,
    full_fen: u64,
    fare_fen: u64,
}

/// The fare table as a passenger would read it off the station wall.
fn full_fare(from: &str, to: &str) -> u64 {
    let position = |s: &str| STATIONS.iter().find(|(id, _)| *id == s).map(|(_, p)| *p).unwrap();
    let meters = if (from, to) == (PAIR.0, PAIR.1) || (to, from) == (PAIR.0, PAIR.1) {
        PAIR.2
    } else {
        position(from).abs_diff(position(to))
    };
    BANDS.iter().find(|(up_to, _)| meters <= *up_to).map_or(MAX_FARE, |(_, fare)| *fare)
}

/// What a rider of `category` pays of `full`: the percentage, rounded to the nearest fen
/// (halves up).
fn pays(category: Option<&str>, full: u64) -> u64 {
    let Some(percent) = category.and_then(|c| CONCESSIONS.iter().find(|(name, _)| *name == c)).map(|(_, p)| *p) else {
        return full;
    };
    let hundredths = full * percent;
    hundredths / 100 + u64::from(hundredths % 100 >= 50)
}

#[derive(Debug, Default)]
struct Rider {
    /// The open entry: station, trip id.
    open: Option<(&'static str, String)>,
    /// The last exit: station, trip id.
    last_exit: Option<(&'static str, String)>,
}

fn check_charge(charge: &Value, expected: &Expected, what: &str) {
    assert_eq!(charge["rule"], expected.rule, "{what}: {charge}");
    assert_eq!(charge["entry_station"], json!(expected.entry), "{what}: {charge}");
    assert_eq!(charge["exit_station"], json!(expected.exit), "{what}: {charge}");
    assert_eq!(charge["full_fare_fen"], expected.full_fen, "{what}: {charge}");
    assert_eq!(charge["fare_fen"], expected.fare_fen, "{what}: {charge}");
}

const SEED: u64 = 0x5EED_2026_1123;
const TAPS: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_of_random_taps_is_charged_as_computed_and_the_money_balances() {
    let t = Transit::start(true).await;
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut riders: BTreeMap<&str, Rider> = RIDERS.iter().map(|(name, _, _)| (*name, Rider::default())).collect();
    let mut expected: BTreeMap<String, Expected> = BTreeMap::new();
    let mut uploads = Vec::new();

    for step in 0..TAPS {
        let (name, category, _) = RIDERS[rng.random_range(0..RIDERS.len())];
        let station = STATIONS[rng.random_range(0..STATIONS.len())].0;
        let tap_in = rng.random_bool(0.55);
        let what = format!("step {step}: {name} {} at {station}", if tap_in { "in" } else { "out" });
        let rider = riders.get_mut(name).unwrap();
        let answer = t.tap(if tap_in { "tap_in" } else { "tap_out" }, name, Some(station), None).await;
        assert_eq!(answer.status, 200, "{what}: {}", answer.body);
        let result = &answer.body["result"];
        if tap_in {
            match rider.open.take() {
                // The same station again within the replay window: answered again.
                Some((at, trip)) if at == station => {
                    assert_eq!((result["replayed"].as_bool(), result["trip_id"].as_str()), (Some(true), Some(trip.as_str())), "{what}: {result}");
                    assert_eq!(result["charged"], json!([]), "{what}");
                    rider.open = Some((at, trip));
                }
                previous => {
                    assert_eq!(result["replayed"], false, "{what}: {result}");
                    let charged = result["charged"].as_array().unwrap();
                    match previous {
                        // An entry left open elsewhere is closed by the open-entry rule.
                        Some((at, trip)) => {
                            let e = Expected { rider: name, rule: "open_entry", entry: Some(at), exit: None, full_fen: MAX_FARE, fare_fen: pays(category, MAX_FARE) };
                            assert_eq!(charged.len(), 1, "{what}: {result}");
                            assert_eq!(charged[0]["trip_id"], trip.as_str(), "{what}");
                            check_charge(&charged[0], &e, &what);
                            expected.insert(trip, e);
                        }
                        None => assert!(charged.is_empty(), "{what}: {result}"),
                    }
                    rider.open = Some((station, result["trip_id"].as_str().unwrap().to_string()));
                }
            }
        } else {
            let trip_id = result["trip_id"].as_str().unwrap().to_string();
            match (rider.open.take(), rider.last_exit.clone()) {
                (Some((at, trip)), _) => {
                    let full = full_fare(at, station);
                    let e = Expected { rider: name, rule: "fare", entry: Some(at), exit: Some(station), full_fen: full, fare_fen: pays(category, full) };
                    assert_eq!((trip_id.as_str(), result["replayed"].as_bool()), (trip.as_str(), Some(false)), "{what}: {result}");
                    check_charge(result, &e, &what);
                    expected.insert(trip_id.clone(), e);
                    rider.last_exit = Some((station, trip_id));
                }
                // The same exit gate again, no entry since: answered again with the same trip.
                (None, Some((at, trip))) if at == station => {
                    assert_eq!((trip_id.as_str(), result["replayed"].as_bool()), (trip.as_str(), Some(true)), "{what}: {result}");
                    check_charge(result, &expected[&trip], &what);
                }
                (None, _) => {
                    let e = Expected { rider: name, rule: "exit_without_entry", entry: None, exit: Some(station), full_fen: MAX_FARE, fare_fen: pays(category, MAX_FARE) };
                    assert_eq!(result["replayed"], false, "{what}: {result}");
                    check_charge(result, &e, &what);
                    assert!(!expected.contains_key(&trip_id), "{what}: a new trip id");
                    expected.insert(trip_id.clone(), e);
                    rider.last_exit = Some((station, trip_id));
                }
            }
            assert_eq!(result["charged"], json!([]), "{what}: no stale entry within one service day");
        }
        // The operator's scheduler runs now and then during the day.
        if step % 20 == 19 {
            uploads.push(t.upload(7).await);
        }
    }
    // End of the day: settle everything closed.
    for _ in 0..20 {
        let answer = t.upload(7).await;
        let remaining = answer.body["result"]["remaining"].as_u64().unwrap();
        uploads.push(answer);
        if remaining == 0 {
            break;
        }
    }
    let kinds: BTreeSet<&str> = expected.values().map(|e| e.rule).collect();
    assert_eq!(kinds.len(), 3, "the seed exercises every rule: {kinds:?}");

    // Every closed trip was uploaded exactly once, none was refused or left unpaid.
    let mut uploaded = Vec::new();
    for answer in &uploads {
        let result = &answer.body["result"];
        assert_eq!((&result["unpaid"], &result["rejected"], &result["stopped"]), (&json!([]), &json!([]), &Value::Null), "{result}");
        uploaded.extend(result["uploaded"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()));
    }
    let uploaded_set: BTreeSet<&String> = uploaded.iter().collect();
    assert_eq!(uploaded_set.len(), uploaded.len(), "a trip uploaded twice");
    assert_eq!(uploaded_set, expected.keys().collect::<BTreeSet<_>>());

    // The fare system holds each trip as the gate told it.
    let fare_trips: Vec<Value> = serde_json::from_value(t.sandbox("/fare/trips").await).unwrap();
    assert_eq!(fare_trips.len(), expected.len());
    for trip in &fare_trips {
        let e = &expected[trip["trip_id"].as_str().unwrap()];
        assert_eq!(trip["fare_fen"], e.fare_fen, "{trip}");
        assert_eq!(trip["rule"], e.rule, "{trip}");
        assert_eq!(trip["holder_ref"], t.city.cards[e.rider].as_str(), "{trip}");
        assert_eq!(trip["entry"]["station"].as_str(), e.entry, "{trip}");
        assert_eq!(trip["exit"]["station"].as_str(), e.exit, "{trip}");
    }

    // Per trip: the bank's debit, the gateway's ledger entry and the told fare agree; free trips
    // move nothing.
    let bank = t.sandbox("/bank/_state").await;
    let bank_entries: BTreeMap<String, Value> =
        bank["ledger"]["entries"].as_array().unwrap().iter().map(|e| (e["settlement"]["idempotency_key"].as_str().unwrap().to_string(), e.clone())).collect();
    assert_eq!(bank_entries.len(), bank["ledger"]["entries"].as_array().unwrap().len(), "one bank entry per key");
    let mut ledger_by_seq: BTreeMap<i64, Vec<(String, StoredLedger)>> = BTreeMap::new();
    for (trip_id, e) in &expected {
        let account = RIDERS.iter().find(|(n, _, _)| *n == e.rider).unwrap().2;
        let ledger = t.ledger(trip_id).await;
        if e.fare_fen == 0 {
            assert!(ledger.is_none() && !bank_entries.contains_key(trip_id), "free trip {trip_id} moved money");
            continue;
        }
        let ledger = ledger.unwrap_or_else(|| panic!("trip {trip_id} has no ledger entry"));
        assert_eq!((ledger.entry.kind.as_str(), ledger.entry.account.as_str(), ledger.entry.amount_fen), ("debit", account, e.fare_fen), "{trip_id}");
        let bank_entry = &bank_entries[trip_id];
        assert_eq!(bank_entry["settlement"]["amount_fen"], e.fare_fen, "{trip_id}");
        assert_eq!(bank_entry["settlement"]["account"], account, "{trip_id}");
        assert_eq!(bank_entry["settlement"]["kind"], "debit", "{trip_id}");
        assert_eq!(bank_entry["receipt"]["receipt_id"], ledger.entry.receipt_id.as_str(), "{trip_id}");
        ledger_by_seq.entry(ledger.audit_seq).or_default().push((trip_id.clone(), StoredLedger::from_entry(&ledger.entry)));
    }
    assert_eq!(bank_entries.len(), expected.values().filter(|e| e.fare_fen > 0).count(), "a bank entry without a trip");

    // Per rider: the account went down by exactly the fares told.
    for (name, _, account) in RIDERS {
        let told: u64 = expected.values().filter(|e| e.rider == name).map(|e| e.fare_fen).sum();
        assert_eq!(bank["ledger"]["balances"][account], FUNDED_FEN - told, "{name}");
    }

    // Per upload run: the record's ledger digest covers exactly the debits made in that run, in
    // the order it uploaded them.
    let records = t.records().await;
    for answer in &uploads {
        let record = records.iter().find(|r| r.fields.request_id == answer.request_id()).unwrap();
        let order: Vec<&str> = answer.body["result"]["uploaded"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        let mut entries = ledger_by_seq.remove(&record.seq).unwrap_or_default();
        entries.sort_by_key(|(trip, _)| order.iter().position(|o| o == trip));
        let entries: Vec<StoredLedger> = entries.into_iter().map(|(_, l)| l).collect();
        let digest = (!entries.is_empty()).then(|| ledger_digest(&entries));
        assert_eq!(record.fields.ledger_sha256, digest, "upload {}", answer.request_id());
    }
    assert!(ledger_by_seq.is_empty(), "ledger entries committed outside the upload runs: {ledger_by_seq:?}");

    // The riders' own view agrees: all trips uploaded, entries still open as the model says.
    for (name, _, _) in RIDERS {
        let history = t.history(name).await;
        let open = riders[name].open.as_ref().map(|(_, trip)| trip.as_str());
        assert_eq!(history["open_entry"]["trip_id"].as_str(), open, "{name}");
        assert_eq!(history["arrears_fen"], 0, "{name}");
        let trips = history["trips"].as_array().unwrap();
        assert_eq!(trips.len(), expected.values().filter(|e| e.rider == name).count(), "{name}");
        assert!(trips.iter().all(|trip| trip["state"] == "uploaded"), "{name}: {trips:?}");
    }
}
