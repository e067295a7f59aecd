//! What a gateway enforces: one catalog snapshot, indexed for the hot path, with each online
//! application's plugin loaded and its parameter schemas compiled. An [`Enforced`] is built
//! once per snapshot (or change) and swapped in atomically by [`crate::sync`]; requests read it
//! without locks. Plugins are compiled once per (hash, grants) and reused across snapshots.

mod apps;
pub(crate) mod changes;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use onecard_catalog::model::{Channel, ChannelKey, Consent, Grant, Venue};
use onecard_catalog::snapshot::{CardState, Snapshot};

pub use apps::{AppBuilder, EnforcedApp, Validation};

use crate::auth::ChannelKeys;

/// The enforced state at one catalog version.
#[derive(Debug)]
pub struct Enforced {
    /// The snapshot as verified (with changes from the feed applied).
    pub snapshot: Snapshot,
    /// Its content hash, reported to the catalog.
    pub content_hash: String,
    /// When this gateway built it.
    pub built_at: SystemTime,
    apps: HashMap<String, Arc<EnforcedApp>>,
    channels: HashMap<String, Channel>,
    grants: HashMap<(String, String), Grant>,
    venues: HashMap<String, Venue>,
    consents: HashMap<(String, String), Vec<Consent>>,
}

impl Enforced {
    /// Indexes `snapshot`, with `apps` already built for it.
    pub fn new(snapshot: Snapshot, apps: HashMap<String, Arc<EnforcedApp>>) -> Self {
        let channels = snapshot.channels.iter().map(|c| (c.id.clone(), c.clone())).collect();
        let grants = snapshot.grants.iter().map(|g| ((g.channel.clone(), g.application.clone()), g.clone())).collect();
        let venues = snapshot.venues.iter().map(|v| (v.id.clone(), v.clone())).collect();
        let mut consents: HashMap<(String, String), Vec<Consent>> = HashMap::new();
        for c in &snapshot.consents {
            consents.entry((c.card_ref.clone(), c.application.clone())).or_default().push(c.clone());
        }
        Enforced {
            content_hash: snapshot.content_hash(),
            snapshot,
            built_at: SystemTime::now(),
            apps,
            channels,
            grants,
            venues,
            consents,
        }
    }

    /// The catalog version.
    pub fn version(&self) -> i64 {
        self.snapshot.version
    }

    /// An application, by id.
    pub fn app(&self, id: &str) -> Option<&Arc<EnforcedApp>> {
        self.apps.get(id)
    }

    /// Every application.
    pub fn apps(&self) -> impl Iterator<Item = &Arc<EnforcedApp>> {
        self.apps.values()
    }

    /// A channel, by number.
    pub fn channel(&self, id: &str) -> Option<&Channel> {
        self.channels.get(id)
    }

    /// The grant of `channel` for `app`.
    pub fn grant(&self, channel: &str, app: &str) -> Option<&Grant> {
        self.grants.get(&(channel.to_string(), app.to_string()))
    }

    /// A venue, by id.
    pub fn venue(&self, id: &str) -> Option<&Venue> {
        self.venues.get(id)
    }

    /// A card's state, by card reference.
    pub fn card(&self, card_ref: &str) -> Option<&CardState> {
        self.snapshot.cards.get(card_ref)
    }

    /// The consents (revoked ones included) of a holder for an application.
    pub fn consents(&self, card_ref: &str, app: &str) -> &[Consent] {
        self.consents.get(&(card_ref.to_string(), app.to_string())).map_or(&[], Vec::as_slice)
    }
}

impl ChannelKeys for Enforced {
    fn channel_keys(&self, channel: &str) -> Option<&[ChannelKey]> {
        self.channels.get(channel).map(|c| c.keys.as_slice())
    }
}
