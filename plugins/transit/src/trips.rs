//! Trips and open entries as the key-value store holds them, and how an open entry is closed into
//! a trip.
//!
//! Keys (in the application's own namespace):
//! - `open:{holder}`: the holder's open entry (JSON), or empty when there is none. It is changed
//!   only by compare-and-swap, so that a tap and a concurrent sweep never both close one entry.
//! - `exit:{holder}`: the holder's last exit, for answering a repeated exit tap (expires after the
//!   replay window).
//! - `trip:{id}`: a closed trip and its settlement state (kept `retention_days`).
//! - `history:{holder}`: the holder's last [`HISTORY_LEN`] trip ids, oldest first.
//! - `arrears:{holder}`: trip ids whose debit the holder's account refused.
//! - `trip-seq`: the counter trip ids are made from.
//! - `entries:*`, `trips:*`: the two [`WorkLog`]s `upload_pending` drains.

use onecard_sdk::clock::Datetime;
use onecard_sdk::{HandleError, kv};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::{self, Config};
use crate::worklog::WorkLog;

/// Entries to watch for the end of their service day: `{holder, trip_id}` per slot.
pub const ENTRIES: WorkLog = WorkLog::new("entries");
/// Closed trips to settle and upload: a trip id per slot.
pub const TRIPS: WorkLog = WorkLog::new("trips");
/// How many trip ids a holder's history keeps.
pub const HISTORY_LEN: usize = 50;

/// Why a trip was charged what it was charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Entry and exit: the fare table's fare between the two stations.
    Fare,
    /// An exit with no open entry: the maximum fare.
    ExitWithoutEntry,
    /// An entry never closed by an exit within its service day (or replaced by a new entry):
    /// the maximum fare.
    OpenEntry,
}

/// Where a trip stands in settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Closed; not yet debited.
    Pending,
    /// Debited (or free); not yet accepted by the fare system.
    Paid,
    /// Accepted by the fare system: done.
    Uploaded,
    /// The holder's account refused the debit; waits for `pay_arrears`.
    Unpaid,
    /// Debited, but the fare system refused the trip (4xx): for the operator to reconcile.
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tap {
    pub station: String,
    pub at_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trip {
    pub trip_id: String,
    pub holder_ref: String,
    /// The card's financial account the fare is debited from.
    pub account: String,
    /// The concession category that applied, if any.
    pub concession: Option<String>,
    pub entry: Option<Tap>,
    pub exit: Option<Tap>,
    /// The service day the trip belongs to (its entry's, or its exit's without entry).
    pub service_date: String,
    pub rule: Rule,
    pub full_fare_fen: u64,
    /// What the holder pays: the full fare after the concession.
    pub fare_fen: u64,
    pub state: State,
    pub receipt: Option<String>,
    /// The code of the last refused debit or upload.
    pub refusal: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenEntry {
    pub trip_id: String,
    pub station: String,
    pub at_ms: i64,
    pub service_day: i64,
    pub idempotency_key: String,
    pub account: String,
    /// The holder's `holder.category` at entry.
    pub category: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastExit {
    pub trip_id: String,
    pub station: String,
    pub at_ms: i64,
    pub idempotency_key: String,
}

/// One slot of the [`ENTRIES`] log.
#[derive(Debug, Serialize, Deserialize)]
pub struct EntrySlot {
    pub holder: String,
    pub trip_id: String,
}

/// A trip as the holder and the gate are told it (no account reference).
#[derive(Debug, Serialize)]
pub struct Charge<'a> {
    pub trip_id: &'a str,
    pub rule: Rule,
    pub entry_station: Option<&'a str>,
    pub exit_station: Option<&'a str>,
    pub service_date: &'a str,
    pub full_fare_fen: u64,
    pub fare_fen: u64,
    pub concession: Option<&'a str>,
    pub state: State,
}

impl Trip {
    pub fn charge(&self) -> Charge<'_> {
        Charge {
            trip_id: &self.trip_id,
            rule: self.rule,
            entry_station: self.entry.as_ref().map(|t| t.station.as_str()),
            exit_station: self.exit.as_ref().map(|t| t.station.as_str()),
            service_date: &self.service_date,
            full_fare_fen: self.full_fare_fen,
            fare_fen: self.fare_fen,
            concession: self.concession.as_deref(),
            state: self.state,
        }
    }

    /// Close `open` with `exit` (a fare trip) or without one (the open-entry rule).
    pub fn from_entry(config: &Config, holder: &str, open: &OpenEntry, exit: Option<Tap>) -> Trip {
        let (rule, full) = match &exit {
            Some(x) => (Rule::Fare, config.full_fare(&open.station, &x.station)),
            None => (Rule::OpenEntry, config.max_fare_fen),
        };
        Trip::priced(config, open.trip_id.clone(), holder, &open.account, open.category.as_deref(), rule, full)
            .with_taps(Some(Tap { station: open.station.clone(), at_ms: open.at_ms }), exit, open.service_day)
    }

    /// An exit with no open entry.
    pub fn without_entry(config: &Config, trip_id: String, holder: &Holder<'_>, account: &str, exit: Tap, service_day: i64) -> Trip {
        Trip::priced(config, trip_id, holder.holder_ref, account, holder.category, Rule::ExitWithoutEntry, config.max_fare_fen)
            .with_taps(None, Some(exit), service_day)
    }

    fn priced(config: &Config, trip_id: String, holder: &str, account: &str, category: Option<&str>, rule: Rule, full: u64) -> Trip {
        Trip {
            trip_id,
            holder_ref: holder.into(),
            account: account.into(),
            concession: category.filter(|c| config.concessions.contains_key(*c)).map(str::to_owned),
            entry: None,
            exit: None,
            service_date: String::new(),
            rule,
            full_fare_fen: full,
            fare_fen: config.concession_fare(category, full),
            state: State::Pending,
            receipt: None,
            refusal: None,
        }
    }

    fn with_taps(mut self, entry: Option<Tap>, exit: Option<Tap>, service_day: i64) -> Trip {
        self.entry = entry;
        self.exit = exit;
        self.service_date = config::service_date(service_day);
        self
    }
}

/// What a tap needs to know about the presented card.
#[derive(Debug)]
pub struct Holder<'a> {
    pub holder_ref: &'a str,
    pub category: Option<&'a str>,
    pub account: Option<&'a str>,
    pub financial_locked: bool,
}

/// The consented attribute concessions are decided by.
pub const CATEGORY_SCOPE: &str = "holder.category";
/// The consented attribute naming the card's financial account (what the settlement port debits).
pub const ACCOUNT_SCOPE: &str = "holder.financial_account";

impl<'a> Holder<'a> {
    pub fn of(card: &'a onecard_sdk::CardView) -> Self {
        Holder {
            holder_ref: &card.holder_ref,
            category: card.attribute(CATEGORY_SCOPE),
            account: card.attribute(ACCOUNT_SCOPE).filter(|a| !a.is_empty()),
            financial_locked: card.financial_locked,
        }
    }

    /// The account a fare can be debited from, or why there is none.
    pub fn account(&self) -> Result<&'a str, HandleError> {
        self.account.ok_or_else(|| {
            HandleError::refused("FINANCIAL_ACCOUNT_MISSING", "the card shows no financial account to charge fares to")
        })
    }
}

fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, HandleError> {
    serde_json::from_slice(bytes).map_err(|e| HandleError::Internal(format!("stored {what} is unreadable: {e}")))
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, HandleError> {
    serde_json::to_vec(value).map_err(|e| HandleError::Internal(format!("not serializable: {e}")))
}

pub fn open_key(holder: &str) -> String {
    format!("open:{holder}")
}

fn exit_key(holder: &str) -> String {
    format!("exit:{holder}")
}

pub fn trip_key(id: &str) -> String {
    format!("trip:{id}")
}

fn history_key(holder: &str) -> String {
    format!("history:{holder}")
}

fn arrears_key(holder: &str) -> String {
    format!("arrears:{holder}")
}

/// The raw value of the holder's open-entry key (for compare-and-swap) and the entry it holds.
pub fn load_open(holder: &str) -> Result<(Option<Vec<u8>>, Option<OpenEntry>), HandleError> {
    let raw = kv::get(&open_key(holder))?;
    let open = match raw.as_deref() {
        Some(bytes) if !bytes.is_empty() => Some(decode("open entry", bytes)?),
        _ => None,
    };
    Ok((raw, open))
}

/// Close the holder's open entry, whose key holds `raw`, into a trip; `None` when a concurrent
/// tap or sweep closed it first. The closed trip is recorded.
pub fn close(config: &Config, holder: &str, raw: &[u8], open: &OpenEntry, exit: Option<Tap>, now: Datetime) -> Result<Option<Trip>, HandleError> {
    if !kv::compare_and_swap(&open_key(holder), Some(raw), b"", None)? {
        return Ok(None);
    }
    let trip = Trip::from_entry(config, holder, open, exit);
    record(config, &trip, now)?;
    Ok(Some(trip))
}

/// A fresh trip id: the time and a counter, so ids stay unique even if the store is rebuilt (the
/// id is the payment's idempotency key).
pub fn new_trip_id(now: Datetime) -> Result<String, HandleError> {
    let seq = kv::increment("trip-seq", 1, None)?;
    Ok(format!("T{}-{seq}", now.unix_ms))
}

/// Store a newly closed trip, queue it for settlement and add it to the holder's history.
pub fn record(config: &Config, trip: &Trip, now: Datetime) -> Result<(), HandleError> {
    save(config, trip)?;
    TRIPS.append(trip.trip_id.as_bytes(), config.retention_ms())?;
    update_list(&history_key(&trip.holder_ref), Some(config.retention_ms()), |ids| {
        ids.push(trip.trip_id.clone());
        let excess = ids.len().saturating_sub(HISTORY_LEN);
        ids.drain(..excess);
    })?;
    onecard_sdk::log::info(&format!(
        "trip {} closed at {} ({:?}, {} fen)",
        trip.trip_id,
        now.unix_ms,
        trip.rule,
        trip.fare_fen
    ));
    Ok(())
}

pub fn save(config: &Config, trip: &Trip) -> Result<(), HandleError> {
    kv::set(&trip_key(&trip.trip_id), &encode(trip)?, Some(config.retention_ms()))?;
    Ok(())
}

pub fn load_trip(id: &str) -> Result<Option<Trip>, HandleError> {
    kv::get(&trip_key(id))?.map(|bytes| decode("trip", &bytes)).transpose()
}

pub fn last_exit(holder: &str) -> Result<Option<LastExit>, HandleError> {
    kv::get(&exit_key(holder))?.map(|bytes| decode("last exit", &bytes)).transpose()
}

pub fn set_last_exit(config: &Config, holder: &str, exit: &LastExit) -> Result<(), HandleError> {
    let ttl = u64::try_from(config.replay_window_ms()).unwrap_or(u64::MAX);
    kv::set(&exit_key(holder), &encode(exit)?, Some(ttl))?;
    Ok(())
}

pub fn history(holder: &str) -> Result<Vec<String>, HandleError> {
    list(&history_key(holder))
}

pub fn arrears(holder: &str) -> Result<Vec<String>, HandleError> {
    list(&arrears_key(holder))
}

pub fn add_arrears(holder: &str, trip_id: &str) -> Result<(), HandleError> {
    update_list(&arrears_key(holder), None, |ids| {
        if !ids.iter().any(|id| id == trip_id) {
            ids.push(trip_id.to_owned());
        }
    })
}

pub fn remove_arrears(holder: &str, trip_id: &str) -> Result<(), HandleError> {
    update_list(&arrears_key(holder), None, |ids| ids.retain(|id| id != trip_id))
}

fn list(key: &str) -> Result<Vec<String>, HandleError> {
    Ok(match kv::get(key)? {
        Some(bytes) => decode("list", &bytes)?,
        None => Vec::new(),
    })
}

/// Change a JSON list of ids by compare-and-swap, retrying when a concurrent call changed it
/// (per-holder keys: contention is a holder's own taps racing a sweep, so rare).
fn update_list(key: &str, ttl_ms: Option<u64>, change: impl Fn(&mut Vec<String>)) -> Result<(), HandleError> {
    for _ in 0..16 {
        let raw = kv::get(key)?;
        let mut ids: Vec<String> = match raw.as_deref() {
            Some(bytes) => decode("list", bytes)?,
            None => Vec::new(),
        };
        change(&mut ids);
        if kv::compare_and_swap(key, raw.as_deref(), &encode(&ids)?, ttl_ms)? {
            return Ok(());
        }
    }
    Err(HandleError::backend("KV_CONTENDED", format!("`{key}` kept changing under concurrent updates")))
}
