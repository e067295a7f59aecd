//! The card registry: a card's status, account locks and assurance facts, keyed by the keyed
//! hash of the holder's social security number (the SSN itself is never stored).

use serde::{Deserialize, Serialize};


/// Card status (DOMAIN.md). Account locks are separate flags on [`Card`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CardStatus {
    /// Issued, social functions not yet enabled.
    Sealed,
    /// In use.
    Normal,
    /// Reported lost, reversible; usable only with the holder's explicit authorization.
    TemporaryLoss,
    /// Lost for good; a replacement card gets new numbers.
    FormalLoss,
    /// Final.
    Cancelled,
}

impl CardStatus {
    /// Every status, for tables and tests.
    pub const ALL: [CardStatus; 5] = [
        CardStatus::Sealed,
        CardStatus::Normal,
        CardStatus::TemporaryLoss,
        CardStatus::FormalLoss,
        CardStatus::Cancelled,
    ];

    /// Whether a card may move from `self` to `to` (staying put is always allowed).
    pub fn can_become(self, to: CardStatus) -> bool {
        use CardStatus::*;
        self == to
            || matches!(
                (self, to),
                (Sealed, Normal)
                    | (Normal, TemporaryLoss)
                    | (TemporaryLoss, Normal)
                    | (TemporaryLoss, FormalLoss)
                    | (Sealed | Normal | TemporaryLoss | FormalLoss, Cancelled)
            )
    }

    /// Whether a status can never be left.
    pub fn is_final(self) -> bool {
        matches!(self, CardStatus::FormalLoss | CardStatus::Cancelled)
    }

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            CardStatus::Sealed => "sealed",
            CardStatus::Normal => "normal",
            CardStatus::TemporaryLoss => "temporary_loss",
            CardStatus::FormalLoss => "formal_loss",
            CardStatus::Cancelled => "cancelled",
        }
    }
}

/// One card in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Card {
    /// Card reference: keyed hash (HMAC-SHA256, hex) of the holder's SSN.
    pub card_ref: String,
    /// Issuer-assigned card number (changes on replacement).
    pub card_number: String,
    /// 32-hex card identification code.
    pub card_id_code: String,
    /// Six-digit issuing region (pooling-region codes ending in 99 accepted).
    pub issuing_region: String,
    /// Status.
    pub status: CardStatus,
    /// Social account locked (wrong PINs).
    #[serde(default)]
    pub social_locked: bool,
    /// Financial account locked.
    #[serde(default)]
    pub financial_locked: bool,
    /// 实名: name and ID number verified against the register.
    #[serde(default)]
    pub real_name: bool,
    /// 实卡: physical card issued and activated.
    #[serde(default)]
    pub real_card: bool,
    /// Bank account activated (level-2 issuance, needed for payments).
    #[serde(default)]
    pub bank_activated: bool,
    /// 实人: face enrolled for real-person checks.
    #[serde(default)]
    pub real_person: bool,
    /// End of validity (cards are valid 10 years).
    pub valid_until: chrono::DateTime<chrono::Utc>,
}
