//! The plugin-state file of [`super::JournaledKv`] is a log: `plugin_kv_log`, one row per
//! change, appended by the journal's writer; a key's state is its last row (`value` NULL: a
//! deletion). The store reads it whole when it opens, and rewrites it as its live entries
//! (compaction) when it opens and once it has grown by [`COMPACT_AFTER_ROWS`] or more rows than
//! the store holds entries.
//!
//! Why a log rather than one row per entry kept up to date: the journal's changes fall on random
//! keys (a park writes one marker per visitor), and SQLite writes every page a commit touched in
//! whole, twice (into its write-ahead log, then into the file at the checkpoint). Upserted batch
//! by batch into a table keyed by entry, each change touched a page or two of its own: about
//! 4 KiB written per park entry, 18 µs of SQLite's time per change, and 22 µs of the ~215 µs of
//! server CPU per admission (`request_path full 30000 4`, docs/PERFORMANCE.md, session 17).
//! Appended rows fill pages one after another: about 2 µs per change. The file is only read
//! when the store opens, so nothing needs it sorted by key.
//!
//! Before the log, the state was in `plugin_kv`, one row per entry: a file from then is read as
//! the state the log starts from, and its rows move into the log at the first compaction.

use std::collections::HashMap;

use onecard_catalog::store::{Backend, ROWS_PER_STATEMENT, values_placeholders};
use sqlx::Row as _;

use super::SqlKv;
use super::memory::Changed;

/// Rows appended since the last compaction after which the writer compacts the log, when the
/// store holds fewer entries than that (otherwise as many rows as it holds entries): the log
/// stays under about twice the live state plus this, and a compaction's cost is spread over at
/// least as many changes.
pub(super) const COMPACT_AFTER_ROWS: u64 = 200_000;

/// An entry as logged: namespace, key, value, expiry (unix ms).
pub(super) type LoggedEntry = (String, String, Vec<u8>, Option<u64>);

/// `seq` is the rowid: appends go to the end of the table's B-tree.
const CREATE: &str = "CREATE TABLE IF NOT EXISTS plugin_kv_log (seq INTEGER PRIMARY KEY, namespace TEXT NOT NULL, \
                      key TEXT NOT NULL, value BLOB, expires_at_ms BIGINT)";

/// Creates the log table if the file has none.
pub(super) async fn create(store: &SqlKv) -> Result<(), sqlx::Error> {
    sqlx::query(CREATE).execute(store.pool()).await.map(drop)
}

/// The live entries the file holds: `plugin_kv`'s (a file from before the log), then each row of
/// the log in order replacing its key's state; entries expired at `now_ms` are left out.
pub(super) async fn read(store: &SqlKv, now_ms: u64) -> Result<Vec<LoggedEntry>, sqlx::Error> {
    let mut state: HashMap<(String, String), Changed> = HashMap::new();
    for sql in ["SELECT namespace, key, value, expires_at_ms FROM plugin_kv", "SELECT namespace, key, value, expires_at_ms FROM plugin_kv_log ORDER BY seq"] {
        for row in sqlx::query(sql).fetch_all(store.pool()).await? {
            let value: Option<Vec<u8>> = row.try_get(2)?;
            let expires_at_ms: Option<i64> = row.try_get(3)?;
            let expires_at_ms = expires_at_ms.map(|t| u64::try_from(t).unwrap_or(0));
            state.insert((row.try_get(0)?, row.try_get(1)?), value.map(|v| (v, expires_at_ms)));
        }
    }
    Ok(state
        .into_iter()
        .filter_map(|((namespace, key), state)| {
            let (value, expires_at_ms) = state?;
            expires_at_ms.is_none_or(|t| t > now_ms).then_some((namespace, key, value, expires_at_ms))
        })
        .collect())
}

/// A row to append: namespace, key, value (`None`: deleted), expiry (unix ms).
type Row<'a> = (&'a str, &'a str, Option<&'a [u8]>, Option<u64>);

/// Appends entries' last states (each key at most once) in one transaction; returns how many.
pub(super) async fn append(store: &SqlKv, changes: &[(&str, &str, &Changed)]) -> Result<u64, sqlx::Error> {
    let rows: Vec<Row<'_>> = changes
        .iter()
        .map(|(namespace, key, changed)| match changed {
            Some((value, expires_at_ms)) => (*namespace, *key, Some(value.as_slice()), *expires_at_ms),
            None => (*namespace, *key, None, None),
        })
        .collect();
    insert(store, &rows).await
}

/// Appends entries as they are, in one transaction (a compaction's step).
pub(super) async fn append_entries(store: &SqlKv, entries: &[LoggedEntry]) -> Result<u64, sqlx::Error> {
    let rows: Vec<Row<'_>> = entries.iter().map(|(namespace, key, value, expires_at_ms)| (namespace.as_str(), key.as_str(), Some(value.as_slice()), *expires_at_ms)).collect();
    insert(store, &rows).await
}

async fn insert(store: &SqlKv, rows: &[Row<'_>]) -> Result<u64, sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO plugin_kv_log (namespace, key, value, expires_at_ms) VALUES {}",
            values_placeholders(Backend::Sqlite, chunk.len(), 4)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (namespace, key, value, expires_at_ms) in chunk {
            let expires_at_ms = expires_at_ms.and_then(|t| i64::try_from(t).ok());
            query = query.bind(namespace.to_string()).bind(key.to_string()).bind(value.map(<[u8]>::to_vec)).bind(expires_at_ms);
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(rows.len() as u64)
}

/// The last row's `seq` (0 when the log is empty).
pub(super) async fn last_seq(store: &SqlKv) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM plugin_kv_log").fetch_one(store.pool()).await
}

/// Deletes the rows up to `through` that a compaction has rewritten, and the entries of
/// `plugin_kv` (read as the log's start, now in it), in one transaction.
pub(super) async fn forget_through(store: &SqlKv, through: i64) -> Result<(), sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    sqlx::query("DELETE FROM plugin_kv_log WHERE seq <= $1").bind(through).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM plugin_kv").execute(&mut *tx).await?;
    tx.commit().await
}
