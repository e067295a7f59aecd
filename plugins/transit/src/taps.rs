//! `tap_in` and `tap_out`: the gate decisions. They touch only the key-value store, never a
//! backend: the trip they close is queued for `upload_pending`, which debits and uploads it.

use onecard_sdk::clock::{self, Datetime};
use onecard_sdk::{HandleError, Request, Response, kv, log};
use serde::{Deserialize, Serialize};

use crate::config::{Config, Station};
use crate::trips::{self, Charge, EntrySlot, Holder, LastExit, OpenEntry, Tap, Trip};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

#[derive(Serialize)]
struct Entered<'a> {
    decision: &'static str,
    trip_id: &'a str,
    station: &'a str,
    /// True when this answers a repeated tap (same idempotency key, or the same station within
    /// the replay window): nothing new was opened.
    replayed: bool,
    /// Earlier trips this tap closed by rule, with what they cost.
    charged: Vec<Charge<'a>>,
}

#[derive(Serialize)]
struct Exited<'a> {
    decision: &'static str,
    #[serde(flatten)]
    trip: Charge<'a>,
    replayed: bool,
    charged: Vec<Charge<'a>>,
}

/// Everything both taps need: the configuration, the station and the instant.
pub struct Gate<'a> {
    pub config: Config,
    pub station_id: String,
    pub now: Datetime,
    pub holder: Holder<'a>,
    pub idempotency_key: &'a str,
}

pub fn config(request: &Request) -> Result<Config, HandleError> {
    let config: Config = request.config()?;
    config.validate()?;
    Ok(config)
}

impl<'a> Gate<'a> {
    fn open(request: &'a Request) -> Result<Self, HandleError> {
        let _: NoParams = request.params()?;
        let config = config(request)?;
        let card = request.card()?;
        let (station_id, station) = config.station(request.venue.as_deref())?;
        check_terminal(station_id, station, request.terminal.as_deref())?;
        let station_id = station_id.to_owned();
        Ok(Gate { config, station_id, now: clock::now(), holder: Holder::of(card), idempotency_key: &request.idempotency_key })
    }

    /// A tap at the same station within the replay window of `at_ms`.
    fn soon_again_at(&self, station: &str, at_ms: i64) -> bool {
        station == self.station_id && (0..=self.config.replay_window_ms()).contains(&(self.now.unix_ms - at_ms))
    }
}

fn check_terminal(station_id: &str, station: &Station, terminal: Option<&str>) -> Result<(), HandleError> {
    if station.terminals.is_empty() || terminal.is_some_and(|t| station.terminals.iter().any(|s| s == t)) {
        return Ok(());
    }
    Err(HandleError::refused(
        "TERMINAL_NOT_ALLOWED",
        format!("terminal {:?} is not a gate of station `{station_id}`", terminal.unwrap_or("-")),
    ))
}

fn concurrent_tap() -> HandleError {
    HandleError::refused("CONCURRENT_TAP", "another tap of this card is being handled; tap again")
}

/// Open a trip. An entry still open from another station (or from the same station beyond the
/// replay window, or from an earlier service day) is first closed by the open-entry rule.
pub fn tap_in(request: &Request) -> Result<Response, HandleError> {
    let gate = Gate::open(request)?;
    let holder = gate.holder.holder_ref;
    let (raw, open) = trips::load_open(holder)?;
    if let Some(open) = &open
        && (open.idempotency_key == gate.idempotency_key || gate.soon_again_at(&open.station, open.at_ms))
    {
        return Response::json(&Entered { decision: "enter", trip_id: &open.trip_id, station: &open.station, replayed: true, charged: vec![] });
    }
    if gate.holder.financial_locked {
        return Err(HandleError::refused("CARD_FINANCIAL_LOCKED", "the card's financial account is locked: fares cannot be charged"));
    }
    let account = gate.holder.account()?;
    let arrears = trips::arrears(holder)?;
    if !arrears.is_empty() {
        return Err(HandleError::refused(
            "FARE_ARREARS",
            format!("{} earlier trip(s) could not be charged to the card; settle them before travelling", arrears.len()),
        ));
    }

    let mut closed = Vec::new();
    let mut expected = raw;
    if let (Some(old), Some(old_raw)) = (&open, expected.as_deref()) {
        match trips::close(&gate.config, holder, old_raw, old, None, gate.now)? {
            Some(trip) => closed.push(trip),
            None => return Err(concurrent_tap()),
        }
        expected = Some(Vec::new());
    }

    let entry = OpenEntry {
        trip_id: trips::new_trip_id(gate.now)?,
        station: gate.station_id.clone(),
        at_ms: gate.now.unix_ms,
        service_day: gate.config.service_day(gate.now),
        idempotency_key: gate.idempotency_key.to_owned(),
        account: account.to_owned(),
        category: gate.holder.category.map(str::to_owned),
    };
    // Watch the entry before it exists, so a sweep never misses it; a slot whose entry never
    // opened is passed over.
    let slot = EntrySlot { holder: holder.to_owned(), trip_id: entry.trip_id.clone() };
    trips::ENTRIES.append(&trips::encode(&slot)?, gate.config.retention_ms())?;
    if !kv::compare_and_swap(&trips::open_key(holder), expected.as_deref(), &trips::encode(&entry)?, None)? {
        return Err(concurrent_tap());
    }
    log::info(&format!("entry {} at {}", entry.trip_id, entry.station));
    Response::json(&Entered {
        decision: "enter",
        trip_id: &entry.trip_id,
        station: &entry.station,
        replayed: false,
        charged: closed.iter().map(Trip::charge).collect(),
    })
}

/// Close a trip and tell its fare. Without an open entry of the current service day the exit is
/// charged by the exit-without-entry rule (and a stale open entry by the open-entry rule). An
/// exit is never refused for the card's financial state: the holder must be let out, and the
/// debit comes later.
pub fn tap_out(request: &Request) -> Result<Response, HandleError> {
    let gate = Gate::open(request)?;
    let holder = gate.holder.holder_ref;
    let (raw, open) = trips::load_open(holder)?;
    if let Some(last) = trips::last_exit(holder)?
        && (last.idempotency_key == gate.idempotency_key || (open.is_none() && gate.soon_again_at(&last.station, last.at_ms)))
        && let Some(trip) = trips::load_trip(&last.trip_id)?
    {
        return Response::json(&Exited { decision: "exit", trip: trip.charge(), replayed: true, charged: vec![] });
    }

    let today = gate.config.service_day(gate.now);
    let exit = Tap { station: gate.station_id.clone(), at_ms: gate.now.unix_ms };
    let current = open.as_ref().filter(|o| o.service_day == today);
    // Refuse before changing anything: an exit without entry needs an account to charge.
    let account = match current {
        Some(_) => None,
        None => Some(gate.holder.account()?),
    };

    let mut charged = Vec::new();
    let trip = match (&open, raw.as_deref()) {
        (Some(open), Some(raw)) if current.is_some() => {
            trips::close(&gate.config, holder, raw, open, Some(exit), gate.now)?.ok_or_else(concurrent_tap)?
        }
        (stale, raw) => {
            if let (Some(stale), Some(raw)) = (stale, raw) {
                charged.push(trips::close(&gate.config, holder, raw, stale, None, gate.now)?.ok_or_else(concurrent_tap)?);
            }
            let trip_id = trips::new_trip_id(gate.now)?;
            let account = account.unwrap_or_default();
            let trip = Trip::without_entry(&gate.config, trip_id, &gate.holder, account, exit, today);
            trips::record(&gate.config, &trip, gate.now)?;
            trip
        }
    };
    let last = LastExit {
        trip_id: trip.trip_id.clone(),
        station: gate.station_id.clone(),
        at_ms: gate.now.unix_ms,
        idempotency_key: gate.idempotency_key.to_owned(),
    };
    trips::set_last_exit(&gate.config, holder, &last)?;
    Response::json(&Exited { decision: "exit", trip: trip.charge(), replayed: false, charged: charged.iter().map(Trip::charge).collect() })
}
