//! # transit — metro and bus fares by social security card
//!
//! A city's transit operator runs this plugin behind its gates. A gate scans the holder's card
//! (or electronic card QR code); the gateway verifies it and calls `tap_in` or `tap_out` with the
//! station as the request's venue and the gate as its terminal. The gate's answer never waits on
//! a backend: taps only read and write the application's key-value store. The money moves
//! afterwards, when the operator's scheduler calls `upload_pending`.
//!
//! ## Rules
//!
//! - **Pairing**: `tap_in` opens a trip; `tap_out` closes it and tells the fare.
//! - **Fares** ([`config`]): from the fare table in the application's configuration, by zones
//!   (a trip touching `|zone a − zone b| + 1` zones pays that band's fare) or by distance (the
//!   difference of the stations' positions, or a listed pair distance, picks the band); beyond
//!   the last band, and never more than, the maximum fare `max_fare_fen`.
//! - **Service day**: starts at `service_day_starts` local time (default 04:00, local by the
//!   clock capability's UTC offset). An exit pairs only with an entry of the same service day.
//! - **Exit without entry** (rule `exit_without_entry`): the maximum fare.
//! - **Open entry** (rule `open_entry`): an entry not closed by an exit within its service day
//!   is charged the maximum fare at the holder's next tap or by `upload_pending`, whichever
//!   comes first. A `tap_in` while another entry is open (from another station, or from the
//!   same station beyond the replay window) closes the old one by this rule too.
//! - **Concessions**: by the consented `holder.category` attribute, the share of the fare the
//!   category pays (`concessions` in the configuration: e.g. senior 0 %, student 50 %), rounded
//!   to the nearest fen. They apply to every charge, by rule too. The category of a trip is the
//!   one shown at its entry (at its exit without entry).
//! - **Repeated taps**: an entry with the same idempotency key as the open entry, or at the same
//!   station within `replay_window_minutes` (default 5), is a replay: answered again, nothing
//!   opened or charged twice. An exit repeated within the window (same idempotency key, or the
//!   same station with no entry since) is answered with the same trip.
//! - **Money**: the fare is debited from the card's financial account (the consented
//!   `holder.financial_account` attribute, recorded at the tap) by `upload_pending`, through the
//!   `payments` capability with the trip id as idempotency key, then the trip is uploaded to the
//!   fare system (backend `fare_backend`, `POST /trips`, `Idempotency-Key: <trip id>`). A free
//!   trip moves no money. A debit the account refuses makes the trip arrears: the holder's next
//!   `tap_in` is refused with `FARE_ARREARS` until `pay_arrears` settles it.
//!
//! ## Refusals
//!
//! `STATION_REQUIRED` / `STATION_UNKNOWN` (the venue is not a configured station),
//! `TERMINAL_NOT_ALLOWED` (the gate is not one of the station's), `CARD_FINANCIAL_LOCKED` (entry
//! with a locked financial account), `FINANCIAL_ACCOUNT_MISSING` (no account to charge),
//! `FARE_ARREARS` (entry while trips are unpaid), `CONCURRENT_TAP` (two taps of one card raced),
//! `NO_ARREARS` (`pay_arrears` with nothing owed), and the payment refusals of `pay_arrears`
//! (`INSUFFICIENT_FUNDS`, `PAYMENT_DECLINED`, `PAYMENT_LIMIT_EXCEEDED`). An exit is never refused
//! for the card's financial state: the holder must be let out.
#![forbid(unsafe_code)]

pub mod config;
mod settlement;
mod taps;
mod trips;
mod worklog;

use onecard_sdk::{ActionSpec, Assurance, HandleError, Plugin, PluginInfo, Request, Response};

pub use trips::{ACCOUNT_SCOPE, CATEGORY_SCOPE};

/// The transit plugin.
#[derive(Debug)]
pub struct Transit;

impl Plugin for Transit {
    fn describe() -> PluginInfo {
        let tap_scopes = [CATEGORY_SCOPE, ACCOUNT_SCOPE];
        PluginInfo::new("transit", env!("CARGO_PKG_VERSION"))
            .action(
                ActionSpec::new("tap_in", include_str!("../schemas/empty.json"))
                    .description("Open a trip at a station gate")
                    .assurance(Assurance::RealCard)
                    .scopes(&tap_scopes)
                    .needs_card(),
            )
            .action(
                ActionSpec::new("tap_out", include_str!("../schemas/empty.json"))
                    .description("Close a trip at a station gate and tell its fare")
                    .assurance(Assurance::RealCard)
                    .scopes(&tap_scopes)
                    .needs_card(),
            )
            .action(
                ActionSpec::new("upload_pending", include_str!("../schemas/upload_pending.json"))
                    .description("Charge entries left open past their service day, debit closed trips and upload them to the fare system")
                    .moves_money(),
            )
            .action(
                ActionSpec::new("pay_arrears", include_str!("../schemas/empty.json"))
                    .description("Settle the holder's trips whose debit was refused")
                    .assurance(Assurance::RealCard)
                    .moves_money()
                    .needs_card(),
            )
            .action(
                ActionSpec::new("trip_history", include_str!("../schemas/trip_history.json"))
                    .description("The holder's recent trips, open entry and arrears")
                    .needs_card(),
            )
            .capability("http")
            .capability("kv")
            .capability("payments")
    }

    fn handle(request: Request) -> Result<Response, HandleError> {
        match request.action.as_str() {
            "tap_in" => taps::tap_in(&request),
            "tap_out" => taps::tap_out(&request),
            "upload_pending" => settlement::upload_pending(&request),
            "pay_arrears" => settlement::pay_arrears(&request),
            "trip_history" => settlement::trip_history(&request),
            other => Err(HandleError::unknown_action(other)),
        }
    }
}

onecard_sdk::export_plugin!(Transit);

#[cfg(test)]
mod tests;
