//! Single-process mode keeps the catalog and the audit trail in one SQLite file: both sets of
//! migrations must apply there in either order, and both stores must reopen it afterwards.

use onecard_audit::{AuditConfig, AuditEntry, AuditStore, AuditWriter, MIGRATIONS_TABLE, Outcome, verify};
use onecard_catalog::store::Store;

fn entry(n: u64) -> AuditEntry {
    AuditEntry {
        request_id: format!("req-{n}"),
        at: chrono::Utc::now(),
        channel: None,
        venue: None,
        terminal: None,
        card_ref: None,
        app: "parks".into(),
        action: "enter".into(),
        plugin_sha256: None,
        snapshot_version: 1,
        outcome: Outcome::Allowed,
        code: None,
        blame: None,
        status: 200,
        latency_us: 10,
        detail: serde_json::json!({}),
    }
}

async fn both_work(path: &str, records: u64) {
    let catalog = Store::open(path).await.expect("catalog opens");
    let audit = AuditStore::connect(path, "gw-1").await.expect("audit opens");
    assert!(catalog.version().await.is_ok(), "catalog tables are there");
    let writer = AuditWriter::spawn(audit.clone(), AuditConfig::default()).expect("spawn");
    writer.reserve().expect("room").record(entry(records + 1));
    writer.flush().await.expect("flush");
    assert_eq!(verify(&audit).await.expect("verify").records, records + 1);
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(audit.pool()).await.expect("pragma");
    assert_eq!(mode, "wal");
    let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout").fetch_one(audit.pool()).await.expect("pragma");
    assert_eq!(busy, 5_000);
    let tracked: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {MIGRATIONS_TABLE}")))
        .fetch_one(audit.pool())
        .await
        .expect("audit migrations table");
    assert_eq!(tracked, 1);
    catalog.pool().close().await;
    audit.pool().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_first_then_audit_then_both_reopen() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("onecard.db").display().to_string();
    Store::open(&path).await.expect("catalog migrates").pool().close().await;
    both_work(&path, 0).await;
    both_work(&path, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_first_then_catalog_then_both_reopen() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("onecard.db").display().to_string();
    AuditStore::connect(&path, "gw-1").await.expect("audit migrates").pool().close().await;
    both_work(&path, 0).await;
    both_work(&path, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_store_runs_on_the_catalogs_pool() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("onecard.db").display().to_string();
    let catalog = Store::open(&path).await.expect("catalog");
    let audit = AuditStore::from_pool(catalog.pool().clone(), "gw-1").await.expect("audit on the catalog's pool");
    let writer = AuditWriter::spawn(audit.clone(), AuditConfig::default()).expect("spawn");
    writer.reserve().expect("room").record(entry(1));
    writer.flush().await.expect("flush");
    assert_eq!(verify(&audit).await.expect("verify").records, 1);
    // The catalog still opens the file, with its own migrations untouched.
    Store::open(&path).await.expect("catalog reopens");
}
