//! Applying the change feed to the enforced state. Card status, consent, suspension and grant
//! revocation events are applied in place (they must reach the gateway within a second), at the
//! cost of what they change: the holders' maps are shared with the state before; any other
//! change asks for a fresh snapshot.

use std::collections::HashMap;
use std::sync::Arc;

use onecard_catalog::feed::{Change, ChangeEvent};
use onecard_catalog::model::{Consent, GrantStatus};

use super::{Enforced, EnforcedApp};

/// What applying changes needs next.
#[derive(Debug)]
pub enum Applied {
    /// The new state (version moved to the last change's).
    State(Box<Enforced>),
    /// A change cannot be applied in place: fetch the snapshot.
    NeedsSnapshot,
}

impl Enforced {
    /// The state after `changes` (oldest first).
    pub fn apply(&self, changes: &[Change]) -> Applied {
        // The snapshot without its holders is small; the holders are shared, not copied.
        let mut snapshot = self.snapshot.clone();
        let mut holders = self.holders.clone();
        let mut apps: HashMap<String, Arc<EnforcedApp>> = self.apps.clone();
        for change in changes {
            match &change.event {
                ChangeEvent::CardStatus { card_ref, state, .. } => holders.set_card(card_ref.clone(), state.clone()),
                ChangeEvent::ConsentGranted { consent } => holders.put_consent(consent.clone()),
                ChangeEvent::ConsentRevoked { consent_id, .. } => {
                    if let Some(consent) = holders.consent(consent_id) {
                        holders.put_consent(Consent { revoked_at: Some(change.at), ..consent.clone() });
                    }
                }
                ChangeEvent::GrantRevoked { channel, application } => {
                    for g in snapshot.grants.iter_mut().filter(|g| g.channel == *channel && g.application == *application) {
                        g.status = GrantStatus::Revoked;
                    }
                }
                ChangeEvent::ApplicationState { application, filing, to, notice, .. } => {
                    let Some(spec) = snapshot.applications.iter_mut().find(|a| a.id == *application && a.filing == *filing) else {
                        return Applied::NeedsSnapshot;
                    };
                    spec.state = *to;
                    spec.notice.clone_from(notice);
                    let Some(old) = apps.get(application) else { return Applied::NeedsSnapshot };
                    apps.insert(
                        application.clone(),
                        Arc::new(EnforcedApp {
                            spec: spec.clone(),
                            plugin: old.plugin.clone(),
                            env: old.env.clone(),
                            validators: old.validators.clone(),
                            config_json: old.config_json.clone(),
                            metrics: old.metrics.clone(),
                        }),
                    );
                }
                ChangeEvent::TokenChanged { .. } => {}
                ChangeEvent::EntityChanged { .. } => return Applied::NeedsSnapshot,
            }
            snapshot.version = snapshot.version.max(change.version);
        }
        Applied::State(Box::new(Enforced::indexed(snapshot, apps, holders)))
    }
}
