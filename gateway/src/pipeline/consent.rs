//! Step 6, personal authorization (个人授权): an action that reads holder data scopes needs a
//! live consent of this holder for this application covering every scope. The plugin then sees
//! only those fields, identifiers masked ([`crate::holders`]).

use std::collections::BTreeSet;

use onecard_catalog::model::Consent;

use crate::error::{GatewayError, codes};

/// The consent (among `consents`, revoked ones included) that covers `scopes` at `now`.
pub fn covering<'a>(
    consents: &'a [Consent],
    scopes: &BTreeSet<String>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<&'a Consent>, GatewayError> {
    if scopes.is_empty() {
        return Ok(None);
    }
    let covers = |c: &&Consent| scopes.is_subset(&c.scopes);
    let live = |c: &&Consent| c.revoked_at.is_none() && c.not_before <= now && now < c.not_after;
    if let Some(c) = consents.iter().filter(covers).find(live) {
        return Ok(Some(c));
    }
    let wanted = scopes.iter().cloned().collect::<Vec<_>>().join(", ");
    if let Some(revoked) = consents.iter().filter(covers).find(|c| c.revoked_at.is_some()) {
        return Err(GatewayError::of(
            codes::CONSENT_REVOKED,
            format!("the holder revoked consent {} for {wanted}", revoked.id),
        ));
    }
    Err(GatewayError::of(codes::CONSENT_REQUIRED, format!("the action reads {wanted}; the holder has no live consent covering it")))
}

/// Whether a live consent covers `scope` alone.
pub fn authorizes(consents: &[Consent], scope: &str, now: chrono::DateTime<chrono::Utc>) -> bool {
    let scopes = BTreeSet::from([scope.to_string()]);
    matches!(covering(consents, &scopes, now), Ok(Some(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consent(id: &str, scopes: &[&str], revoked: bool) -> Consent {
        Consent {
            id: id.into(),
            card_ref: "c".into(),
            application: "parks".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            purpose: "entry".into(),
            channel: "3300000001".into(),
            not_before: "2026-01-01T00:00:00Z".parse().unwrap(),
            not_after: "2027-01-01T00:00:00Z".parse().unwrap(),
            revoked_at: revoked.then(|| "2026-06-01T00:00:00Z".parse().unwrap()),
        }
    }

    #[test]
    fn missing_revoked_expired_and_covering() {
        let now = "2026-11-23T00:00:00Z".parse().unwrap();
        let age: BTreeSet<String> = ["holder.age".to_string()].into();
        assert!(covering(&[], &BTreeSet::new(), now).unwrap().is_none());
        assert_eq!(covering(&[], &age, now).unwrap_err().code, "CONSENT_REQUIRED");
        assert_eq!(covering(&[consent("a", &["holder.age"], true)], &age, now).unwrap_err().code, "CONSENT_REVOKED");
        assert_eq!(covering(&[consent("a", &["holder.name"], false)], &age, now).unwrap_err().code, "CONSENT_REQUIRED");
        let later = "2027-02-01T00:00:00Z".parse().unwrap();
        assert_eq!(covering(&[consent("a", &["holder.age"], false)], &age, later).unwrap_err().code, "CONSENT_REQUIRED");
        let both = [consent("a", &["holder.age"], true), consent("b", &["holder.age", "holder.name"], false)];
        assert_eq!(covering(&both, &age, now).unwrap().map(|c| c.id.as_str()), Some("b"));
    }
}
