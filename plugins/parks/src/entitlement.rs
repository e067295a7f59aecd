//! Who may enter at what price: annual pass holders, seniors, residents, everybody else.

use onecard_sdk::{CardView, HandleError, kv};
use serde::Serialize;

use crate::config::Fees;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    AnnualPass,
    Senior,
    Resident,
    Standard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Entitlement {
    pub kind: Kind,
    pub fee_fen: u64,
}

/// The consented attribute the senior rule reads.
pub const AGE_SCOPE: &str = "holder.age";

pub fn pass_key(holder: &str) -> String {
    format!("pass:{holder}")
}

/// The cheapest entry the card is entitled to, or `NOT_ENTITLED`.
pub fn best(card: &CardView, fees: &Fees) -> Result<Entitlement, HandleError> {
    let mut options = Vec::with_capacity(4);
    if kv::get(&pass_key(&card.holder_ref))?.is_some() {
        options.push(Entitlement { kind: Kind::AnnualPass, fee_fen: 0 });
    }
    let age = card.attribute(AGE_SCOPE).and_then(|a| a.parse::<u32>().ok());
    if let (Some(age), Some(senior_age)) = (age, fees.senior_age)
        && age >= senior_age
    {
        options.push(Entitlement { kind: Kind::Senior, fee_fen: fees.senior_fen });
    }
    if fees.resident_regions.iter().any(|r| card.issuing_region.starts_with(r.as_str())) {
        options.push(Entitlement { kind: Kind::Resident, fee_fen: fees.resident_fen });
    }
    if let Some(fee_fen) = fees.standard_fen {
        options.push(Entitlement { kind: Kind::Standard, fee_fen });
    }
    options
        .into_iter()
        .min_by_key(|e| e.fee_fen)
        .ok_or_else(|| HandleError::refused("NOT_ENTITLED", "this venue admits only entitled card holders"))
}
