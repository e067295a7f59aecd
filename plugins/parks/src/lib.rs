//! # parks — park and venue entry by social security card
//!
//! A city's parks department runs this plugin for its parks, museums and venues. A turnstile
//! scans the holder's card (or electronic card QR code); the gateway verifies it and calls
//! `enter`; this plugin decides:
//!
//! - **opening hours**: no entry outside the venue's local opening time;
//! - **terminals**: only the venue's registered gates admit;
//! - **entitlement**: annual pass holders, seniors (by the consented `holder.age`), residents
//!   (by the card's issuing region) enter free or discounted; venues without a standard ticket
//!   admit only entitled holders;
//! - **anti-passback**: no second entry without an exit, the same day;
//! - **capacity**: per local day, and per time slot when the venue has slots.
//!
//! State lives in the application's key-value namespace; the decision never waits on anything
//! else.
#![forbid(unsafe_code)]

mod actions;
mod config;
mod entitlement;

use onecard_sdk::{ActionSpec, Assurance, HandleError, Plugin, PluginInfo, Request, Response};

pub use entitlement::{Entitlement, Kind};

/// The parks plugin.
#[derive(Debug)]
pub struct Parks;

impl Plugin for Parks {
    fn describe() -> PluginInfo {
        PluginInfo::new("parks", env!("CARGO_PKG_VERSION"))
            .action(
                ActionSpec::new("enter", include_str!("../schemas/enter.json"))
                    .description("Admit a card holder through a venue gate")
                    .assurance(Assurance::RealCard)
                    .scopes(&[entitlement::AGE_SCOPE])
                    .needs_card(),
            )
            .action(
                ActionSpec::new("exit", include_str!("../schemas/empty.json"))
                    .description("Record a card holder leaving a venue")
                    .assurance(Assurance::RealCard)
                    .needs_card(),
            )
            .action(
                ActionSpec::new("check", include_str!("../schemas/empty.json"))
                    .description("Tell a holder's entitlement, price and today's admissions without entering")
                    .assurance(Assurance::RealCard)
                    .scopes(&[entitlement::AGE_SCOPE])
                    .needs_card(),
            )
            .action(
                ActionSpec::new("issue_pass", include_str!("../schemas/issue_pass.json"))
                    .description("Record an annual pass for the card holder")
                    .assurance(Assurance::RealPerson)
                    .needs_card(),
            )
            .capability("kv")
    }

    fn handle(request: Request) -> Result<Response, HandleError> {
        match request.action.as_str() {
            "enter" => actions::enter(&request),
            "exit" => actions::exit(&request),
            "check" => actions::check(&request),
            "issue_pass" => actions::issue_pass(&request),
            other => Err(HandleError::unknown_action(other)),
        }
    }
}

onecard_sdk::export_plugin!(Parks);

#[cfg(test)]
mod tests;
