//! Storage: one `Store` over an embedded SQLite file (WAL) or PostgreSQL, through sqlx's `Any`
//! driver with runtime queries and one portable set of migrations run at open.
//!
//! Writers are serialized (SQLite `BEGIN IMMEDIATE`, PostgreSQL an exclusive lock on the
//! journal) so that change versions are assigned and committed in order: a gateway that has
//! seen version N has seen every change up to N.

mod accesses;
mod artifacts;
mod catalog_io;
mod dump;
mod gateways;
mod journal;
mod registry;
mod settings;
mod tokens;

use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, ConnectOptions, Transaction};
use tokio::sync::watch;

pub use gateways::{GatewayReport, GatewayStatus, RolloutEntry};
pub use journal::{ChangeRecord, HistoryEntry};
pub use artifacts::MAX_ARTIFACT_BYTES;
pub use accesses::AccessRecord;
#[cfg(test)]
pub(crate) use accesses::pending_tables;
pub use registry::CardUpdate;
pub use tokens::{NewToken, TokenInfo};

use crate::error::{Error, Result, codes};
use crate::feed::ChangeEvent;
use crate::model::{Timestamp, format_ts, now};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// The catalog database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    url: String,
    backend: Backend,
    version_tx: std::sync::Arc<watch::Sender<i64>>,
}

/// Turns what a user typed into a sqlx URL: `postgres://…` as is; `sqlite:…` or a plain path
/// becomes a SQLite file, created if missing.
pub fn database_url(input: &str) -> Result<(String, Backend)> {
    let input = input.trim();
    if input.starts_with("postgres://") || input.starts_with("postgresql://") {
        return Ok((input.to_string(), Backend::Postgres));
    }
    let path = input
        .strip_prefix("sqlite://")
        .or_else(|| input.strip_prefix("sqlite:"))
        .unwrap_or(input);
    if path.is_empty() || path.contains("://") {
        return Err(Error::bad_request(
            codes::INVALID_CATALOG,
            format!("{input:?} is neither a postgres:// URL nor a SQLite file path"),
        ));
    }
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let query = if query.is_empty() { "mode=rwc".to_string() } else { query.to_string() };
    Ok((format!("sqlite://{path}?{query}"), Backend::Sqlite))
}

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates the database at `url`.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (url, backend) = database_url(url)?;
        let options = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
        if backend == Backend::Sqlite {
            // WAL is a property of the file; set it once, before any pool connection.
            let mut conn = options.connect().await?;
            sqlx::query("PRAGMA journal_mode=WAL").execute(&mut conn).await?;
            sqlx::Connection::close(conn).await?;
        }
        let mut pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .test_before_acquire(ping_before_acquire(backend == Backend::Sqlite));
        if backend == Backend::Sqlite {
            pool = pool.after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::raw_sql(SQLITE_CONNECTION_PRAGMAS).execute(conn).await?;
                    Ok(())
                })
            });
        }
        let pool = pool
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        let store = Store { pool, url: url.clone(), backend, version_tx: std::sync::Arc::new(watch::channel(0).0) };
        store.ensure_keys().await?;
        let v = store.version().await?;
        store.version_tx.send_replace(v);
        tracing::info!(?backend, version = v, "catalog store open");
        Ok(store)
    }

    /// A second, independent store on the same database, as another process would have.
    pub async fn reopen(&self) -> Result<Store> {
        Store::open(&self.url).await
    }

    /// The engine.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The underlying pool (tests and tools).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The current catalog version (highest change number; 0 when empty).
    pub async fn version(&self) -> Result<i64> {
        let v: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM changes")
            .fetch_one(&self.pool)
            .await?;
        Ok(v)
    }

    /// A receiver that sees the version each time a write of this process commits.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.version_tx.subscribe()
    }

    /// Tells local subscribers that the database moved to `version` (writes by this process do
    /// this themselves; the server's poller calls it for writes by other processes).
    pub fn observe_version(&self, version: i64) {
        self.version_tx.send_if_modified(|v| {
            if version > *v {
                *v = version;
                true
            } else {
                false
            }
        });
    }

    /// Starts a serialized write transaction on behalf of `actor`.
    pub async fn begin_write(&self, actor: &str) -> Result<Writer> {
        let mut tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("LOCK TABLE changes IN EXCLUSIVE MODE").execute(&mut *tx).await?;
                tx
            }
        };
        let last: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM changes")
            .fetch_one(&mut *tx)
            .await?;
        Ok(Writer {
            tx,
            last,
            at: now(),
            actor: actor.to_string(),
            version_tx: self.version_tx.clone(),
        })
    }

    /// Starts a read transaction that sees one consistent state.
    pub async fn begin_read(&self) -> Result<Transaction<'static, Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin().await?,
            Backend::Postgres => {
                self.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?
            }
        })
    }
}

/// A write transaction; every change it journals gets the next version.
#[derive(Debug)]
pub struct Writer {
    tx: Transaction<'static, Any>,
    last: i64,
    at: Timestamp,
    actor: String,
    version_tx: std::sync::Arc<watch::Sender<i64>>,
}

impl Writer {
    /// The transaction, for queries.
    pub fn tx(&mut self) -> &mut Transaction<'static, Any> {
        &mut self.tx
    }
    /// The time of this write.
    pub fn at(&self) -> Timestamp {
        self.at
    }
    /// The time of this write, formatted for storage.
    pub fn at_str(&self) -> String {
        format_ts(&self.at)
    }
    /// Who writes.
    pub fn actor(&self) -> &str {
        &self.actor
    }
    /// Whether anything was journaled.
    pub fn changed(&self, since: i64) -> bool {
        self.last > since
    }
    /// Version before any change of this writer was journaled, or the last journaled one.
    pub fn last_version(&self) -> i64 {
        self.last
    }

    /// Appends one change to the journal; returns its version.
    pub async fn journal(&mut self, entity_id: &str, application: Option<&str>, event: &ChangeEvent) -> Result<i64> {
        self.last += 1;
        let body = serde_json::to_string(event).map_err(|e| Error::Internal(e.to_string()))?;
        sqlx::query(
            "INSERT INTO changes (version, at, actor, kind, entity_id, application, body) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(self.last)
        .bind(self.at_str())
        .bind(self.actor.clone())
        .bind(event.kind())
        .bind(entity_id.to_string())
        .bind(application.map(str::to_string))
        .bind(body)
        .execute(&mut *self.tx)
        .await?;
        Ok(self.last)
    }

    /// Commits and wakes change-feed waiters. Returns the new version.
    pub async fn commit(self) -> Result<i64> {
        self.tx.commit().await?;
        let v = self.last;
        self.version_tx.send_if_modified(|cur| {
            if v > *cur {
                *cur = v;
                true
            } else {
                false
            }
        });
        Ok(v)
    }

    /// Abandons the transaction (also what dropping it does).
    pub async fn rollback(self) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}

/// Settings of every SQLite connection onecard opens (catalog, audit trail, plugin state).
///
/// `temp_store = MEMORY`: a multi-row statement inside a transaction (the batching writers'
/// inserts and upserts) keeps a *statement journal*, the original of every page it changes, so
/// that a failing row undoes only its statement. Past 64 KiB SQLite spills that journal to a
/// temporary file: under `onecard-load` (`perf`, DWARF call graphs) the plugin-state writer
/// spent a quarter of its time creating, writing and unlinking those files, i.e. writing each
/// changed page twice. In memory the journal of one statement is bounded by that statement's
/// pages (at most [`ROWS_PER_STATEMENT`] rows: a few hundred KiB).
///
/// `wal_autocheckpoint = 200`: the commit that takes the file's log past 200 pages (800 KiB at
/// 4 KiB pages) copies the log into the file, instead of SQLite's default 1 000. Under
/// `onecard-load` SQLite's threads wrote bursts of several MB within tens of ms (by their size
/// and spacing, checkpoints) while the request path needed both vCPUs, and the slow requests
/// fell in those windows. In smaller steps the same copying interleaves with requests: in six
/// interleaved pairs of runs the full path's p99 at half of peak was lower with the setting in
/// every pair (2.82–4.25 ms in five, 13.91 once the machine got noisy), for 2–8 µs more of
/// SQLite's CPU per closed-loop admission (docs/PERFORMANCE.md, "Runs K1 to M2"). On a slower
/// Intel VM the runs could not tell it from SQLite's default, neither in the tail at one fixed
/// rate nor in SQLite's CPU ("Runs S1 to M2"). It stays for what the faster VM showed.
pub const SQLITE_CONNECTION_PRAGMAS: &str = "PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 200";

/// Whether a pool (of this store, the audit store or the plugin state) pings a connection before
/// lending it, as sqlx does by default. On PostgreSQL yes: a server restart or a network timeout
/// can break a connection, and the ping finds that before a query fails. On SQLite no: the
/// connection lives in this process and nothing outside can break it, and its ping is a round
/// trip to the connection's worker thread, two thread wake-ups, before every batch the writers
/// commit (about 200 a second under load; a wake-up of an idle vCPU cost 20–30 µs of CPU on
/// the project's VMs, docs/PERFORMANCE.md, session 23).
pub fn ping_before_acquire(sqlite: bool) -> bool {
    !sqlite
}

/// Rows per multi-row statement written by the batching writers (the access log here, the
/// gateway's plugin-state journal): a batch costs one round trip to the database per this many
/// rows instead of one per row. At 9 parameters a row that is 576 parameters, well under
/// SQLite's 32 766 and PostgreSQL's 65 535.
pub const ROWS_PER_STATEMENT: usize = 64;

/// The `VALUES` list of a multi-row statement: `rows` groups of `columns` placeholders.
///
/// SQLite gets anonymous `?` placeholders, PostgreSQL numbered ones (`($1, $2), ($3, $4)` for
/// 2 × 2; the `Any` driver passes the text through unchanged, and sqlx's `QueryBuilder` would
/// write `?` for both). Not `$n` on SQLite: there `$n` is a *named* parameter, and sqlx binds
/// each argument by looking its name up in SQLite's list of names, a linear search. That is
/// quadratic in a statement's parameters: with 64 rows of 22 columns, profiled under load
/// (`perf`), `sqlite3_bind_parameter_name` was a quarter of SQLite's CPU time.
pub fn values_placeholders(backend: Backend, rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 1..=columns {
            if c > 1 {
                sql.push_str(", ");
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    sql.push('$');
                    sql.push_str(&(r * columns + c).to_string());
                }
            }
        }
        sql.push(')');
    }
    sql
}

/// Decodes a JSON body column.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(what: &str, body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(|e| Error::Internal(format!("stored {what} is unreadable: {e}")))
}

/// Encodes a value for a JSON body column.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_files_use_wal() {
        let (store, _dir) = crate::testing::sqlite_store().await;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(store.pool()).await.expect("pragma");
        assert_eq!(mode, "wal");
    }

    crate::both_backends!(only_server_connections_are_pinged_before_a_loan);

    /// Pinged before each loan on PostgreSQL, where a connection can break; not on SQLite, where
    /// the ping is only a round trip to the connection's own thread.
    async fn only_server_connections_are_pinged_before_a_loan(store: Store) {
        assert_eq!(store.pool().options().get_test_before_acquire(), store.backend() == Backend::Postgres);
    }

    #[tokio::test]
    async fn sqlite_statement_journals_stay_in_memory() {
        let (store, _dir) = crate::testing::sqlite_store().await;
        // 2 = MEMORY (SQLite's default, 0, spills a statement journal past 64 KiB to a file).
        let temp_store: i64 = sqlx::query_scalar("PRAGMA temp_store").fetch_one(store.pool()).await.expect("pragma");
        assert_eq!(temp_store, 2);
    }

    #[tokio::test]
    async fn sqlite_logs_are_checkpointed_in_small_steps() {
        let (store, _dir) = crate::testing::sqlite_store().await;
        let pages: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint").fetch_one(store.pool()).await.expect("pragma");
        assert_eq!(pages, 200);
    }

    #[test]
    fn urls_are_normalised() {
        assert_eq!(database_url("cat.db").ok(), Some(("sqlite://cat.db?mode=rwc".into(), Backend::Sqlite)));
        assert_eq!(database_url("sqlite:///tmp/x.db").ok(), Some(("sqlite:///tmp/x.db?mode=rwc".into(), Backend::Sqlite)));
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/test").ok().map(|x| x.1),
            Some(Backend::Postgres)
        );
        assert!(database_url("mysql://x").is_err());
    }

    #[test]
    fn values_placeholders_give_every_cell_its_own_parameter() {
        assert_eq!(values_placeholders(Backend::Postgres, 1, 3), "($1, $2, $3)");
        assert_eq!(values_placeholders(Backend::Postgres, 2, 2), "($1, $2), ($3, $4)");
        assert_eq!(values_placeholders(Backend::Sqlite, 2, 2), "(?, ?), (?, ?)");
        assert_eq!(values_placeholders(Backend::Postgres, 0, 4), "");
    }
}
