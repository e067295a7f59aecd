//! Reading the catalog from the database and writing a diff back, journaling each change and
//! recording every filing transition in the history.

use std::collections::VecDeque;

use serde_json::Value;
use sqlx::{AnyConnection, Row as _};

use super::{Store, Writer, from_json, to_json};
use crate::catalog::Catalog;
use crate::diff::{ENTITY_KINDS, EntityDiff};
use crate::error::{Error, Result, codes};
use crate::feed::{ChangeEvent, Op};
use crate::model::{Card, Consent, Filing};
use crate::roles::{Principal, Role};
use crate::snapshot::CardState;
use crate::workflow::{FilingState, TRANSITIONS};

/// Reads the catalog entities and filings; with `registry`, also every card and consent.
pub(crate) async fn read_catalog(conn: &mut AnyConnection, registry: bool) -> Result<Catalog> {
    let mut c = Catalog::default();
    let rows = sqlx::query("SELECT kind, id, body FROM entities ORDER BY kind, id").fetch_all(&mut *conn).await?;
    for row in rows {
        let kind: String = row.try_get(0)?;
        let body: String = row.try_get(2)?;
        match kind.as_str() {
            "province" => c.provinces.push(from_json(&kind, &body)?),
            "city" => c.cities.push(from_json(&kind, &body)?),
            "department" => c.departments.push(from_json(&kind, &body)?),
            "application" => c.applications.push(from_json(&kind, &body)?),
            "channel" => c.channels.push(from_json(&kind, &body)?),
            "grant" => c.grants.push(from_json(&kind, &body)?),
            "venue" => c.venues.push(from_json(&kind, &body)?),
            "policy" => c.policies.push(from_json(&kind, &body)?),
            "issuer_key" => c.issuer_keys.push(from_json(&kind, &body)?),
            other => return Err(Error::Internal(format!("unknown entity kind {other} in the database"))),
        }
    }
    let rows = sqlx::query("SELECT application, body FROM filings ORDER BY application, number")
        .fetch_all(&mut *conn)
        .await?;
    for row in rows {
        let app: String = row.try_get(0)?;
        let body: String = row.try_get(1)?;
        let filing: Filing = from_json("filing", &body)?;
        match c.application_mut(&app) {
            Some(a) => a.filings.push(filing),
            None => return Err(Error::Internal(format!("filing of unknown application {app}"))),
        }
    }
    if registry {
        for row in sqlx::query("SELECT body FROM cards ORDER BY card_ref").fetch_all(&mut *conn).await? {
            c.cards.push(from_json("card", &row.try_get::<String, _>(0)?)?);
        }
        for row in sqlx::query("SELECT body FROM consents ORDER BY id").fetch_all(&mut *conn).await? {
            c.consents.push(from_json("consent", &row.try_get::<String, _>(0)?)?);
        }
    }
    c.normalise();
    Ok(c)
}

impl Store {
    /// The catalog entities and filings (no cards or consents).
    pub async fn catalog(&self) -> Result<Catalog> {
        let mut conn = self.pool.acquire().await?;
        read_catalog(&mut conn, false).await
    }

    /// Who last set each entity of `kind`, and when: id -> (actor, time).
    pub async fn entity_meta(&self, kind: &str) -> Result<std::collections::BTreeMap<String, (String, String)>> {
        let rows = sqlx::query("SELECT id, updated_by, updated_at FROM entities WHERE kind = $1")
            .bind(kind.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?))))
            .collect()
    }

    /// The whole catalog, cards and consents included, read consistently.
    pub async fn full_catalog(&self) -> Result<(Catalog, i64)> {
        let mut tx = self.begin_read().await?;
        let version: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM changes")
            .fetch_one(&mut *tx)
            .await?;
        let c = read_catalog(&mut tx, true).await?;
        tx.commit().await?;
        Ok((c, version))
    }
}

/// The states a filing passes through from `from` to `to` using only transitions of `role`.
pub fn path(from: FilingState, to: FilingState, role: Role) -> Option<Vec<FilingState>> {
    let mut queue = VecDeque::from([(from, Vec::new())]);
    let mut seen = vec![from];
    while let Some((at, steps)) = queue.pop_front() {
        if at == to {
            return Some(steps);
        }
        for (f, t, r) in TRANSITIONS {
            if f == at && r == role && !seen.contains(&t) {
                seen.push(t);
                let mut next = steps.clone();
                next.push(t);
                queue.push_back((t, next));
            }
        }
    }
    None
}

fn without_state(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("state");
    }
    v
}

impl Writer {
    /// The catalog as this transaction sees it (with cards and consents if `registry`).
    pub async fn catalog(&mut self, registry: bool) -> Result<Catalog> {
        read_catalog(&mut self.tx, registry).await
    }

    /// The card `card_ref`, if registered.
    pub async fn card(&mut self, card_ref: &str) -> Result<Option<Card>> {
        let row: Option<String> = sqlx::query_scalar("SELECT body FROM cards WHERE card_ref = $1")
            .bind(card_ref.to_string())
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(|b| from_json("card", &b)).transpose()
    }

    /// The consent `id`, if any.
    pub async fn consent(&mut self, id: &str) -> Result<Option<Consent>> {
        let row: Option<String> = sqlx::query_scalar("SELECT body FROM consents WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(|b| from_json("consent", &b)).transpose()
    }

    /// Writes `diffs` (computed from `old` to `new`), journaling each change as `who` with
    /// `note`. Filing state changes follow the workflow using `who`'s transitions only.
    ///
    /// With `import` (declarative apply), a new filing may be recorded in any state (the
    /// history says it was imported); otherwise a new filing starts as a draft.
    pub async fn write_diff(&mut self, diffs: &[EntityDiff], new: &Catalog, who: &Principal, note: &str, import: bool) -> Result<()> {
        for d in diffs {
            match d.kind.as_str() {
                "filing" => self.write_filing(d, new, who, note, import).await?,
                "card" => self.write_card(d).await?,
                "consent" => self.write_consent(d).await?,
                kind if ENTITY_KINDS.contains(&kind) => self.write_entity(d).await?,
                other => return Err(Error::Internal(format!("unknown diff kind {other}"))),
            }
        }
        Ok(())
    }

    async fn write_entity(&mut self, d: &EntityDiff) -> Result<()> {
        sqlx::query("DELETE FROM entities WHERE kind = $1 AND id = $2")
            .bind(d.kind.clone())
            .bind(d.id.clone())
            .execute(&mut *self.tx)
            .await?;
        if let Some(new) = &d.new {
            sqlx::query("INSERT INTO entities (kind, id, body, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5)")
                .bind(d.kind.clone())
                .bind(d.id.clone())
                .bind(new.to_string())
                .bind(self.at_str())
                .bind(self.actor.clone())
                .execute(&mut *self.tx)
                .await?;
        }
        let revoked = |v: &Option<Value>| v.as_ref().and_then(|v| v.get("status")).and_then(Value::as_str) == Some("revoked");
        let event = if d.kind == "grant" && revoked(&d.new) && !revoked(&d.old) {
            let (channel, application) = d.id.split_once('/').unwrap_or((&d.id, ""));
            ChangeEvent::GrantRevoked { channel: channel.into(), application: application.into() }
        } else {
            ChangeEvent::EntityChanged { entity: d.kind.clone(), id: d.id.clone(), op: d.op }
        };
        let app = match d.kind.as_str() {
            "application" => Some(d.id.clone()),
            "grant" | "venue" | "policy" => d
                .new
                .as_ref()
                .or(d.old.as_ref())
                .and_then(|v| v.get("application"))
                .and_then(Value::as_str)
                .map(str::to_string),
            _ => None,
        };
        self.journal(&d.id, app.as_deref(), &event).await?;
        Ok(())
    }

    async fn write_filing(&mut self, d: &EntityDiff, new: &Catalog, who: &Principal, note: &str, import: bool) -> Result<()> {
        let (app, number) = d.id.split_once('#').ok_or_else(|| Error::Internal(d.id.clone()))?;
        let number: i64 = number.parse().map_err(|_| Error::Internal(d.id.clone()))?;
        let state_of = |v: &Option<Value>| {
            v.as_ref()
                .and_then(|v| v.get("state"))
                .and_then(Value::as_str)
                .and_then(FilingState::parse)
        };
        let (old_state, new_state) = (state_of(&d.old), state_of(&d.new));
        let notice = new.application(app).and_then(|a| a.notice.clone());
        match (d.op, &d.new) {
            (Op::Removed, _) => {
                if old_state != Some(FilingState::Draft) {
                    return Err(Error::conflict(
                        codes::INVALID_TRANSITION,
                        format!(
                            "filing {} is {}: only drafts may be removed; filings stay on record (terminate instead)",
                            d.id,
                            old_state.map_or("?", FilingState::as_str)
                        ),
                    ));
                }
                sqlx::query("DELETE FROM filings WHERE application = $1 AND number = $2")
                    .bind(app.to_string())
                    .bind(number)
                    .execute(&mut *self.tx)
                    .await?;
                let ev = ChangeEvent::EntityChanged { entity: "filing".into(), id: d.id.clone(), op: Op::Removed };
                self.journal(&d.id, Some(app), &ev).await?;
            }
            (Op::Added, Some(body)) => {
                let to = new_state.ok_or_else(|| Error::Internal("filing without state".into()))?;
                if !import && to != FilingState::Draft {
                    return Err(Error::conflict(
                        codes::INVALID_TRANSITION,
                        format!("filing {} must start as a draft and follow the filing workflow", d.id),
                    ));
                }
                sqlx::query(
                    "INSERT INTO filings (application, number, state, body, created_at, created_by) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(app.to_string())
                .bind(number)
                .bind(to.as_str())
                .bind(body.to_string())
                .bind(self.at_str())
                .bind(self.actor.clone())
                .execute(&mut *self.tx)
                .await?;
                self.record_transition(app, number, None, to, who, note, notice.clone()).await?;
            }
            (Op::Changed, Some(body)) => {
                let (from, to) = (old_state.unwrap_or(FilingState::Draft), new_state.unwrap_or(FilingState::Draft));
                let content_changed = d.old.as_ref().map(without_state) != Some(without_state(body));
                if content_changed && (from != FilingState::Draft || to != FilingState::Draft) {
                    return Err(Error::conflict(
                        codes::INVALID_TRANSITION,
                        format!(
                            "filing {} is {}: its artifact, manifest, backends and capabilities are fixed once submitted; file a new filing instead",
                            d.id,
                            from.as_str()
                        ),
                    ));
                }
                sqlx::query("UPDATE filings SET state = $1, body = $2 WHERE application = $3 AND number = $4")
                    .bind(to.as_str())
                    .bind(body.to_string())
                    .bind(app.to_string())
                    .bind(number)
                    .execute(&mut *self.tx)
                    .await?;
                if from != to {
                    let steps = path(from, to, who.role).ok_or_else(|| {
                        Error::conflict(
                            codes::INVALID_TRANSITION,
                            format!(
                                "filing {}: {} cannot move a filing from {} to {}",
                                d.id,
                                who.role.as_str(),
                                from.as_str(),
                                to.as_str()
                            ),
                        )
                    })?;
                    let mut at = from;
                    for step in steps {
                        self.record_transition(app, number, Some(at), step, who, note, notice.clone()).await?;
                        at = step;
                    }
                } else {
                    let ev = ChangeEvent::EntityChanged { entity: "filing".into(), id: d.id.clone(), op: Op::Changed };
                    self.journal(&d.id, Some(app), &ev).await?;
                }
            }
            _ => return Err(Error::Internal("filing diff without a value".into())),
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn record_transition(
        &mut self,
        app: &str,
        number: i64,
        from: Option<FilingState>,
        to: FilingState,
        who: &Principal,
        note: &str,
        notice: Option<String>,
    ) -> Result<()> {
        let ev = ChangeEvent::ApplicationState {
            application: app.into(),
            filing: u32::try_from(number).unwrap_or(0),
            from,
            to,
            notice: if to == FilingState::Suspended { notice } else { None },
        };
        let version = self.journal(&format!("{app}#{number}"), Some(app), &ev).await?;
        sqlx::query(
            "INSERT INTO filing_history (version, application, number, from_state, to_state, actor, role, note, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(version)
        .bind(app.to_string())
        .bind(number)
        .bind(from.map(|s| s.as_str()))
        .bind(to.as_str())
        .bind(self.actor.clone())
        .bind(who.role.as_str())
        .bind(note.to_string())
        .bind(self.at_str())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn write_card(&mut self, d: &EntityDiff) -> Result<()> {
        let new: Card = serde_json::from_value(d.new.clone().unwrap_or(Value::Null))
            .map_err(|e| Error::Internal(e.to_string()))?;
        let old: Option<Card> = d.old.clone().and_then(|v| serde_json::from_value(v).ok());
        if let Some(old) = &old
            && !old.status.can_become(new.status)
        {
            return Err(Error::conflict(
                codes::INVALID_CARD_TRANSITION,
                format!(
                    "card {}: status cannot go from {} to {}",
                    new.card_ref,
                    old.status.as_str(),
                    new.status.as_str()
                ),
            ));
        }
        sqlx::query("DELETE FROM cards WHERE card_ref = $1").bind(new.card_ref.clone()).execute(&mut *self.tx).await?;
        sqlx::query("INSERT INTO cards (card_ref, status, body, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5)")
            .bind(new.card_ref.clone())
            .bind(new.status.as_str())
            .bind(to_json(&new)?)
            .bind(self.at_str())
            .bind(self.actor.clone())
            .execute(&mut *self.tx)
            .await?;
        let ev = ChangeEvent::CardStatus {
            card_ref: new.card_ref.clone(),
            previous: old.map(|o| o.status),
            state: CardState::from(&new),
        };
        self.journal(&new.card_ref, None, &ev).await?;
        Ok(())
    }

    async fn write_consent(&mut self, d: &EntityDiff) -> Result<()> {
        let new: Consent = serde_json::from_value(d.new.clone().unwrap_or(Value::Null))
            .map_err(|e| Error::Internal(e.to_string()))?;
        let old: Option<Consent> = d.old.clone().and_then(|v| serde_json::from_value(v).ok());
        if let Some(old) = &old
            && old.revoked_at.is_some()
            && old != &new
        {
            return Err(Error::conflict(codes::CONSENT_REVOKED, format!("consent {} is revoked and cannot change", new.id)));
        }
        sqlx::query("DELETE FROM consents WHERE id = $1").bind(new.id.clone()).execute(&mut *self.tx).await?;
        sqlx::query(
            "INSERT INTO consents (id, card_ref, application, body, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(new.id.clone())
        .bind(new.card_ref.clone())
        .bind(new.application.clone())
        .bind(to_json(&new)?)
        .bind(self.at_str())
        .bind(self.actor.clone())
        .execute(&mut *self.tx)
        .await?;
        let ev = match (&old, new.revoked_at) {
            (None, None) => ChangeEvent::ConsentGranted { consent: new.clone() },
            (_, Some(_)) => ChangeEvent::ConsentRevoked {
                consent_id: new.id.clone(),
                card_ref: new.card_ref.clone(),
                application: new.application.clone(),
            },
            (Some(_), None) => ChangeEvent::EntityChanged { entity: "consent".into(), id: new.id.clone(), op: Op::Changed },
        };
        self.journal(&new.id, Some(&new.application), &ev).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FilingState::*;

    #[test]
    fn province_admin_paths() {
        assert_eq!(path(Filed, Online, Role::ProvinceAdmin), Some(vec![Online]));
        assert_eq!(path(Online, Terminated, Role::ProvinceAdmin), Some(vec![Suspended, Terminated]));
        assert_eq!(path(Draft, Online, Role::ProvinceAdmin), None);
        assert_eq!(path(Draft, Submitted, Role::DepartmentStaff), Some(vec![Submitted]));
        assert_eq!(path(Terminated, Online, Role::ProvinceAdmin), None);
    }
}
