//! The whole declarative catalog as one value: what `onecard catalog apply` reads,
//! `export` writes, and every admin change is checked against.

use serde::{Deserialize, Serialize};

use crate::model::{
    Application, Card, Channel, City, Consent, Department, Grant, IssuerKey, Policy, Province,
    Venue,
};

/// The catalog. Sections may be omitted; unknown keys are errors.
///
/// `cards` and `consents` are registry data: a file may add or update them, but leaving one
/// out never deletes it. Every other section is authoritative: `apply` removes what the file
/// no longer lists (filed applications excepted: terminate them instead).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Provinces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provinces: Vec<Province>,
    /// Cities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cities: Vec<City>,
    /// Departments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub departments: Vec<Department>,
    /// Applications with their filings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<Application>,
    /// Channels with their keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<Channel>,
    /// Channel grants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<Grant>,
    /// Venues.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub venues: Vec<Venue>,
    /// Rate-limit policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Policy>,
    /// Issuer trust anchors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issuer_keys: Vec<IssuerKey>,
    /// Cards (registry data; `card_ref = "ssn:<ID number>"` is hashed on apply).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cards: Vec<Card>,
    /// Consents (registry data; `card_ref` as for cards).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consents: Vec<Consent>,
}

impl Catalog {
    /// The application `id`.
    pub fn application(&self, id: &str) -> Option<&Application> {
        self.applications.iter().find(|a| a.id == id)
    }
    /// The application `id`, mutably.
    pub fn application_mut(&mut self, id: &str) -> Option<&mut Application> {
        self.applications.iter_mut().find(|a| a.id == id)
    }
    /// The department `id`.
    pub fn department(&self, id: &str) -> Option<&Department> {
        self.departments.iter().find(|d| d.id == id)
    }
    /// The channel `id`.
    pub fn channel(&self, id: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.id == id)
    }
    /// The venue `id`.
    pub fn venue(&self, id: &str) -> Option<&Venue> {
        self.venues.iter().find(|v| v.id == id)
    }
    /// The grant of `channel` for `application`.
    pub fn grant(&self, channel: &str, application: &str) -> Option<&Grant> {
        self.grants.iter().find(|g| g.channel == channel && g.application == application)
    }

    /// The same catalog without shared secrets (HMAC channel keys), for export and display.
    pub fn without_secrets(mut self) -> Catalog {
        for c in &mut self.channels {
            for k in &mut c.keys {
                k.secret = None;
            }
        }
        self
    }

    /// Sorts every section by its key, so that equal catalogs serialize identically.
    pub fn normalise(&mut self) {
        self.provinces.sort_by(|a, b| a.code.cmp(&b.code));
        self.cities.sort_by(|a, b| a.code.cmp(&b.code));
        self.departments.sort_by(|a, b| a.id.cmp(&b.id));
        self.applications.sort_by(|a, b| a.id.cmp(&b.id));
        for a in &mut self.applications {
            a.filings.sort_by_key(|f| f.number);
        }
        self.channels.sort_by(|a, b| a.id.cmp(&b.id));
        for c in &mut self.channels {
            c.keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        }
        self.grants.sort_by_key(|g| g.key());
        self.venues.sort_by(|a, b| a.id.cmp(&b.id));
        self.policies.sort_by_key(policy_key);
        self.issuer_keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        self.cards.sort_by(|a, b| a.card_ref.cmp(&b.card_ref));
        self.consents.sort_by(|a, b| a.id.cmp(&b.id));
    }
}

/// A stable key for a policy (its level), used for storage and diffs.
pub fn policy_key(p: &Policy) -> String {
    match p.scope() {
        Ok(s) => match s {
            crate::model::PolicyScope::Province(x) => format!("province:{x}"),
            crate::model::PolicyScope::City(x) => format!("city:{x}"),
            crate::model::PolicyScope::Application(x) => format!("application:{x}"),
            crate::model::PolicyScope::Channel { application, channel } => {
                format!("channel:{application}:{channel}")
            }
            crate::model::PolicyScope::Venue(x) => format!("venue:{x}"),
            crate::model::PolicyScope::Holder { application, card_ref } => {
                format!("holder:{application}:{card_ref}")
            }
        },
        Err(_) => "invalid".into(),
    }
}
