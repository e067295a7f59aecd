//! Each fare rule, each refusal, settlement and upload.

use onecard_sdk::PaymentError;
use onecard_sdk::http::IncomingResponse;
use onecard_sdk::testing::{Harness, HostCall};

use super::*;

#[test]
fn a_trip_pairs_entry_and_exit_and_the_taps_wait_on_no_backend() {
    let mut h = Harness::new();
    let entered = h.ok(&tap(&h, "tap_in", "h1", "A", "k1"));
    assert_eq!(entered["decision"], "enter");
    assert_eq!(entered["replayed"], false);
    h.set_now_ms(MONDAY_10AM + 20 * MINUTE);
    let exited = h.ok(&tap(&h, "tap_out", "h1", "D", "k2"));
    assert_eq!(exited["trip_id"], entered["trip_id"]);
    assert_eq!(exited["rule"], "fare");
    assert_eq!((exited["entry_station"].as_str(), exited["exit_station"].as_str()), (Some("A"), Some("D")));
    assert_eq!(exited["full_fare_fen"], 390);
    assert_eq!(exited["fare_fen"], 390);
    assert_eq!(exited["state"], "pending");
    assert!(
        h.calls().iter().all(|c| !matches!(c, HostCall::Http { .. } | HostCall::Payment { .. })),
        "a tap answers from the key-value store alone"
    );
    assert!(h.ledger().is_empty());

    let received = fare_system(&mut h);
    let run = h.ok(&upload(&h));
    let trip_id = exited["trip_id"].as_str().unwrap();
    assert_eq!(run["uploaded"], serde_json::json!([trip_id]));
    assert_eq!(run["remaining"], 0);
    let ledger = h.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!((ledger[0].amount_fen, ledger[0].idempotency_key.as_str(), ledger[0].account.as_str()), (390, trip_id, "acct-h1"));
    let received = received.borrow();
    assert_eq!(received.len(), 1);
    let (key, sent) = &received[0];
    assert_eq!(key, trip_id);
    assert_eq!(sent["trip_id"], trip_id);
    assert_eq!(sent["holder_ref"], "h1");
    assert_eq!(sent["entry"]["station"], "A");
    assert_eq!(sent["exit"]["station"], "D");
    assert_eq!(sent["exit"]["at_ms"], MONDAY_10AM + 20 * MINUTE);
    assert_eq!(sent["fare_fen"], 390);
    assert_eq!(sent["rule"], "fare");

    let again = h.ok(&upload(&h));
    assert_eq!(again["uploaded"], serde_json::json!([]), "an uploaded trip is not uploaded again");
    let history = h.ok(&history(&h, "h1"));
    assert_eq!(history["trips"][0]["state"], "uploaded");
    assert_eq!(history["open_entry"], Value::Null);
}

#[test]
fn distance_bands_listed_pairs_and_the_cap() {
    let mut h = Harness::new();
    for (i, (from, to, fare)) in [("A", "C", 250), ("C", "C", 250), ("A", "E", 510), ("F", "A", 390), ("B", "F", 730)].into_iter().enumerate() {
        h.set_now_ms(MONDAY_10AM + i as i64 * HOUR);
        h.ok(&tap(&h, "tap_in", "h", from, &format!("in{i}")));
        h.set_now_ms(MONDAY_10AM + i as i64 * HOUR + 30 * MINUTE);
        let out = h.ok(&tap(&h, "tap_out", "h", to, &format!("out{i}")));
        assert_eq!(out["fare_fen"], fare, "{from}→{to}");
    }
}

#[test]
fn zone_fares_count_the_zones_touched() {
    let config = r#"{"stations":{"A":{"name":"A","zone":1},"B":{"name":"B","zone":2},"C":{"name":"C","zone":3}},
        "fares":{"zones":{"bands":[{"zones_up_to":1,"fare_fen":200},{"zones_up_to":2,"fare_fen":300}]}},
        "max_fare_fen":500}"#;
    let mut h = Harness::new();
    let at = |h: &Harness, action: &str, station: &str, key: &str| {
        tap(h, action, "z", station, key).with_venue(station, "G").with_config(config)
    };
    for (i, (from, to, fare)) in [("A", "A", 200), ("A", "B", 300), ("C", "A", 500)].into_iter().enumerate() {
        h.set_now_ms(MONDAY_10AM + i as i64 * HOUR);
        h.ok(&at(&h, "tap_in", from, &format!("in{i}")));
        let out = h.ok(&at(&h, "tap_out", to, &format!("out{i}")));
        assert_eq!(out["fare_fen"], fare, "{from}→{to}");
    }
}

#[test]
fn concessions_by_holder_category_and_free_trips_move_no_money() {
    let mut h = Harness::new();
    let mut told = Vec::new();
    for (holder, category, fare) in [("sen", "senior", 0), ("stu", "student", 195), ("kid", "child", 176), ("pil", "pilot", 390)] {
        let entry = tap(&h, "tap_in", holder, "A", &format!("{holder}-in")).with_attribute("holder.category", category);
        h.ok(&entry);
        let exit = tap(&h, "tap_out", holder, "D", &format!("{holder}-out")).with_attribute("holder.category", category);
        let out = h.ok(&exit);
        assert_eq!((out["full_fare_fen"].as_u64(), out["fare_fen"].as_u64()), (Some(390), Some(fare)), "{category}");
        let concession = if category == "pilot" { Value::Null } else { Value::from(category) };
        assert_eq!(out["concession"], concession);
        told.push((out["trip_id"].as_str().unwrap().to_owned(), fare));
    }
    fare_system(&mut h);
    let run = h.ok(&upload(&h));
    assert_eq!(run["uploaded"].as_array().unwrap().len(), 4, "the free trip is uploaded too");
    let ledger = h.ledger();
    for (trip, fare) in told {
        let debits: Vec<u64> = ledger.iter().filter(|p| p.idempotency_key == trip).map(|p| p.amount_fen).collect();
        let expected: Vec<u64> = if fare == 0 { vec![] } else { vec![fare] };
        assert_eq!(debits, expected, "trip {trip}");
    }
}

#[test]
fn an_exit_without_entry_pays_the_maximum_fare_with_the_concession() {
    let mut h = Harness::new();
    let out = h.ok(&tap(&h, "tap_out", "h", "C", "k"));
    assert_eq!(out["rule"], "exit_without_entry");
    assert_eq!((out["entry_station"].clone(), out["fare_fen"].as_u64()), (Value::Null, Some(730)));
    let student = tap(&h, "tap_out", "s", "C", "k2").with_attribute("holder.category", "student");
    assert_eq!(h.ok(&student)["fare_fen"], 365);
}

#[test]
fn an_entry_left_open_is_charged_at_the_next_tap_in() {
    let mut h = Harness::new();
    let first = h.ok(&tap(&h, "tap_in", "h", "B", "k1"));
    h.set_now_ms(MONDAY_10AM + 24 * HOUR);
    let next = h.ok(&tap(&h, "tap_in", "h", "B", "k2"));
    assert_ne!(next["trip_id"], first["trip_id"]);
    let charged = next["charged"].as_array().unwrap();
    assert_eq!(charged.len(), 1);
    assert_eq!(charged[0]["trip_id"], first["trip_id"]);
    assert_eq!(charged[0]["rule"], "open_entry");
    assert_eq!(charged[0]["fare_fen"], 730);
    assert_eq!(charged[0]["service_date"], "2026-11-23");
    assert_eq!(charged[0]["exit_station"], Value::Null);
}

#[test]
fn an_exit_after_the_service_day_ended_charges_both_rules() {
    let mut h = Harness::new();
    h.set_now_ms(MONDAY_10AM + 13 * HOUR); // 23:00
    h.ok(&tap(&h, "tap_in", "h", "A", "k1"));
    h.set_now_ms(MONDAY_10AM + 18 * HOUR + 10 * MINUTE); // 04:10 next day: a new service day
    let out = h.ok(&tap(&h, "tap_out", "h", "C", "k2"));
    assert_eq!(out["rule"], "exit_without_entry");
    assert_eq!(out["service_date"], "2026-11-24");
    assert_eq!(out["charged"][0]["rule"], "open_entry");
    assert_eq!(out["charged"][0]["fare_fen"], 730);
}

#[test]
fn a_night_trip_before_the_service_day_ends_is_one_trip() {
    let mut h = Harness::new();
    h.set_now_ms(MONDAY_10AM + 13 * HOUR + 50 * MINUTE); // 23:50
    h.ok(&tap(&h, "tap_in", "h", "A", "k1"));
    h.set_now_ms(MONDAY_10AM + 14 * HOUR + 20 * MINUTE); // 00:20
    let out = h.ok(&tap(&h, "tap_out", "h", "C", "k2"));
    assert_eq!((out["rule"].as_str(), out["fare_fen"].as_u64()), (Some("fare"), Some(250)));
    assert_eq!(out["service_date"], "2026-11-23");
}

#[test]
fn upload_charges_entries_open_past_their_service_day_and_waits_for_the_others() {
    let mut h = Harness::new();
    fare_system(&mut h);
    let open = h.ok(&tap(&h, "tap_in", "early", "A", "k1"));
    h.set_now_ms(MONDAY_10AM + 17 * HOUR); // 03:00: still the service day of the 23rd
    let late = h.ok(&tap(&h, "tap_in", "late", "B", "k2"));
    let run = h.ok(&upload(&h));
    assert_eq!(run["closed_open_entries"], serde_json::json!([]));
    assert_eq!(run["open_entries_watched"], 2);
    h.set_now_ms(MONDAY_10AM + 18 * HOUR); // 04:00: the day is over for both
    let run = h.ok(&upload(&h));
    assert_eq!(run["closed_open_entries"], serde_json::json!([open["trip_id"], late["trip_id"]]));
    assert_eq!(run["uploaded"].as_array().unwrap().len(), 2);
    assert_eq!(run["open_entries_watched"], 0);
    let amounts: Vec<u64> = h.ledger().iter().map(|p| p.amount_fen).collect();
    assert_eq!(amounts, [730, 730]);
    let history = h.ok(&history(&h, "early"));
    assert_eq!(history["trips"][0]["rule"], "open_entry");
    assert_eq!(history["open_entry"], Value::Null);
    // The holder's next exit is an exit without entry: the entry was charged already.
    let out = h.ok(&tap(&h, "tap_out", "early", "A", "k3"));
    assert_eq!(out["rule"], "exit_without_entry");
    assert_eq!(out["charged"], serde_json::json!([]));
}

#[test]
fn an_exit_closes_an_entry_the_sweep_saw_open_and_the_sweep_passes_over_it() {
    let mut h = Harness::new();
    fare_system(&mut h);
    h.ok(&tap(&h, "tap_in", "h", "A", "k1"));
    h.ok(&upload(&h));
    h.ok(&tap(&h, "tap_out", "h", "C", "k2"));
    h.set_now_ms(MONDAY_10AM + 30 * HOUR);
    let run = h.ok(&upload(&h));
    assert_eq!(run["closed_open_entries"], serde_json::json!([]));
    assert_eq!((run["uploaded"].as_array().unwrap().len(), run["open_entries_watched"].as_u64()), (1, Some(0)));
    assert_eq!(h.ledger().iter().map(|p| p.amount_fen).collect::<Vec<_>>(), [250]);
}

#[test]
fn a_repeated_entry_within_the_window_is_a_replay_and_after_it_a_new_trip() {
    let mut h = Harness::new();
    let first = h.ok(&tap(&h, "tap_in", "h", "B", "k1"));
    let retry = h.ok(&tap(&h, "tap_in", "h", "B", "k1"));
    assert_eq!((retry["replayed"].as_bool(), &retry["trip_id"]), (Some(true), &first["trip_id"]));
    h.set_now_ms(MONDAY_10AM + 5 * MINUTE);
    let again = h.ok(&tap(&h, "tap_in", "h", "B", "k2"));
    assert_eq!((again["replayed"].as_bool(), &again["trip_id"]), (Some(true), &first["trip_id"]), "same station within 5 minutes");
    let ledger_keys = h.calls().iter().filter(|c| matches!(c, HostCall::KvIncrement { key, .. } if key == "trip-seq")).count();
    assert_eq!(ledger_keys, 1, "no second trip was opened");
    h.set_now_ms(MONDAY_10AM + 5 * MINUTE + 1);
    let later = h.ok(&tap(&h, "tap_in", "h", "B", "k3"));
    assert_eq!(later["replayed"], false);
    assert_eq!(later["charged"][0]["trip_id"], first["trip_id"]);
    assert_eq!(later["charged"][0]["rule"], "open_entry");
}

#[test]
fn an_entry_at_another_station_closes_the_open_one_by_rule() {
    let mut h = Harness::new();
    let first = h.ok(&tap(&h, "tap_in", "h", "B", "k1"));
    h.set_now_ms(MONDAY_10AM + MINUTE);
    let second = h.ok(&tap(&h, "tap_in", "h", "C", "k2"));
    assert_eq!(second["charged"][0]["trip_id"], first["trip_id"]);
    assert_eq!(second["charged"][0]["fare_fen"], 730);
    let out = h.ok(&tap(&h, "tap_out", "h", "D", "k3"));
    assert_eq!((out["trip_id"].clone(), out["fare_fen"].as_u64()), (second["trip_id"].clone(), Some(250)));
}

#[test]
fn a_repeated_exit_is_a_replay_of_the_same_trip() {
    let mut h = Harness::new();
    h.ok(&tap(&h, "tap_in", "h", "A", "k1"));
    h.set_now_ms(MONDAY_10AM + 10 * MINUTE);
    let out = h.ok(&tap(&h, "tap_out", "h", "E", "k2"));
    let retry = h.ok(&tap(&h, "tap_out", "h", "E", "k2"));
    assert_eq!((retry["replayed"].as_bool(), &retry["trip_id"], &retry["fare_fen"]), (Some(true), &out["trip_id"], &out["fare_fen"]));
    h.set_now_ms(MONDAY_10AM + 12 * MINUTE);
    let again = h.ok(&tap(&h, "tap_out", "h", "E", "k3"));
    assert_eq!((again["replayed"].as_bool(), &again["trip_id"]), (Some(true), &out["trip_id"]), "same gate again within the window");
    h.set_now_ms(MONDAY_10AM + 16 * MINUTE);
    let later = h.ok(&tap(&h, "tap_out", "h", "E", "k4"));
    assert_eq!((later["replayed"].as_bool(), later["rule"].as_str()), (Some(false), Some("exit_without_entry")));
}

#[test]
fn each_refusal_names_its_code_and_changes_nothing() {
    let mut h = Harness::new();
    let no_station = tap(&h, "tap_in", "h", "A", "k").with_venue("A", "A-G1");
    let mut no_station = no_station;
    no_station.venue = None;
    h.refused(&no_station, "STATION_REQUIRED");
    h.refused(&tap(&h, "tap_in", "h", "Z", "k"), "STATION_UNKNOWN");
    h.refused(&tap(&h, "tap_out", "h", "Z", "k"), "STATION_UNKNOWN");
    h.refused(&tap(&h, "tap_in", "h", "A", "k").with_venue("A", "B-G1"), "TERMINAL_NOT_ALLOWED");
    h.refused(&tap(&h, "tap_out", "h", "A", "k").with_venue("A", "B-G1"), "TERMINAL_NOT_ALLOWED");
    let mut locked = tap(&h, "tap_in", "h", "B", "k");
    locked.card.as_mut().unwrap().financial_locked = true;
    h.refused(&locked, "CARD_FINANCIAL_LOCKED");
    let no_account = h.request("tap_in", "{}").with_card("h").with_venue("B", "G").with_config(CONFIG);
    h.refused(&no_account, "FINANCIAL_ACCOUNT_MISSING");
    let exit_no_account = h.request("tap_out", "{}").with_card("h").with_venue("B", "G").with_config(CONFIG);
    h.refused(&exit_no_account, "FINANCIAL_ACCOUNT_MISSING");
    h.refused(&h.request("pay_arrears", "{}").with_card("h").with_config(CONFIG), "NO_ARREARS");
    let message = h.refused(&tap(&h, "tap_in", "h", "B", "k").with_venue("B", "G").clone_with_params(r#"{"gate":1}"#), "INVALID_PARAMS");
    assert!(message.contains("gate"), "{message}");
    let bad_limit = h.request("upload_pending", r#"{"max_trips":"all"}"#).with_config(CONFIG);
    assert!(h.refused(&bad_limit, "INVALID_PARAMS").contains("max_trips"));
    let mut no_card = tap(&h, "tap_in", "h", "B", "k");
    no_card.card = None;
    h.refused(&no_card, "CARD_REQUIRED");
}

#[test]
fn an_open_entry_locked_card_is_still_let_out() {
    let mut h = Harness::new();
    h.ok(&tap(&h, "tap_in", "h", "A", "k1"));
    let mut exit = tap(&h, "tap_out", "h", "C", "k2");
    exit.card.as_mut().unwrap().financial_locked = true;
    assert_eq!(h.ok(&exit)["fare_fen"], 250);
}

#[test]
fn a_refused_debit_becomes_arrears_that_block_entry_until_paid() {
    let mut h = Harness::new();
    let received = fare_system(&mut h);
    h.ok(&tap(&h, "tap_in", "h", "A", "k1"));
    let trip = h.ok(&tap(&h, "tap_out", "h", "E", "k2"));
    h.fail_payments(Some(PaymentError::InsufficientFunds));
    let run = h.ok(&upload(&h));
    assert_eq!(run["unpaid"], serde_json::json!([trip["trip_id"]]));
    assert_eq!(run["remaining"], 0, "an unpaid trip does not block the queue");
    assert!(received.borrow().is_empty(), "an unpaid trip is not uploaded yet");
    assert_eq!(h.ok(&history(&h, "h"))["arrears_fen"], 510);

    h.set_now_ms(MONDAY_10AM + HOUR);
    let message = h.refused(&tap(&h, "tap_in", "h", "B", "k3"), "FARE_ARREARS");
    assert!(message.contains("1 earlier trip"), "{message}");
    h.refused(&h.request("pay_arrears", "{}").with_card("h").with_config(CONFIG), "INSUFFICIENT_FUNDS");

    h.fail_payments(None);
    let paid = h.ok(&h.request("pay_arrears", "{}").with_card("h").with_config(CONFIG));
    assert_eq!((paid["paid"].clone(), paid["total_fen"].as_u64()), (serde_json::json!([trip["trip_id"]]), Some(510)));
    let debits: Vec<_> = h.ledger().iter().map(|p| (p.idempotency_key.clone(), p.amount_fen)).collect();
    assert_eq!(debits, [(trip["trip_id"].as_str().unwrap().to_owned(), 510)]);
    assert_eq!(h.ok(&upload(&h))["uploaded"], serde_json::json!([trip["trip_id"]]));
    assert_eq!(received.borrow().len(), 1);
    assert_eq!(h.ok(&tap(&h, "tap_in", "h", "B", "k3"))["replayed"], false);
    assert_eq!(h.ok(&history(&h, "h"))["arrears_fen"], 0);
}

#[test]
fn a_failing_backend_stops_the_run_and_the_retry_never_moves_money_twice() {
    let mut h = Harness::new();
    h.ok(&tap(&h, "tap_in", "h", "A", "k1"));
    let trip = h.ok(&tap(&h, "tap_out", "h", "D", "k2"));
    let id = trip["trip_id"].as_str().unwrap().to_owned();

    h.fail_payments(Some(PaymentError::Unavailable("bank down".into())));
    let err = h.call::<Transit>(&upload(&h)).unwrap_err();
    assert_eq!(err.code(), "PAYMENT_UNAVAILABLE");
    h.fail_payments(None);
    // The fare system is down: the trip is debited, not uploaded.
    let err = h.call::<Transit>(&upload(&h)).unwrap_err();
    assert_eq!(err.code(), "BACKEND_UNAVAILABLE");
    assert_eq!(h.ledger().len(), 1);
    h.on_http(|_, _| Ok(IncomingResponse { status: 503, headers: vec![], body: b"{}".to_vec() }));
    assert_eq!(h.call::<Transit>(&upload(&h)).unwrap_err().code(), "FARE_SYSTEM_UNAVAILABLE");

    let received = fare_system(&mut h);
    assert_eq!(h.ok(&upload(&h))["uploaded"], serde_json::json!([id]));
    assert_eq!(h.ledger().len(), 1, "the debit happened once");
    let payments = h.calls().iter().filter(|c| matches!(c, HostCall::Payment { idempotency_key, .. } if *idempotency_key == id)).count();
    assert_eq!(payments, 2, "the failed attempt and the one that moved money, both keyed by the trip id");
    assert_eq!(received.borrow()[0].0, id);
}

#[test]
fn a_trip_the_fare_system_refuses_is_set_aside_for_reconciliation() {
    let mut h = Harness::new();
    h.ok(&tap(&h, "tap_in", "h", "A", "k1"));
    let first = h.ok(&tap(&h, "tap_out", "h", "D", "k2"));
    h.set_now_ms(MONDAY_10AM + HOUR);
    h.ok(&tap(&h, "tap_in", "h", "A", "k3"));
    let second = h.ok(&tap(&h, "tap_out", "h", "B", "k4"));
    let refuse = first["trip_id"].as_str().unwrap().to_owned();
    h.on_http(move |_, r| {
        let status = if r.headers.iter().any(|(_, v)| *v == refuse) { 422 } else { 200 };
        Ok(IncomingResponse { status, headers: vec![], body: br#"{"accepted":true,"duplicate":false}"#.to_vec() })
    });
    let run = h.ok(&upload(&h));
    assert_eq!(run["rejected"], serde_json::json!([first["trip_id"]]));
    assert_eq!(run["uploaded"], serde_json::json!([second["trip_id"]]));
    let history = h.ok(&history(&h, "h"));
    assert_eq!(history["trips"][1]["state"], "rejected");
}

#[test]
fn upload_runs_are_bounded() {
    let mut h = Harness::new();
    fare_system(&mut h);
    for i in 0..5 {
        h.ok(&tap(&h, "tap_out", &format!("h{i}"), "C", "k"));
    }
    let run = h.ok(&h.request("upload_pending", r#"{"max_trips":2}"#).with_config(CONFIG));
    assert_eq!((run["uploaded"].as_array().unwrap().len(), run["remaining"].as_u64()), (2, Some(3)));
    let run = h.ok(&h.request("upload_pending", "{}").with_config(CONFIG));
    assert_eq!((run["uploaded"].as_array().unwrap().len(), run["remaining"].as_u64()), (3, Some(0)));
}

#[test]
fn a_broken_configuration_is_a_plugin_fault_before_any_state_changes() {
    let mut h = Harness::new();
    let request = tap(&h, "tap_in", "h", "B", "k").with_config(&CONFIG.replace("\"max_fare_fen\": 730", "\"max_fare_fen\": 300"));
    let before = h.calls().len();
    let err = h.call::<Transit>(&request).unwrap_err();
    assert_eq!(err.code(), "PLUGIN_INTERNAL");
    assert!(err.message().contains("max_fare_fen"), "{}", err.message());
    assert_eq!(mutations(&h.calls()[before..]), []);
}

trait WithParams {
    fn clone_with_params(self, params: &str) -> Self;
}

impl WithParams for Request {
    fn clone_with_params(mut self, params: &str) -> Self {
        self.params = params.into();
        self
    }
}
