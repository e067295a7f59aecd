//! The change feed gateways follow between snapshots: every change has a version; card status
//! changes, application state changes (suspensions), grant and consent revocations are
//! first-class events a gateway applies at once, anything else tells it to fetch a snapshot.

use serde::{Deserialize, Serialize};

use crate::model::{CardStatus, Consent};
use crate::snapshot::CardState;
use crate::workflow::FilingState;

/// What an entity change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Created.
    Added,
    /// Modified.
    Changed,
    /// Deleted.
    Removed,
}

/// One change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChangeEvent {
    /// A card's status or account locks changed (or it was registered).
    CardStatus {
        /// Card reference.
        card_ref: String,
        /// Status before, if the card existed.
        previous: Option<CardStatus>,
        /// The card's state now.
        state: CardState,
    },
    /// A filing changed state; `to = suspended` is a suspension with its notice.
    ApplicationState {
        /// Application id.
        application: String,
        /// Filing number.
        filing: u32,
        /// State before (none when the filing was created).
        from: Option<FilingState>,
        /// State now.
        to: FilingState,
        /// Notice shown to callers while suspended.
        notice: Option<String>,
    },
    /// A grant was revoked: the channel may no longer call the application.
    GrantRevoked {
        /// Channel id.
        channel: String,
        /// Application id.
        application: String,
    },
    /// A holder granted a consent.
    ConsentGranted {
        /// The consent.
        consent: Consent,
    },
    /// A holder revoked a consent.
    ConsentRevoked {
        /// Consent id.
        consent_id: String,
        /// Card reference.
        card_ref: String,
        /// Application id.
        application: String,
    },
    /// Any other catalog entity changed: fetch a new snapshot.
    EntityChanged {
        /// Entity kind (`channel`, `venue`, `policy`, ...).
        entity: String,
        /// Entity id.
        id: String,
        /// What happened.
        op: Op,
    },
    /// An admin token was created or revoked (no effect on gateways).
    TokenChanged {
        /// Token id (never the token).
        token_id: String,
        /// What happened.
        op: Op,
    },
}

impl ChangeEvent {
    /// The journal kind.
    pub fn kind(&self) -> &'static str {
        match self {
            ChangeEvent::CardStatus { .. } => "card_status",
            ChangeEvent::ApplicationState { .. } => "application_state",
            ChangeEvent::GrantRevoked { .. } => "grant_revoked",
            ChangeEvent::ConsentGranted { .. } => "consent_granted",
            ChangeEvent::ConsentRevoked { .. } => "consent_revoked",
            ChangeEvent::EntityChanged { .. } => "entity_changed",
            ChangeEvent::TokenChanged { .. } => "token_changed",
        }
    }
}

/// A page of the change feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChangePage {
    /// The `after` asked for.
    pub after: i64,
    /// The catalog version when answering.
    pub latest: i64,
    /// Changes after `after`, oldest first.
    pub changes: Vec<Change>,
    /// More changes follow the last one returned: ask again at once.
    pub more: bool,
}

/// One change of the feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Change {
    /// Version.
    pub version: i64,
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Who.
    pub actor: String,
    /// What.
    pub event: ChangeEvent,
}
