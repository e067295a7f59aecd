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
//! So on SQLite a report is appended to one of sixty-four `accesses_pending_*` tables, by the
//! card's slice of the card space ([`PENDING`]); none of them is indexed. Once [`FOLD_ROWS`]
//! accesses are pending, each report's transaction also moves the fullest table's accesses into
//! `accesses`, in card order, and empties the table: each index page that gains entries is
//! written once however many it gains, and a slice's pages are a sixty-fourth of the index, so
//! no report writes more than a small part of it. (In one pending table, moving a slice's rows
//! out would rewrite every page of it: they are spread through it in the order they came.)
//! A holder's list reads `accesses` and the card's pending table, so an access is listed as soon
//! as it is reported; the pending table is scanned whole, which [`FOLD_ROWS`] keeps short.
//! PostgreSQL writes rows, not pages, and takes reports straight into `accesses`.
//!
//! Neither `accesses` nor the pending tables have a key on `id` (migration 0004): the catalog
//! makes the ids and nothing looks one up, and that second B-tree cost every report and fold
//! page writes of its own. With sixteen slices a fold moved about 2 000 accesses in one
//! transaction: under `onecard-load` SQLite's threads took up to 23.6–28.7 ms of CPU within
//! 50 ms while requests waited, against 12.7–18.4 ms with sixty-four (docs/PERFORMANCE.md,
//! session 20).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use sqlx::Row as _;

use super::{Backend, Store, from_json};
use crate::error::{Error, Result};

/// Pending accesses above which each report folds the fullest pending table into the indexed
/// one. A fold writes every index page of its slice that holds one of the moved cards; the more
/// accesses are pending, the more of them share a page. Each fold moves at least a sixty-fourth
/// of what is pending, about a thousand accesses at this many; no more than about this many
/// wait, and a holder's list scans one table of them, about a sixty-fourth. A model of these
/// writes with 300 000 cards (`docs/models/access_folds.py unkeyed 64 32768`) writes 0.62 pages
/// per access and spends 7 ms of CPU on a fold, against 0.96 pages and 25 ms with sixteen
/// slices, 16 384 accesses and the key on `id` (`keyed 16 16384`; docs/PERFORMANCE.md,
/// session 20).
const FOLD_ROWS: i64 = 32_768;

/// How many pending tables, each for as large a slice of the card space.
const SLICES: usize = 64;

/// The pending tables, each with where its slice of the card space starts (the first at the
/// smallest string, the last ends past the largest): the slice of `accesses_pending_4c` starts
/// at `4c` and ends where `accesses_pending_50`'s starts, at `5`. Card references are
/// hexadecimal HMACs, so the slices hold about as many cards each; any other string falls into
/// one of them. (A slice that starts at a hexadecimal digit starts at that digit alone, where
/// migration 0003's sixteen slices started, so that migration 0004 could split each in four.)
static PENDING: LazyLock<[(String, String); SLICES]> = LazyLock::new(|| {
    std::array::from_fn(|i| {
        // The slice's first two hexadecimal digits, as one number.
        let first = i * 256 / SLICES;
        let start = match first {
            0 => String::new(),
            _ if first.is_multiple_of(16) => format!("{:x}", first / 16),
            _ => format!("{first:02x}"),
        };
        (start, format!("accesses_pending_{first:02x}"))
    })
});

/// The pending table of `card_ref`'s slice.
fn pending_table(card_ref: &str) -> &'static str {
    let pending = &*PENDING;
    &pending[pending.partition_point(|(start, _)| start.as_str() <= card_ref) - 1].1
}

/// Every pending table (the store's dump lists them).
pub(crate) fn pending_tables() -> impl Iterator<Item = &'static str> {
    PENDING.iter().map(|(_, table)| table.as_str())
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
            // A pending table's rows are only appended, and a fold empties it whole, so its
            // largest rowid is how many it holds (SQLite gives an appended row one more than the
            // largest, and 1 in an empty table): one step down its B-tree, where `count(*)`
            // would read every page.
            let counts = pending_tables().map(|t| format!("(SELECT coalesce(max(rowid), 0) FROM {t})")).collect::<Vec<_>>().join(", ");
            let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {counts}"))).fetch_one(&mut *tx).await?;
            let pending = (0..SLICES).map(|i| row.try_get::<i64, _>(i)).collect::<std::result::Result<Vec<_>, _>>()?;
            if pending.iter().sum::<i64>() >= fold_rows {
                // The fullest; the first of equals (`max_by_key` takes the last, so from the end).
                let (fullest, _) = pending.iter().enumerate().rev().max_by_key(|(_, rows)| **rows).expect("sixty-four tables");
                let table = &PENDING[fullest].1;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// References in every corner of the card space, hexadecimal or not.
    const REFS: [&str; 22] = [
        "", "+", "0", "03ff", "04", "0bff", "0c", "0z", "1", "1/", "13", "14", "9c", "9z", "Z", "a", "card-c", "f", "fc", "fz", "g", "~",
    ];

    #[test]
    fn the_card_space_is_cut_in_sixty_four_slices_from_two_hexadecimal_digits() {
        let starts: Vec<&str> = PENDING.iter().map(|(start, _)| start.as_str()).collect();
        assert_eq!(starts[..6], ["", "04", "08", "0c", "1", "14"]);
        assert_eq!(starts[60..], ["f", "f4", "f8", "fc"]);
        assert!(starts.windows(2).all(|w| w[0] < w[1]), "slices in order, none empty");
        let cases = [("", "00"), ("+", "00"), ("03ff", "00"), ("04", "04"), ("0bff", "08"), ("0c", "0c"), ("0z", "0c"), ("1", "10"), ("1/", "10"), ("13", "10")];
        for (card, slice) in cases.into_iter().chain([("14", "14"), ("9c", "9c"), ("Z", "9c"), ("a", "a0"), ("card-c", "c8"), ("fz", "fc"), ("~", "fc")]) {
            assert_eq!(pending_table(card), format!("accesses_pending_{slice}"), "{card:?}");
        }
        assert_eq!(pending_tables().collect::<BTreeSet<_>>().len(), SLICES);
    }

    /// Migration 0004 splits each of migration 0003's sixteen pending tables in four: every
    /// access waiting in one lands in the table its card is looked up in now, and those already
    /// folded stay in `accesses`, listed as before.
    #[tokio::test]
    async fn migration_0004_moves_each_waiting_access_to_its_cards_slice() {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display());
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        for file in ["0001_catalog.sql", "0002_artifacts.sql", "0003_accesses_pending.sql"] {
            let sql = std::fs::read_to_string(format!("{}/migrations/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await.unwrap();
        }
        // Where migration 0003 kept each reference: the table of the last digit not above it.
        let old_table = |card: &str| {
            let digit = "123456789abcdef".chars().rfind(|d| d.to_string().as_str() <= card).unwrap_or('0');
            format!("accesses_pending_{digit}")
        };
        let insert = |table: String, n: usize, card: &str| {
            format!("INSERT INTO {table} ({COLUMNS}) VALUES ('id-{n:03}', '2026-12-07T08:00:00Z', '{card}', 'parks', 'enter', '3300000001', NULL, '[]', 'gw-1')")
        };
        for (n, card) in REFS.iter().enumerate() {
            sqlx::raw_sql(sqlx::AssertSqlSafe(insert(old_table(card), n, card))).execute(&pool).await.unwrap();
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(insert("accesses".into(), 999, "0a"))).execute(&pool).await.unwrap();

        let sql = std::fs::read_to_string(format!("{}/migrations/0004_accesses_lighter.sql", env!("CARGO_MANIFEST_DIR"))).unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await.unwrap();

        for (n, card) in REFS.iter().enumerate() {
            let sql = format!("SELECT count(*) FROM {} WHERE card_ref = $1 AND id = $2", pending_table(card));
            let found: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(*card).bind(format!("id-{n:03}")).fetch_one(&pool).await.unwrap();
            assert_eq!(found, 1, "{card:?} is in its slice's table");
        }
        let mut waiting = 0;
        for table in pending_tables() {
            let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}"))).fetch_one(&pool).await.unwrap();
            let largest: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT coalesce(max(rowid), 0) FROM {table}"))).fetch_one(&pool).await.unwrap();
            assert_eq!(largest, rows, "{table}'s largest rowid counts its rows");
            waiting += rows;
        }
        assert_eq!(waiting, REFS.len() as i64, "every waiting access moved once");
        let old: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name GLOB 'accesses_pending_?'").fetch_one(&pool).await.unwrap();
        assert_eq!(old, 0, "the sixteen tables are gone");
        let folded: String = sqlx::query_scalar("SELECT id FROM accesses WHERE card_ref = '0a'").fetch_one(&pool).await.unwrap();
        assert_eq!(folded, "id-999");
    }
}
