//! Tests of the batching writer against real databases: chaining, concurrency, backpressure,
//! ledger commits and flush.

use std::time::Duration;

use crate::entry::RecordFields;
use crate::testing::{both_backends, count, debit, entry};
use crate::{AuditConfig, AuditError, AuditStore, AuditWriter, Outcome, verify};

both_backends!(
    records_are_chained_and_verify,
    concurrent_records_get_dense_seqs_and_a_valid_chain,
    a_failing_database_fills_the_queue_then_everything_is_written,
    commit_with_ledger_writes_the_entries_and_the_record_together,
    a_ledger_conflict_writes_no_entry_and_records_a_refusal,
    an_invalid_ledger_entry_writes_nothing_and_records_a_refusal,
    chains_of_several_gateways_share_one_database,
    two_writers_of_one_chain_never_fork_it,
    batches_of_every_size_are_written_whole_and_in_order,
);

async fn records_are_chained_and_verify(store: AuditStore) {
    let audit = AuditWriter::spawn(store.clone(), AuditConfig::default()).expect("spawn");
    for n in 1..=5 {
        audit.reserve().expect("room").record(entry(n));
    }
    audit.flush().await.expect("flush");
    let records = store.records(0, 100).await.expect("read");
    assert_eq!(records.len(), 5);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as i64 + 1);
        assert_eq!(r.fields, RecordFields::from_entry(entry(i as u64 + 1)), "stored as given");
        if i > 0 {
            assert_eq!(r.prev_hash, records[i - 1].hash);
        }
    }
    assert_eq!(records[0].fields.at, "2026-11-18T11:06:41.123456Z", "UTC, microseconds");
    let report = verify(&store).await.expect("verify");
    assert_eq!((report.records, report.first_broken), (5, None));
    assert_eq!(report.head, store.head().await.expect("head"));
    assert_eq!(audit.status().head, report.head);
    assert_eq!(audit.status().written, 5);
}

async fn concurrent_records_get_dense_seqs_and_a_valid_chain(store: AuditStore) {
    let config = AuditConfig { batch_max: 64, ..AuditConfig::default() };
    let audit = AuditWriter::spawn(store.clone(), config).expect("spawn");
    let tasks: Vec<_> = (0..40u64)
        .map(|t| {
            let audit = audit.clone();
            tokio::spawn(async move {
                for i in 0..25u64 {
                    let slot = audit.reserve().expect("room");
                    tokio::task::yield_now().await;
                    slot.record(entry(t * 100 + i));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    audit.flush().await.expect("flush");
    let report = verify(&store).await.expect("verify");
    assert_eq!((report.records, &report.first_broken), (1000, &None));
    let mut ids: Vec<String> = sqlx::query_scalar("SELECT request_id FROM audit_records ORDER BY request_id")
        .fetch_all(store.pool())
        .await
        .expect("ids");
    ids.dedup();
    assert_eq!(ids.len(), 1000, "every decision recorded exactly once");
    let seqs: Vec<i64> = sqlx::query_scalar("SELECT seq FROM audit_records ORDER BY seq").fetch_all(store.pool()).await.expect("seqs");
    assert_eq!(seqs, (1..=1000).collect::<Vec<i64>>());
}

#[tokio::test]
async fn reserved_places_count_against_the_queue_and_a_refusal_writes_nothing() {
    let (store, _dir) = crate::testing::sqlite_store().await;
    let audit = AuditWriter::spawn(store.clone(), AuditConfig { queue_capacity: 3, ..AuditConfig::default() }).expect("spawn");
    let slots: Vec<_> = (0..3).map(|_| audit.reserve().expect("room")).collect();
    assert_eq!(audit.queue_depth(), 3);
    let err = audit.reserve().expect_err("full");
    assert_eq!(err.code(), "AUDIT_BACKPRESSURE");
    assert!(matches!(err, AuditError::Backpressure { capacity: 3 }), "{err}");
    for (n, slot) in slots.into_iter().enumerate() {
        slot.record(entry(n as u64 + 1));
    }
    audit.flush().await.expect("flush");
    assert_eq!(count(&store, "audit_records").await, 3, "the refused reservation left no record");
    assert_eq!(audit.queue_depth(), 0);
    audit.reserve().expect("room again").record(entry(4));
    audit.flush().await.expect("flush");
    assert_eq!(verify(&store).await.expect("verify").records, 4);
}

async fn a_failing_database_fills_the_queue_then_everything_is_written(store: AuditStore) {
    let config = AuditConfig { queue_capacity: 8, batch_max: 4, flush_interval_ms: 1, retry_max_ms: 20 };
    let audit = AuditWriter::spawn(store.clone(), config).expect("spawn");
    audit.reserve().expect("room").record(entry(1));
    audit.flush().await.expect("flush");
    // A real failure of the store: the table the writer appends to disappears.
    sqlx::query("ALTER TABLE audit_records RENAME TO audit_records_away").execute(store.pool()).await.expect("rename");
    let mut accepted = 1u64;
    let refusal = loop {
        match audit.reserve() {
            Ok(slot) => {
                accepted += 1;
                slot.record(entry(accepted));
                assert!(accepted <= 1 + 8 + 4, "the queue is bounded by its capacity plus one batch in the writer's hands");
            }
            Err(e) => break e,
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(refusal.code(), "AUDIT_BACKPRESSURE");
    assert!(accepted > 8, "the whole queue was usable before refusing: {accepted}");
    // The writer is failing, and says so.
    while audit.status().failing.is_none() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sqlx::query("ALTER TABLE audit_records_away RENAME TO audit_records").execute(store.pool()).await.expect("rename back");
    audit.flush().await.expect("flush after recovery");
    let report = verify(&store).await.expect("verify");
    assert_eq!((report.records, report.first_broken), (accepted, None), "every accepted decision was written, none more");
    assert_eq!(audit.status().failing, None);
    audit.reserve().expect("room after recovery").record(entry(100));
    audit.flush().await.expect("flush");
}

async fn commit_with_ledger_writes_the_entries_and_the_record_together(store: AuditStore) {
    let audit = AuditWriter::spawn(store.clone(), AuditConfig::default()).expect("spawn");
    audit.reserve().expect("room").record(entry(1));
    let mut pay = entry(2);
    pay.app = "ecny".into();
    let mut credit = debit("k-2b", 500);
    credit.kind = "credit".into();
    let receipt = audit.reserve().expect("room").commit_with_ledger(pay, vec![debit("k-2a", 500), credit.clone()]).await.expect("commit");
    assert_eq!((receipt.chain.as_str(), receipt.seq), ("gw-test", 2));
    // Durable on return, without a flush.
    let stored = store.ledger_entry("ecny", "k-2b").await.expect("read").expect("present");
    assert_eq!((stored.entry, stored.audit_seq), (credit, 2));
    let record = &store.records(1, 1).await.expect("read")[0];
    assert_eq!((record.hash.as_str(), record.fields.outcome.as_str()), (receipt.hash.as_str(), "allowed"));
    assert!(record.fields.ledger_sha256.is_some());
    assert_eq!(verify(&store).await.expect("verify").records, 2);
}

async fn a_ledger_conflict_writes_no_entry_and_records_a_refusal(store: AuditStore) {
    let audit = AuditWriter::spawn(store.clone(), AuditConfig::default()).expect("spawn");
    audit.reserve().expect("room").commit_with_ledger(entry(1), vec![debit("k-1", 100)]).await.expect("first");
    let before = count(&store, "ledger_entries").await;
    // The first entry is new, the second reuses k-1: neither may remain.
    let err = audit
        .reserve()
        .expect("room")
        .commit_with_ledger(entry(2), vec![debit("k-new", 100), debit("k-1", 100)])
        .await
        .expect_err("conflict");
    assert_eq!(err.code(), "LEDGER_CONFLICT");
    assert_eq!(count(&store, "ledger_entries").await, before, "no half-written transaction");
    assert!(store.ledger_entry("ecny", "k-new").await.expect("read").is_none());
    let records = store.records(0, 10).await.expect("read");
    assert_eq!(records.len(), 2, "the decision is still recorded");
    let refused = &records[1].fields;
    assert_eq!((refused.request_id.as_str(), refused.outcome.as_str()), ("req-2", "refused"));
    assert_eq!((refused.code.as_deref(), refused.status, refused.ledger_sha256.as_deref()), (Some("LEDGER_CONFLICT"), 409, None));
    let detail: serde_json::Value = serde_json::from_str(&refused.detail).expect("json");
    assert_eq!(detail["intended"]["outcome"], "allowed");
    assert_eq!(verify(&store).await.expect("verify").first_broken, None);
    // The writer goes on.
    audit.reserve().expect("room").commit_with_ledger(entry(3), vec![debit("k-3", 1)]).await.expect("third");
}

async fn an_invalid_ledger_entry_writes_nothing_and_records_a_refusal(store: AuditStore) {
    let audit = AuditWriter::spawn(store.clone(), AuditConfig::default()).expect("spawn");
    for (bad, why) in [(debit("k", 0), "amount_fen 0"), (debit("k", u64::MAX), "amount_fen"), (debit("", 5), "idempotency_key")] {
        let err = audit.reserve().expect("room").commit_with_ledger(entry(1), vec![debit("ok", 1), bad]).await.expect_err("invalid");
        assert_eq!(err.code(), "LEDGER_INVALID");
        assert!(err.to_string().contains(why), "{err}");
    }
    let mut odd = debit("k", 5);
    odd.kind = "withdrawal".into();
    let err = audit.reserve().expect("room").commit_with_ledger(entry(1), vec![odd]).await.expect_err("invalid kind");
    assert!(err.to_string().contains("withdrawal"), "{err}");
    assert_eq!(count(&store, "ledger_entries").await, 0, "nothing of the ledger was written");
    let records = store.records(0, 10).await.expect("read");
    assert_eq!(records.len(), 4);
    assert!(records.iter().all(|r| r.fields.code.as_deref() == Some("LEDGER_INVALID") && r.fields.outcome == Outcome::Refused.as_str()));
}

async fn chains_of_several_gateways_share_one_database(store: AuditStore) {
    let other = store.for_chain("gw-other").expect("chain");
    let a = AuditWriter::spawn(store.clone(), AuditConfig::default()).expect("spawn");
    let b = AuditWriter::spawn(other.clone(), AuditConfig::default()).expect("spawn");
    for n in 1..=10 {
        a.reserve().expect("room").record(entry(n));
        b.reserve().expect("room").record(entry(n));
    }
    b.reserve().expect("room").commit_with_ledger(entry(11), vec![debit("shared-key", 1)]).await.expect("b pays");
    let err = a.reserve().expect("room").commit_with_ledger(entry(11), vec![debit("shared-key", 1)]).await.expect_err("same key");
    assert_eq!(err.code(), "LEDGER_CONFLICT", "idempotency keys are unique per application across gateways");
    a.flush().await.expect("flush");
    b.flush().await.expect("flush");
    assert_eq!(store.chains().await.expect("chains"), vec!["gw-other".to_string(), "gw-test".to_string()]);
    for s in [&store, &other] {
        let report = verify(s).await.expect("verify");
        assert_eq!((report.records, report.first_broken), (11, None), "chain {}", s.chain());
    }
}

/// A writer keeps the head it last committed instead of reading it for every batch. A second
/// writer of the same chain (two gateways misconfigured with one id) makes that head stale: the
/// next batch must then fail on the chain's key and be retried after reading the head, never
/// link to a stale head.
async fn two_writers_of_one_chain_never_fork_it(store: AuditStore) {
    let config = AuditConfig { flush_interval_ms: 1, ..AuditConfig::default() };
    let a = AuditWriter::spawn(store.clone(), config.clone()).expect("spawn");
    let b = AuditWriter::spawn(store.clone(), config).expect("spawn");
    for round in 0..4u64 {
        for n in 0..3 {
            a.reserve().expect("room").record(entry(round * 10 + n));
        }
        a.flush().await.expect("a flushes");
        b.reserve().expect("room").record(entry(round * 10 + 5));
        b.flush().await.expect("b flushes");
    }
    let report = verify(&store).await.expect("verify");
    assert_eq!((report.records, report.first_broken), (16, None), "one unbroken chain of every record");
    assert_eq!(a.status().written + b.status().written, 16);
    assert_eq!(b.status().head, report.head, "the last writer's head is the chain's");
}

/// Batches are cut into statements of 64 rows and the powers of two below (seven statement
/// texts in all); every size of batch must arrive whole, in order, chained.
async fn batches_of_every_size_are_written_whole_and_in_order(store: AuditStore) {
    let mut written = 0u64;
    for size in [1u64, 2, 3, 63, 64, 65, 100, 127, 128, 129] {
        let config = AuditConfig { batch_max: 512, flush_interval_ms: 3_600_000, ..AuditConfig::default() };
        let audit = AuditWriter::spawn(store.clone(), config).expect("spawn");
        for n in 0..size {
            audit.reserve().expect("room").record(entry(written + n));
        }
        audit.flush().await.expect("flush");
        written += size;
        assert_eq!(audit.status().written, size, "a batch of {size} in one transaction");
    }
    let records = store.records(0, 1000).await.expect("read");
    assert_eq!(records.len() as u64, written);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.fields, RecordFields::from_entry(entry(i as u64)), "record {i} stored as given, in order");
    }
    let report = verify(&store).await.expect("verify");
    assert_eq!((report.records, report.first_broken), (written, None));
}

#[tokio::test]
async fn flush_writes_without_waiting_for_the_batch_interval() {
    let (store, _dir) = crate::testing::sqlite_store().await;
    // An interval far longer than the test may take: only flush can make the records durable.
    let config = AuditConfig { flush_interval_ms: 3_600_000, ..AuditConfig::default() };
    let audit = AuditWriter::spawn(store.clone(), config).expect("spawn");
    for n in 1..=3 {
        audit.reserve().expect("room").record(entry(n));
    }
    tokio::time::timeout(Duration::from_secs(30), audit.flush()).await.expect("flush does not wait for the interval").expect("flush");
    assert_eq!(count(&store, "audit_records").await, 3);
}

#[tokio::test]
async fn a_money_commit_does_not_wait_for_the_batch_interval() {
    let (store, _dir) = crate::testing::sqlite_store().await;
    // The writer lingers over records for the interval; a commit someone waits on ends the linger.
    let config = AuditConfig { flush_interval_ms: 3_600_000, ..AuditConfig::default() };
    let audit = AuditWriter::spawn(store.clone(), config).expect("spawn");
    for n in 1..=3 {
        audit.reserve().expect("room").record(entry(n));
    }
    let mut pay = entry(4);
    pay.app = "ecny".into();
    let commit = audit.reserve().expect("room").commit_with_ledger(pay, vec![debit("k-4", 100)]);
    let receipt = tokio::time::timeout(Duration::from_secs(30), commit).await.expect("the commit does not wait for the interval").expect("commit");
    assert_eq!(receipt.seq, 4, "the records queued before it are written first, in order");
    assert_eq!(count(&store, "audit_records").await, 4);
}

#[tokio::test]
async fn a_bad_config_starts_no_writer() {
    let (store, _dir) = crate::testing::sqlite_store().await;
    let err = AuditWriter::spawn(store, AuditConfig { queue_capacity: 0, ..AuditConfig::default() }).expect_err("refused");
    assert_eq!(err.code(), "AUDIT_CONFIG_INVALID");
}

#[tokio::test]
async fn a_bad_chain_id_or_url_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("a.db").display().to_string();
    assert_eq!(AuditStore::connect(&path, "").await.expect_err("empty chain").code(), "AUDIT_CONFIG_INVALID");
    assert_eq!(AuditStore::connect("mysql://x", "gw").await.expect_err("mysql").code(), "AUDIT_DATABASE_URL");
    let missing = AuditStore::connect_existing(&path, "gw").await.expect_err("missing file");
    assert_eq!(missing.code(), "AUDIT_DATABASE_URL");
    assert!(!dir.path().join("a.db").exists(), "nothing was created");
}
