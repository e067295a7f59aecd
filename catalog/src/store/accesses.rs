//! The record of holder-data accesses: gateways report each read of holder scopes, and holders
//! list the reads of their data (`/v1/holder/accesses`).
//!
//! Holders look their accesses up by card, so the record is indexed by card reference. On
//! SQLite an access written straight into that index lands at a random place in it, and SQLite
//! writes every page a transaction changed whole, twice (into the write-ahead log, then into the
//! file at the checkpoint): a report of a few hundred accesses rewrote about one 4 KiB page per
//! access. Under `onecard-load` those pages were four fifths of what SQLite wrote and about
//! 30 µs of its CPU per request (docs/PERFORMANCE.md, session 18).
//!
//! So on SQLite a report is appended to one of sixteen `accesses_pending_*` tables, by the
//! card's slice of the card space ([`PENDING`]); none of them is indexed by card. Once
//! [`FOLD_ROWS`] accesses are pending, each report's transaction also moves the fullest table's
//! accesses into `accesses`, in card order, and empties the table: each index page that gains
//! entries is written once however many it gains, and a slice's pages are a sixteenth of the
//! index, so no report writes the whole index at once. (In one pending table, moving a slice's
//! rows out would rewrite every page of it: they are spread through it in the order they came.)
//! A holder's list reads `accesses` and the card's pending table, so an access is listed as soon
//! as it is reported; the pending table is scanned whole, which [`FOLD_ROWS`] keeps short.
//! PostgreSQL writes rows, not pages, and takes reports straight into `accesses`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sqlx::Row as _;

use super::{Backend, Store, from_json};
use crate::error::{Error, Result};

/// Pending accesses above which each report folds the fullest pending table into the indexed
/// one. A fold writes every index page of its slice that holds one of the moved cards; the more
/// accesses are pending, the more of them share a page: under `onecard-load` (300 000 holders)
/// SQLite wrote about 6 KB per admission in all, against 14 KB with each access written straight
/// into the index (docs/PERFORMANCE.md, session 18). Each fold moves at least a sixteenth of
/// what is pending, so no more than about this many, or sixteen reports' worth, wait; a
/// holder's list scans one table of them, about a sixteenth.
const FOLD_ROWS: i64 = 16_384;

/// The pending tables and where each one's slice of the card space starts (the first at the
/// smallest string, the last ends past the largest). Card references are hexadecimal HMACs, so
/// the slices hold about as many cards each; any other string falls into one of them.
const PENDING: [(&str, &str); 16] = [
    ("", "accesses_pending_0"), ("1", "accesses_pending_1"), ("2", "accesses_pending_2"), ("3", "accesses_pending_3"),
    ("4", "accesses_pending_4"), ("5", "accesses_pending_5"), ("6", "accesses_pending_6"), ("7", "accesses_pending_7"),
    ("8", "accesses_pending_8"), ("9", "accesses_pending_9"), ("a", "accesses_pending_a"), ("b", "accesses_pending_b"),
    ("c", "accesses_pending_c"), ("d", "accesses_pending_d"), ("e", "accesses_pending_e"), ("f", "accesses_pending_f"),
];

/// The pending table of `card_ref`'s slice.
fn pending_table(card_ref: &str) -> &'static str {
    PENDING[PENDING.partition_point(|(start, _)| *start <= card_ref) - 1].1
}

/// Every pending table (the store's dump lists them).
pub(super) fn pending_tables() -> impl Iterator<Item = &'static str> {
    PENDING.iter().map(|(_, table)| *table)
}

/// The columns of the pending and the indexed tables, in the order they are written.
const COLUMNS: &str = "id, at, card_ref, application, action, channel, consent_id, scopes, gateway";
/// How many [`COLUMNS`] there are.
const COLUMN_COUNT: usize = 9;

/// One access to a holder's data, reported by a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessRecord {
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Holder's card reference.
    pub card_ref: String,
    /// Application.
    pub application: String,
    /// Action.
    pub action: String,
    /// Calling channel.
    pub channel: String,
    /// Consent it relied on.
    #[serde(default)]
    pub consent_id: Option<String>,
    /// Scopes read.
    pub scopes: BTreeSet<String>,
    /// Gateway that served it (filled in by the catalog).
    #[serde(default)]
    pub gateway: String,
}

impl Store {
    /// Records data accesses reported by `gateway`, in one transaction of multi-row inserts.
    pub async fn record_accesses(&self, gateway: &str, records: &[AccessRecord]) -> Result<()> {
        self.record_accesses_folding_at(gateway, records, FOLD_ROWS).await
    }

    /// [`Store::record_accesses`], folding once `fold_rows` accesses are pending.
    pub(crate) async fn record_accesses_folding_at(&self, gateway: &str, records: &[AccessRecord], fold_rows: i64) -> Result<()> {
        let mut tables: BTreeMap<&str, Vec<&AccessRecord>> = BTreeMap::new();
        for r in records {
            let table = match self.backend {
                Backend::Sqlite => pending_table(&r.card_ref),
                Backend::Postgres => "accesses",
            };
            tables.entry(table).or_default().push(r);
        }
        let mut tx = self.pool.begin().await?;
        for (table, records) in tables {
            for chunk in records.chunks(super::ROWS_PER_STATEMENT) {
                let sql = format!("INSERT INTO {table} ({COLUMNS}) VALUES {}", super::values_placeholders(self.backend, chunk.len(), COLUMN_COUNT));
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for r in chunk {
                    query = query
                        .bind(crate::ids::time_ordered_hex::<14>())
                        .bind(crate::model::format_ts(&r.at))
                        .bind(r.card_ref.clone())
                        .bind(r.application.clone())
                        .bind(r.action.clone())
                        .bind(r.channel.clone())
                        .bind(r.consent_id.clone())
                        .bind(serde_json::to_string(&r.scopes).map_err(|e| Error::Internal(e.to_string()))?)
                        .bind(gateway.to_string());
                }
                query.execute(&mut *tx).await?;
            }
        }
        if self.backend == Backend::Sqlite {
            // Inside the transaction: the file's write lock is held, no other report interleaves.
            let counts = pending_tables().map(|t| format!("(SELECT count(*) FROM {t})")).collect::<Vec<_>>().join(", ");
            let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {counts}"))).fetch_one(&mut *tx).await?;
            let pending = (0..PENDING.len()).map(|i| row.try_get::<i64, _>(i)).collect::<std::result::Result<Vec<_>, _>>()?;
            if pending.iter().sum::<i64>() >= fold_rows {
                // The fullest; the first of equals (`max_by_key` takes the last, so from the end).
                let (fullest, _) = pending.iter().enumerate().rev().max_by_key(|(_, rows)| **rows).expect("sixteen tables");
                let table = PENDING[fullest].1;
                let fold = format!("INSERT INTO accesses ({COLUMNS}) SELECT {COLUMNS} FROM {table} ORDER BY card_ref, at, id");
                sqlx::query(sqlx::AssertSqlSafe(fold)).execute(&mut *tx).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}"))).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Accesses to a holder's data, newest first (at most 500).
    pub async fn accesses_of(&self, card_ref: &str) -> Result<Vec<AccessRecord>> {
        let sql = format!(
            "SELECT at, card_ref, application, action, channel, consent_id, scopes, gateway FROM ( \
               SELECT {COLUMNS} FROM accesses WHERE card_ref = $1 UNION ALL SELECT {COLUMNS} FROM {} WHERE card_ref = $1 \
             ) AS listed ORDER BY at DESC, id LIMIT 500",
            pending_table(card_ref)
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(card_ref.to_string()).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let at: String = row.try_get(0)?;
                Ok(AccessRecord {
                    at: at.parse().map_err(|_| Error::Internal(format!("bad timestamp {at}")))?,
                    card_ref: row.try_get(1)?,
                    application: row.try_get(2)?,
                    action: row.try_get(3)?,
                    channel: row.try_get(4)?,
                    consent_id: row.try_get(5)?,
                    scopes: from_json("scopes", &row.try_get::<String, _>(6)?)?,
                    gateway: row.try_get(7)?,
                })
            })
            .collect()
    }
}
