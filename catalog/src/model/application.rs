//! Applications (catalog entries) and their filings: the plugin artifact a department files,
//! what it may do, and the per-action card-status policy.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::CardStatus;
use crate::workflow::FilingState;

/// Assurance levels an action may require (实名 / 实卡 / 实人).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Assurance {
    /// 实名: name and ID number match the register.
    RealName,
    /// 实卡: an issued, activated, usable physical card.
    RealCard,
    /// 实人: face match plus liveness.
    RealPerson,
}

/// Host capabilities a plugin may be granted.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Card lookup within consented scopes.
    Card,
    /// Outbound HTTP to declared backends only.
    Http,
    /// Key-value store in the application's own namespace.
    Kv,
    /// Payments through the settlement port.
    Payments,
}

/// One action a plugin exposes, as declared in its manifest (`plugin.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    /// Action name, e.g. `enter`.
    pub name: String,
    /// Human description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the action's parameters.
    #[serde(default = "default_schema")]
    #[schema(value_type = Object)]
    pub params_schema: Value,
    /// Minimum assurance the action needs (all listed levels).
    #[serde(default)]
    pub assurance: BTreeSet<Assurance>,
    /// Holder data scopes the action reads (need a consent).
    #[serde(default)]
    pub scopes: BTreeSet<String>,
    /// Whether the action moves money.
    #[serde(default)]
    pub moves_money: bool,
}

fn default_schema() -> Value {
    serde_json::json!({ "type": "object" })
}

/// The plugin manifest a department files with the artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Plugin id, e.g. `parks`.
    pub plugin: String,
    /// Plugin version (semver).
    pub version: String,
    /// Actions exposed.
    pub actions: Vec<ActionSpec>,
    /// All holder data scopes the plugin may read.
    #[serde(default)]
    pub data_scopes: BTreeSet<String>,
    /// Capabilities the plugin asks for.
    #[serde(default)]
    pub capabilities: BTreeSet<Capability>,
}

impl Manifest {
    /// The action named `name`.
    pub fn action(&self, name: &str) -> Option<&ActionSpec> {
        self.actions.iter().find(|a| a.name == name)
    }
}

/// One filing (备案) of an application: a plugin artifact by hash, its manifest and what the
/// province grants it. A new plugin version is a new filing of the same application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Filing {
    /// Sequence number within the application, from 1.
    pub number: u32,
    /// Workflow state.
    pub state: FilingState,
    /// SHA-256 of the plugin component bytes (64 lower-case hex).
    pub sha256: String,
    /// The filed manifest.
    pub manifest: Manifest,
    /// Backends: name -> base URL. The one named [`SETTLEMENT_BACKEND`] is the settlement port
    /// (reached by the payments capability); the others, by the http capability.
    #[serde(default)]
    pub backends: BTreeMap<String, String>,
    /// Capabilities granted (a subset of those the manifest asks for).
    #[serde(default)]
    pub capabilities: BTreeSet<Capability>,
}

/// The backend name whose URL is an application's settlement port (`POST {url}/settlements`).
pub const SETTLEMENT_BACKEND: &str = "settlement";

/// Which card statuses an action accepts (chosen policy of DOMAIN.md, per scenario).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardStatusPolicy {
    /// Statuses allowed; `formal_loss` and `cancelled` never are.
    pub allow: BTreeSet<CardStatus>,
    /// `temporary_loss` is usable only with the holder's explicit authorization.
    #[serde(default = "yes")]
    pub temporary_loss_needs_holder_authorization: bool,
    /// The social account must not be locked.
    #[serde(default = "yes")]
    pub social_account_unlocked: bool,
    /// The financial account must not be locked (always, for money-moving actions).
    #[serde(default)]
    pub financial_account_unlocked: bool,
}

fn yes() -> bool {
    true
}

impl CardStatusPolicy {
    /// The default for an action: `normal` only; money needs the financial account unlocked.
    pub fn default_for(action: &ActionSpec) -> Self {
        CardStatusPolicy {
            allow: BTreeSet::from([CardStatus::Normal]),
            temporary_loss_needs_holder_authorization: true,
            social_account_unlocked: true,
            financial_account_unlocked: action.moves_money,
        }
    }
}

/// An application in the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Application {
    /// Slug id, e.g. `parks`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Scenario, e.g. `park_entry`, `transit`, `medical`.
    pub scenario: String,
    /// Owning department id.
    pub department: String,
    /// Card-status policy per action; actions not listed get [`CardStatusPolicy::default_for`].
    #[serde(default)]
    pub card_status_policy: BTreeMap<String, CardStatusPolicy>,
    /// Free-form configuration passed to the plugin.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub config: Value,
    /// Human-readable notice returned to callers while suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    /// Filings, oldest first.
    #[serde(default)]
    pub filings: Vec<Filing>,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

impl Application {
    /// The filing that is online or suspended, if any (at most one is).
    pub fn live_filing(&self) -> Option<&Filing> {
        self.filings.iter().rev().find(|f| f.state.is_live())
    }

    /// The newest filing.
    pub fn latest_filing(&self) -> Option<&Filing> {
        self.filings.iter().max_by_key(|f| f.number)
    }

    /// The filing the application's behaviour is defined by: the live one, else the newest.
    pub fn current_filing(&self) -> Option<&Filing> {
        self.live_filing().or_else(|| self.latest_filing())
    }

    /// The effective state: that of the current filing, `draft` when there is none.
    pub fn state(&self) -> FilingState {
        self.current_filing().map_or(FilingState::Draft, |f| f.state)
    }

    /// The card-status policy in force for `action`.
    pub fn policy_for(&self, action: &ActionSpec) -> CardStatusPolicy {
        self.card_status_policy
            .get(&action.name)
            .cloned()
            .unwrap_or_else(|| CardStatusPolicy::default_for(action))
    }
}
