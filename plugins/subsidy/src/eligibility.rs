//! Whether a batch item may be paid to the presented card: everything decidable before the
//! claim, from the item, the policy and the card (DOMAIN.md, "Subsidies").

use onecard_sdk::{CardStatus, CardView, HandleError};

use crate::config::{Period, Policy};

/// `alive` or `deceased`, from the civil register (via the card platform).
pub const VITAL_STATUS_SCOPE: &str = "holder.vital_status";
/// `head` or `member` of the household register; read for household policies.
pub const HOUSEHOLD_ROLE_SCOPE: &str = "holder.household_role";
/// The card's financial (bank) account reference, what the bank credits.
pub const ACCOUNT_SCOPE: &str = "holder.financial_account";

/// What the checks need of an item.
#[derive(Debug)]
pub struct Item<'a> {
    pub beneficiary_ref: &'a str,
    pub amount_fen: u64,
}

/// The account to credit, or the first rule the item breaks.
pub fn check<'c>(item: &Item<'_>, policy: &Policy, period: &Period, card: &'c CardView, today: &str) -> Result<&'c str, HandleError> {
    if card.holder_ref != item.beneficiary_ref {
        return Err(HandleError::refused(
            "NOT_BENEFICIARY_CARD",
            "the presented card is not the beneficiary's own: subsidies are never paid to another card",
        ));
    }
    if card.status != CardStatus::Normal {
        return Err(HandleError::refused("CARD_NOT_NORMAL", format!("the card is {:?}, not normal", card.status)));
    }
    match card.attribute(VITAL_STATUS_SCOPE) {
        Some("alive") => {}
        Some("deceased") => {
            return Err(HandleError::refused("PERSON_DECEASED", "the beneficiary is registered as deceased"));
        }
        other => {
            return Err(HandleError::refused(
                "PERSON_STATUS_UNKNOWN",
                format!("the beneficiary's vital status is {}: it must be `alive` to pay", other.map_or("not shown".into(), |s| format!("`{s}`"))),
            ));
        }
    }
    if policy.household && card.attribute(HOUSEHOLD_ROLE_SCOPE) != Some("head") {
        return Err(HandleError::refused(
            "NOT_HEAD_OF_HOUSEHOLD",
            format!("{} is paid to the head of household; this card's holder is not registered as head", policy.name),
        ));
    }
    if item.amount_fen > policy.standard_fen {
        return Err(HandleError::refused(
            "AMOUNT_ABOVE_STANDARD",
            format!("{} fen exceeds the standard of {} fen per period of {}", item.amount_fen, policy.standard_fen, policy.name),
        ));
    }
    if today < period.notice_ends.as_str() {
        return Err(HandleError::refused(
            "NOTICE_PERIOD_OPEN",
            format!("the public notice runs until {}; payment is possible from then", period.notice_ends),
        ));
    }
    match card.attribute(ACCOUNT_SCOPE).filter(|a| !a.is_empty()) {
        Some(account) if !card.financial_locked => Ok(account),
        Some(_) => Err(HandleError::refused("FINANCIAL_ACCOUNT_UNUSABLE", "the card's financial account is locked")),
        None => Err(HandleError::refused(
            "FINANCIAL_ACCOUNT_UNUSABLE",
            "the card has no activated financial account to credit",
        )),
    }
}
