//! After the gate: `upload_pending` charges entries left open past their service day, debits
//! each closed trip's fare from the card's financial account (idempotency key = trip id) and
//! uploads the trip to the fare system (`Idempotency-Key: <trip id>`); `pay_arrears` lets a
//! holder settle trips their account refused.
//!
//! A gate answers from the key-value store alone; this is the "afterwards". The operator's
//! scheduler calls `upload_pending` every minute or so; a failing backend stops the run where it
//! is and the next run resumes there. Every step is idempotent by trip id, so a run that dies
//! half-way, or two runs at once, never debit or upload a trip twice.
//!
//! A run examines at most `max_trips` watched entries and settles at most `max_trips` trips (the
//! gateway bounds the host calls of one request); the scheduler calls it often enough for the
//! day's taps, and `remaining` / `open_entries_watched` say how far behind it is.

use onecard_sdk::clock::{self, Datetime};
use onecard_sdk::http::{self, Method, OutgoingRequest};
use onecard_sdk::payments::{self, Kind, Payment};
use onecard_sdk::{HandleError, PaymentError, Request, Response, log};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::taps;
use crate::trips::{self, Charge, EntrySlot, State, Trip};
use crate::worklog::Step;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadParams {
    /// Trips to settle in this run (and entries to examine). Default 20.
    max_trips: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

#[derive(Serialize)]
struct Stopped {
    code: String,
    message: String,
}

#[derive(Default, Serialize)]
struct Uploaded {
    /// Entries this run closed by the open-entry rule.
    closed_open_entries: Vec<String>,
    /// Trips the fare system accepted in this run.
    uploaded: Vec<String>,
    /// Trips whose debit the holder's account refused (now arrears).
    unpaid: Vec<String>,
    /// Trips the fare system refused (debited; for the operator to reconcile).
    rejected: Vec<String>,
    /// Trips still queued after this run.
    remaining: u64,
    /// Entries still watched after this run (open within their service day).
    open_entries_watched: u64,
    /// Why the run stopped early, if a backend failed.
    stopped: Option<Stopped>,
}

pub fn upload_pending(request: &Request) -> Result<Response, HandleError> {
    let params: UploadParams = request.params()?;
    let max = params.max_trips.unwrap_or(20);
    let config = taps::config(request)?;
    let now = clock::now();
    let mut out = Uploaded::default();

    let entries = trips::ENTRIES.drain(now.unix_ms, max, |slot| sweep(&config, now, slot, &mut out))?;
    out.open_entries_watched = entries.remaining;
    let queued = trips::TRIPS.drain(now.unix_ms, max, |slot| settle(&config, slot, &mut out))?;
    out.remaining = queued.remaining;
    let progressed = !(out.closed_open_entries.is_empty() && out.uploaded.is_empty() && out.unpaid.is_empty() && out.rejected.is_empty());
    if let Some(stop) = queued.stopped {
        if !progressed {
            return Err(stop);
        }
        log::warn(&format!("upload stopped: {}: {}", stop.code(), stop.message()));
        out.stopped = Some(Stopped { code: stop.code().into(), message: stop.message().into() });
    }
    Response::json(&out)
}

/// Close the entry of one [`trips::ENTRIES`] slot if its service day has ended.
fn sweep(config: &Config, now: Datetime, slot: &[u8], out: &mut Uploaded) -> Result<Step, HandleError> {
    let slot: EntrySlot = serde_json::from_slice(slot).map_err(|e| HandleError::Internal(format!("entry slot: {e}")))?;
    let (raw, open) = trips::load_open(&slot.holder)?;
    match (open, raw) {
        (Some(open), Some(raw)) if open.trip_id == slot.trip_id => {
            if open.service_day >= config.service_day(now) {
                return Ok(Step::Wait);
            }
            if let Some(trip) = trips::close(config, &slot.holder, &raw, &open, None, now)? {
                out.closed_open_entries.push(trip.trip_id);
            }
            Ok(Step::Done)
        }
        // Closed by a tap already (or never opened).
        _ => Ok(Step::Done),
    }
}

/// Debit and upload the trip of one [`trips::TRIPS`] slot, as far as it still needs.
fn settle(config: &Config, slot: &[u8], out: &mut Uploaded) -> Result<Step, HandleError> {
    let id = String::from_utf8_lossy(slot);
    let Some(mut trip) = trips::load_trip(&id)? else {
        log::warn(&format!("trip {id} is queued but no longer stored; passing over it"));
        return Ok(Step::Done);
    };
    if trip.state == State::Pending {
        match debit(&trip) {
            Ok(receipt) => {
                trip.receipt = receipt;
                trip.state = State::Paid;
                trip.refusal = None;
                trips::save(config, &trip)?;
            }
            Err(e @ (PaymentError::Declined(_) | PaymentError::InsufficientFunds | PaymentError::LimitExceeded(_))) => {
                trip.refusal = Some(HandleError::from(e).code().to_owned());
                trip.state = State::Unpaid;
                trips::save(config, &trip)?;
                trips::add_arrears(&trip.holder_ref, &trip.trip_id)?;
                out.unpaid.push(trip.trip_id);
                return Ok(Step::Done);
            }
            Err(e) => return Ok(Step::Stop(e.into())),
        }
    }
    if trip.state != State::Paid {
        return Ok(Step::Done);
    }
    match upload(config, &trip)? {
        Upload::Accepted => {
            trip.state = State::Uploaded;
            trips::save(config, &trip)?;
            out.uploaded.push(trip.trip_id);
            Ok(Step::Done)
        }
        Upload::Refused(status) => {
            trip.state = State::Rejected;
            trip.refusal = Some(format!("FARE_SYSTEM_{status}"));
            trips::save(config, &trip)?;
            log::error(&format!("fare system refused trip {} with status {status}", trip.trip_id));
            out.rejected.push(trip.trip_id);
            Ok(Step::Done)
        }
        Upload::Failed(e) => Ok(Step::Stop(e)),
    }
}

/// Debit the trip's fare; `None` as receipt for a free trip (nothing moves).
fn debit(trip: &Trip) -> Result<Option<String>, PaymentError> {
    if trip.fare_fen == 0 {
        return Ok(None);
    }
    let receipt = payments::submit(&Payment {
        kind: Kind::Debit,
        account: trip.account.clone(),
        amount_fen: trip.fare_fen,
        reference: trip.trip_id.clone(),
        idempotency_key: trip.trip_id.clone(),
        original_receipt: None,
    })?;
    if receipt.amount_fen != trip.fare_fen {
        return Err(PaymentError::Unavailable(format!(
            "settlement answered trip {} with {} fen, not {}: a key reused for another amount",
            trip.trip_id, receipt.amount_fen, trip.fare_fen
        )));
    }
    Ok(Some(receipt.id))
}

enum Upload {
    Accepted,
    /// The fare system refused this trip (4xx): retrying will not help.
    Refused(u16),
    /// The fare system failed or could not be reached: retry later.
    Failed(HandleError),
}

fn upload(config: &Config, trip: &Trip) -> Result<Upload, HandleError> {
    let body = serde_json::json!({
        "trip_id": trip.trip_id,
        "holder_ref": trip.holder_ref,
        "entry": trip.entry,
        "exit": trip.exit,
        "fare_fen": trip.fare_fen,
        "rule": trip.rule,
    });
    let request = OutgoingRequest {
        method: Method::Post,
        path: "/trips".into(),
        headers: vec![("content-type".into(), "application/json".into()), ("idempotency-key".into(), trip.trip_id.clone())],
        body: trips::encode(&body)?,
    };
    let response = match http::send(&config.fare_backend, &request) {
        Ok(response) => response,
        Err(e) => return Ok(Upload::Failed(e.into())),
    };
    let accepted = serde_json::from_slice::<serde_json::Value>(&response.body).ok().and_then(|b| b["accepted"].as_bool());
    Ok(match response.status {
        200 if accepted == Some(true) => Upload::Accepted,
        400..=499 => Upload::Refused(response.status),
        status => Upload::Failed(HandleError::backend(
            "FARE_SYSTEM_UNAVAILABLE",
            format!("the fare system answered {status} without accepting trip {}", trip.trip_id),
        )),
    })
}

#[derive(Serialize)]
struct ArrearsPaid {
    paid: Vec<String>,
    total_fen: u64,
    /// Trips still unpaid (the account refused again), with the refusal of the first one.
    still_unpaid: Vec<String>,
    refusal: Option<Stopped>,
}

/// Settle the holder's unpaid trips; each paid trip goes back to the upload queue.
pub fn pay_arrears(request: &Request) -> Result<Response, HandleError> {
    let _: NoParams = request.params()?;
    let config = taps::config(request)?;
    let card = request.card()?;
    let ids = trips::arrears(&card.holder_ref)?;
    if ids.is_empty() {
        return Err(HandleError::refused("NO_ARREARS", "the card owes no fares"));
    }
    let mut out = ArrearsPaid { paid: Vec::new(), total_fen: 0, still_unpaid: Vec::new(), refusal: None };
    for id in ids {
        let Some(mut trip) = trips::load_trip(&id)?.filter(|t| t.state == State::Unpaid) else {
            trips::remove_arrears(&card.holder_ref, &id)?;
            continue;
        };
        if out.refusal.is_some() {
            out.still_unpaid.push(id);
            continue;
        }
        match debit(&trip) {
            Ok(receipt) => {
                trip.receipt = receipt;
                trip.state = State::Paid;
                trip.refusal = None;
                trips::save(&config, &trip)?;
                trips::TRIPS.append(trip.trip_id.as_bytes(), config.retention_ms())?;
                trips::remove_arrears(&card.holder_ref, &id)?;
                out.total_fen += trip.fare_fen;
                out.paid.push(id);
            }
            Err(e) => {
                let e = HandleError::from(e);
                if out.paid.is_empty() {
                    return Err(e);
                }
                out.refusal = Some(Stopped { code: e.code().into(), message: e.message().into() });
                out.still_unpaid.push(id);
            }
        }
    }
    Response::json(&out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryParams {
    /// How many recent trips, newest first. Default 20.
    limit: Option<usize>,
}

#[derive(Serialize)]
struct History<'a> {
    trips: Vec<Charge<'a>>,
    open_entry: Option<OpenView>,
    arrears_fen: u64,
}

#[derive(Serialize)]
struct OpenView {
    trip_id: String,
    station: String,
    at_ms: i64,
}

/// The holder's recent trips (with their settlement state), open entry and arrears.
pub fn trip_history(request: &Request) -> Result<Response, HandleError> {
    let params: HistoryParams = request.params()?;
    let card = request.card()?;
    let ids = trips::history(&card.holder_ref)?;
    let mut loaded = Vec::new();
    for id in ids.iter().rev().take(params.limit.unwrap_or(20)) {
        if let Some(trip) = trips::load_trip(id)? {
            loaded.push(trip);
        }
    }
    let (_, open) = trips::load_open(&card.holder_ref)?;
    let mut arrears_fen = 0;
    for id in trips::arrears(&card.holder_ref)? {
        arrears_fen += trips::load_trip(&id)?.filter(|t| t.state == State::Unpaid).map_or(0, |t| t.fare_fen);
    }
    Response::json(&History {
        trips: loaded.iter().map(Trip::charge).collect(),
        open_entry: open.map(|o| OpenView { trip_id: o.trip_id, station: o.station, at_ms: o.at_ms }),
        arrears_fen,
    })
}
