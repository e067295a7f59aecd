//! Catalog sync: the gateway loads the signed snapshot (refusing a bad signature or an expired
//! one), swaps the enforced state atomically, follows the change feed by long poll, and reports
//! the version it enforces. [`CatalogState::freshness`] fails closed: a gateway whose last
//! successful sync is older than its staleness bound refuses traffic with `CATALOG_STALE`.

mod accesses;
mod source;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

pub use accesses::AccessReporter;
pub use source::{CatalogSource, LocalCatalog, RemoteCatalog, SourceError};

use crate::enforced::{AppBuilder, Applied, Enforced};
use onecard_catalog::store::GatewayReport;

/// Sync settings (the `[sync]` table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// A gateway whose last successful contact with the catalog is older than this refuses
    /// traffic (`CATALOG_STALE`), seconds. Default 30.
    pub staleness_secs: u64,
    /// Long-poll wait of one change-feed request, ms (kept well under the staleness bound).
    /// Default 10 000.
    pub wait_ms: u64,
    /// Pause after a failed sync attempt, ms. Default 500.
    pub retry_ms: u64,
    /// Refresh the whole snapshot when this much of its lifetime has passed, percent. Default 50.
    pub refresh_at_percent: u8,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig { staleness_secs: 30, wait_ms: 10_000, retry_ms: 500, refresh_at_percent: 50 }
    }
}

/// The state requests read: the enforced catalog and how fresh it is.
#[derive(Debug)]
pub struct CatalogState {
    current: ArcSwapOption<Enforced>,
    health: Mutex<Health>,
    staleness: Duration,
    version: tokio::sync::watch::Sender<i64>,
}

#[derive(Debug, Default)]
struct Health {
    last_ok: Option<SystemTime>,
    last_error: Option<String>,
}

/// Why the gateway refuses traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Staleness {
    /// Human-readable reason (also in `/health`).
    pub reason: String,
}

impl CatalogState {
    /// An empty state that refuses traffic until the first snapshot is loaded.
    pub fn new(staleness: Duration) -> Self {
        CatalogState {
            current: ArcSwapOption::empty(),
            health: Mutex::new(Health::default()),
            staleness,
            version: tokio::sync::watch::channel(-1).0,
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The enforced state, if any was loaded.
    pub fn load(&self) -> Option<Arc<Enforced>> {
        self.current.load_full()
    }

    /// Swaps in a new state and records a successful sync.
    pub fn store(&self, enforced: Enforced) {
        let version = enforced.version();
        self.current.store(Some(Arc::new(enforced)));
        self.mark_ok();
        self.version.send_replace(version);
    }

    /// Sees the version each time a new state is swapped in (for what derives from the
    /// snapshot, like the rate limiters).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<i64> {
        self.version.subscribe()
    }

    /// Records a successful contact with the catalog.
    pub fn mark_ok(&self) {
        let mut h = self.health();
        h.last_ok = Some(SystemTime::now());
        h.last_error = None;
    }

    /// Records a failed contact.
    pub fn mark_error(&self, error: String) {
        self.health().last_error = Some(error);
    }

    /// Age of the last successful sync.
    pub fn age(&self, now: SystemTime) -> Option<Duration> {
        self.health().last_ok.map(|t| now.duration_since(t).unwrap_or_default())
    }

    /// The last sync error, if the last attempt failed.
    pub fn last_error(&self) -> Option<String> {
        self.health().last_error.clone()
    }

    /// `Ok` with the state when it may serve at `now`; the reason it may not otherwise.
    pub fn fresh(&self, now: SystemTime) -> Result<Arc<Enforced>, Staleness> {
        let Some(state) = self.load() else {
            let why = self.last_error().map_or_else(String::new, |e| format!(": {e}"));
            return Err(Staleness { reason: format!("no catalog snapshot loaded yet{why}") });
        };
        let age = self.age(now).unwrap_or(Duration::MAX);
        if age > self.staleness {
            let why = self.last_error().map_or_else(String::new, |e| format!("; last error: {e}"));
            return Err(Staleness {
                reason: format!(
                    "last catalog sync {}s ago, more than the {}s bound (version {}){why}",
                    age.as_secs(),
                    self.staleness.as_secs(),
                    state.version()
                ),
            });
        }
        if state.snapshot.is_expired(now.into()) {
            return Err(Staleness { reason: format!("catalog snapshot of version {} expired at {}", state.version(), state.snapshot.expires_at) });
        }
        Ok(state)
    }
}

/// Keeps a [`CatalogState`] in step with the catalog.
#[derive(Debug, Clone)]
pub struct Follower {
    /// Where the catalog is.
    pub source: Arc<dyn CatalogSource>,
    /// The key snapshots must be signed with.
    pub key: VerifyingKey,
    /// Builds enforced states.
    pub builder: Arc<AppBuilder>,
    /// What requests read.
    pub state: Arc<CatalogState>,
    /// This gateway's id in reports.
    pub gateway_id: String,
    /// Settings.
    pub config: SyncConfig,
}

impl Follower {
    /// Fetches, verifies and enforces the current snapshot.
    pub async fn load_snapshot(&self) -> Result<i64, String> {
        let signed = self.source.snapshot().await.map_err(|e| format!("cannot fetch the snapshot: {e}"))?;
        let snapshot = signed
            .verify_at(&self.key, chrono::Utc::now())
            .map_err(|e| format!("snapshot refused: {e}"))?;
        let previous = self.state.load();
        let enforced = self.builder.build(snapshot, previous.as_deref()).await;
        let version = enforced.version();
        self.state.store(enforced);
        tracing::info!(version, "catalog snapshot enforced");
        Ok(version)
    }

    /// Starts reporting the enforced version and its content hash to the catalog each time it
    /// changes (the state enforced now first), off the follower's loop: only the latest state
    /// is reported, so a burst of changes is reported once. A report that fails (the
    /// catalog unreachable, or its database busy with a large change) is tried again after
    /// `retry_ms`, with the state enforced by then.
    pub fn spawn_reporter(&self) -> tokio::task::JoinHandle<()> {
        let (source, state, gateway_id) = (Arc::clone(&self.source), Arc::clone(&self.state), self.gateway_id.clone());
        let retry = Duration::from_millis(self.config.retry_ms);
        let mut versions = state.subscribe();
        versions.mark_changed();
        tokio::spawn(async move {
            while versions.changed().await.is_ok() {
                let Some(enforced) = state.load() else { continue };
                let report = GatewayReport { gateway_id: gateway_id.clone(), applied_version: enforced.version(), snapshot_sha256: enforced.content_hash() };
                if let Err(e) = source.report(&report).await {
                    tracing::warn!(error = %e, version = report.applied_version, "cannot report the enforced version; retrying");
                    tokio::time::sleep(retry).await;
                    versions.mark_changed();
                }
            }
        })
    }

    fn needs_refresh(&self, state: &Enforced) -> bool {
        let s = &state.snapshot;
        let life = (s.expires_at - s.generated_at).num_milliseconds().max(0);
        let refresh_at = s.generated_at + chrono::Duration::milliseconds(life * i64::from(self.config.refresh_at_percent) / 100);
        chrono::Utc::now() >= refresh_at
    }

    /// One round: loads a snapshot when needed, else waits for changes and applies them.
    pub async fn step(&self) -> Result<(), String> {
        let Some(state) = self.state.load().filter(|s| !self.needs_refresh(s)) else {
            return self.load_snapshot().await.map(|_| ());
        };
        let page = self
            .source
            .changes(state.version(), Duration::from_millis(self.config.wait_ms))
            .await
            .map_err(|e| format!("cannot follow the change feed: {e}"))?;
        if page.changes.is_empty() {
            self.state.mark_ok();
            return Ok(());
        }
        match state.apply(&page.changes) {
            Applied::State(next) => {
                let version = next.version();
                self.state.store(*next);
                tracing::debug!(version, changes = page.changes.len(), "catalog changes applied");
                Ok(())
            }
            Applied::NeedsSnapshot => self.load_snapshot().await.map(|_| ()),
        }
    }

    /// Follows the catalog until the task is dropped.
    pub async fn run(self) {
        loop {
            if let Err(e) = self.step().await {
                tracing::warn!(error = %e, "catalog sync failed");
                self.state.mark_error(e);
                tokio::time::sleep(Duration::from_millis(self.config.retry_ms)).await;
            }
        }
    }
}
