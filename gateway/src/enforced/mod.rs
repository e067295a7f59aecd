//! What a gateway enforces: one catalog snapshot, indexed for the hot path, with each online
//! application's plugin loaded and its parameter schemas compiled. An [`Enforced`] is built
//! once per snapshot (or change) and swapped in atomically by [`crate::sync`]; requests read it
//! without locks. Plugins are compiled once per (hash, grants) and reused across snapshots.

mod apps;
pub(crate) mod changes;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use imbl::OrdMap;

use onecard_catalog::model::{Channel, ChannelKey, Consent, Grant, Venue};
use onecard_catalog::snapshot::{CardState, SetDigest, Snapshot};

pub use apps::{AppBuilder, EnforcedApp, Validation};
pub use changes::Applied;

use crate::auth::ChannelKeys;

/// The enforced state at one catalog version.
///
/// A city's card holders (their cards and consents) are most of a snapshot, and the change feed
/// changes a few of them at a time, while requests run. They are held in persistent maps
/// ([`imbl`]): the state after a change shares every untouched node with the state before, so
/// applying a change costs what it changes, not what the city holds, and a request still reads
/// a card in a few node hops. The digests behind the content hash are kept the same way
/// ([`Enforced::content_hash`]).
#[derive(Debug)]
pub struct Enforced {
    /// The snapshot as verified, with changes from the feed applied, except its cards and
    /// consents: those are held indexed below (its `cards` and `consents` are empty).
    pub snapshot: Snapshot,
    /// When this gateway built it.
    pub built_at: SystemTime,
    apps: HashMap<String, Arc<EnforcedApp>>,
    channels: HashMap<String, Channel>,
    grants: HashMap<(String, String), Grant>,
    venues: HashMap<String, Venue>,
    holders: Holders,
}

/// The card holders' part of the state: card states, and consents by id and by holder.
#[derive(Debug, Clone, Default)]
struct Holders {
    cards: OrdMap<String, CardState>,
    /// By id.
    consents: OrdMap<String, Consent>,
    /// By (card reference, application), each list in id order.
    by_holder: imbl::HashMap<(String, String), Arc<[Consent]>>,
    /// Digests of the cards and of the consents, for the content hash.
    cards_digest: SetDigest,
    consents_digest: SetDigest,
}

impl Holders {
    fn new(cards: BTreeMap<String, CardState>, consents: Vec<Consent>) -> Self {
        let mut holders = Holders::default();
        for (card_ref, state) in cards {
            holders.set_card(card_ref, state);
        }
        for consent in consents {
            holders.put_consent(consent);
        }
        holders
    }

    fn set_card(&mut self, card_ref: String, state: CardState) {
        self.cards_digest.add(&(&card_ref, &state));
        if let Some(old) = self.cards.insert(card_ref.clone(), state) {
            self.cards_digest.remove(&(&card_ref, &old));
        }
    }

    /// Adds a consent, or replaces the one with its id.
    fn put_consent(&mut self, consent: Consent) {
        self.consents_digest.add(&consent);
        if let Some(old) = self.consents.insert(consent.id.clone(), consent.clone()) {
            self.consents_digest.remove(&old);
            self.remove_from_holder(&old);
        }
        let holder = (consent.card_ref.clone(), consent.application.clone());
        let mut list: Vec<Consent> = self.by_holder.get(&holder).map(|l| l.to_vec()).unwrap_or_default();
        let at = list.partition_point(|c| c.id < consent.id);
        list.insert(at, consent);
        self.by_holder.insert(holder, Arc::from(list));
    }

    /// The consent with this id, if any.
    fn consent(&self, id: &str) -> Option<&Consent> {
        self.consents.get(id)
    }

    fn remove_from_holder(&mut self, old: &Consent) {
        let holder = (old.card_ref.clone(), old.application.clone());
        let Some(list) = self.by_holder.get(&holder) else { return };
        let rest: Vec<Consent> = list.iter().filter(|c| c.id != old.id).cloned().collect();
        if rest.is_empty() {
            self.by_holder.remove(&holder);
        } else {
            self.by_holder.insert(holder, Arc::from(rest));
        }
    }
}

impl Enforced {
    /// Indexes `snapshot`, with `apps` already built for it.
    pub fn new(mut snapshot: Snapshot, apps: HashMap<String, Arc<EnforcedApp>>) -> Self {
        let holders = Holders::new(std::mem::take(&mut snapshot.cards), std::mem::take(&mut snapshot.consents));
        Enforced::indexed(snapshot, apps, holders)
    }

    /// `snapshot` (without its cards and consents) with `holders`.
    fn indexed(snapshot: Snapshot, apps: HashMap<String, Arc<EnforcedApp>>, holders: Holders) -> Self {
        let channels = snapshot.channels.iter().map(|c| (c.id.clone(), c.clone())).collect();
        let grants = snapshot.grants.iter().map(|g| ((g.channel.clone(), g.application.clone()), g.clone())).collect();
        let venues = snapshot.venues.iter().map(|v| (v.id.clone(), v.clone())).collect();
        Enforced { snapshot, built_at: SystemTime::now(), apps, channels, grants, venues, holders }
    }

    /// The content hash of the snapshot this state is ([`Snapshot::content_hash`]), reported to
    /// the catalog, which compares it with the hash of the snapshot it serves at this version.
    /// The card and consent digests are kept up to date as changes are applied, so this hashes
    /// only the rest of the snapshot.
    pub fn content_hash(&self) -> String {
        self.snapshot.content_hash_with(&self.holders.cards_digest, &self.holders.consents_digest)
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
        self.holders.cards.get(card_ref)
    }

    /// The consents (revoked ones included) of a holder for an application.
    pub fn consents(&self, card_ref: &str, app: &str) -> &[Consent] {
        self.holders.by_holder.get(&(card_ref.to_string(), app.to_string())).map_or(&[], |l| l)
    }
}

impl ChannelKeys for Enforced {
    fn channel_keys(&self, channel: &str) -> Option<&[ChannelKey]> {
        self.channels.get(channel).map(|c| c.keys.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn consent(id: &str, card: &str) -> Consent {
        Consent {
            id: id.into(),
            card_ref: card.into(),
            application: "parks".into(),
            scopes: BTreeSet::from(["holder.age".to_string()]),
            purpose: "entry".into(),
            channel: "3300000001".into(),
            not_before: "2026-01-01T00:00:00Z".parse().unwrap(),
            not_after: "2027-01-01T00:00:00Z".parse().unwrap(),
            revoked_at: None,
        }
    }

    fn ids(list: &[Consent]) -> Vec<&str> {
        list.iter().map(|c| c.id.as_str()).collect()
    }

    #[test]
    fn a_consent_is_held_once_in_id_order_and_the_state_before_is_untouched() {
        let before = Holders::new(BTreeMap::new(), vec![consent("c-2", "h1"), consent("c-1", "h1")]);
        let holder = ("h1".to_string(), "parks".to_string());
        assert_eq!(ids(&before.by_holder[&holder]), ["c-1", "c-2"]);

        let mut after = before.clone();
        after.put_consent(consent("c-0", "h1"));
        after.put_consent(Consent { revoked_at: Some("2026-06-01T00:00:00Z".parse().unwrap()), ..consent("c-2", "h1") });
        assert_eq!(ids(&after.by_holder[&holder]), ["c-0", "c-1", "c-2"]);
        assert!(after.by_holder[&holder][2].revoked_at.is_some());
        assert_eq!(after.consents.keys().map(String::as_str).collect::<Vec<_>>(), ["c-0", "c-1", "c-2"]);

        // A consent that names another holder now leaves the first one's list.
        after.put_consent(consent("c-1", "h2"));
        assert_eq!(ids(&after.by_holder[&holder]), ["c-0", "c-2"]);
        assert_eq!(ids(&after.by_holder[&("h2".to_string(), "parks".to_string())]), ["c-1"]);

        // The state the changes were applied to still holds what it held.
        assert_eq!(ids(&before.by_holder[&holder]), ["c-1", "c-2"]);
        assert!(before.by_holder[&holder].iter().all(|c| c.revoked_at.is_none()));
        assert_eq!(before.consents.len(), 2);
    }
}
