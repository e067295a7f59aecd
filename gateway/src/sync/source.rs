//! Where a gateway gets its catalog: [`LocalCatalog`] reads the catalog store in the same
//! process (`onecard serve`), [`RemoteCatalog`] talks to a catalog server over its sync API
//! (`onecard gateway --catalog URL`). Both hand out the same signed snapshot, change feed and
//! artifacts, so the gateway verifies a local snapshot exactly as it verifies a remote one.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use onecard_catalog::client::RemoteCatalog as CatalogClient;
use onecard_catalog::feed::ChangePage;
use onecard_catalog::snapshot::{SignedSnapshot, Snapshot};
use onecard_catalog::store::{AccessRecord, GatewayReport, Store};

/// A failure to talk to the catalog.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// The sync side of a catalog.
#[async_trait]
pub trait CatalogSource: Send + Sync + fmt::Debug {
    /// The signed snapshot at the current version.
    async fn snapshot(&self) -> Result<SignedSnapshot, SourceError>;
    /// Changes after `after`, waiting up to `wait` when there are none.
    async fn changes(&self, after: i64, wait: Duration) -> Result<ChangePage, SourceError>;
    /// A plugin artifact by SHA-256.
    async fn artifact(&self, sha256: &str) -> Result<Vec<u8>, SourceError>;
    /// Reports the version this gateway enforces.
    async fn report(&self, report: &GatewayReport) -> Result<(), SourceError>;
    /// Reports holder-data accesses (the holder's access log).
    async fn report_accesses(&self, gateway_id: &str, records: &[AccessRecord]) -> Result<(), SourceError>;
}

fn err(e: impl fmt::Display) -> SourceError {
    SourceError(e.to_string())
}

/// The catalog store of this process.
#[derive(Debug, Clone)]
pub struct LocalCatalog {
    store: Store,
    ttl: chrono::Duration,
}

impl LocalCatalog {
    /// Serves snapshots of `store` valid for `ttl`.
    pub fn new(store: Store, ttl: chrono::Duration) -> Self {
        LocalCatalog { store, ttl }
    }
}

/// Actor name of the in-process gateway in the catalog's gateway reports.
const LOCAL_ACTOR: &str = "local-gateway";

#[async_trait]
impl CatalogSource for LocalCatalog {
    async fn snapshot(&self) -> Result<SignedSnapshot, SourceError> {
        let (catalog, version) = self.store.full_catalog().await.map_err(err)?;
        let snap = Snapshot::build(&catalog, version, onecard_catalog::model::now(), self.ttl);
        self.store.record_snapshot_hash(version, &snap.content_hash()).await.map_err(err)?;
        Ok(SignedSnapshot::sign(&snap, &self.store.signing_key().await.map_err(err)?))
    }

    async fn changes(&self, after: i64, wait: Duration) -> Result<ChangePage, SourceError> {
        self.store.wait_changes(after, 1000, wait, Duration::from_millis(200)).await.map_err(err)
    }

    async fn artifact(&self, sha256: &str) -> Result<Vec<u8>, SourceError> {
        self.store.artifact(sha256).await.map_err(err)?.ok_or_else(|| SourceError(format!("no artifact {sha256} in the catalog")))
    }

    async fn report(&self, report: &GatewayReport) -> Result<(), SourceError> {
        self.store.record_report(LOCAL_ACTOR, report).await.map(|_| ()).map_err(err)
    }

    async fn report_accesses(&self, gateway_id: &str, records: &[AccessRecord]) -> Result<(), SourceError> {
        self.store.record_accesses(gateway_id, records).await.map_err(err)
    }
}

/// A catalog server reached over HTTP with a `city_operator` token.
#[derive(Debug, Clone)]
pub struct RemoteCatalog {
    client: CatalogClient,
}

impl RemoteCatalog {
    /// The catalog at `base` with `token`.
    pub fn new(base: &str, token: &str) -> Self {
        RemoteCatalog { client: CatalogClient::new(base, token) }
    }
}

#[async_trait]
impl CatalogSource for RemoteCatalog {
    async fn snapshot(&self) -> Result<SignedSnapshot, SourceError> {
        self.client.snapshot().await.map_err(err)
    }

    async fn changes(&self, after: i64, wait: Duration) -> Result<ChangePage, SourceError> {
        self.client.changes(after, wait, Duration::from_secs(5)).await.map_err(err)
    }

    async fn artifact(&self, sha256: &str) -> Result<Vec<u8>, SourceError> {
        self.client.artifact(sha256).await.map_err(err)
    }

    async fn report(&self, report: &GatewayReport) -> Result<(), SourceError> {
        self.client.report(report).await.map_err(err)
    }

    async fn report_accesses(&self, gateway_id: &str, records: &[AccessRecord]) -> Result<(), SourceError> {
        self.client.report_accesses(gateway_id, records).await.map_err(err)
    }
}
