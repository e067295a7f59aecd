//! # subsidy — subsidy disbursement to the beneficiary's own card
//!
//! A city or county department pays farm, welfare and other subsidies into the financial
//! (bank) account of each beneficiary's social security card. Its payment system sends the
//! batch one item at a time through the gateway, with the beneficiary's card read by the gateway
//! (real-person assurance); this plugin decides each item and pays it through the `payments`
//! capability (the bank's settlement port, a credit to the card's account).
//!
//! ## Before paying (in this order; the first broken rule refuses the item)
//!
//! | rule | refusal |
//! |---|---|
//! | the policy and its period are configured | `POLICY_UNKNOWN`, `PERIOD_UNKNOWN` |
//! | the card is the beneficiary's own (`holder_ref` = the item's `beneficiary_ref`) | `NOT_BENEFICIARY_CARD` |
//! | the card is `normal` | `CARD_NOT_NORMAL` |
//! | the person is alive (`holder.vital_status` = `alive`) | `PERSON_DECEASED`, `PERSON_STATUS_UNKNOWN` |
//! | household policies: the holder is head of household (`holder.household_role` = `head`) | `NOT_HEAD_OF_HOUSEHOLD` |
//! | the amount is within the policy standard per period | `AMOUNT_ABOVE_STANDARD` |
//! | the public-notice period has ended (local date ≥ the period's `notice_ends`) | `NOTICE_PERIOD_OPEN` |
//! | the card has an unlocked financial account (`holder.financial_account`) | `FINANCIAL_ACCOUNT_UNUSABLE` |
//! | the person has not been paid for this policy period | `ALREADY_PAID` |
//! | nobody is paying the same person for the period right now | `DISBURSEMENT_IN_PROGRESS` |
//!
//! The bank's own refusals come back as `PAYMENT_DECLINED`, `INSUFFICIENT_FUNDS` (the paying
//! department's account) or `PAYMENT_LIMIT_EXCEEDED`. A resent item that was paid is answered
//! again (`replayed`), and one resent with other details is `ITEM_MISMATCH`.
//!
//! ## Exactly one payment per (policy, period, person)
//!
//! See [`claim`]: a compare-and-swap claim on the triple before paying, and the triple as the
//! payment's idempotency key, so two concurrent sends of one item (or two items for one person)
//! pay once. For household policies the person is the head of household.
//!
//! ## Holder data scopes
//!
//! `holder.vital_status` (`alive` | `deceased`), `holder.household_role` (`head` | `member`),
//! `holder.financial_account` (the account reference the bank credits). They come from the
//! holder's consent for this application, as the gateway shows them.
//!
//! ## Reconciliation
//!
//! Every decided item is recorded in its batch's report ([`batch`]): paid with the bank's receipt
//! and amount, or refused with its code. `reconcile` pages through it with totals, for matching
//! against the bank's statement; `status` says whether a person was paid for a period. The
//! batch record is the only state a refused item writes.
#![forbid(unsafe_code)]

mod actions;
pub mod batch;
pub mod claim;
pub mod config;
mod eligibility;

use onecard_sdk::{ActionSpec, Assurance, HandleError, Plugin, PluginInfo, Request, Response};

pub use eligibility::{ACCOUNT_SCOPE, HOUSEHOLD_ROLE_SCOPE, VITAL_STATUS_SCOPE};

/// The subsidy plugin.
#[derive(Debug)]
pub struct Subsidy;

impl Plugin for Subsidy {
    fn describe() -> PluginInfo {
        PluginInfo::new("subsidy", env!("CARGO_PKG_VERSION"))
            .action(
                ActionSpec::new("disburse", include_str!("../schemas/disburse.json"))
                    .description("Pay one subsidy batch item to the beneficiary's own card")
                    .assurance(Assurance::RealPerson)
                    .scopes(&[VITAL_STATUS_SCOPE, HOUSEHOLD_ROLE_SCOPE, ACCOUNT_SCOPE])
                    .moves_money()
                    .needs_card(),
            )
            .action(
                ActionSpec::new("reconcile", include_str!("../schemas/reconcile.json"))
                    .description("Report a batch: items paid with receipts and totals, items refused with codes"),
            )
            .action(
                ActionSpec::new("status", include_str!("../schemas/status.json"))
                    .description("Tell whether a person has been paid for a policy period"),
            )
            .capability("kv")
            .capability("payments")
    }

    fn handle(request: Request) -> Result<Response, HandleError> {
        match request.action.as_str() {
            "disburse" => actions::disburse(&request),
            "reconcile" => batch::reconcile(&request),
            "status" => actions::status(&request),
            other => Err(HandleError::unknown_action(other)),
        }
    }
}

onecard_sdk::export_plugin!(Subsidy);

#[cfg(test)]
mod tests;
