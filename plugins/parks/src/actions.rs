//! The four actions: `enter`, `exit`, `check`, `issue_pass`.

use onecard_sdk::clock::{self, Datetime};
use onecard_sdk::{HandleError, Request, Response, kv, log};
use serde::{Deserialize, Serialize};

use crate::config::{self, Config, Slot, Venue};
use crate::entitlement::{self, Entitlement};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnterParams {
    slot: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuePassParams {
    valid_days: u32,
}

#[derive(Serialize)]
struct Admission<'a> {
    decision: &'static str,
    venue: &'a str,
    entitlement: Entitlement,
    admitted_today: i64,
    slot: Option<&'a str>,
    /// True when this answers a retry of an entry already admitted (same idempotency key).
    replayed: bool,
}

/// Everything an entry decision needs about where and when.
struct Gate<'a> {
    venue_id: &'a str,
    venue: &'a Venue,
    now: Datetime,
    date: String,
}

impl<'a> Gate<'a> {
    fn open(request: &'a Request, config: &'a Config) -> Result<Self, HandleError> {
        let venue_id = request
            .venue
            .as_deref()
            .ok_or_else(|| HandleError::invalid("VENUE_REQUIRED", "the request names no venue"))?;
        let venue = config.venue(venue_id)?;
        let now = clock::now();
        let date = now.local_date();
        Ok(Gate { venue_id, venue, now, date })
    }

    fn check_terminal(&self, terminal: Option<&str>) -> Result<(), HandleError> {
        let allowed = self.venue.terminals.is_empty()
            || terminal.is_some_and(|t| self.venue.terminals.iter().any(|v| v == t));
        if allowed {
            Ok(())
        } else {
            Err(HandleError::refused(
                "TERMINAL_NOT_ALLOWED",
                format!("terminal {:?} is not a gate of venue `{}`", terminal.unwrap_or("-"), self.venue_id),
            ))
        }
    }

    fn check_open(&self) -> Result<(), HandleError> {
        let minute = self.now.local_day_and_minute().1;
        let (opens, closes) = (config::minutes(&self.venue.opens)?, config::minutes(&self.venue.closes)?);
        if minute < opens || minute >= closes {
            return Err(HandleError::refused(
                "VENUE_CLOSED",
                format!("{} is open {}–{}", self.venue.name, self.venue.opens, self.venue.closes),
            ));
        }
        Ok(())
    }

    fn check_slot(&self, id: &str) -> Result<&'a Slot, HandleError> {
        let slot = self.venue.slot(id)?;
        let minute = self.now.local_day_and_minute().1;
        if minute < config::minutes(&slot.starts)? || minute >= config::minutes(&slot.ends)? {
            return Err(HandleError::refused(
                "OUTSIDE_SLOT",
                format!("time slot `{id}` admits {}–{}", slot.starts, slot.ends),
            ));
        }
        Ok(slot)
    }

    fn inside_key(&self, holder: &str) -> String {
        format!("inside:{}:{holder}", self.venue_id)
    }

    fn count_key(&self, slot: Option<&str>) -> String {
        match slot {
            Some(slot) => format!("count:{}:{}:{slot}", self.venue_id, self.date),
            None => format!("count:{}:{}", self.venue_id, self.date),
        }
    }

    /// Keys of the day expire a day after local midnight, so nothing accumulates.
    fn day_ttl(&self) -> Option<u64> {
        Some(self.now.ms_until_local_midnight() + 86_400_000)
    }

    fn admitted_today(&self) -> Result<i64, HandleError> {
        let raw = kv::get(&self.count_key(None))?;
        Ok(raw.and_then(|v| String::from_utf8(v).ok()?.parse().ok()).unwrap_or(0))
    }

    /// Take one place under `capacity` on `key`, or give it back and refuse.
    fn take_place(&self, key: &str, capacity: i64, what: &str) -> Result<i64, HandleError> {
        let count = kv::increment(key, 1, self.day_ttl())?;
        if count > capacity {
            kv::increment(key, -1, None)?;
            return Err(HandleError::refused(
                "CAPACITY_REACHED",
                format!("{} has reached its capacity of {capacity} {what}", self.venue.name),
            ));
        }
        Ok(count)
    }
}

pub fn enter(request: &Request) -> Result<Response, HandleError> {
    let params: EnterParams = request.params()?;
    let config: Config = request.config()?;
    let card = request.card()?;
    let gate = Gate::open(request, &config)?;
    gate.check_terminal(request.terminal.as_deref())?;
    gate.check_open()?;
    let slot = match params.slot.as_deref() {
        Some(id) => Some(gate.check_slot(id)?),
        None if !gate.venue.slots.is_empty() => {
            return Err(HandleError::invalid("SLOT_REQUIRED", format!("{} admits by time slot", gate.venue.name)));
        }
        None => None,
    };
    let entitlement = entitlement::best(card, &gate.venue.fees)?;

    // Anti-passback: the marker holds the idempotency key of the entry that set it, so a retried
    // request is answered again instead of refused.
    let inside = gate.inside_key(&card.holder_ref);
    let marker = request.idempotency_key.as_bytes();
    if !kv::compare_and_swap(&inside, None, marker, gate.day_ttl())? {
        if kv::get(&inside)?.as_deref() == Some(marker) {
            return admission(&gate, entitlement, params.slot.as_deref(), gate.admitted_today()?, true);
        }
        return Err(HandleError::refused(
            "ALREADY_INSIDE",
            format!("the holder entered {} and has not left", gate.venue.name),
        ));
    }

    let admitted = gate
        .take_place(&gate.count_key(None), gate.venue.capacity_per_day, "entries today")
        .and_then(|count| {
            if let Some(slot) = slot {
                let slot_key = gate.count_key(Some(&slot.id));
                if let Err(e) = gate.take_place(&slot_key, slot.capacity, "entries in this slot") {
                    kv::increment(&gate.count_key(None), -1, None)?;
                    return Err(e);
                }
            }
            Ok(count)
        });
    match admitted {
        Ok(count) => {
            log::info(&format!("admitted at {} ({:?})", gate.venue_id, entitlement.kind));
            admission(&gate, entitlement, params.slot.as_deref(), count, false)
        }
        Err(refusal) => {
            kv::delete(&inside)?;
            Err(refusal)
        }
    }
}

fn admission(gate: &Gate<'_>, entitlement: Entitlement, slot: Option<&str>, count: i64, replayed: bool) -> Result<Response, HandleError> {
    Response::json(&Admission {
        decision: "admit",
        venue: gate.venue_id,
        entitlement,
        admitted_today: count,
        slot,
        replayed,
    })
}

pub fn exit(request: &Request) -> Result<Response, HandleError> {
    let _: NoParams = request.params()?;
    let config: Config = request.config()?;
    let card = request.card()?;
    let gate = Gate::open(request, &config)?;
    gate.check_terminal(request.terminal.as_deref())?;
    if !kv::delete(&gate.inside_key(&card.holder_ref))? {
        return Err(HandleError::refused(
            "NOT_INSIDE",
            format!("no entry to {} is recorded for this holder today", gate.venue.name),
        ));
    }
    Response::json(&serde_json::json!({ "decision": "exit", "venue": gate.venue_id }))
}

pub fn check(request: &Request) -> Result<Response, HandleError> {
    let _: NoParams = request.params()?;
    let config: Config = request.config()?;
    let card = request.card()?;
    let gate = Gate::open(request, &config)?;
    let entitlement = entitlement::best(card, &gate.venue.fees);
    let open = gate.check_open().is_ok();
    let inside = kv::get(&gate.inside_key(&card.holder_ref))?.is_some();
    Response::json(&serde_json::json!({
        "venue": gate.venue_id,
        "open": open,
        "inside": inside,
        "entitlement": entitlement.as_ref().ok(),
        "refusal": entitlement.as_ref().err().map(|e| e.code()),
        "admitted_today": gate.admitted_today()?,
        "capacity_per_day": gate.venue.capacity_per_day,
    }))
}

pub fn issue_pass(request: &Request) -> Result<Response, HandleError> {
    let params: IssuePassParams = request.params()?;
    let card = request.card()?;
    let now = clock::now();
    let ttl = u64::from(params.valid_days) * 86_400_000;
    let until_ms = now.unix_ms + ttl as i64;
    kv::set(&entitlement::pass_key(&card.holder_ref), until_ms.to_string().as_bytes(), Some(ttl))?;
    Response::json(&serde_json::json!({ "pass": "annual", "valid_until_ms": until_ms }))
}
