//! Venues: the places (a park gate, a hospital counter) registered to an application, with the
//! terminals that may call it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::ActiveStatus;

/// A venue of one application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Venue {
    /// Slug id.
    pub id: String,
    /// Application id.
    pub application: String,
    /// Display name.
    pub name: String,
    /// The venue operator's channel, if it calls through its own channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_channel: Option<String>,
    /// Terminal ids allowed to call.
    #[serde(default)]
    pub terminals: BTreeSet<String>,
    /// Status.
    #[serde(default)]
    pub status: ActiveStatus,
}
