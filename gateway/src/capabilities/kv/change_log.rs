//! The change log of the plugin-state file ([`super::JournaledKv`]): the journal's writer appends
//! each batch of changes to `plugin_kv_log`, and the log is folded into `plugin_kv` (the state:
//! one row per entry) when the store opens and whenever it has grown past [`FOLD_AFTER_ROWS`].
//!
//! Why a log rather than upserting each batch into `plugin_kv`: the journal's changes fall on
//! random keys (a park writes one marker per visitor), and SQLite writes every page a commit
//! touched in whole, twice (into its write-ahead log, then into the file at the checkpoint).
//! Upserted batch by batch, each change touched a page or two of the state's B-tree of its own:
//! about 4 KiB written per park entry, and 22 µs of the ~215 µs of server CPU per admission
//! (`request_path full 30000 4`, docs/PERFORMANCE.md, session 17). Appended rows fill pages one
//! after another. A fold reads the log in key order and writes each page of the state once for
//! all the changes that fall on it.

use onecard_catalog::store::{Backend, ROWS_PER_STATEMENT, values_placeholders};

use super::SqlKv;
use super::memory::Changed;

/// Rows in the log after which the writer folds it (about 100 bytes each, so ~20 MB of log).
/// A fold costs about a second of SQLite's time per 200 000 rows at most, on its worker thread,
/// and bounds both the file and the next start's work.
pub(super) const FOLD_AFTER_ROWS: u64 = 200_000;

/// `seq` is the rowid: appends go to the end of the table's B-tree. `value` NULL is a deletion.
const CREATE: &str = "CREATE TABLE IF NOT EXISTS plugin_kv_log (seq INTEGER PRIMARY KEY, namespace TEXT NOT NULL, \
                      key TEXT NOT NULL, value BLOB, expires_at_ms BIGINT)";

/// Each key's last change, when it set a value: into the state. Expired values are folded too
/// (an older value must not outlive them); loading skips them and the next start prunes them.
const FOLD_VALUES: &str = "INSERT INTO plugin_kv (namespace, key, value, expires_at_ms) \
                           SELECT namespace, key, value, expires_at_ms FROM plugin_kv_log \
                           WHERE seq IN (SELECT MAX(seq) FROM plugin_kv_log GROUP BY namespace, key) AND value IS NOT NULL \
                           ORDER BY namespace, key \
                           ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires_at_ms = excluded.expires_at_ms";

/// Each key's last change, when it deleted the entry: out of the state.
const FOLD_DELETIONS: &str = "DELETE FROM plugin_kv WHERE (namespace, key) IN \
                              (SELECT namespace, key FROM plugin_kv_log \
                               WHERE seq IN (SELECT MAX(seq) FROM plugin_kv_log GROUP BY namespace, key) AND value IS NULL)";

/// Creates the log table if the file has none (a file from before the log: its state is all in
/// `plugin_kv`).
pub(super) async fn create(store: &SqlKv) -> Result<(), sqlx::Error> {
    sqlx::query(CREATE).execute(store.pool()).await.map(drop)
}

/// Appends entries' last states (each key at most once) in one transaction; returns how many.
pub(super) async fn append<'a>(store: &SqlKv, changes: &[(&'a str, &'a str, &'a Changed)]) -> Result<u64, sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    for chunk in changes.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO plugin_kv_log (namespace, key, value, expires_at_ms) VALUES {}",
            values_placeholders(Backend::Sqlite, chunk.len(), 4)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (namespace, key, changed) in chunk {
            let (value, expires_at_ms) = match changed {
                Some((value, expires_at_ms)) => (Some(value.clone()), expires_at_ms.and_then(|t| i64::try_from(t).ok())),
                None => (None, None),
            };
            query = query.bind(namespace.to_string()).bind(key.to_string()).bind(value).bind(expires_at_ms);
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(changes.len() as u64)
}

/// Folds the log into the state and empties it, in one transaction; returns the rows folded.
pub(super) async fn fold(store: &SqlKv) -> Result<u64, sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    sqlx::query(FOLD_VALUES).execute(&mut *tx).await?;
    sqlx::query(FOLD_DELETIONS).execute(&mut *tx).await?;
    let folded = sqlx::query("DELETE FROM plugin_kv_log").execute(&mut *tx).await?.rows_affected();
    tx.commit().await?;
    Ok(folded)
}
