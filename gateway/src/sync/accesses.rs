//! The holder's access log: each read of holder data scopes is reported to the catalog, which
//! shows it to the holder (`/v1/holder/accesses`). Reports are batched off the hot path and
//! retried until the catalog takes them; none is ever dropped: when the queue is full, the
//! request that would read holder data is refused instead (`AUDIT_BACKPRESSURE`).

use std::sync::Arc;
use std::time::Duration;

use onecard_catalog::store::AccessRecord;
use tokio::sync::mpsc;

use super::CatalogSource;

/// Accesses waiting to be reported, at most.
const QUEUE: usize = 65_536;
/// Largest batch sent at once.
const BATCH: usize = 500;
/// How long the reporter gathers more accesses after the first of a batch. Each report is one
/// transaction (and, on SQLite, one `fsync`) in the catalog: without lingering, a steady
/// trickle of requests writes one transaction per access. A holder sees the access this much
/// later, which nobody notices.
const LINGER: Duration = Duration::from_millis(50);

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
    tx: mpsc::Sender<AccessRecord>,
}

impl AccessReporter {
    /// Starts the reporting task for `gateway_id`.
    pub fn spawn(source: Arc<dyn CatalogSource>, gateway_id: String) -> Self {
        Self::spawn_with(source, gateway_id, QUEUE)
    }

    fn spawn_with(source: Arc<dyn CatalogSource>, gateway_id: String, capacity: usize) -> Self {
        let (tx, mut rx) = mpsc::channel::<AccessRecord>(capacity);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                // Sleep rather than wait on the queue, so that the accesses arriving meanwhile
                // do not wake this task one by one; then take what came.
                tokio::time::sleep(LINGER).await;
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(record) => batch.push(record),
                        Err(_) => break,
                    }
                }
                while let Err(e) = source.report_accesses(&gateway_id, &batch).await {
                    tracing::warn!(error = %e, records = batch.len(), "cannot report holder-data accesses; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                batch.clear();
            }
        });
        AccessReporter { tx }
    }

    /// Queues one access, or says the queue is full: never waits, never drops.
    pub fn record(&self, record: AccessRecord) -> Result<(), AccessLogFull> {
        self.tx.try_send(record).map_err(|_| {
            metrics::counter!("onecard_access_log_full_total").increment(1);
            AccessLogFull
        })
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
}
