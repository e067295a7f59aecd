//! The holder's access log: each read of holder data scopes is reported to the catalog, which
//! shows it to the holder (`/v1/holder/accesses`). Reports are batched off the hot path and
//! retried until the catalog takes them; none is ever dropped: when the queue is full, the
//! request that would read holder data is refused instead (`AUDIT_BACKPRESSURE`).

use std::sync::Arc;
use std::time::Duration;

use onecard_catalog::store::AccessRecord;
use tokio::sync::{mpsc, oneshot};

use super::CatalogSource;

/// Accesses waiting to be reported, at most.
const QUEUE: usize = 65_536;
/// Largest batch sent at once: more than [`LINGER`] gathers at thousands of reads a second.
const BATCH: usize = 4096;
/// How long the reporter gathers more accesses after the first of a batch. Each report is one
/// transaction (and, on SQLite, one `fsync`) in the catalog: without lingering, a steady
/// trickle of requests writes one transaction per access. In `onecard serve` each commit also
/// empties the page cache of the audit writer's connection to the same file (SQLite drops a
/// connection's cache when another changed the file), so fewer, larger reports cost less:
/// under `onecard-load`, 200 ms instead of 50 took SQLite's CPU per admission from 55–64 µs to
/// 41–48 (docs/PERFORMANCE.md, session 12). A holder sees the access this much later, which
/// nobody notices.
const LINGER: Duration = Duration::from_millis(200);

/// The access log's queue is full: the access cannot be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessLogFull;

impl std::fmt::Display for AccessLogFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the holder-data access log is full ({QUEUE} accesses waiting for the catalog); holder data is not read until it drains")
    }
}

/// Queues accesses for the catalog.
#[derive(Debug, Clone)]
pub struct AccessReporter {
    tx: mpsc::Sender<Job>,
}

enum Job {
    Access(AccessRecord),
    /// Someone waits until everything queued before is reported: report now.
    Flush(oneshot::Sender<()>),
}

impl AccessReporter {
    /// Starts the reporting task for `gateway_id`.
    pub fn spawn(source: Arc<dyn CatalogSource>, gateway_id: String) -> Self {
        Self::spawn_with(source, gateway_id, QUEUE)
    }

    fn spawn_with(source: Arc<dyn CatalogSource>, gateway_id: String, capacity: usize) -> Self {
        let (tx, rx) = mpsc::channel::<Job>(capacity);
        tokio::spawn(report(source, gateway_id, rx));
        AccessReporter { tx }
    }

    /// Queues one access, or says the queue is full: never waits, never drops.
    pub fn record(&self, record: AccessRecord) -> Result<(), AccessLogFull> {
        self.tx.try_send(Job::Access(record)).map_err(|_| {
            metrics::counter!("onecard_access_log_full_total").increment(1);
            AccessLogFull
        })
    }

    /// Resolves once every access queued before the call is in the catalog (a clean shutdown
    /// waits on it). While the catalog cannot be reached, that is when it can again.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Job::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// Reports queued accesses in batches until every reporter is dropped; a failed report is
/// retried, never dropped.
async fn report(source: Arc<dyn CatalogSource>, gateway_id: String, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(BATCH);
    let mut batch = Vec::with_capacity(BATCH);
    let mut flushes = Vec::new();
    while rx.recv_many(&mut jobs, BATCH).await > 0 {
        // Sleep rather than wait on the queue, so that the accesses arriving meanwhile do not
        // wake this task one by one; then take what came.
        if jobs.len() < BATCH && !jobs.iter().any(|j| matches!(j, Job::Flush(_))) {
            tokio::time::sleep(LINGER).await;
            while jobs.len() < BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        for job in jobs.drain(..) {
            match job {
                Job::Access(record) => batch.push(record),
                Job::Flush(done) => flushes.push(done),
            }
        }
        while !batch.is_empty()
            && let Err(e) = source.report_accesses(&gateway_id, &batch).await
        {
            tracing::warn!(error = %e, records = batch.len(), "cannot report holder-data accesses; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        batch.clear();
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::LocalCatalog;

    fn access(n: usize) -> AccessRecord {
        AccessRecord {
            at: chrono::Utc::now(),
            card_ref: format!("card-{n}"),
            application: "parks".into(),
            action: "enter".into(),
            channel: "3300000001".into(),
            consent_id: Some("c".into()),
            scopes: ["holder.age".to_string()].into(),
            gateway: String::new(),
        }
    }

    #[tokio::test]
    async fn a_full_queue_refuses_and_every_queued_access_arrives() {
        let dir = tempfile::tempdir().unwrap();
        let store = onecard_catalog::Store::open(&dir.path().join("c.db").display().to_string()).await.unwrap();
        let source = Arc::new(LocalCatalog::new(store.clone(), chrono::Duration::minutes(5)));
        // A current-thread runtime: the reporter cannot run until the test awaits, so the queue fills.
        let reporter = AccessReporter::spawn_with(source, "gw-1".into(), 3);
        for n in 0..3 {
            reporter.record(access(n)).unwrap();
        }
        assert_eq!(reporter.record(access(3)), Err(AccessLogFull));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut seen = 0;
        while std::time::Instant::now() < deadline {
            seen = 0;
            for n in 0..4 {
                seen += store.accesses_of(&format!("card-{n}")).await.unwrap().len();
            }
            if seen == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(seen, 3, "the three queued accesses arrive, the refused one is not invented");
        assert!(store.accesses_of("card-3").await.unwrap().is_empty());
    }

    /// A flush returns only when what was queued before it is in the catalog: checked at once,
    /// with no waiting, while the reporter would otherwise still be lingering.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flush_returns_once_the_queued_accesses_are_in_the_catalog() {
        let dir = tempfile::tempdir().unwrap();
        let store = onecard_catalog::Store::open(&dir.path().join("c.db").display().to_string()).await.unwrap();
        let reporter = AccessReporter::spawn(Arc::new(LocalCatalog::new(store.clone(), chrono::Duration::minutes(5))), "gw-1".into());
        for n in 0..3 {
            reporter.record(access(n)).unwrap();
        }
        reporter.flush().await;
        for n in 0..3 {
            assert_eq!(store.accesses_of(&format!("card-{n}")).await.unwrap().len(), 1, "card-{n}");
        }
        reporter.flush().await;
        assert_eq!(store.accesses_of("card-0").await.unwrap().len(), 1, "a flush with nothing queued reports nothing");
    }
}
