//! The snapshot gateways enforce: the whole enforceable state of the catalog at one version,
//! serialized as JSON and signed with the catalog's Ed25519 key, with an expiry after which a
//! gateway must not use it.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::catalog::Catalog;
use crate::model::{
    ActionSpec, Capability, Card, CardStatus, CardStatusPolicy, Channel, Consent, Grant, IssuerKey,
    Limits, Manifest, PolicyScope, Timestamp, Venue,
};
use crate::validate::effective_limits;
use crate::workflow::FilingState;

/// A card's enforceable state (no numbers, no personal data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
/// (Output type: unknown fields are tolerated so catalogs may add fields.)
pub struct CardState {
    /// Status.
    pub status: CardStatus,
    /// Social account locked.
    pub social_locked: bool,
    /// Financial account locked.
    pub financial_locked: bool,
    /// 实名 verified.
    pub real_name: bool,
    /// 实卡: card issued and activated.
    pub real_card: bool,
    /// Bank account activated.
    pub bank_activated: bool,
    /// 实人 possible (face enrolled).
    pub real_person: bool,
    /// End of validity.
    pub valid_until: chrono::DateTime<chrono::Utc>,
}

impl From<&Card> for CardState {
    fn from(c: &Card) -> Self {
        CardState {
            status: c.status,
            social_locked: c.social_locked,
            financial_locked: c.financial_locked,
            real_name: c.real_name,
            real_card: c.real_card,
            bank_activated: c.bank_activated,
            real_person: c.real_person,
            valid_until: c.valid_until,
        }
    }
}

/// One action of an application as enforced: the manifest's declaration and its card policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
/// (Output type: unknown fields are tolerated so catalogs may add fields.)
pub struct SnapshotAction {
    /// The manifest's declaration (schema, assurance, scopes, moves_money).
    pub spec: ActionSpec,
    /// Card-status policy in force.
    pub card_status_policy: CardStatusPolicy,
}

/// An application as gateways see it: its current filing and how to run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
/// (Output type: unknown fields are tolerated so catalogs may add fields.)
pub struct SnapshotApplication {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Scenario.
    pub scenario: String,
    /// Owning department.
    pub department: String,
    /// State of the current filing; only `online` serves traffic.
    pub state: FilingState,
    /// Current filing number.
    pub filing: u32,
    /// SHA-256 of the plugin bytes: the gateway refuses any other bytes.
    pub plugin_sha256: String,
    /// Plugin version.
    pub plugin_version: String,
    /// The filed manifest.
    pub manifest: Manifest,
    /// Actions with their card-status policies.
    pub actions: BTreeMap<String, SnapshotAction>,
    /// Backends the plugin may reach: name -> base URL.
    pub backends: BTreeMap<String, String>,
    /// Capabilities granted.
    pub capabilities: BTreeSet<Capability>,
    /// Configuration passed to the plugin.
    #[schema(value_type = Object)]
    pub config: Value,
    /// Notice for callers while suspended.
    pub notice: Option<String>,
}

/// Effective limits at one point of the hierarchy, parents already applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
/// (Output type: unknown fields are tolerated so catalogs may add fields.)
pub struct ResolvedPolicy {
    /// Application.
    pub application: String,
    /// Channel (for the channel × application limiter).
    pub channel: Option<String>,
    /// Venue (for the venue limiter).
    pub venue: Option<String>,
    /// Card holder (for that holder's limiter).
    pub holder: Option<String>,
    /// Limits in force.
    pub limits: Limits,
}

/// The whole enforceable state at one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
/// (Output type: unknown fields are tolerated so catalogs may add fields.)
pub struct Snapshot {
    /// Catalog version.
    pub version: i64,
    /// When the catalog produced it.
    pub generated_at: chrono::DateTime<chrono::Utc>,
    /// After this, a gateway must not use it.
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// Applications with a filing.
    pub applications: Vec<SnapshotApplication>,
    /// Channels with their keys (HMAC secrets included: snapshots go to gateways only).
    pub channels: Vec<Channel>,
    /// Grants.
    pub grants: Vec<Grant>,
    /// Venues.
    pub venues: Vec<Venue>,
    /// Effective limits: one entry per application, per granted channel, per venue, per holder
    /// with a policy. A gateway uses the most specific entry for each limiter.
    pub policies: Vec<ResolvedPolicy>,
    /// Card states by card reference.
    pub cards: BTreeMap<String, CardState>,
    /// Consents, revoked ones included (with `revoked_at`) so a gateway can tell a revoked
    /// consent from a missing one.
    pub consents: Vec<Consent>,
    /// Issuer trust anchors.
    pub issuer_keys: Vec<IssuerKey>,
}

impl Snapshot {
    /// Builds the snapshot of `catalog` (entities, cards and consents) at `version`.
    pub fn build(catalog: &Catalog, version: i64, generated_at: Timestamp, ttl: chrono::Duration) -> Snapshot {
        let mut applications = Vec::new();
        let mut policies = Vec::new();
        for app in &catalog.applications {
            let Some(filing) = app.current_filing() else { continue };
            let actions = filing
                .manifest
                .actions
                .iter()
                .map(|a| {
                    (a.name.clone(), SnapshotAction { spec: a.clone(), card_status_policy: app.policy_for(a) })
                })
                .collect();
            applications.push(SnapshotApplication {
                id: app.id.clone(),
                name: app.name.clone(),
                scenario: app.scenario.clone(),
                department: app.department.clone(),
                state: filing.state,
                filing: filing.number,
                plugin_sha256: filing.sha256.clone(),
                plugin_version: filing.manifest.version.clone(),
                manifest: filing.manifest.clone(),
                actions,
                backends: filing.backends.clone(),
                capabilities: filing.capabilities.clone(),
                config: app.config.clone(),
                notice: app.notice.clone(),
            });
            let base = |channel: Option<&str>, venue: Option<&str>, holder: Option<&str>, scope: PolicyScope| {
                ResolvedPolicy {
                    application: app.id.clone(),
                    channel: channel.map(str::to_string),
                    venue: venue.map(str::to_string),
                    holder: holder.map(str::to_string),
                    limits: effective_limits(catalog, &scope),
                }
            };
            policies.push(base(None, None, None, PolicyScope::Application(app.id.clone())));
            for g in catalog.grants.iter().filter(|g| g.application == app.id) {
                let scope = PolicyScope::Channel { application: app.id.clone(), channel: g.channel.clone() };
                policies.push(base(Some(&g.channel), None, None, scope));
            }
            for v in catalog.venues.iter().filter(|v| v.application == app.id) {
                policies.push(base(None, Some(&v.id), None, PolicyScope::Venue(v.id.clone())));
            }
            for p in &catalog.policies {
                if let Ok(PolicyScope::Holder { application, card_ref }) = p.scope()
                    && application == app.id
                {
                    let scope = PolicyScope::Holder { application, card_ref: card_ref.clone() };
                    policies.push(base(None, None, Some(&card_ref), scope));
                }
            }
        }
        Snapshot {
            version,
            generated_at,
            expires_at: generated_at + ttl,
            applications,
            channels: catalog.channels.clone(),
            grants: catalog.grants.clone(),
            venues: catalog.venues.clone(),
            policies,
            cards: catalog.cards.iter().map(|c| (c.card_ref.clone(), CardState::from(c))).collect(),
            consents: catalog.consents.clone(),
            issuer_keys: catalog.issuer_keys.clone(),
        }
    }

    /// The content hash (hex), leaving out `generated_at` and `expires_at`: two snapshots of
    /// the same version have the same content hash. Gateways report it.
    ///
    /// It is SHA-256 over the rest of the snapshot's JSON and the [`SetDigest`]s of its cards
    /// and of its consents, so that a gateway applying the change feed keeps the digests up to
    /// date entry by entry ([`Snapshot::content_hash_with`]) instead of hashing every card
    /// holder again after each change.
    pub fn content_hash(&self) -> String {
        let mut cards = SetDigest::default();
        for card in &self.cards {
            cards.add(&card);
        }
        let mut consents = SetDigest::default();
        for consent in &self.consents {
            consents.add(consent);
        }
        self.content_hash_with(&cards, &consents)
    }

    /// [`Snapshot::content_hash`] with the digests of the cards and consents given (this
    /// snapshot's own `cards` and `consents` are not read).
    pub fn content_hash_with(&self, cards: &SetDigest, consents: &SetDigest) -> String {
        // Every field by name: a field added to the snapshot must be placed here or there.
        let Snapshot { version, generated_at: _, expires_at: _, applications, channels, grants, venues, policies, cards: _, consents: _, issuer_keys } = self;
        let rest = serde_json::json!({
            "version": version,
            "applications": applications,
            "channels": channels,
            "grants": grants,
            "venues": venues,
            "policies": policies,
            "issuer_keys": issuer_keys,
        });
        let mut hash = Sha256::new();
        hash.update(b"onecard snapshot content v2\n");
        hash.update(rest.to_string().as_bytes());
        hash.update(cards.bytes());
        hash.update(consents.bytes());
        hex::encode(hash.finalize())
    }

    /// Whether the snapshot may no longer be used at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }
}

/// An order-independent digest of a set of entries: the lane-wise sum (four 64-bit lanes,
/// wrapping) of each entry's SHA-256 over its JSON. Adding or removing an entry costs one
/// entry's hash, whatever the size of the set.
///
/// It detects a gateway whose state drifted from the catalog's (a change missed or applied
/// wrongly); it is not meant to resist someone choosing entries to collide (the snapshot's
/// signature and the catalog's access rules are what keep entries honest).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetDigest([u64; 4]);

impl SetDigest {
    /// Adds `entry` to the set.
    pub fn add<T: Serialize + ?Sized>(&mut self, entry: &T) {
        for (lane, v) in self.0.iter_mut().zip(Self::lanes(entry)) {
            *lane = lane.wrapping_add(v);
        }
    }

    /// Removes `entry` (added before) from the set.
    pub fn remove<T: Serialize + ?Sized>(&mut self, entry: &T) {
        for (lane, v) in self.0.iter_mut().zip(Self::lanes(entry)) {
            *lane = lane.wrapping_sub(v);
        }
    }

    fn lanes<T: Serialize + ?Sized>(entry: &T) -> [u64; 4] {
        // Serializing model types to JSON cannot fail (no maps with non-string keys).
        let hash = Sha256::digest(serde_json::to_vec(entry).unwrap_or_default());
        let mut lanes = [0u64; 4];
        for (lane, chunk) in lanes.iter_mut().zip(hash.chunks_exact(8)) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(chunk);
            *lane = u64::from_le_bytes(bytes);
        }
        lanes
    }

    /// The digest's 32 bytes.
    pub fn bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, lane) in out.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&lane.to_le_bytes());
        }
        out
    }
}

/// Why a signed snapshot was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The envelope names another key.
    #[error("snapshot signed by key {found}, expected {expected}")]
    WrongKey {
        /// Key id of the verifying key.
        expected: String,
        /// Key id in the envelope.
        found: String,
    },
    /// The signature does not verify.
    #[error("snapshot signature is invalid")]
    BadSignature,
    /// The signed bytes are not a snapshot.
    #[error("snapshot is unreadable: {0}")]
    Unreadable(String),
    /// The snapshot has expired.
    #[error("snapshot of version {version} expired at {expires_at}")]
    Expired {
        /// Version.
        version: i64,
        /// Expiry.
        expires_at: Timestamp,
    },
}

/// A snapshot as served: the exact JSON bytes, their Ed25519 signature and the key id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
/// (Output type: unknown fields are tolerated so catalogs may add fields.)
pub struct SignedSnapshot {
    /// The snapshot JSON exactly as signed.
    pub snapshot_json: String,
    /// Ed25519 signature over `snapshot_json`'s bytes, base64.
    pub signature: String,
    /// Id of the catalog key (see [`key_id`]).
    pub key_id: String,
    /// Always `ed25519`.
    pub algorithm: String,
}

/// Identifies a catalog public key: the first 16 hex characters of SHA-256 of its bytes.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))[..16].to_string()
}

impl SignedSnapshot {
    /// Serializes and signs `snapshot`.
    pub fn sign(snapshot: &Snapshot, key: &SigningKey) -> SignedSnapshot {
        let snapshot_json = serde_json::to_string(snapshot).unwrap_or_default();
        let signature = key.sign(snapshot_json.as_bytes());
        SignedSnapshot {
            signature: base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
            key_id: key_id(&key.verifying_key()),
            algorithm: "ed25519".into(),
            snapshot_json,
        }
    }

    /// Checks the signature with the catalog's public key and parses the snapshot. Expiry is
    /// checked by [`SignedSnapshot::verify_at`].
    pub fn verify(&self, key: &VerifyingKey) -> Result<Snapshot, SnapshotError> {
        let expected = key_id(key);
        if self.key_id != expected {
            return Err(SnapshotError::WrongKey { expected, found: self.key_id.clone() });
        }
        let sig = base64::engine::general_purpose::STANDARD
            .decode(&self.signature)
            .ok()
            .and_then(|b| ed25519_dalek::Signature::from_slice(&b).ok())
            .ok_or(SnapshotError::BadSignature)?;
        key.verify(self.snapshot_json.as_bytes(), &sig).map_err(|_| SnapshotError::BadSignature)?;
        serde_json::from_str(&self.snapshot_json).map_err(|e| SnapshotError::Unreadable(e.to_string()))
    }

    /// [`SignedSnapshot::verify`], and refuses a snapshot expired at `now`.
    pub fn verify_at(&self, key: &VerifyingKey, now: Timestamp) -> Result<Snapshot, SnapshotError> {
        let s = self.verify(key)?;
        if s.is_expired(now) {
            return Err(SnapshotError::Expired { version: s.version, expires_at: s.expires_at });
        }
        Ok(s)
    }
}

/// Parses a catalog public key given as base64 or hex (32 bytes).
pub fn parse_public_key(s: &str) -> Option<VerifyingKey> {
    let s = s.trim();
    let bytes = hex::decode(s)
        .ok()
        .or_else(|| base64::engine::general_purpose::STANDARD.decode(s).ok())?;
    VerifyingKey::try_from(bytes.as_slice()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn empty(version: i64) -> Snapshot {
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
        Snapshot::build(&Catalog::default(), version, at, chrono::Duration::hours(1))
    }

    #[test]
    fn signed_snapshot_verifies_with_its_key_only() {
        let s = empty(7);
        let signed = SignedSnapshot::sign(&s, &key(1));
        assert_eq!(signed.verify(&key(1).verifying_key()).expect("verifies"), s);
        assert!(matches!(signed.verify(&key(2).verifying_key()), Err(SnapshotError::WrongKey { .. })));
        let mut tampered = signed.clone();
        tampered.snapshot_json = tampered.snapshot_json.replace("\"version\":7", "\"version\":8");
        assert!(matches!(tampered.verify(&key(1).verifying_key()), Err(SnapshotError::BadSignature)));
    }

    #[test]
    fn expiry_is_enforced_by_verify_at() {
        let s = empty(1);
        let signed = SignedSnapshot::sign(&s, &key(3));
        let vk = key(3).verifying_key();
        assert!(signed.verify_at(&vk, s.generated_at).is_ok());
        assert!(matches!(signed.verify_at(&vk, s.expires_at), Err(SnapshotError::Expired { .. })));
    }

    #[test]
    fn content_hash_ignores_times_only() {
        let a = empty(1);
        let mut b = a.clone();
        b.generated_at += chrono::Duration::seconds(5);
        b.expires_at += chrono::Duration::seconds(5);
        assert_eq!(a.content_hash(), b.content_hash());
        assert_ne!(a.content_hash(), empty(2).content_hash());
    }

    #[test]
    fn a_set_digest_ignores_order_and_forgets_what_is_removed() {
        let (a, b, c) = (("a", 1), ("b", 2), ("c", 3));
        let mut ab = SetDigest::default();
        ab.add(&a);
        ab.add(&b);
        let mut ba = SetDigest::default();
        ba.add(&b);
        ba.add(&a);
        assert_eq!(ab, ba);
        let mut abc = ab;
        abc.add(&c);
        assert_ne!(abc, ab);
        abc.remove(&c);
        assert_eq!(abc, ab);
        abc.remove(&a);
        abc.remove(&b);
        assert_eq!(abc, SetDigest::default());
        // The same entry changed is another entry.
        let mut changed = SetDigest::default();
        changed.add(&("a", 2));
        changed.add(&b);
        assert_ne!(changed, ab);
    }
}
