//! Storage of the audit trail: one `AuditStore` per chain over an embedded SQLite file (WAL,
//! shared with the catalog in single-process mode) or PostgreSQL (several gateways, one
//! database), through sqlx's `Any` driver with runtime queries and portable migrations.
//!
//! The writer's transactions on SQLite are the exception: they go through sqlx's SQLite driver
//! on a connection of their own ([`AuditStore::sqlite_writer`]). The `Any` driver copies every
//! text argument into a new `String` in a new `Arc` when it hands a statement to SQLite, on top
//! of the `Arc` it wrapped the argument in: two more allocations and a copy per text column,
//! about thirty per audit record (under callgrind the full request path made 293 allocations
//! per admission before, 260 after; docs/PERFORMANCE.md, session 24).
//!
//! The audit migrations are tracked in their own table (`_onecard_audit_migrations`, versions
//! from 1001), so the catalog's migrator and this one each see only their own history when they
//! share a database; neither needs to ignore the other's versions.

use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::query::Query;
use sqlx::{AnyPool, ConnectOptions, Database, Encode, Executor, Row, Transaction, Type};

use crate::canonical::{FORMAT, GENESIS, StoredLedger, ledger_digest, record_hash};
use crate::entry::{AuditReceipt, AuditRecord, Head, LedgerEntry, RecordFields};
use crate::error::AuditError;

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// The table sqlx tracks the audit migrations in.
pub const MIGRATIONS_TABLE: &str = "_onecard_audit_migrations";

/// SQLite's busy timeout: how long a writer waits for the file lock held by another writer (the
/// catalog, another process) before failing; the audit writer then retries.
pub const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;

/// Connections of a SQLite store's pools: one for the writer's transactions, one for the rest
/// (reads, migrations, tools). SQLite lets one connection write at a time anyway, and a
/// connection drops its whole page cache whenever another connection of the file has committed
/// since its last transaction: a writer whose batches went round a pool of several connections
/// (sqlx hands out the longest-idle one) re-read every B-tree page it touched, on every batch.
const SQLITE_CONNECTIONS: u32 = 1;

/// The settings of `onecard_catalog::store::SQLITE_CONNECTION_PRAGMAS`, which says what each
/// saves (this crate does not depend on the catalog). Statement journals in memory, not in
/// temporary files: each multi-row INSERT inside a transaction journals the pages it changes,
/// and past 64 KiB SQLite spills that journal to a file. The log copied into the file every 200
/// pages: in `onecard serve` the audit trail shares the catalog's file, and its commits take
/// their turn at the checkpoints.
const SQLITE_PRAGMAS: [(&str, &str); 2] = [("temp_store", "MEMORY"), ("wal_autocheckpoint", "200")];

/// Rows per multi-row INSERT at most (22 parameters each: well under SQLite's and PostgreSQL's
/// limits). A batch is written in statements of this many rows and then of the powers of two of
/// what remains ([`statement_rows`]): seven statement texts in all, which stay prepared in each
/// connection's statement cache. With one statement of whatever size the batch had, nearly
/// every batch parsed and compiled a new statement of up to 1 408 parameters, and evicted a
/// prepared one (under `request_path`, 55 000 instructions per admission, 4 % of the full path).
const ROWS_PER_INSERT: usize = 64;

const COLUMNS: [&str; 22] = [
    "chain", "seq", "format", "request_id", "at", "channel", "venue", "terminal", "card_ref", "app", "action",
    "plugin_sha256", "snapshot_version", "outcome", "code", "blame", "status", "latency_us", "detail", "ledger_sha256",
    "prev_hash", "hash",
];

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// Turns what a user typed into a sqlx URL: `postgres://…` as is; `sqlite:…` or a plain path is
/// a SQLite file, created if missing when `create` is set and otherwise required to exist.
pub fn database_url(input: &str, create: bool) -> Result<(String, Backend), AuditError> {
    let input = input.trim();
    if input.starts_with("postgres://") || input.starts_with("postgresql://") {
        return Ok((input.to_string(), Backend::Postgres));
    }
    let path = input.strip_prefix("sqlite://").or_else(|| input.strip_prefix("sqlite:")).unwrap_or(input);
    if path.is_empty() || path.contains("://") {
        return Err(AuditError::DatabaseUrl(format!("{input:?} is neither a postgres:// URL nor a SQLite file path")));
    }
    let (file, query) = path.split_once('?').unwrap_or((path, ""));
    if !create && !std::path::Path::new(file).exists() {
        return Err(AuditError::DatabaseUrl(format!("the SQLite file {file:?} does not exist")));
    }
    let query = match (query.is_empty(), create) {
        (false, _) => query.to_string(),
        (true, true) => "mode=rwc".to_string(),
        (true, false) => "mode=rw".to_string(),
    };
    Ok((format!("sqlite://{file}?{query}"), Backend::Sqlite))
}

/// The audit database, seen by one chain (one gateway).
#[derive(Debug, Clone)]
pub struct AuditStore {
    pool: AnyPool,
    /// SQLite only: the writer's connection, through sqlx's SQLite driver (see the module's doc).
    sqlite_writer: Option<SqlitePool>,
    backend: Backend,
    chain: Arc<str>,
}

/// Why an append did not commit.
#[derive(Debug)]
pub(crate) enum AppendError {
    /// A ledger key already exists: the transaction was rolled back.
    Conflict { app: String, idempotency_key: String },
    /// Anything else (worth retrying).
    Database(sqlx::Error),
}

impl From<sqlx::Error> for AppendError {
    fn from(e: sqlx::Error) -> Self {
        AppendError::Database(e)
    }
}

/// A ledger entry as stored, with the record it was committed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRecord {
    /// The entry.
    pub entry: LedgerEntry,
    /// The chain of its audit record.
    pub chain: String,
    /// The sequence number of its audit record.
    pub audit_seq: i64,
}

/// One row read for verification: what could be decoded of it.
#[derive(Debug)]
pub(crate) struct RawRecord {
    pub seq: i64,
    pub request_id: String,
    pub record: Result<AuditRecord, String>,
}

impl AuditStore {
    /// Opens (creating a SQLite file if needed) and migrates the database at `url`, for `chain`.
    pub async fn connect(url: &str, chain: &str) -> Result<AuditStore, AuditError> {
        let store = Self::open(url, chain, true).await?;
        migrate(&store.pool).await?;
        Ok(store)
    }

    /// Opens an existing audit database without creating or migrating anything (verification,
    /// tools): a missing SQLite file or missing audit tables is an error.
    pub async fn connect_existing(url: &str, chain: &str) -> Result<AuditStore, AuditError> {
        let store = Self::open(url, chain, false).await?;
        let present = sqlx::query("SELECT COUNT(*) FROM audit_records WHERE 1 = 0").fetch_optional(&store.pool).await;
        match present {
            Ok(_) => Ok(store),
            Err(sqlx::Error::Database(_)) => Err(AuditError::NotInitialised),
            Err(e) => Err(e.into()),
        }
    }

    /// A store on an existing pool (the catalog's, in single-process mode); runs the migrations.
    pub async fn from_pool(pool: AnyPool, chain: &str) -> Result<AuditStore, AuditError> {
        validate_chain(chain)?;
        let backend = {
            let conn = pool.acquire().await?;
            if conn.backend_name().eq_ignore_ascii_case("postgresql") { Backend::Postgres } else { Backend::Sqlite }
        };
        migrate(&pool).await?;
        let sqlite_writer = Self::sqlite_writer(backend, pool.connect_options().as_ref()).await?;
        Ok(AuditStore { pool, sqlite_writer, backend, chain: chain.into() })
    }

    async fn open(url: &str, chain: &str, create: bool) -> Result<AuditStore, AuditError> {
        validate_chain(chain)?;
        sqlx::any::install_default_drivers();
        let (url, backend) = database_url(url, create)?;
        let options = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
        let mut pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { SQLITE_CONNECTIONS } else { 8 })
            // Pinged before a loan only on PostgreSQL: `onecard_catalog::store::ping_before_acquire`
            // says why (this crate does not depend on the catalog).
            .test_before_acquire(backend == Backend::Postgres);
        if backend == Backend::Sqlite {
            if create {
                // WAL is a property of the file; set it once, before any pool connection.
                let mut conn = options.connect().await?;
                sqlx::query("PRAGMA journal_mode=WAL").execute(&mut conn).await?;
                sqlx::Connection::close(conn).await?;
            }
            pool = pool.after_connect(|conn, _| {
                Box::pin(async move {
                    let mut pragmas = format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS};");
                    for (name, value) in SQLITE_PRAGMAS {
                        pragmas.push_str(&format!(" PRAGMA {name} = {value};"));
                    }
                    sqlx::raw_sql(sqlx::AssertSqlSafe(pragmas)).execute(conn).await?;
                    Ok(())
                })
            });
        }
        let pool = pool.connect_with(options.clone()).await?;
        let sqlite_writer = Self::sqlite_writer(backend, &options).await?;
        Ok(AuditStore { pool, sqlite_writer, backend, chain: chain.into() })
    }

    /// On SQLite, the writer's connection to the file of `options`: one, with the store's
    /// settings. On PostgreSQL none: the writer uses the pool.
    async fn sqlite_writer(backend: Backend, options: &AnyConnectOptions) -> Result<Option<SqlitePool>, AuditError> {
        if backend == Backend::Postgres {
            return Ok(None);
        }
        let options = SQLITE_PRAGMAS
            .iter()
            .fold(SqliteConnectOptions::try_from(options)?, |options, (name, value)| options.pragma(*name, *value))
            .busy_timeout(Duration::from_millis(SQLITE_BUSY_TIMEOUT_MS.into()))
            .disable_statement_logging();
        let pool = SqlitePoolOptions::new().max_connections(SQLITE_CONNECTIONS).test_before_acquire(false).connect_with(options).await?;
        Ok(Some(pool))
    }

    /// The same database, seen by another chain.
    pub fn for_chain(&self, chain: &str) -> Result<AuditStore, AuditError> {
        validate_chain(chain)?;
        Ok(AuditStore { pool: self.pool.clone(), sqlite_writer: self.sqlite_writer.clone(), backend: self.backend, chain: chain.into() })
    }

    /// The chain (gateway id) this store writes and verifies.
    pub fn chain(&self) -> &str {
        &self.chain
    }

    /// The engine.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The underlying pool (tests and tools).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Every chain with at least one record, sorted.
    pub async fn chains(&self) -> Result<Vec<String>, AuditError> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT chain FROM audit_records ORDER BY chain").fetch_all(&self.pool).await?;
        Ok(rows)
    }

    /// The last record of this chain, if any.
    pub async fn head(&self) -> Result<Option<Head>, AuditError> {
        let row = sqlx::query("SELECT seq, hash FROM audit_records WHERE chain = $1 ORDER BY seq DESC LIMIT 1")
            .bind(self.chain.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(Head { seq: r.try_get("seq")?, hash: r.try_get("hash")? }),
            None => None,
        })
    }

    /// Up to `limit` records of this chain with `seq > after_seq`, in order.
    pub async fn records(&self, after_seq: i64, limit: i64) -> Result<Vec<AuditRecord>, AuditError> {
        self.page(after_seq, limit)
            .await?
            .into_iter()
            .map(|raw| raw.record.map_err(|e| AuditError::Corrupt(format!("record {}: {e}", raw.seq))))
            .collect()
    }

    /// The ledger entry `idempotency_key` of `app`, if one was committed (by any chain).
    pub async fn ledger_entry(&self, app: &str, idempotency_key: &str) -> Result<Option<LedgerRecord>, AuditError> {
        let row = sqlx::query(
            "SELECT app, kind, account, amount_fen, reference, idempotency_key, receipt_id, settled_at_ms, chain, audit_seq \
             FROM ledger_entries WHERE app = $1 AND idempotency_key = $2",
        )
        .bind(app.to_string())
        .bind(idempotency_key.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let stored = decode_ledger(&row)?;
        Ok(Some(LedgerRecord {
            entry: LedgerEntry {
                app: stored.app,
                kind: stored.kind,
                account: stored.account,
                amount_fen: u64::try_from(stored.amount_fen)
                    .map_err(|_| AuditError::Corrupt(format!("ledger entry {idempotency_key:?} has a negative amount")))?,
                reference: stored.reference,
                idempotency_key: stored.idempotency_key,
                receipt_id: stored.receipt_id,
                settled_at_ms: stored.settled_at_ms,
            },
            chain: row.try_get("chain")?,
            audit_seq: row.try_get("audit_seq")?,
        }))
    }

    /// Records of this chain after `after_seq`, decoded as far as possible.
    pub(crate) async fn page(&self, after_seq: i64, limit: i64) -> Result<Vec<RawRecord>, AuditError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM audit_records WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            COLUMNS.join(", ")
        )))
        .bind(self.chain.to_string())
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get("seq")?;
                let request_id = row.try_get::<String, _>("request_id").unwrap_or_else(|_| "?".to_string());
                Ok(RawRecord { seq, request_id, record: decode_record(row).map_err(|e| format!("unreadable row: {e}")) })
            })
            .collect()
    }

    /// Ledger entries of this chain's records in `(from_seq, to_seq]`, by record then position.
    pub(crate) async fn ledger_between(&self, from_seq: i64, to_seq: i64) -> Result<Vec<(i64, Result<StoredLedger, String>)>, AuditError> {
        let rows = sqlx::query(
            "SELECT app, kind, account, amount_fen, reference, idempotency_key, receipt_id, settled_at_ms, audit_seq \
             FROM ledger_entries WHERE chain = $1 AND audit_seq > $2 AND audit_seq <= $3 ORDER BY audit_seq, position",
        )
        .bind(self.chain.to_string())
        .bind(from_seq)
        .bind(to_seq)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("audit_seq")?, decode_ledger(row).map_err(|e| format!("unreadable ledger entry: {e}")))))
            .collect()
    }

    /// Appends `batch` to the chain in one transaction; returns the new head. `known` is the
    /// head the caller last committed, if it knows it: then the chain's head is not read. Should
    /// another writer have appended to the chain since, the first record's sequence number is
    /// taken and the transaction fails (the chain's key): read the head again and retry.
    pub(crate) async fn append(&self, known: Option<Head>, batch: &[RecordFields]) -> Result<Head, sqlx::Error> {
        match self.write(known, batch.iter().cloned(), &[]).await {
            Ok(head) => Ok(head),
            Err(AppendError::Database(e)) => Err(e),
            Err(AppendError::Conflict { .. }) => unreachable!("a batch without ledger entries has no idempotency key to reuse"),
        }
    }

    /// Appends one record and its ledger entries in one transaction: both or neither. `known`
    /// as for [`AuditStore::append`].
    pub(crate) async fn append_with_ledger(&self, known: Option<Head>, mut fields: RecordFields, ledger: &[StoredLedger]) -> Result<AuditReceipt, AppendError> {
        if !ledger.is_empty() {
            fields.ledger_sha256 = Some(ledger_digest(ledger));
        }
        let head = self.write(known, std::iter::once(fields), ledger).await?;
        Ok(AuditReceipt { chain: self.chain.to_string(), seq: head.seq, hash: head.hash })
    }

    /// Appends `records` after `known` (read when `None`) and, with the first of them, `ledger`,
    /// in one transaction: on SQLite on the writer's connection through SQLite's own driver
    /// (`BEGIN IMMEDIATE`: the file lock is taken up front and waits on the busy timeout instead
    /// of failing on upgrade), on PostgreSQL through `Any`.
    async fn write(&self, known: Option<Head>, records: impl Iterator<Item = RecordFields>, ledger: &[StoredLedger]) -> Result<Head, AppendError> {
        match &self.sqlite_writer {
            Some(writer) => self.write_in(writer.begin_with("BEGIN IMMEDIATE").await?, known, records, ledger).await,
            None => self.write_in(self.pool.begin().await?, known, records, ledger).await,
        }
    }

    /// [`AuditStore::write`] in `tx`, for either driver (hence the bounds on the database).
    async fn write_in<DB: Database>(
        &self,
        mut tx: Transaction<'static, DB>,
        known: Option<Head>,
        records: impl Iterator<Item = RecordFields>,
        ledger: &[StoredLedger],
    ) -> Result<Head, AppendError>
    where
        for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
        DB::Arguments: sqlx::IntoArguments<DB>,
        for<'q> String: Encode<'q, DB> + Type<DB>,
        for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
        for<'q> i64: Encode<'q, DB> + Type<DB>,
        for<'r> (i64, String): sqlx::FromRow<'r, DB::Row>,
    {
        let head = match known {
            Some(head) => Some(head),
            None => chain_head(&mut tx, &self.chain).await?,
        };
        let seq = head.as_ref().map_or(1, |h| h.seq + 1);
        for (position, l) in ledger.iter().enumerate() {
            let inserted = sqlx::query::<DB>(
                "INSERT INTO ledger_entries (app, idempotency_key, kind, account, amount_fen, reference, receipt_id, \
                 settled_at_ms, chain, audit_seq, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(l.app.clone())
            .bind(l.idempotency_key.clone())
            .bind(l.kind.clone())
            .bind(l.account.clone())
            .bind(l.amount_fen)
            .bind(l.reference.clone())
            .bind(l.receipt_id.clone())
            .bind(l.settled_at_ms)
            .bind(self.chain.to_string())
            .bind(seq)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {}
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    tx.rollback().await?;
                    return Err(AppendError::Conflict { app: l.app.clone(), idempotency_key: l.idempotency_key.clone() });
                }
                Err(e) => return Err(e.into()),
            }
        }
        // Multi-row INSERTs with `$n` placeholders on PostgreSQL and `?` on SQLite (sqlx's
        // `QueryBuilder` writes `?` for `Any`, which PostgreSQL does not accept).
        let (records, head) = self.link(head, records);
        let mut records = records.into_iter();
        for rows in statement_rows(records.len()) {
            let q = records.by_ref().take(rows).fold(sqlx::query::<DB>(batch_insert(self.backend, rows)), bind_record);
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(head)
    }

    /// Gives each record its place after `head` and its hash.
    fn link(&self, head: Option<Head>, fields: impl Iterator<Item = RecordFields>) -> (Vec<AuditRecord>, Head) {
        let mut head = head.unwrap_or(Head { seq: 0, hash: GENESIS.to_string() });
        let mut records = Vec::new();
        for fields in fields {
            let seq = head.seq + 1;
            let hash = record_hash(&self.chain, seq, &head.hash, &fields);
            records.push(AuditRecord { chain: self.chain.to_string(), seq, format: FORMAT, prev_hash: head.hash, hash: hash.clone(), fields });
            head = Head { seq, hash };
        }
        (records, head)
    }
}

/// Runs the audit migrations, tracked in their own table.
async fn migrate(pool: &AnyPool) -> Result<(), AuditError> {
    let mut migrator = Migrator::with_migrations(MIGRATIONS.iter().cloned().collect());
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    migrator.run(pool).await?;
    Ok(())
}

/// A chain id is a gateway id: non-empty, printable, short.
fn validate_chain(chain: &str) -> Result<(), AuditError> {
    if chain.is_empty() || chain.len() > 128 || chain.chars().any(char::is_control) {
        return Err(AuditError::Config(format!("chain id {chain:?} must be 1 to 128 printable characters")));
    }
    Ok(())
}

async fn chain_head<DB: Database>(tx: &mut Transaction<'static, DB>, chain: &str) -> Result<Option<Head>, sqlx::Error>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'r> (i64, String): sqlx::FromRow<'r, DB::Row>,
{
    let row: Option<(i64, String)> = sqlx::query_as("SELECT seq, hash FROM audit_records WHERE chain = $1 ORDER BY seq DESC LIMIT 1")
        .bind(chain.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(|(seq, hash)| Head { seq, hash }))
}

/// How many rows each INSERT of a batch of `rows` takes: [`ROWS_PER_INSERT`] while that many
/// remain, then the binary digits of the rest, largest first (100 → 64, 32, 4).
fn statement_rows(rows: usize) -> impl Iterator<Item = usize> {
    let full = rows / ROWS_PER_INSERT;
    let rest = rows % ROWS_PER_INSERT;
    std::iter::repeat_n(ROWS_PER_INSERT, full).chain((0..usize::BITS).rev().map(|bit| 1 << bit).filter(move |size| rest & size != 0))
}

/// `q` with `rec`'s 22 columns bound, in [`COLUMNS`]' order. The record is moved into the
/// statement's arguments, not copied: this runs for every decision.
fn bind_record<'q, DB: Database>(q: Query<'q, DB, DB::Arguments>, rec: AuditRecord) -> Query<'q, DB, DB::Arguments>
where
    String: Encode<'q, DB> + Type<DB>,
    Option<String>: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
{
    let f = rec.fields;
    q.bind(rec.chain)
        .bind(rec.seq)
        .bind(rec.format)
        .bind(f.request_id)
        .bind(f.at)
        .bind(f.channel)
        .bind(f.venue)
        .bind(f.terminal)
        .bind(f.card_ref)
        .bind(f.app)
        .bind(f.action)
        .bind(f.plugin_sha256)
        .bind(f.snapshot_version)
        .bind(f.outcome)
        .bind(f.code)
        .bind(f.blame)
        .bind(f.status)
        .bind(f.latency_us)
        .bind(f.detail)
        .bind(f.ledger_sha256)
        .bind(rec.prev_hash)
        .bind(rec.hash)
}

/// The INSERT of `rows` rows, one of the sizes [`statement_rows`] gives (a power of two up to
/// [`ROWS_PER_INSERT`]), written once per backend rather than for each batch.
fn batch_insert(backend: Backend, rows: usize) -> &'static str {
    const SIZES: usize = ROWS_PER_INSERT.trailing_zeros() as usize + 1;
    static STATEMENTS: LazyLock<[[String; SIZES]; 2]> = LazyLock::new(|| {
        [Backend::Sqlite, Backend::Postgres].map(|backend| std::array::from_fn(|size| insert_statement(backend, 1 << size)))
    });
    debug_assert!(rows.is_power_of_two() && rows <= ROWS_PER_INSERT, "{rows} rows is not a statement size");
    &STATEMENTS[usize::from(backend == Backend::Postgres)][rows.trailing_zeros() as usize]
}

/// `INSERT INTO audit_records (…) VALUES (…), …` for `rows` rows.
fn insert_statement(backend: Backend, rows: usize) -> String {
    use std::fmt::Write as _;
    let mut sql = format!("INSERT INTO audit_records ({}) VALUES ", COLUMNS.join(", "));
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..COLUMNS.len() {
            if c > 0 {
                sql.push_str(", ");
            }
            match backend {
                // Anonymous on SQLite: there `$n` is a named parameter, and binding by name is a
                // linear search per argument — quadratic in this statement's 1 408 parameters
                // (profiled: a quarter of SQLite's CPU under load).
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    let _ = write!(sql, "${}", r * COLUMNS.len() + c + 1);
                }
            }
        }
        sql.push(')');
    }
    sql
}

fn decode_record(row: &AnyRow) -> Result<AuditRecord, sqlx::Error> {
    Ok(AuditRecord {
        chain: row.try_get("chain")?,
        seq: row.try_get("seq")?,
        format: row.try_get("format")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
        fields: RecordFields {
            request_id: row.try_get("request_id")?,
            at: row.try_get("at")?,
            channel: row.try_get("channel")?,
            venue: row.try_get("venue")?,
            terminal: row.try_get("terminal")?,
            card_ref: row.try_get("card_ref")?,
            app: row.try_get("app")?,
            action: row.try_get("action")?,
            plugin_sha256: row.try_get("plugin_sha256")?,
            snapshot_version: row.try_get("snapshot_version")?,
            outcome: row.try_get("outcome")?,
            code: row.try_get("code")?,
            blame: row.try_get("blame")?,
            status: row.try_get("status")?,
            latency_us: row.try_get("latency_us")?,
            detail: row.try_get("detail")?,
            ledger_sha256: row.try_get("ledger_sha256")?,
        },
    })
}

fn decode_ledger(row: &AnyRow) -> Result<StoredLedger, sqlx::Error> {
    Ok(StoredLedger {
        app: row.try_get("app")?,
        kind: row.try_get("kind")?,
        account: row.try_get("account")?,
        amount_fen: row.try_get("amount_fen")?,
        reference: row.try_get("reference")?,
        idempotency_key: row.try_get("idempotency_key")?,
        receipt_id: row.try_get("receipt_id")?,
        settled_at_ms: row.try_get("settled_at_ms")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sqlite_store_writes_through_one_connection_with_statement_journals_in_memory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = AuditStore::connect(&dir.path().join("audit.db").display().to_string(), "gw-1").await.expect("store");
        // 2 = MEMORY (SQLite's default, 0, spills a statement journal past 64 KiB to a file).
        let temp_store: i64 = sqlx::query_scalar("PRAGMA temp_store").fetch_one(store.pool()).await.expect("pragma");
        assert_eq!(temp_store, 2);
        let pages: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint").fetch_one(store.pool()).await.expect("pragma");
        assert_eq!(pages, 200, "the log is checkpointed in small steps");
        assert_eq!(store.pool().options().get_max_connections(), 1);
        let writer = store.sqlite_writer.as_ref().expect("a SQLite store has a writer's connection");
        assert_eq!(writer.options().get_max_connections(), 1, "a second writing connection would keep a second page cache");
        for (pragma, expected) in [("temp_store", 2), ("wal_autocheckpoint", 200), ("busy_timeout", i64::from(SQLITE_BUSY_TIMEOUT_MS))] {
            let value: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("PRAGMA {pragma}"))).fetch_one(writer).await.expect("pragma");
            assert_eq!(value, expected, "the writer's {pragma}");
        }
    }

    #[test]
    fn a_batch_is_cut_into_at_most_seven_statement_sizes() {
        let sizes = |rows| statement_rows(rows).collect::<Vec<_>>();
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), vec![1]);
        assert_eq!(sizes(64), vec![64]);
        assert_eq!(sizes(100), vec![64, 32, 4]);
        assert_eq!(sizes(130), vec![64, 64, 2]);
        let mut seen = std::collections::BTreeSet::new();
        for rows in 0..1000 {
            let cut = sizes(rows);
            assert_eq!(cut.iter().sum::<usize>(), rows);
            seen.extend(cut);
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![1, 2, 4, 8, 16, 32, 64]);
        for backend in [Backend::Sqlite, Backend::Postgres] {
            for rows in [1, 2, 4, 8, 16, 32, 64] {
                assert_eq!(batch_insert(backend, rows), insert_statement(backend, rows), "{backend:?}, {rows} rows");
            }
        }
    }

    #[test]
    fn insert_statements_have_one_placeholder_per_column_and_row() {
        let columns = COLUMNS.join(", ");
        let sqlite = insert_statement(Backend::Sqlite, 2);
        let row = format!("({})", vec!["?"; COLUMNS.len()].join(", "));
        assert_eq!(sqlite, format!("INSERT INTO audit_records ({columns}) VALUES {row}, {row}"));
        let postgres = insert_statement(Backend::Postgres, 2);
        let numbered = |from: usize| format!("({})", (from..from + COLUMNS.len()).map(|n| format!("${n}")).collect::<Vec<_>>().join(", "));
        assert_eq!(postgres, format!("INSERT INTO audit_records ({columns}) VALUES {}, {}", numbered(1), numbered(COLUMNS.len() + 1)));
    }
}
