//! The batching audit writer: a tokio task fed by a bounded queue. The hot path reserves a
//! place in the queue when it admits a request (`AuditHandle::reserve`) and fills it with the
//! decision when it answers (`AuditSlot::record`), so recording never blocks and never fails;
//! when the queue is full, reserving fails with `AUDIT_BACKPRESSURE` and the gateway refuses the
//! request instead of dropping its record. The writer never drops a record either: a failed
//! write is retried with backoff until it succeeds, and meanwhile the queue fills.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::canonical::StoredLedger;
use crate::config::AuditConfig;
use crate::entry::{AuditEntry, AuditReceipt, Head, LedgerEntry, Outcome, RecordFields};
use crate::error::{AuditError, codes};
use crate::store::{AppendError, AuditStore};

/// The first pause after a failed write; it doubles up to `AuditConfig::retry_max_ms`.
const FIRST_RETRY_MS: u64 = 5;

enum Job {
    Record(RecordFields),
    Commit { fields: RecordFields, ledger: Vec<StoredLedger>, reply: oneshot::Sender<Result<AuditReceipt, AuditError>> },
    Flush(oneshot::Sender<()>),
}

impl Job {
    /// Someone waits on this job: write the batch now rather than wait for more records.
    fn urgent(&self) -> bool {
        !matches!(self, Job::Record(_))
    }
}

/// What the writer last did, for `/health` and operators.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStatus {
    /// The head of the chain after the writer's last commit (`None` before its first).
    pub head: Option<Head>,
    /// The error of the last write when it failed and is being retried; `None` when healthy.
    pub failing: Option<String>,
    /// Records this writer has committed.
    pub written: u64,
}

/// Starts audit writers.
#[derive(Debug)]
pub struct AuditWriter;

impl AuditWriter {
    /// Spawns the writer task for `store`'s chain on the current tokio runtime. The task ends
    /// when every handle and slot is dropped, after writing what was queued; call
    /// [`AuditHandle::flush`] before shutting the runtime down so that nothing queued is lost.
    pub fn spawn(store: AuditStore, config: AuditConfig) -> Result<AuditHandle, AuditError> {
        config.validate()?;
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let (status_tx, status_rx) = watch::channel(WriterStatus::default());
        let urgent = Arc::new(Notify::new());
        let task = Task { store, config, status: status_tx, backoff_ms: FIRST_RETRY_MS, head: None };
        tokio::spawn(task.run(rx, Arc::clone(&urgent)));
        Ok(AuditHandle { tx, status: status_rx, urgent })
    }
}

/// The hot path's side of the writer. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditHandle {
    tx: mpsc::Sender<Job>,
    status: watch::Receiver<WriterStatus>,
    /// Wakes the writer out of its linger for a job someone waits on.
    urgent: Arc<Notify>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Job::Record(_) => "Record",
            Job::Commit { .. } => "Commit",
            Job::Flush(_) => "Flush",
        })
    }
}

impl AuditHandle {
    /// Holds one place in the queue from admission until the decision is recorded. Fails with
    /// `AUDIT_BACKPRESSURE` when the queue (reserved places included) is full.
    pub fn reserve(&self) -> Result<AuditSlot, AuditError> {
        match self.tx.clone().try_reserve_owned() {
            Ok(permit) => Ok(AuditSlot { permit: Some(permit), urgent: Arc::clone(&self.urgent) }),
            Err(mpsc::error::TrySendError::Full(_)) => Err(AuditError::Backpressure { capacity: self.tx.max_capacity() }),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(AuditError::Closed),
        }
    }

    /// Resolves when everything queued before the call is durable (tests, shutdown). Waits for
    /// room in the queue when it is full.
    pub async fn flush(&self) -> Result<(), AuditError> {
        let (reply, done) = oneshot::channel();
        self.tx.send(Job::Flush(reply)).await.map_err(|_| AuditError::Closed)?;
        self.urgent.notify_one();
        done.await.map_err(|_| AuditError::Closed)
    }

    /// Places reserved or queued and not yet taken by the writer.
    pub fn queue_depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// The writer's last head and health.
    pub fn status(&self) -> WriterStatus {
        self.status.borrow().clone()
    }
}

/// A reserved place in the audit queue: exactly one decision goes into it.
#[derive(Debug)]
pub struct AuditSlot {
    permit: Option<mpsc::OwnedPermit<Job>>,
    urgent: Arc<Notify>,
}

impl AuditSlot {
    /// Queues the decision. Never blocks, never fails: the place was reserved.
    pub fn record(mut self, entry: AuditEntry) {
        if let Some(permit) = self.permit.take() {
            permit.send(Job::Record(RecordFields::from_entry(entry)));
        }
    }

    /// Commits the ledger entries and the decision's record in one transaction, and resolves
    /// once it is durable. When the entries are malformed (`LEDGER_INVALID`) or one of their
    /// idempotency keys is already used by the application (`LEDGER_CONFLICT`), no ledger entry
    /// is written; the decision is still recorded, as `refused` with that code (status 502 and
    /// blame `plugin` for malformed entries, 409 and blame `caller` for a reused key; the
    /// intended outcome is kept in `detail.intended`), and the error is returned once that
    /// record is durable: answer the request with it.
    pub async fn commit_with_ledger(mut self, entry: AuditEntry, ledger: Vec<LedgerEntry>) -> Result<AuditReceipt, AuditError> {
        let permit = self.permit.take().ok_or(AuditError::Closed)?;
        let mut fields = RecordFields::from_entry(entry);
        let (reply, done) = oneshot::channel();
        if let Some(err) = ledger.iter().find_map(|l| l.validate().err()) {
            refuse(&mut fields, &err);
            permit.send(Job::Commit { fields, ledger: Vec::new(), reply });
            self.urgent.notify_one();
            done.await.map_err(|_| AuditError::Closed)??;
            return Err(err);
        }
        let ledger = ledger.iter().map(StoredLedger::from_entry).collect();
        permit.send(Job::Commit { fields, ledger, reply });
        self.urgent.notify_one();
        done.await.map_err(|_| AuditError::Closed)?
    }
}

impl Drop for AuditSlot {
    fn drop(&mut self) {
        if self.permit.is_some() {
            tracing::error!("an audit slot was dropped without a record: a decision went unaudited");
        }
    }
}

/// Rewrites a decision whose ledger entries could not be committed as a refusal.
fn refuse(fields: &mut RecordFields, err: &AuditError) {
    let (status, blame) = if matches!(err, AuditError::LedgerConflict { .. }) { (409, "caller") } else { (502, "plugin") };
    let intended_detail: serde_json::Value = serde_json::from_str(&fields.detail).unwrap_or(serde_json::Value::Null);
    let detail = json!({
        "ledger_error": err.to_string(),
        "intended": {
            "outcome": fields.outcome,
            "code": fields.code,
            "blame": fields.blame,
            "status": fields.status,
            "detail": intended_detail,
        },
    });
    fields.outcome = Outcome::Refused.as_str().to_string();
    fields.code = Some(err.code().to_string());
    fields.blame = Some(blame.to_string());
    fields.status = status;
    fields.detail = detail.to_string();
}

struct Task {
    store: AuditStore,
    config: AuditConfig,
    status: watch::Sender<WriterStatus>,
    backoff_ms: u64,
    /// The chain's head after this writer's last commit, so that a batch does not read it
    /// again; `None` before the first commit and after a failed write (which may have been
    /// another writer of the chain taking the next sequence number).
    head: Option<Head>,
}

impl Task {
    /// Takes the first job, then — unless someone waits on it — lingers for the flush interval
    /// or until an urgent job is queued, without waking for each record that arrives meanwhile,
    /// and writes what has come (at most `batch_max` jobs) as one batch.
    async fn run(mut self, mut rx: mpsc::Receiver<Job>, urgent: Arc<Notify>) {
        let interval = Duration::from_millis(self.config.flush_interval_ms);
        let mut jobs = Vec::with_capacity(self.config.batch_max);
        while rx.recv_many(&mut jobs, self.config.batch_max).await > 0 {
            if !jobs.iter().any(Job::urgent) {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    () = urgent.notified() => {}
                }
                while jobs.len() < self.config.batch_max {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
            }
            self.process(std::mem::take(&mut jobs)).await;
        }
        tracing::debug!(chain = self.store.chain(), "audit writer stopped: every handle was dropped");
    }

    async fn process(&mut self, jobs: Vec<Job>) {
        let mut pending = Vec::with_capacity(jobs.len());
        for job in jobs {
            match job {
                Job::Record(fields) => pending.push(fields),
                Job::Flush(reply) => {
                    self.write(&mut pending).await;
                    let _ = reply.send(());
                }
                Job::Commit { fields, ledger, reply } => {
                    self.write(&mut pending).await;
                    let result = self.commit(fields, ledger).await;
                    // The caller may have gone away; the commit stands either way.
                    let _ = reply.send(result);
                }
            }
        }
        self.write(&mut pending).await;
    }

    /// Writes `pending` in one transaction, retrying until it commits.
    async fn write(&mut self, pending: &mut Vec<RecordFields>) {
        if pending.is_empty() {
            return;
        }
        loop {
            match self.store.append(self.head.clone(), pending).await {
                Ok(head) => {
                    self.committed(head, pending.len());
                    pending.clear();
                    return;
                }
                Err(e) => self.failed(&e).await,
            }
        }
    }

    async fn commit(&mut self, fields: RecordFields, ledger: Vec<StoredLedger>) -> Result<AuditReceipt, AuditError> {
        loop {
            match self.store.append_with_ledger(self.head.clone(), fields.clone(), &ledger).await {
                Ok(receipt) => {
                    self.committed(Head { seq: receipt.seq, hash: receipt.hash.clone() }, 1);
                    return Ok(receipt);
                }
                Err(AppendError::Conflict { app, idempotency_key }) => {
                    let err = AuditError::LedgerConflict { app, idempotency_key };
                    let mut refused = fields;
                    refuse(&mut refused, &err);
                    self.write(&mut vec![refused]).await;
                    return Err(err);
                }
                Err(AppendError::Database(e)) => self.failed(&e).await,
            }
        }
    }

    fn committed(&mut self, head: Head, count: usize) {
        self.backoff_ms = FIRST_RETRY_MS;
        self.head = Some(head.clone());
        self.status.send_modify(|s| {
            s.head = Some(head);
            s.failing = None;
            s.written += count as u64;
        });
    }

    async fn failed(&mut self, e: &sqlx::Error) {
        tracing::warn!(chain = self.store.chain(), error = %e, retry_in_ms = self.backoff_ms, code = codes::AUDIT_DATABASE, "audit write failed; retrying");
        self.head = None;
        self.status.send_modify(|s| s.failing = Some(e.to_string()));
        tokio::time::sleep(Duration::from_millis(self.backoff_ms)).await;
        self.backoff_ms = (self.backoff_ms * 2).min(self.config.retry_max_ms);
    }
}
