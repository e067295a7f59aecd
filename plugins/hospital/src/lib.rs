//! # hospital — outpatient and pharmacy settlement against medical insurance
//!
//! A hospital (or a designated pharmacy) runs this plugin to settle bills of social security card
//! holders against the medical-insurance system (the national interface, reached through the
//! `http` capability as backend `insurance` by default):
//!
//! - `register` (2201) opens an outpatient visit; `upload_fees` (2204) uploads its fee lines;
//!   `presettle` (2206) tells how the bill splits; `settle` (2207) settles it;
//! - `pharmacy_purchase` (2102) settles a purchase at a pharmacy counter in one step;
//! - `reconcile` reverses a settlement that never got an answer.
//!
//! Every message carries its own id (institution code + local time + daily sequence, see
//! [`msgid`]). A settlement's id is stored before the message is sent and a settlement is never
//! re-sent: without an answer it is reversed (2601). The split — fund, personal account,
//! self-pay — is told in the response; the self-pay is debited from the card's financial account
//! through the settlement port, keyed by the settlement's message id (see [`settlement`]).
#![forbid(unsafe_code)]

mod config;
mod fees;
mod insurance;
pub mod money;
pub mod msgid;
mod outpatient;
mod pharmacy;
mod reconcile;
mod record;
pub mod settlement;

use onecard_sdk::{ActionSpec, Assurance, HandleError, Plugin, PluginInfo, Request, Response};

/// The hospital plugin.
#[derive(Debug)]
pub struct Hospital;

impl Plugin for Hospital {
    fn describe() -> PluginInfo {
        PluginInfo::new("hospital", env!("CARGO_PKG_VERSION"))
            .action(
                ActionSpec::new("register", include_str!("../schemas/register.json"))
                    .description("Register an outpatient visit with the medical-insurance system")
                    .assurance(Assurance::RealCard)
                    .needs_card(),
            )
            .action(
                ActionSpec::new("upload_fees", include_str!("../schemas/upload_fees.json"))
                    .description("Upload fee lines of a registered visit")
                    .assurance(Assurance::RealName),
            )
            .action(
                ActionSpec::new("presettle", include_str!("../schemas/presettle.json"))
                    .description("Pre-settle a visit: how its fees split into fund, personal account and self-pay")
                    .assurance(Assurance::RealName),
            )
            .action(
                ActionSpec::new("settle", include_str!("../schemas/settle.json"))
                    .description("Settle a pre-settled visit and charge the holder's self-pay")
                    .assurance(Assurance::RealCard)
                    .needs_card()
                    .moves_money(),
            )
            .action(
                ActionSpec::new("pharmacy_purchase", include_str!("../schemas/pharmacy_purchase.json"))
                    .description("Settle a purchase at a designated pharmacy and charge the holder's self-pay")
                    .assurance(Assurance::RealCard)
                    .needs_card()
                    .moves_money(),
            )
            .action(
                ActionSpec::new("reconcile", include_str!("../schemas/reconcile.json"))
                    .description("Reverse a settlement that got no answer, or report where it stands")
                    .assurance(Assurance::RealName),
            )
            .capability("http")
            .capability("kv")
            .capability("payments")
    }

    fn handle(request: Request) -> Result<Response, HandleError> {
        match request.action.as_str() {
            "register" => outpatient::register(&request),
            "upload_fees" => outpatient::upload_fees(&request),
            "presettle" => outpatient::presettle(&request),
            "settle" => outpatient::settle(&request),
            "pharmacy_purchase" => pharmacy::purchase(&request),
            "reconcile" => reconcile::reconcile(&request),
            other => Err(HandleError::unknown_action(other)),
        }
    }
}

onecard_sdk::export_plugin!(Hospital);

#[cfg(test)]
mod tests;
