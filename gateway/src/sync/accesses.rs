//! The holder's access log: each read of holder data scopes is reported to the catalog, which
//! shows it to the holder (`/v1/holder/accesses`). Reports are batched off the hot path and
//! retried until the catalog takes them.

use std::sync::Arc;
use std::time::Duration;

use onecard_catalog::store::AccessRecord;
use tokio::sync::mpsc;

use super::CatalogSource;

/// Accesses waiting to be reported, at most.
const QUEUE: usize = 65_536;
/// Largest batch sent at once.
const BATCH: usize = 500;

/// Queues accesses for the catalog.
#[derive(Debug, Clone)]
pub struct AccessReporter {
    tx: mpsc::Sender<AccessRecord>,
}

impl AccessReporter {
    /// Starts the reporting task for `gateway_id`.
    pub fn spawn(source: Arc<dyn CatalogSource>, gateway_id: String) -> Self {
        let (tx, mut rx) = mpsc::channel::<AccessRecord>(QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                while let Err(e) = source.report_accesses(&gateway_id, &batch).await {
                    tracing::warn!(error = %e, records = batch.len(), "cannot report holder-data accesses; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                batch.clear();
            }
        });
        AccessReporter { tx }
    }

    /// Queues one access. A full queue is logged and counted, never waited on.
    pub fn record(&self, record: AccessRecord) {
        if self.tx.try_send(record).is_err() {
            metrics::counter!("onecard_access_reports_dropped_total").increment(1);
            tracing::error!("holder-data access queue full; an access was not reported");
        }
    }
}
