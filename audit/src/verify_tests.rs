//! Tampering with stored rows, one way at a time, and what `verify` says about it.

use crate::testing::{both_backends, debit, entry};
use crate::{AuditConfig, AuditStore, AuditWriter, Broken, verify};

/// Five records on the store's chain; record 3 moved money (keys `<chain>-k-3a`, `-k-3b`).
async fn five(store: &AuditStore) {
    let audit = AuditWriter::spawn(store.clone(), AuditConfig::default()).expect("spawn");
    for n in 1..=5 {
        let slot = audit.reserve().expect("room");
        if n == 3 {
            let keys = (format!("{}-k-3a", store.chain()), format!("{}-k-3b", store.chain()));
            slot.commit_with_ledger(entry(n), vec![debit(&keys.0, 700), debit(&keys.1, 300)]).await.expect("commit");
        } else {
            slot.record(entry(n));
        }
    }
    audit.flush().await.expect("flush");
    let report = verify(store).await.expect("verify");
    assert_eq!((report.records, report.first_broken), (5, None), "intact before tampering");
}

async fn exec(store: &AuditStore, sql: &str) {
    let done = sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(store.pool()).await.expect("tamper");
    assert!(done.rows_affected() > 0, "{sql} changed nothing");
}

async fn broken(store: &AuditStore) -> Broken {
    verify(store).await.expect("verify").first_broken.expect("tampering is found")
}

both_backends!(
    every_tampering_is_found_at_the_right_record,
    a_cut_tail_shows_only_in_the_head,
);

async fn every_tampering_is_found_at_the_right_record(store: AuditStore) {
    let cases: [(&str, &[&str], i64, &str); 11] = [
        ("an edited text field", &["UPDATE audit_records SET app = 'transit' WHERE seq = 2"], 2, "altered"),
        ("an edited outcome", &["UPDATE audit_records SET outcome = 'allowed', code = NULL WHERE seq = 3"], 3, "altered"),
        ("an edited number", &["UPDATE audit_records SET latency_us = latency_us + 1 WHERE seq = 4"], 4, "altered"),
        ("a cleared field", &["UPDATE audit_records SET card_ref = NULL WHERE seq = 1"], 1, "altered"),
        ("edited detail JSON", &["UPDATE audit_records SET detail = '{\"n\":5}' WHERE seq = 5"], 5, "altered"),
        ("an edited hash", &["UPDATE audit_records SET hash = '00' || substr(hash, 3) WHERE seq = 2"], 2, "altered"),
        ("a deleted record", &["DELETE FROM audit_records WHERE seq = 2"], 3, "missing"),
        (
            "two swapped records",
            &[
                "UPDATE audit_records SET seq = -2 WHERE seq = 2",
                "UPDATE audit_records SET seq = 2 WHERE seq = 4",
                "UPDATE audit_records SET seq = 4 WHERE seq = -2",
            ],
            2,
            "prev_hash",
        ),
        (
            "an inserted record",
            &[
                "UPDATE audit_records SET seq = seq + 100 WHERE seq >= 4",
                "UPDATE audit_records SET seq = seq - 99 WHERE seq >= 100",
                "INSERT INTO audit_records SELECT chain, 4, format, 'forged', at, channel, venue, terminal, card_ref, app, action, \
                 plugin_sha256, snapshot_version, outcome, code, blame, status, latency_us, detail, ledger_sha256, prev_hash, hash \
                 FROM audit_records WHERE seq = 1",
            ],
            4,
            "prev_hash",
        ),
        ("an edited ledger amount", &["UPDATE ledger_entries SET amount_fen = 1 WHERE idempotency_key = 'k-3b'"], 3, "ledger"),
        ("a deleted ledger entry", &["DELETE FROM ledger_entries WHERE idempotency_key = 'k-3a'"], 3, "ledger"),
    ];
    for (i, (what, sqls, seq, reason)) in cases.iter().enumerate() {
        let chain = store.for_chain(&format!("gw-case-{i}")).expect("chain");
        five(&chain).await;
        for sql in sqls.iter() {
            // Each case tampers with its own chain only.
            let scoped = if sql.contains(" WHERE ") && !sql.starts_with("INSERT") {
                format!("{sql} AND chain = '{}'", chain.chain())
            } else {
                sql.replace("WHERE seq = 1", &format!("WHERE seq = 1 AND chain = '{}'", chain.chain()))
            };
            let scoped = if scoped.contains("ledger_entries") { scoped.replace("'k-3", &format!("'{}-k-3", chain.chain())) } else { scoped };
            exec(&chain, &scoped).await;
        }
        let b = broken(&chain).await;
        assert_eq!(b.seq, *seq, "{what}: {b:?}");
        assert!(b.reason.contains(reason), "{what}: {b:?}");
        // The record now at that place: the forgery, the swapped-in record 4, or the original.
        let expected_request = match *what {
            "an inserted record" => "forged".to_string(),
            "two swapped records" => "req-4".to_string(),
            _ => format!("req-{seq}"),
        };
        assert_eq!(b.request_id, expected_request, "{what}");
    }
    // The untouched chain is still intact.
    assert_eq!(verify(&store).await.expect("verify").records, 0);
}

async fn a_cut_tail_shows_only_in_the_head(store: AuditStore) {
    five(&store).await;
    let before = verify(&store).await.expect("verify").head.expect("head");
    exec(&store, "DELETE FROM audit_records WHERE seq = 5").await;
    let after = verify(&store).await.expect("verify");
    // A chain cannot know its own end: the shorter chain is intact, but its head moved.
    assert_eq!((after.records, after.first_broken), (4, None));
    assert_ne!(after.head.expect("head"), before);
}
