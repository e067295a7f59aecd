//! [`SqlKv`]: plugins' key-value state in a database — PostgreSQL, where several gateways then
//! share it like Redis, or a SQLite file, which [`super::JournaledKv`] (the single-gateway
//! default) reads at start and writes behind to.
//!
//! Plugin state must outlive the process: an e-CNY wallet's daily total, a hospital's stored
//! message ids and a park's anti-passback markers are rules, not caches, and a restart must not
//! reset them. Each entry is one row of `plugin_kv`; every operation is one statement, so each is
//! atomic on its own. Increment is a read followed by a compare-and-swap on the value read,
//! repeated if another writer came between (one of them always succeeds), because neither engine
//! parses a counter out of bytes the way the other backends do in one step.
//!
//! On SQLite the state has a file of its own beside the gateway's database ([`sqlite_file_beside`]):
//! plugin state is written on the request path, within the plugin's deadline, and must not wait
//! for the file lock while the audit writer and the catalog commit with `fsync`. Its commits use
//! `synchronous = NORMAL` (WAL): safe from a process crash at once, and from a power loss once
//! the operating system has written the file (within seconds); on PostgreSQL they use
//! `synchronous_commit = off`, with the same bound. Counters and markers lost to a power cut are
//! the price of not waiting for a disk flush on every tap: a flush can take longer than a
//! plugin's whole deadline on a busy disk (measured here: single PostgreSQL commits of 100+ ms).

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Row};

use super::{KvBackend, KvBackendError};

/// One connection to a SQLite file: SQLite has one writer at a time, and statements queued in
/// the pool (first come, first served, each a few microseconds) wait far less than connections
/// contending for the file's lock, whose busy handler sleeps in steps of up to 100 ms — longer
/// than a plugin's whole deadline.
const SQLITE_CONNECTIONS: u32 = 1;
/// PostgreSQL is shared with the city's other gateways and locks rows, not the database.
const POSTGRES_CONNECTIONS: u32 = 8;
/// How long a SQLite statement waits for the file's write lock held by another connection (the
/// audit writer, the catalog) before failing; a plugin's deadline is far shorter in practice.
const SQLITE_BUSY_TIMEOUT_MS: u64 = 5_000;
/// The page size of a new SQLite plugin-state file, bytes (SQLite's default is 4096). Plugin
/// state is small entries (a park's marker, a counter: tens of bytes) changed at random keys,
/// and SQLite writes every page a commit changed to its log in whole, then copies it once more
/// into the file at the checkpoint: at 4 KiB pages one marker costs about 8 KiB of writes, at
/// 1 KiB about 2 KiB. An existing file keeps the page size it was made with.
const SQLITE_PAGE_SIZE: u32 = 1024;
/// How often the plugin-state log is copied into the SQLite file (see [`checkpoint`]).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// Attempts of one increment under contention before it reports the store unavailable.
const INCREMENT_ATTEMPTS: usize = 64;

/// Who copies a SQLite file's write-ahead log into the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checkpoints {
    /// A connection of its own, every [`CHECKPOINT_EVERY`] ([`checkpoint`]): writers on the
    /// request path never wait for one.
    Background,
    /// The store's single writer, as it commits: SQLite's automatic checkpoint, in the small
    /// steps of `onecard_catalog::store::SQLITE_CONNECTION_PRAGMAS`. With no other connection
    /// the copy is always complete, so the log starts again from its beginning. A checkpointer
    /// beside a writer that never pauses (measured under `onecard-load`: a commit every 10 ms)
    /// never completes one, and the log grew by 35 MB/s.
    ByTheWriter,
}

/// A [`KvBackend`] in SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqlKv {
    pool: AnyPool,
    backend: onecard_catalog::store::Backend,
    /// Keeps the SQLite checkpointer running while any clone of this store lives.
    _alive: Arc<()>,
}

pub(super) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn expiry(ttl: Option<Duration>) -> Option<i64> {
    ttl.map(|t| now_ms().saturating_add(i64::try_from(t.as_millis()).unwrap_or(i64::MAX)))
}

fn unavailable(e: sqlx::Error) -> KvBackendError {
    KvBackendError::Unavailable(e.to_string())
}

// The statements, as constants: each pooled connection prepares them once, when it opens
// (`warm`), so no request pays for parsing, planning or a first-use type lookup. `$3` is always
// "now": a row is live when it has no expiry or one still ahead.
const GET: &str = "SELECT value, expires_at_ms FROM plugin_kv WHERE namespace = $1 AND key = $2 \
                   AND (expires_at_ms IS NULL OR expires_at_ms > $3)";
const INSERT_IF_ABSENT: &str = "INSERT INTO plugin_kv (namespace, key, value, expires_at_ms) VALUES ($1, $2, $4, $5) \
                                ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires_at_ms = excluded.expires_at_ms \
                                WHERE plugin_kv.expires_at_ms IS NOT NULL AND plugin_kv.expires_at_ms <= $3";
const REPLACE: &str = "UPDATE plugin_kv SET value = $5, expires_at_ms = $6 WHERE namespace = $1 AND key = $2 \
                       AND (expires_at_ms IS NULL OR expires_at_ms > $3) AND value = $4";
const SET: &str = "INSERT INTO plugin_kv (namespace, key, value, expires_at_ms) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires_at_ms = excluded.expires_at_ms";
const DELETE: &str = "DELETE FROM plugin_kv WHERE namespace = $1 AND key = $2 RETURNING expires_at_ms";
/// The namespace `warm` writes to; no application id can be empty, so no plugin sees it.
const WARM_NAMESPACE: &str = "";

impl SqlKv {
    /// Opens the database at `url` (a SQLite path or `sqlite:` URL, created if missing, or a
    /// `postgres://` URL) and creates the `plugin_kv` table if it is not there.
    pub async fn connect(url: &str) -> Result<SqlKv, KvBackendError> {
        SqlKv::open(url, Checkpoints::Background).await
    }

    /// Opens the database at `url` for a single writer that checkpoints a SQLite file itself,
    /// as it commits ([`Checkpoints::ByTheWriter`]); see [`super::JournaledKv`].
    pub(super) async fn connect_single_writer(url: &str) -> Result<SqlKv, KvBackendError> {
        SqlKv::open(url, Checkpoints::ByTheWriter).await
    }

    async fn open(url: &str, checkpoints: Checkpoints) -> Result<SqlKv, KvBackendError> {
        sqlx::any::install_default_drivers();
        let (url, backend) = onecard_catalog::store::database_url(url).map_err(|e| KvBackendError::Unavailable(e.to_string()))?;
        let sqlite = backend == onecard_catalog::store::Backend::Sqlite;
        let options = AnyConnectOptions::from_str(&url).map_err(unavailable)?.disable_statement_logging();
        // The table first, on a connection of its own: every pooled connection warms up on it.
        let mut conn = options.connect().await.map_err(unavailable)?;
        if sqlite {
            // The page size before anything is written (a no-op on an existing file); WAL is a
            // property of the file; both set once, before any pool connection.
            sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA page_size = {SQLITE_PAGE_SIZE}"))).execute(&mut conn).await.map_err(unavailable)?;
            sqlx::query("PRAGMA journal_mode=WAL").execute(&mut conn).await.map_err(unavailable)?;
        }
        let value_type = if sqlite { "BLOB" } else { "BYTEA" };
        // On SQLite the rows live in the primary key's B-tree itself: a rowid table would keep a
        // second B-tree (the key's index) and every write would update both.
        let layout = if sqlite { " WITHOUT ROWID" } else { "" };
        let ddl = format!(
            "CREATE TABLE IF NOT EXISTS plugin_kv (namespace TEXT NOT NULL, key TEXT NOT NULL, value {value_type} NOT NULL, \
             expires_at_ms BIGINT, PRIMARY KEY (namespace, key)){layout}"
        );
        sqlx::query(sqlx::AssertSqlSafe(ddl)).execute(&mut conn).await.map_err(unavailable)?;
        sqlx::Connection::close(conn).await.map_err(unavailable)?;

        let connections = if sqlite { SQLITE_CONNECTIONS } else { POSTGRES_CONNECTIONS };
        let pool = AnyPoolOptions::new()
            .max_connections(connections)
            .test_before_acquire(onecard_catalog::store::ping_before_acquire(sqlite))
            // Kept open and warm: a request never waits for a connection to open.
            .min_connections(connections)
            .idle_timeout(None)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    let settings = if sqlite {
                        // After the shared settings, so that it overrides their checkpoint
                        // threshold: on the request path a commit never copies the log; the
                        // single writer's commits do, in the shared small steps.
                        let commits_checkpoint = match checkpoints {
                            Checkpoints::Background => "; PRAGMA wal_autocheckpoint = 0",
                            Checkpoints::ByTheWriter => "",
                        };
                        format!(
                            "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA synchronous = NORMAL; {}{commits_checkpoint}",
                            onecard_catalog::store::SQLITE_CONNECTION_PRAGMAS
                        )
                    } else {
                        // Commits do not wait for the WAL flush (see the module doc): a server
                        // crash may lose the last moments of counters, never corrupt them.
                        "SET synchronous_commit = off".to_string()
                    };
                    sqlx::raw_sql(sqlx::AssertSqlSafe(settings)).execute(&mut *conn).await?;
                    warm(conn).await
                })
            })
            .connect_with(options.clone())
            .await
            .map_err(unavailable)?;
        let alive = Arc::new(());
        if sqlite && checkpoints == Checkpoints::Background {
            let conn = options.connect().await.map_err(unavailable)?;
            tokio::spawn(checkpoint(conn, Arc::downgrade(&alive)));
        }
        Ok(SqlKv { pool, backend, _alive: alive })
    }

    /// The pool (the journaled store loads through it).
    pub(super) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Whether the database is a SQLite file.
    pub(super) fn is_sqlite(&self) -> bool {
        self.backend == onecard_catalog::store::Backend::Sqlite
    }

    /// Deletes expired rows (the gateway calls this periodically); returns how many.
    pub async fn prune_expired(&self) -> Result<u64, KvBackendError> {
        let done = sqlx::query("DELETE FROM plugin_kv WHERE expires_at_ms IS NOT NULL AND expires_at_ms <= $1")
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(done.rows_affected())
    }

    /// Inserts `value` unless a live row exists (an expired one is replaced).
    async fn insert_if_absent(&self, ns: &str, key: &str, value: Vec<u8>, expires_at_ms: Option<i64>) -> Result<bool, KvBackendError> {
        let done = sqlx::query(INSERT_IF_ABSENT)
        .bind(ns.to_owned())
        .bind(key.to_owned())
        .bind(now_ms())
        .bind(value)
        .bind(expires_at_ms)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    /// Replaces a live row's value `expected` by `new`, with `expires_at_ms`.
    async fn replace(&self, ns: &str, key: &str, expected: Vec<u8>, new: Vec<u8>, expires_at_ms: Option<i64>) -> Result<bool, KvBackendError> {
        let done = sqlx::query(REPLACE)
            .bind(ns.to_owned())
            .bind(key.to_owned())
            .bind(now_ms())
            .bind(expected)
            .bind(new)
            .bind(expires_at_ms)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    /// The live value and expiry of a key.
    async fn entry(&self, ns: &str, key: &str) -> Result<Option<(Vec<u8>, Option<i64>)>, KvBackendError> {
        let row = sqlx::query(GET)
            .bind(ns.to_owned())
            .bind(key.to_owned())
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|r| Ok((r.try_get::<Vec<u8>, _>(0)?, r.try_get::<Option<i64>, _>(1)?))).transpose().map_err(unavailable)
    }
}

/// Copies the SQLite write-ahead log into the database file now and then, on a connection of its
/// own. By default SQLite checkpoints inside whichever commit fills the log, with an `fsync` of
/// the file: that commit — a plugin's, on the request path — would wait tens of milliseconds, and
/// every plugin queued behind the one connection with it (measured: `PLUGIN_TIMEOUT` under
/// load). A passive checkpoint never blocks the writer; it also never catches up with one that
/// commits without pause, so under sustained writes the log is never started again and grows.
/// The journal ([`super::JournaledKv`]), which writes without pause under load and off the
/// request path, checkpoints as it commits instead ([`Checkpoints::ByTheWriter`]).
async fn checkpoint(mut conn: sqlx::AnyConnection, alive: std::sync::Weak<()>) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    while alive.strong_count() > 0 {
        every.tick().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").fetch_optional(&mut conn).await {
            tracing::warn!(error = %e, "plugin-state checkpoint failed; retrying");
        }
    }
}

/// Prepares every statement on a new connection by running it once on a key of
/// [`WARM_NAMESPACE`], which it leaves as it found it.
async fn warm(conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    let (ns, key, now) = (WARM_NAMESPACE, "warm", 0_i64);
    sqlx::query(SET).bind(ns).bind(key).bind(b"0".to_vec()).bind(None::<i64>).execute(&mut *conn).await?;
    sqlx::query(GET).bind(ns).bind(key).bind(now).fetch_optional(&mut *conn).await?;
    sqlx::query(INSERT_IF_ABSENT).bind(ns).bind(key).bind(now).bind(b"0".to_vec()).bind(None::<i64>).execute(&mut *conn).await?;
    sqlx::query(REPLACE).bind(ns).bind(key).bind(now).bind(b"0".to_vec()).bind(b"0".to_vec()).bind(None::<i64>).execute(&mut *conn).await?;
    sqlx::query(DELETE).bind(ns).bind(key).fetch_optional(&mut *conn).await?;
    Ok(())
}

/// The plugin-state database for the gateway database `database`: PostgreSQL is shared as is; a
/// SQLite file `DIR/NAME.EXT` gets `DIR/NAME-kv.EXT` beside it.
pub fn sqlite_file_beside(database: &str) -> String {
    let trimmed = database.trim();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        return trimmed.to_string();
    }
    let path = trimmed.strip_prefix("sqlite://").or_else(|| trimmed.strip_prefix("sqlite:")).unwrap_or(trimmed);
    let (path, query) = path.split_once('?').map_or((path, None), |(p, q)| (p, Some(q)));
    let file = std::path::Path::new(path);
    let stem = file.file_stem().map_or_else(|| "onecard".into(), |s| s.to_string_lossy().into_owned());
    let name = match file.extension() {
        Some(ext) => format!("{stem}-kv.{}", ext.to_string_lossy()),
        None => format!("{stem}-kv"),
    };
    let beside = file.with_file_name(name).display().to_string();
    match query {
        Some(q) => format!("sqlite://{beside}?{q}"),
        None => beside,
    }
}

#[async_trait]
impl KvBackend for SqlKv {
    async fn get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, KvBackendError> {
        Ok(self.entry(ns, key).await?.map(|(value, _)| value))
    }

    async fn set(&self, ns: &str, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<(), KvBackendError> {
        sqlx::query(SET)
        .bind(ns.to_owned())
        .bind(key.to_owned())
        .bind(value)
        .bind(expiry(ttl))
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn delete(&self, ns: &str, key: &str) -> Result<bool, KvBackendError> {
        let deleted = sqlx::query(DELETE)
            .bind(ns.to_owned())
            .bind(key.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        let Some(row) = deleted else { return Ok(false) };
        let expires_at_ms: Option<i64> = row.try_get(0).map_err(unavailable)?;
        Ok(expires_at_ms.is_none_or(|t| t > now_ms()))
    }

    async fn compare_and_swap(
        &self,
        ns: &str,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<bool, KvBackendError> {
        match expected {
            None => self.insert_if_absent(ns, key, new, expiry(ttl)).await,
            Some(expected) => self.replace(ns, key, expected, new, expiry(ttl)).await,
        }
    }

    async fn increment(&self, ns: &str, key: &str, delta: i64, ttl: Option<Duration>) -> Result<i64, KvBackendError> {
        for _ in 0..INCREMENT_ATTEMPTS {
            match self.entry(ns, key).await? {
                None => {
                    if self.insert_if_absent(ns, key, delta.to_string().into_bytes(), expiry(ttl)).await? {
                        return Ok(delta);
                    }
                }
                Some((bytes, expires_at_ms)) => {
                    let current = std::str::from_utf8(&bytes).ok().and_then(|s| s.parse::<i64>().ok()).ok_or(KvBackendError::NotANumber)?;
                    let value = current.checked_add(delta).ok_or(KvBackendError::NotANumber)?;
                    // The expiry set when the counter was created stays, as in the other backends.
                    if self.replace(ns, key, bytes, value.to_string().into_bytes(), expires_at_ms).await? {
                        return Ok(value);
                    }
                }
            }
        }
        Err(KvBackendError::Unavailable(format!("increment of `{key}` lost {INCREMENT_ATTEMPTS} races in a row")))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    async fn sqlite(dir: &tempfile::TempDir) -> SqlKv {
        SqlKv::connect(&dir.path().join("gateway.db").display().to_string()).await.expect("open SQLite")
    }

    /// Concurrent increments through `a` and `b` (two pools, as two processes): none is lost.
    async fn concurrent_increments_all_count(a: SqlKv, b: SqlKv) {
        let ns = format!("count-{}", hex::encode(rand::random::<[u8; 6]>()));
        let (a, b) = (Arc::new(a), Arc::new(b));
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let kv = if i % 2 == 0 { Arc::clone(&a) } else { Arc::clone(&b) };
                let ns = ns.clone();
                tokio::spawn(async move { kv.increment(&ns, "capacity", 1, Some(Duration::from_secs(60))).await.unwrap() })
            })
            .collect();
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await.unwrap());
        }
        seen.sort_unstable();
        assert_eq!(seen, (1..=40).collect::<Vec<i64>>(), "every increment got its own count");
        // And exactly one of many concurrent swaps from absent wins.
        let swaps: Vec<_> = (0..16u8)
            .map(|i| {
                let kv = if i % 2 == 0 { Arc::clone(&a) } else { Arc::clone(&b) };
                let ns = ns.clone();
                tokio::spawn(async move { kv.compare_and_swap(&ns, "inside:h", None, vec![i], None).await.unwrap() })
            })
            .collect();
        let mut won = 0;
        for t in swaps {
            won += usize::from(t.await.unwrap());
        }
        assert_eq!(won, 1);
    }

    #[tokio::test]
    async fn sqlite_kv_keeps_the_backend_contract() {
        let dir = tempfile::tempdir().unwrap();
        crate::capabilities::kv::contract::holds(&sqlite(&dir).await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_kv_counts_every_concurrent_increment() {
        let dir = tempfile::tempdir().unwrap();
        concurrent_increments_all_count(sqlite(&dir).await, sqlite(&dir).await).await;
    }

    #[tokio::test]
    async fn state_survives_a_restart_and_expired_rows_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let kv = sqlite(&dir).await;
        kv.set("ecny", "daily:w1", b"5000".to_vec(), None).await.unwrap();
        kv.set("parks", "short", b"x".to_vec(), Some(Duration::from_millis(1))).await.unwrap();
        kv.pool.close().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let reopened = sqlite(&dir).await;
        assert_eq!(reopened.get("ecny", "daily:w1").await.unwrap(), Some(b"5000".to_vec()));
        assert_eq!(reopened.prune_expired().await.unwrap(), 1);
        assert_eq!(reopened.prune_expired().await.unwrap(), 0);
        assert_eq!(reopened.get("ecny", "daily:w1").await.unwrap(), Some(b"5000".to_vec()), "pruning keeps live rows");
        assert_eq!(page_size(&reopened).await, i64::from(SQLITE_PAGE_SIZE), "a new file gets the small pages");
    }

    async fn page_size(kv: &SqlKv) -> i64 {
        sqlx::query_scalar("PRAGMA page_size").fetch_one(&kv.pool).await.unwrap()
    }

    /// Commits on the request path never copy the log into the file (a connection of its own
    /// does); the single writer's commits do, in the small steps every SQLite file of onecard takes.
    #[tokio::test]
    async fn only_the_single_writer_checkpoints_as_it_commits() {
        let dir = tempfile::tempdir().unwrap();
        let shared = sqlite(&dir).await;
        let single = SqlKv::connect_single_writer(&dir.path().join("single.db").display().to_string()).await.unwrap();
        assert_eq!(checkpoint_threshold(&shared).await, 0);
        assert_eq!(checkpoint_threshold(&single).await, 200);
    }

    async fn checkpoint_threshold(kv: &SqlKv) -> i64 {
        sqlx::query_scalar("PRAGMA wal_autocheckpoint").fetch_one(&kv.pool).await.unwrap()
    }

    /// A file made before (with SQLite's default pages) opens as it is, its state intact.
    #[tokio::test]
    async fn an_existing_file_keeps_its_page_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.db");
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true);
        let mut conn = sqlx::ConnectOptions::connect(&options).await.unwrap();
        sqlx::query("CREATE TABLE t (x)").execute(&mut conn).await.unwrap();
        sqlx::Connection::close(conn).await.unwrap();
        let kv = SqlKv::connect(&path.display().to_string()).await.unwrap();
        assert_eq!(page_size(&kv).await, 4096);
        kv.set("ecny", "daily:w1", b"5000".to_vec(), None).await.unwrap();
        assert_eq!(kv.get("ecny", "daily:w1").await.unwrap(), Some(b"5000".to_vec()));
    }

    #[test]
    fn plugin_state_lives_beside_a_sqlite_database_and_in_postgres_itself() {
        assert_eq!(sqlite_file_beside(".onecard/onecard.db"), ".onecard/onecard-kv.db");
        assert_eq!(sqlite_file_beside("sqlite:///tmp/city.db?mode=rwc"), "sqlite:///tmp/city-kv.db?mode=rwc");
        assert_eq!(sqlite_file_beside("sqlite:data/gw"), "data/gw-kv");
        assert_eq!(sqlite_file_beside("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[tokio::test]
    async fn a_bad_database_is_a_clear_error() {
        let err = SqlKv::connect("mysql://nowhere").await.unwrap_err();
        assert!(err.to_string().contains("neither a postgres:// URL nor a SQLite file path"), "{err}");
    }

    fn postgres_url() -> String {
        std::env::var("ONECARD_TEST_POSTGRES_URL").expect("ONECARD_TEST_POSTGRES_URL is set for PostgreSQL tests")
    }

    #[tokio::test]
    #[cfg_attr(not(onecard_pg), ignore = "needs PostgreSQL: set ONECARD_TEST_POSTGRES_URL")]
    async fn postgres_kv_keeps_the_backend_contract() {
        crate::capabilities::kv::contract::holds(&SqlKv::connect(&postgres_url()).await.unwrap()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(onecard_pg), ignore = "needs PostgreSQL: set ONECARD_TEST_POSTGRES_URL")]
    async fn two_gateways_sharing_postgres_count_every_increment() {
        let url = postgres_url();
        concurrent_increments_all_count(SqlKv::connect(&url).await.unwrap(), SqlKv::connect(&url).await.unwrap()).await;
    }
}
