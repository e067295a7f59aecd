//! `onecard audit verify` as an operator runs it: records written by the real audit writer into
//! a SQLite file, rows tampered with by raw SQL, the real binary naming the broken record.

use std::process::Command;

use chrono::{TimeZone, Utc};
use onecard_audit::{AuditConfig, AuditEntry, AuditStore, AuditWriter, LedgerEntry, Outcome};

fn onecard(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_onecard")).args(args).output().expect("run onecard");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn entry(n: i64) -> AuditEntry {
    AuditEntry {
        request_id: format!("req-{n}"),
        at: Utc.timestamp_opt(1_795_000_000 + n, 0).single().expect("time"),
        channel: Some("3300000001".into()),
        venue: Some("west-lake".into()),
        terminal: Some("WL-G1".into()),
        card_ref: Some(format!("cref-{n}")),
        app: "parks".into(),
        action: "enter".into(),
        plugin_sha256: Some("ab".repeat(32)),
        snapshot_version: 9,
        outcome: Outcome::Allowed,
        code: None,
        blame: None,
        status: 200,
        latency_us: 800,
        detail: serde_json::json!({"entitlement": "senior"}),
    }
}

/// A SQLite file with five records on chain `gw-1` (record 4 paid) and two on `gw-2`.
async fn trail(dir: &tempfile::TempDir) -> (String, AuditStore) {
    let path = dir.path().join("onecard.db").display().to_string();
    let store = AuditStore::connect(&path, "gw-1").await.expect("open");
    let audit = AuditWriter::spawn(store.clone(), AuditConfig::default()).expect("spawn");
    for n in 1..=5 {
        let slot = audit.reserve().expect("room");
        if n == 4 {
            let debit = LedgerEntry {
                app: "parks".into(),
                kind: "debit".into(),
                account: "acct-1".into(),
                amount_fen: 4_000,
                reference: "op-4".into(),
                idempotency_key: "idem-4".into(),
                receipt_id: "rcpt-4".into(),
                settled_at_ms: 1_795_000_004_000,
            };
            slot.commit_with_ledger(entry(n), vec![debit]).await.expect("commit");
        } else {
            slot.record(entry(n));
        }
    }
    audit.flush().await.expect("flush");
    let other = AuditWriter::spawn(store.for_chain("gw-2").expect("chain"), AuditConfig::default()).expect("spawn");
    for n in 1..=2 {
        other.reserve().expect("room").record(entry(n));
    }
    other.flush().await.expect("flush");
    (path, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intact_trail_verifies_with_its_head() {
    let dir = tempfile::tempdir().expect("dir");
    let (path, store) = trail(&dir).await;
    let head = store.head().await.expect("head").expect("some");
    let (code, out, err) = onecard(&["audit", "verify", "--database", &path, "--chain", "gw-1"]);
    assert_eq!(code, 0, "{out} {err}");
    assert_eq!(out.trim(), format!("audit chain gw-1: 5 records intact, head 5 {}", head.hash));
    let (code, out, _) = onecard(&["audit", "verify", "--database", &format!("sqlite://{path}")]);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("audit chain gw-1: 5 records intact, head 5 "), "{out}");
    assert!(lines[1].starts_with("audit chain gw-2: 2 records intact, head 2 "), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_with_any_row_is_named_by_the_binary() {
    let cases: [(&str, &[&str], &str); 7] = [
        ("an edited field", &["UPDATE audit_records SET outcome = 'refused' WHERE chain = 'gw-1' AND seq = 3"], "record 3 (request req-3) is broken: its contents do not match its hash"),
        ("an edited timestamp", &["UPDATE audit_records SET at = '2026-01-01T00:00:00.000000Z' WHERE chain = 'gw-1' AND seq = 1"], "record 1 (request req-1) is broken: its contents"),
        (
            "an edited hash",
            &["UPDATE audit_records SET hash = CASE WHEN substr(hash, 1, 1) = '0' THEN '1' ELSE '0' END || substr(hash, 2) WHERE chain = 'gw-1' AND seq = 2"],
            "record 2 (request req-2) is broken: its contents do not match its hash",
        ),
        ("a deleted record", &["DELETE FROM audit_records WHERE chain = 'gw-1' AND seq = 2"], "record 3 (request req-3) is broken: expected record 2 after record 1"),
        ("a deleted paid record", &["DELETE FROM audit_records WHERE chain = 'gw-1' AND seq = 4"], "record 4 (request ?) is broken: ledger entries point at record 4, which is missing"),
        ("an edited ledger amount", &["UPDATE ledger_entries SET amount_fen = 1 WHERE idempotency_key = 'idem-4'"], "record 4 (request req-4) is broken: its ledger entries do not match"),
        (
            "a record moved to another chain",
            &["UPDATE audit_records SET chain = 'gw-1', seq = 6 WHERE chain = 'gw-2' AND seq = 1"],
            "record 6 (request req-1) is broken: its prev_hash does not match",
        ),
    ];
    for (what, sqls, expected) in cases {
        let dir = tempfile::tempdir().expect("dir");
        let (path, store) = trail(&dir).await;
        for sql in sqls {
            sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(store.pool()).await.expect("tamper");
        }
        store.pool().close().await;
        let (code, out, err) = onecard(&["audit", "verify", "--database", &path, "--chain", "gw-1"]);
        assert_eq!(code, 1, "{what}: {out} {err}");
        assert!(out.trim().starts_with(&format!("audit chain gw-1: {expected}")), "{what}: {out}");
        // The other chain is untouched and still verifies, but the whole-database run fails.
        let (code, out, _) = onecard(&["audit", "verify", "--database", &path]);
        assert_eq!(code, 1, "{what}: {out}");
        assert!(out.contains(expected), "{what}: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_checked_exits_2_and_creates_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let missing = dir.path().join("missing.db");
    let (code, out, err) = onecard(&["audit", "verify", "--database", missing.to_str().expect("utf-8")]);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(err.contains("AUDIT_DATABASE_URL") && err.contains("does not exist"), "{err}");
    assert!(!missing.exists(), "verify created no file");

    let (path, _store) = trail(&dir).await;
    let (code, _, err) = onecard(&["audit", "verify", "--database", &path, "--chain", "gw-9"]);
    assert_eq!(code, 2);
    assert!(err.contains("AUDIT_CHAIN_UNKNOWN") && err.contains("gw-1, gw-2"), "{err}");

    let (code, _, err) = onecard(&["audit", "verify"]);
    assert_eq!(code, 2, "missing --database is bad usage: {err}");
    assert!(err.contains("--database"), "{err}");

    // A database without audit tables (a catalog-only file) is reported, not migrated.
    sqlx::any::install_default_drivers();
    let bare = dir.path().join("bare.db").display().to_string();
    let pool = sqlx::AnyPool::connect(&format!("sqlite://{bare}?mode=rwc")).await.expect("create bare file");
    sqlx::query("CREATE TABLE other (x TEXT)").execute(&pool).await.expect("table");
    pool.close().await;
    let (code, _, err) = onecard(&["audit", "verify", "--database", &bare]);
    assert_eq!(code, 2);
    assert!(err.contains("AUDIT_NOT_INITIALISED"), "{err}");
    let pool = sqlx::AnyPool::connect(&format!("sqlite://{bare}")).await.expect("reopen");
    let tables: Vec<String> = sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").fetch_all(&pool).await.expect("tables");
    assert_eq!(tables, vec!["other".to_string()], "verify migrated nothing");
}
