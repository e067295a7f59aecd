//! Reading the change journal: the change feed for gateways (with long-poll), the audit view
//! for auditors, and the filing history of an application.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::Row as _;

use super::{Store, from_json};
use crate::error::{Error, Result};
use crate::feed::{Change, ChangePage};
use crate::workflow::FilingState;

/// A change as stored (alias kept for readers of the store API).
pub type ChangeRecord = Change;

/// One transition in a filing's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    /// Journal version of the transition.
    pub version: i64,
    /// Filing number.
    pub filing: u32,
    /// From (none when the filing was created or imported).
    pub from: Option<FilingState>,
    /// To.
    pub to: FilingState,
    /// Actor.
    pub actor: String,
    /// Actor's role.
    pub role: String,
    /// Note.
    pub note: String,
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Most changes one page carries.
pub const PAGE_LIMIT: i64 = 1000;

impl Store {
    /// Changes after `after`, at most `limit`.
    pub async fn changes_after(&self, after: i64, limit: i64) -> Result<ChangePage> {
        let limit = limit.clamp(1, PAGE_LIMIT);
        let mut tx = self.begin_read().await?;
        let latest: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM changes")
            .fetch_one(&mut *tx)
            .await?;
        let rows = sqlx::query(
            "SELECT version, at, actor, body FROM changes WHERE version > $1 ORDER BY version LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut changes = Vec::with_capacity(rows.len());
        for row in rows {
            let at: String = row.try_get(1)?;
            changes.push(Change {
                version: row.try_get(0)?,
                at: at.parse().map_err(|_| Error::Internal(format!("bad timestamp {at}")))?,
                actor: row.try_get(2)?,
                event: from_json("change", &row.try_get::<String, _>(3)?)?,
            });
        }
        let more = changes.last().is_some_and(|c| c.version < latest);
        Ok(ChangePage { after, latest, changes, more })
    }

    /// Like [`Store::changes_after`], but when there is nothing new waits up to `wait` for a
    /// change. Writes by this process wake waiters at once; writes by other processes sharing
    /// the database are seen within `poll`.
    pub async fn wait_changes(&self, after: i64, limit: i64, wait: Duration, poll: Duration) -> Result<ChangePage> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut rx = self.subscribe();
        loop {
            rx.borrow_and_update();
            let page = self.changes_after(after, limit).await?;
            if !page.changes.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(page);
            }
            let nap = poll.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
            tokio::select! {
                _ = rx.changed() => {}
                _ = tokio::time::sleep(nap) => {}
            }
        }
    }

    /// The filing history of `application`, oldest first.
    pub async fn history(&self, application: &str) -> Result<Vec<HistoryEntry>> {
        let rows = sqlx::query(
            "SELECT version, number, from_state, to_state, actor, role, note, at FROM filing_history \
             WHERE application = $1 ORDER BY version",
        )
        .bind(application.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let state = |s: String| FilingState::parse(&s).ok_or_else(|| Error::Internal(format!("bad state {s}")));
                let at: String = row.try_get(7)?;
                Ok(HistoryEntry {
                    version: row.try_get(0)?,
                    filing: u32::try_from(row.try_get::<i64, _>(1)?).unwrap_or(0),
                    from: row.try_get::<Option<String>, _>(2)?.map(state).transpose()?,
                    to: state(row.try_get(3)?)?,
                    actor: row.try_get(4)?,
                    role: row.try_get(5)?,
                    note: row.try_get(6)?,
                    at: at.parse().map_err(|_| Error::Internal(format!("bad timestamp {at}")))?,
                })
            })
            .collect()
    }

    /// The version of the last change touching `application`.
    pub async fn application_version(&self, application: &str) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM changes WHERE application = $1")
            .bind(application.to_string())
            .fetch_one(&self.pool)
            .await?)
    }
}
