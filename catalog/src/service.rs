//! The catalog's operations, shared by the HTTP API and the CLI: each one reads the current
//! state inside a serialized write transaction, applies the change in memory, validates the
//! whole result, and writes only the difference — or writes nothing and says why.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::diff::{EntityDiff, diff};
use crate::error::{Error, Result, codes};
use crate::model::{Card, Consent, Filing};
use crate::roles::{Principal, Role};
use crate::store::{CardUpdate, Store};
use crate::validate::{self, Problem};
use crate::workflow::{self, FilingState};

/// What a change did (or, for a dry run, would do).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChangeReport {
    /// Entity changes, in the order written.
    pub changes: Vec<EntityDiff>,
    /// Whether nothing was written because this was a dry run.
    pub dry_run: bool,
    /// Catalog version before.
    pub version_before: i64,
    /// Catalog version after (equal to before when nothing changed).
    pub version_after: i64,
}

impl ChangeReport {
    /// Whether the catalog was (or would be) left as it was.
    pub fn unchanged(&self) -> bool {
        self.changes.is_empty()
    }
}

impl std::fmt::Display for ChangeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.changes.is_empty() {
            return write!(f, "no change: the catalog already matches (version {})", self.version_before);
        }
        for c in &self.changes {
            writeln!(f, "{c}")?;
        }
        if self.dry_run {
            write!(f, "dry run: {} change(s) not applied", self.changes.len())
        } else {
            write!(f, "applied {} change(s): version {} -> {}", self.changes.len(), self.version_before, self.version_after)
        }
    }
}

/// Reads, changes with `edit`, validates and writes the catalog entities as `who`.
pub async fn update(
    store: &Store,
    who: &Principal,
    note: &str,
    edit: impl FnOnce(&mut Catalog) -> Result<()>,
) -> Result<ChangeReport> {
    let mut w = store.begin_write(&who.name).await?;
    let before = w.last_version();
    let old = w.catalog(false).await?;
    let mut new = old.clone();
    edit(&mut new)?;
    validate::validate(&new, &|_| true).map_err(|p| validate::refuse(&p, |_| None))?;
    new.normalise();
    let changes = diff(&old, &new);
    w.write_diff(&changes, &new, who, note, false).await?;
    let after = w.commit().await?;
    tracing::info!(actor = %who.name, role = who.role.as_str(), note, changes = changes.len(), version = after, "catalog changed");
    Ok(ChangeReport { changes, dry_run: false, version_before: before, version_after: after })
}

/// Applies a declarative catalog (already parsed) as `who`, a province admin.
///
/// `line_of` maps a problem to a line of the source file, for messages.
pub async fn apply(
    store: &Store,
    who: &Principal,
    mut desired: Catalog,
    dry_run: bool,
    line_of: &(dyn Fn(&Problem) -> Option<usize> + Sync),
) -> Result<ChangeReport> {
    who.require(&[Role::ProvinceAdmin])?;
    resolve_ssn_refs(store, &mut desired, line_of).await?;
    let mut w = store.begin_write(&who.name).await?;
    let before = w.last_version();
    let mut old = w.catalog(false).await?;
    // Registry entries the file mentions, as stored, so the diff sees their changes.
    let mut known_cards = BTreeSet::new();
    for card in &desired.cards {
        if let Some(c) = w.card(&card.card_ref).await? {
            old.cards.push(c);
        }
    }
    for consent in &desired.consents {
        if let Some(c) = w.consent(&consent.id).await? {
            old.consents.push(c);
        }
        if w.card(&consent.card_ref).await?.is_some() {
            known_cards.insert(consent.card_ref.clone());
        }
    }
    keep_stored_secrets(&old, &mut desired);
    validate::validate(&desired, &|r| known_cards.contains(r)).map_err(|p| validate::refuse(&p, line_of))?;
    desired.normalise();
    old.normalise();
    let changes = diff(&old, &desired);
    if dry_run || changes.is_empty() {
        w.rollback().await?;
        return Ok(ChangeReport { changes, dry_run, version_before: before, version_after: before });
    }
    w.write_diff(&changes, &desired, who, "declarative apply", true).await?;
    let after = w.commit().await?;
    tracing::info!(actor = %who.name, changes = changes.len(), version = after, "declarative catalog applied");
    Ok(ChangeReport { changes, dry_run, version_before: before, version_after: after })
}

/// The whole catalog without secrets, for `export`.
pub async fn export(store: &Store) -> Result<Catalog> {
    Ok(store.full_catalog().await?.0.without_secrets())
}

/// Replaces `card_ref = "ssn:<number>"` (cards, consents, holder policies) by the hash.
async fn resolve_ssn_refs(store: &Store, c: &mut Catalog, line_of: &(dyn Fn(&Problem) -> Option<usize> + Sync)) -> Result<()> {
    async fn resolve(store: &Store, r: &mut String, place: Problem, line_of: &(dyn Fn(&Problem) -> Option<usize> + Sync)) -> Result<()> {
        if let Some(ssn) = r.strip_prefix("ssn:") {
            match store.card_ref(ssn).await {
                Ok(h) => *r = h,
                Err(Error::Refused { message, .. }) => {
                    let p = Problem { message, ..place };
                    return Err(validate::refuse(&[p], line_of));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
    let place = |section, index| Problem { section, index, id: "ssn:…".into(), message: String::new() };
    for (i, card) in c.cards.iter_mut().enumerate() {
        resolve(store, &mut card.card_ref, place("cards", i), line_of).await?;
    }
    for (i, consent) in c.consents.iter_mut().enumerate() {
        resolve(store, &mut consent.card_ref, place("consents", i), line_of).await?;
    }
    for (i, p) in c.policies.iter_mut().enumerate() {
        if let Some(h) = p.holder.as_mut() {
            resolve(store, h, place("policies", i), line_of).await?;
        }
    }
    Ok(())
}

/// HMAC secrets are never exported; a file that leaves one out keeps the stored one.
fn keep_stored_secrets(old: &Catalog, desired: &mut Catalog) {
    for ch in &mut desired.channels {
        let Some(stored) = old.channel(&ch.id) else { continue };
        for k in &mut ch.keys {
            if k.secret.is_none()
                && k.algorithm.is_symmetric()
                && let Some(s) = stored.keys.iter().find(|s| s.key_id == k.key_id && s.algorithm == k.algorithm)
            {
                k.secret = s.secret.clone();
            }
        }
    }
}

/// A filing as a department files it (a new draft).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFiling {
    /// SHA-256 of the plugin bytes.
    pub sha256: String,
    /// The plugin manifest.
    pub manifest: crate::model::Manifest,
    /// Backends: name -> base URL.
    #[serde(default)]
    pub backends: BTreeMap<String, String>,
    /// Capabilities asked to be granted.
    #[serde(default)]
    pub capabilities: BTreeSet<crate::model::Capability>,
}

/// Files a new draft of `application` (department staff of its department, or a province
/// admin). Returns the filing number.
pub async fn create_filing(store: &Store, who: &Principal, application: &str, f: NewFiling) -> Result<(u32, ChangeReport)> {
    who.require(&[Role::DepartmentStaff, Role::ProvinceAdmin])?;
    let mut number = 0;
    let report = update(store, who, "new filing", |c| {
        let app = c.application_mut(application).ok_or_else(|| app_not_found(application))?;
        who.require_department(&app.department)?;
        number = app.filings.iter().map(|f| f.number).max().unwrap_or(0) + 1;
        app.filings.push(Filing {
            number,
            state: FilingState::Draft,
            sha256: f.sha256,
            manifest: f.manifest,
            backends: f.backends,
            capabilities: f.capabilities,
        });
        Ok(())
    })
    .await?;
    Ok((number, report))
}

fn app_not_found(id: &str) -> Error {
    Error::not_found(codes::APP_NOT_FOUND, format!("application {id} does not exist"))
}

/// Moves filing `number` of `application` to `to`, as `who`, with `note`. Bringing a filing
/// online retires the previously live filing of the application (suspended, then terminated,
/// both recorded). Suspending sets the application's notice (`notice`, else the note).
pub async fn transition(
    store: &Store,
    who: &Principal,
    application: &str,
    number: u32,
    to: FilingState,
    note: &str,
    notice: Option<String>,
) -> Result<ChangeReport> {
    update(store, who, note, |c| {
        let app = c.application_mut(application).ok_or_else(|| app_not_found(application))?;
        let from = app
            .filings
            .iter()
            .find(|f| f.number == number)
            .map(|f| f.state)
            .ok_or_else(|| Error::not_found(codes::FILING_NOT_FOUND, format!("application {application} has no filing {number}")))?;
        workflow::check_transition(&app.department, from, to, who)?;
        if to == FilingState::Online {
            for f in app.filings.iter_mut().filter(|f| f.number != number && f.state.is_live()) {
                f.state = FilingState::Terminated;
            }
            app.notice = None;
        }
        if to == FilingState::Suspended {
            app.notice = Some(notice.unwrap_or_else(|| note.to_string()));
        }
        if let Some(f) = app.filings.iter_mut().find(|f| f.number == number) {
            f.state = to;
        }
        Ok(())
    })
    .await
}

/// Registers a card (card issuers): the SSN is hashed and never stored.
pub async fn register_card(store: &Store, who: &Principal, ssn: &str, mut card: Card) -> Result<Card> {
    who.require(&[Role::CardIssuer, Role::ProvinceAdmin])?;
    card.card_ref = store.card_ref(ssn).await?;
    write_card(store, who, card, true).await
}

/// Changes a card's status or locks (card issuers).
pub async fn update_card(store: &Store, who: &Principal, card_ref: &str, u: CardUpdate) -> Result<Card> {
    who.require(&[Role::CardIssuer])?;
    let mut card = store
        .card(card_ref)
        .await?
        .ok_or_else(|| Error::not_found(codes::CARD_NOT_FOUND, format!("no card {card_ref}")))?;
    if card.status.is_final() && (u.social_locked.is_some() || u.financial_locked.is_some()) {
        return Err(Error::conflict(codes::INVALID_CARD_TRANSITION, format!("card is {}: its locks no longer change", card.status.as_str())));
    }
    if let Some(s) = u.status {
        card.status = s;
    }
    if let Some(l) = u.social_locked {
        card.social_locked = l;
    }
    if let Some(l) = u.financial_locked {
        card.financial_locked = l;
    }
    write_card(store, who, card, false).await
}

async fn write_card(store: &Store, who: &Principal, card: Card, new: bool) -> Result<Card> {
    let mut w = store.begin_write(&who.name).await?;
    let existing = w.card(&card.card_ref).await?;
    if new && existing.is_some() {
        return Err(Error::conflict(codes::ALREADY_EXISTS, "this holder already has a registered card"));
    }
    let one = |c: Option<Card>| Catalog { cards: c.into_iter().collect(), ..Catalog::default() };
    let new_cat = one(Some(card.clone()));
    validate::validate(&new_cat, &|_| true).map_err(|p| validate::refuse(&p, |_| None))?;
    let changes = diff(&one(existing), &new_cat);
    w.write_diff(&changes, &new_cat, who, "card registry", false).await?;
    let version = w.commit().await?;
    tracing::info!(actor = %who.name, status = card.status.as_str(), version, "card registry changed");
    Ok(card)
}

/// A consent a holder grants through a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConsent {
    /// Application.
    pub application: String,
    /// Data scopes.
    pub scopes: BTreeSet<String>,
    /// Purpose shown to the holder.
    pub purpose: String,
    /// End of validity.
    pub not_after: chrono::DateTime<chrono::Utc>,
}

/// Records a holder's consent granted through `who`'s channel.
pub async fn grant_consent(store: &Store, who: &Principal, card_ref: &str, c: NewConsent) -> Result<Consent> {
    who.require(&[Role::Channel])?;
    let channel = who.channel.clone().unwrap_or_default();
    let mut w = store.begin_write(&who.name).await?;
    let catalog = w.catalog(false).await?;
    match catalog.channel(&channel) {
        Some(ch) if ch.status == crate::model::ActiveStatus::Active => {}
        _ => return Err(Error::forbidden(codes::CHANNEL_NOT_ACTIVE, format!("channel {channel} is not active"))),
    }
    let card = w.card(card_ref).await?.ok_or_else(|| Error::not_found(codes::CARD_NOT_FOUND, "the holder has no registered card"))?;
    if card.status.is_final() {
        return Err(Error::conflict(codes::INVALID_CARD_TRANSITION, "the holder's card is no longer valid"));
    }
    let mut id = [0u8; 10];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut id);
    let consent = Consent {
        id: format!("c-{}", hex::encode(id)),
        card_ref: card_ref.into(),
        application: c.application,
        scopes: c.scopes,
        purpose: c.purpose,
        channel,
        not_before: w.at(),
        not_after: c.not_after,
        revoked_at: None,
    };
    if consent.purpose.trim().is_empty() {
        return Err(Error::invalid("purpose is empty"));
    }
    let new_cat = Catalog { consents: vec![consent.clone()], ..catalog.clone() };
    validate::check_consent_scopes(&catalog, &consent.application, &consent.scopes).map_err(Error::invalid)?;
    if consent.not_after <= consent.not_before {
        return Err(Error::invalid("not_after must be in the future"));
    }
    let changes = diff(&Catalog::default(), &Catalog { consents: vec![consent.clone()], ..Catalog::default() });
    w.write_diff(&changes, &new_cat, who, "holder consent", false).await?;
    w.commit().await?;
    Ok(consent)
}

/// Revokes a holder's consent (through any authorized channel).
pub async fn revoke_consent(store: &Store, who: &Principal, card_ref: &str, id: &str) -> Result<Consent> {
    who.require(&[Role::Channel])?;
    let mut w = store.begin_write(&who.name).await?;
    let old = match w.consent(id).await? {
        Some(c) if c.card_ref == card_ref => c,
        _ => return Err(Error::not_found(codes::CONSENT_NOT_FOUND, format!("the holder has no consent {id}"))),
    };
    if old.revoked_at.is_some() {
        return Err(Error::conflict(codes::CONSENT_REVOKED, format!("consent {id} is already revoked")));
    }
    let mut new = old.clone();
    new.revoked_at = Some(w.at());
    let one = |c: Consent| Catalog { consents: vec![c], ..Catalog::default() };
    let changes = diff(&one(old), &one(new.clone()));
    w.write_diff(&changes, &one(new.clone()), who, "holder revoked consent", false).await?;
    w.commit().await?;
    Ok(new)
}
