//! Test support: fresh audit stores on SQLite (a temporary file) and PostgreSQL (a fresh schema
//! per test in the database named by `ONECARD_TEST_POSTGRES_URL`), entries, and the macro that
//! runs one async test body against both engines.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{TimeZone, Utc};
use serde_json::json;

use crate::entry::{AuditEntry, LedgerEntry, Outcome};
use crate::store::AuditStore;

/// A store for chain `gw-test` on a new SQLite file; keep the directory alive for the test.
pub async fn sqlite_store() -> (AuditStore, Option<tempfile::TempDir>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = dir.path().join("audit.db").display().to_string();
    (AuditStore::connect(&url, "gw-test").await.expect("open sqlite audit store"), Some(dir))
}

/// A store for chain `gw-test` in a fresh PostgreSQL schema.
pub async fn postgres_store() -> (AuditStore, Option<tempfile::TempDir>) {
    (AuditStore::connect(&postgres_url().await, "gw-test").await.expect("open postgres audit store"), None)
}

/// The URL of a fresh, empty PostgreSQL schema.
pub async fn postgres_url() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let base = std::env::var("ONECARD_TEST_POSTGRES_URL").expect("ONECARD_TEST_POSTGRES_URL is set");
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let schema = format!("audit_{}_{}_{}", std::process::id(), nanos, N.fetch_add(1, Ordering::Relaxed));
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&base).await.expect("connect to PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&admin).await.expect("create schema");
    admin.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options[search_path]={schema}")
}

/// Runs each listed `async fn name(store: AuditStore)` on SQLite and on PostgreSQL, as tests
/// `name::sqlite` and `name::postgres` (the latter ignored without PostgreSQL).
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let (store, _guard) = $crate::testing::sqlite_store().await;
                    super::$name(store).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(onecard_pg), ignore = "needs PostgreSQL: set ONECARD_TEST_POSTGRES_URL")]
                async fn postgres() {
                    let (store, _guard) = $crate::testing::postgres_store().await;
                    super::$name(store).await;
                }
            }
        )*
    };
}
pub(crate) use both_backends;

/// A decision numbered `n`.
pub fn entry(n: u64) -> AuditEntry {
    AuditEntry {
        request_id: format!("req-{n}"),
        at: Utc.timestamp_opt(1_795_000_000 + n as i64, 123_456_789).single().expect("valid time"),
        channel: Some("3300000001".into()),
        venue: n.is_multiple_of(2).then(|| "west-lake".to_string()),
        terminal: Some(format!("WL-G{}", n % 4)),
        card_ref: Some(format!("cref-{n}")),
        app: "parks".into(),
        action: "enter".into(),
        plugin_sha256: Some("ab".repeat(32)),
        snapshot_version: 42,
        outcome: if n.is_multiple_of(3) { Outcome::Refused } else { Outcome::Allowed },
        code: n.is_multiple_of(3).then(|| "ALREADY_INSIDE".to_string()),
        blame: n.is_multiple_of(3).then(|| "holder".to_string()),
        status: if n.is_multiple_of(3) { 409 } else { 200 },
        latency_us: 900 + n,
        detail: json!({"n": n, "message": "入园", "z": [1, 2], "a": {"y": 1, "b": 2}}),
    }
}

/// A debit with idempotency key `key`.
pub fn debit(key: &str, amount_fen: u64) -> LedgerEntry {
    LedgerEntry {
        app: "ecny".into(),
        kind: "debit".into(),
        account: "wallet-1".into(),
        amount_fen,
        reference: format!("op-{key}"),
        idempotency_key: key.into(),
        receipt_id: format!("rcpt-{key}"),
        settled_at_ms: 1_795_000_000_000,
    }
}

/// Rows in a table (all chains).
pub async fn count(store: &AuditStore, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(store.pool())
        .await
        .expect("count rows")
}
