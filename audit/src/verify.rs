//! Checks a chain: every record in order, dense from 1, linked to its predecessor, with a hash
//! that matches its contents and a ledger digest that matches its ledger entries. Names the
//! first record that fails. A chain alone cannot show that records were cut off its tail: the
//! report gives the head so that an operator can compare it with one kept elsewhere.

use serde::Serialize;

use crate::canonical::{FORMAT, GENESIS, StoredLedger, ledger_digest, record_hash};
use crate::entry::Head;
use crate::error::AuditError;
use crate::store::AuditStore;

/// Records read per query.
const PAGE: i64 = 1_000;

/// The result of checking one chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// The chain checked.
    pub chain: String,
    /// Records found intact before the first broken one (all of them when none is).
    pub records: u64,
    /// The last intact record: compare it with a head kept elsewhere to detect a cut tail.
    pub head: Option<Head>,
    /// The first record that fails, if any.
    pub first_broken: Option<Broken>,
}

/// A record that fails verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Broken {
    /// Its sequence number as stored.
    pub seq: i64,
    /// Its request id as stored (`?` when unreadable).
    pub request_id: String,
    /// What is wrong.
    pub reason: String,
}

/// Checks the chain of `store` from its first record to its last.
pub async fn verify(store: &AuditStore) -> Result<VerifyReport, AuditError> {
    let mut report = VerifyReport { chain: store.chain().to_string(), records: 0, head: None, first_broken: None };
    let mut prev_seq = 0_i64;
    let mut prev_hash = GENESIS.to_string();
    loop {
        let page = store.page(prev_seq, PAGE).await?;
        let Some(last) = page.last() else { break };
        let mut ledger = store.ledger_between(prev_seq, last.seq).await?.into_iter().peekable();
        for raw in page {
            // Ledger entries of records this page skips (deleted records) belong to nobody.
            if let Some((orphan, _)) = ledger.next_if(|(seq, _)| *seq < raw.seq) {
                report.first_broken = Some(Broken {
                    seq: orphan,
                    request_id: "?".into(),
                    reason: format!("ledger entries point at record {orphan}, which is missing"),
                });
                return Ok(report);
            }
            let mut mine: Vec<Result<StoredLedger, String>> = Vec::new();
            while let Some((_, l)) = ledger.next_if(|(seq, _)| *seq == raw.seq) {
                mine.push(l);
            }
            let broken = |reason: String| Broken { seq: raw.seq, request_id: raw.request_id.clone(), reason };
            let expected = prev_seq + 1;
            let problem = match &raw.record {
                Err(e) => Some(e.clone()),
                // Pages only hold records after `prev_seq`, so a mismatch is a gap.
                Ok(_) if raw.seq != expected => Some(format!("expected record {expected} after record {prev_seq}: records are missing")),
                Ok(r) if r.format != FORMAT => Some(format!("unknown encoding format {}", r.format)),
                Ok(r) if r.prev_hash != prev_hash => {
                    Some(format!("its prev_hash does not match the hash of record {prev_seq}: a record before it was removed, inserted or altered"))
                }
                Ok(r) if record_hash(&r.chain, r.seq, &r.prev_hash, &r.fields) != r.hash => {
                    Some("its contents do not match its hash: the record was altered".to_string())
                }
                Ok(r) => ledger_problem(r.fields.ledger_sha256.as_deref(), mine),
            };
            if let Some(reason) = problem {
                report.first_broken = Some(broken(reason));
                return Ok(report);
            }
            if let Ok(r) = raw.record {
                prev_seq = r.seq;
                prev_hash = r.hash;
                report.records += 1;
                report.head = Some(Head { seq: prev_seq, hash: prev_hash.clone() });
            }
        }
        if let Some((orphan, _)) = ledger.next() {
            report.first_broken = Some(Broken {
                seq: orphan,
                request_id: "?".into(),
                reason: format!("ledger entries point at record {orphan}, which is missing"),
            });
            return Ok(report);
        }
    }
    Ok(report)
}

/// Whether a record's ledger digest matches the ledger entries stored for it.
fn ledger_problem(digest: Option<&str>, entries: Vec<Result<StoredLedger, String>>) -> Option<String> {
    let entries: Vec<StoredLedger> = match entries.into_iter().collect() {
        Ok(v) => v,
        Err(e) => return Some(e),
    };
    match digest {
        None if entries.is_empty() => None,
        None => Some(format!("{} ledger entries point at it, but it committed none", entries.len())),
        Some(d) if ledger_digest(&entries) == d => None,
        Some(_) => Some("its ledger entries do not match its ledger digest: an entry was altered, added or removed".to_string()),
    }
}
