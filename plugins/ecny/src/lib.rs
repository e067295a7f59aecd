//! # ecny — a hard digital-yuan (e-CNY) wallet on the social security card
//!
//! The card can carry a hard e-CNY wallet opened with the e-CNY operator. This plugin:
//!
//! - `load_wallet`: opens the holder's hard wallet at the operator (`http`, backend `ecny`) in
//!   one of the configured tiers and binds it to the card;
//! - `top_up`: credits the wallet through the operator's settlement port (`payments`), within
//!   the tier's balance limit;
//! - `pay`: debits the wallet to a configured merchant, within the tier's single-payment and
//!   daily limits (the daily total holds across concurrent payments, see [`limits`]);
//! - `balance`: the operator's balance and today's remaining allowance.
//!
//! The gateway never holds funds: the operator keeps the balance, the settlement port moves the
//! money, the plugin keeps only the wallet binding, the daily totals and the operation records
//! that make retries safe.
#![forbid(unsafe_code)]

pub mod config;
pub mod limits;
mod operator;
mod records;
mod transfer;
mod wallet;

use onecard_sdk::{ActionSpec, Assurance, HandleError, Plugin, PluginInfo, Request, Response};

/// The e-CNY plugin.
#[derive(Debug)]
pub struct Ecny;

impl Plugin for Ecny {
    fn describe() -> PluginInfo {
        PluginInfo::new("ecny", env!("CARGO_PKG_VERSION"))
            .action(
                ActionSpec::new("load_wallet", include_str!("../schemas/load_wallet.json"))
                    .description("Open a hard e-CNY wallet with the operator and bind it to the card")
                    .assurance(Assurance::RealPerson)
                    .needs_card(),
            )
            .action(
                ActionSpec::new("top_up", include_str!("../schemas/top_up.json"))
                    .description("Top up the card's e-CNY wallet within its balance limit")
                    .assurance(Assurance::RealCard)
                    .needs_card()
                    .moves_money(),
            )
            .action(
                ActionSpec::new("pay", include_str!("../schemas/pay.json"))
                    .description("Pay a merchant from the card's e-CNY wallet within its payment limits")
                    .assurance(Assurance::RealCard)
                    .needs_card()
                    .moves_money(),
            )
            .action(
                ActionSpec::new("balance", include_str!("../schemas/balance.json"))
                    .description("Tell the wallet's balance and today's remaining payment allowance")
                    .assurance(Assurance::RealCard)
                    .needs_card(),
            )
            .capability("http")
            .capability("kv")
            .capability("payments")
    }

    fn handle(request: Request) -> Result<Response, HandleError> {
        match request.action.as_str() {
            "load_wallet" => wallet::load(&request),
            "top_up" => transfer::top_up(&request),
            "pay" => transfer::pay(&request),
            "balance" => wallet::balance(&request),
            other => Err(HandleError::unknown_action(other)),
        }
    }
}

onecard_sdk::export_plugin!(Ecny);

#[cfg(test)]
mod tests;
