//! Running onecard: `onecard serve` (catalog and gateway in one process on one database, the
//! default) and `onecard gateway --catalog URL` (a gateway alone against a catalog server, the
//! scaled form). Both read the same TOML configuration ([`ServeConfig`]); the listen address and
//! the database are overridable by `ONECARD_LISTEN` and `ONECARD_DATABASE_URL`.

pub mod health;
pub mod metrics;
/// Answers sent at once on every accepted connection (shared with the catalog API).
pub use onecard_catalog::api::nodelay;
pub mod openapi;
pub mod router;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use onecard_audit::{AuditConfig, AuditStore, AuditWriter};
use onecard_catalog::Store;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::{MemoryNonceStore, NonceStore, RedisNonceConfig, RedisNonceStore};
use crate::capabilities::kv::{JournaledKv, KvBackend, RedisKv, RedisKvConfig, SqlKv, sqlite_file_beside};
use crate::capabilities::outbound::ReqwestHttp;
use crate::enforced::AppBuilder;
use crate::holders::{FileHolders, HolderDirectory};
use crate::limits::{Limiters, LimitsConfig};
use crate::pipeline::{Gateway, PipelineConfig};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::sync::{AccessReporter, CatalogSource, CatalogState, Follower, LocalCatalog, RemoteCatalog, SyncConfig};

/// The configuration file (`onecard serve --config FILE`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Listen address. Env: `ONECARD_LISTEN`. Default `127.0.0.1:7300`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The database: a SQLite file (catalog and audit in one file, `onecard serve`) or a
    /// `postgres://` URL. Relative paths are relative to the configuration file. Env:
    /// `ONECARD_DATABASE_URL`. Default `.onecard/onecard.db`.
    #[serde(default = "default_database")]
    pub database: String,
    /// Holder data (the test double of the province's holder-data service): a JSON file.
    #[serde(default)]
    pub holders: Option<PathBuf>,
    /// Request path.
    #[serde(default)]
    pub gateway: PipelineConfig,
    /// Plugin runtime.
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// Catalog sync.
    #[serde(default)]
    pub sync: SyncConfig,
    /// Rate limiters.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Audit writer.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Replay caches.
    #[serde(default)]
    pub nonces: NonceSettings,
    /// Plugins' key-value state: in the database (survives restarts): on SQLite in a file of
    /// its own beside `database` (`onecard.db` → `onecard-kv.db`; a log of changes, table
    /// `plugin_kv_log`, read at start), on PostgreSQL in `database` itself (table `plugin_kv`),
    /// shared by the gateways that use it. `[kv] url` names a
    /// Redis shared by the city's gateways instead.
    #[serde(default)]
    pub kv: Option<RedisKvConfig>,
    /// Catalog settings.
    #[serde(default)]
    pub catalog: CatalogSettings,
}

fn default_listen() -> String {
    "127.0.0.1:7300".into()
}

fn default_database() -> String {
    ".onecard/onecard.db".into()
}

/// The replay caches of request nonces and card credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NonceSettings {
    /// Entries an in-memory store holds before it refuses (never evicts). Each request leaves
    /// its nonce for the nonce lifetime (twice the allowed clock skew: 600 s by default) and its
    /// card credential's until the credential expires (its validity plus the skew): about
    /// requests per second × 1 000 entries. The default, 4 000 000, serves at least 4 000
    /// requests a second sustained and holds about 200–430 MiB when full.
    pub capacity: usize,
    /// Redis URL: share the caches between gateways (`SET NX PX`).
    pub redis_url: Option<String>,
}

impl Default for NonceSettings {
    fn default() -> Self {
        NonceSettings { capacity: 4_000_000, redis_url: None }
    }
}

/// Catalog settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogSettings {
    /// Lifetime of a snapshot served by the in-process catalog, seconds. Default 3600.
    pub snapshot_ttl_secs: u64,
    /// `onecard gateway`: the catalog's snapshot-signing public key (base64 or hex), pinned.
    pub public_key: Option<String>,
    /// `onecard gateway`: catalog URL (or `--catalog`).
    pub url: Option<String>,
    /// `onecard gateway`: a `city_operator` token (or `ONECARD_CATALOG_TOKEN`).
    pub token: Option<String>,
    /// Deadline of one outbound backend request, ms. Default 2000.
    pub backend_timeout_ms: u64,
}

impl Default for CatalogSettings {
    fn default() -> Self {
        CatalogSettings { snapshot_ttl_secs: 3600, public_key: None, url: None, token: None, backend_timeout_ms: 2000 }
    }
}

impl ServeConfig {
    /// Reads `path`, resolving relative paths against its folder, then applies the env overrides.
    pub fn read(path: &Path) -> anyhow::Result<ServeConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut config: ServeConfig = toml::from_str(&text).with_context(|| format!("{} is not a valid onecard configuration", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve(base);
        config.apply_env(|k| std::env::var(k).ok());
        Ok(config)
    }

    fn resolve(&mut self, base: &Path) {
        if !self.database.contains("://") && Path::new(&self.database).is_relative() {
            self.database = base.join(&self.database).display().to_string();
        }
        if let Some(h) = &self.holders
            && h.is_relative()
        {
            self.holders = Some(base.join(h));
        }
    }

    /// `ONECARD_LISTEN`, `ONECARD_DATABASE_URL` and `ONECARD_CATALOG_TOKEN` override the file.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) {
        if let Some(v) = var("ONECARD_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = var("ONECARD_DATABASE_URL") {
            self.database = v;
        }
        if let Some(v) = var("ONECARD_CATALOG_TOKEN") {
            self.catalog.token = Some(v);
        }
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        toml::from_str("").unwrap_or_else(|_| unreachable!("every field has a default"))
    }
}

/// A running onecard.
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The data plane.
    pub gateway: Gateway,
    /// The catalog store (single-process mode).
    pub catalog: Option<Store>,
    /// Plugins' key-value state, flushed on shutdown.
    kv: Arc<dyn KvBackend>,
    /// The HTTP server, and what tells it to stop accepting connections.
    server: Option<(JoinHandle<()>, oneshot::Sender<()>)>,
    /// Background work (catalog sync, pruning, metrics upkeep), stopped with the server.
    tasks: Vec<JoinHandle<()>>,
}

/// How long a shutdown lets requests in flight finish before it closes their connections.
/// A plugin call is bounded by its deadline (100 ms by default) and a backend call by
/// `[catalog] backend_timeout_ms` (2 s by default): ten seconds covers both with room, and is
/// what process managers commonly allow between SIGTERM and SIGKILL.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

impl Running {
    /// Resolves if the server stops serving by itself (its listener failed); never after
    /// [`Running::shutdown`].
    pub async fn serving(&mut self) {
        match &mut self.server {
            Some((server, _)) => {
                let _ = server.await;
                self.server = None;
            }
            None => std::future::pending().await,
        }
    }

    /// Shuts down cleanly: stops accepting connections, lets the requests in flight be
    /// answered (for up to [`SHUTDOWN_GRACE`]), then waits until everything they left behind is
    /// durable: their audit records, the holder-data accesses they reported and the plugin
    /// state they changed. Background tasks stop. Afterwards this `Running` serves nothing;
    /// drop it.
    ///
    /// Dropping a `Running` without this stops everything at once, as a crash would: the
    /// audit writer's queue and the plugin-state journal's last milliseconds may be lost.
    pub async fn shutdown(&mut self) -> anyhow::Result<()> {
        if let Some((mut server, stop)) = self.server.take() {
            let _ = stop.send(());
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await.is_err() {
                tracing::warn!(grace = ?SHUTDOWN_GRACE, "requests still in flight after the grace period; closing their connections");
                server.abort();
            }
        }
        for t in self.tasks.drain(..) {
            t.abort();
        }
        self.gateway.accesses.flush().await;
        self.gateway.audit.flush().await.context("cannot flush the audit trail")?;
        self.kv.flush().await;
        Ok(())
    }

    /// What `onecard serve`, `onecard gateway` and the example city do until they are told to
    /// stop: serve until Ctrl-C or SIGTERM ([`stop_signal`]), then [`Running::shutdown`]. A second
    /// signal during the shutdown stops at once. Fails when the server stopped by itself, the
    /// shutdown could not write everything out, or it was cut short.
    pub async fn run_until_stopped(&mut self) -> anyhow::Result<()> {
        tokio::select! {
            () = self.serving() => anyhow::bail!("the server stopped"),
            () = stop_signal() => {}
        }
        println!("stopping: answering the requests in flight, then writing out the audit trail and plugin state");
        tokio::select! {
            result = self.shutdown() => result,
            () = stop_signal() => anyhow::bail!("stopped at once: what was still queued may not be written"),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some((server, _)) = &self.server {
            server.abort();
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM: what operators and process managers send
/// to stop a service.
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops onecard cleanly");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// How often expired plugin state is deleted from the database.
const KV_PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Deletes expired plugin state every `period` with `prune` (which says how many entries went),
/// so the store holds only what is live.
async fn prune_kv<F, Fut, E>(period: Duration, prune: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<u64, E>>,
    E: std::fmt::Display,
{
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match prune().await {
            Ok(n) if n > 0 => tracing::debug!(deleted = n, "expired plugin state pruned"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot prune expired plugin state"),
        }
    }
}

async fn nonce_store(settings: &NonceSettings) -> anyhow::Result<Arc<dyn NonceStore>> {
    Ok(match &settings.redis_url {
        Some(url) => Arc::new(RedisNonceStore::connect(&RedisNonceConfig::new(url.clone())).await.context("cannot reach Redis for the nonce store")?),
        None => Arc::new(MemoryNonceStore::new(settings.capacity)),
    })
}

/// Builds the data plane over `source`, loads the first snapshot (or records why not: the
/// gateway then refuses traffic until the catalog answers) and starts following it.
async fn data_plane(
    config: &ServeConfig,
    source: Arc<dyn CatalogSource>,
    key: ed25519_dalek::VerifyingKey,
    audit: AuditStore,
) -> anyhow::Result<Served> {
    let runtime = Arc::new(Runtime::new(config.runtime.clone()).context("cannot start the plugin runtime")?);
    let mut tasks = Vec::new();
    let kv: Arc<dyn KvBackend> = match &config.kv {
        Some(redis) => Arc::new(RedisKv::connect(redis).await.map_err(|e| anyhow::anyhow!("cannot reach Redis for plugin state: {e}"))?),
        None if onecard_catalog::store::database_url(&config.database).is_ok_and(|(_, b)| b == onecard_catalog::store::Backend::Sqlite) => {
            let file = sqlite_file_beside(&config.database);
            let kv = JournaledKv::open(&file).await.map_err(|e| anyhow::anyhow!("cannot open the plugin-state file {file}: {e}"))?;
            // One memory shard at a time, so that a whole pass takes KV_PRUNE_EVERY; the file
            // loses the entries through the journal. Before, a request worker walked the whole
            // store at once every minute (0.88 ms at 200 000 entries) and the file's `DELETE …
            // WHERE expires_at_ms <= now` scanned its whole table on the writer's connection
            // (10.6 ms; `cargo bench -p onecard-gateway --bench plugin_state`). A shard is a
            // thousandth of the store, about a microsecond at that size: run on the worker, not
            // handed to the blocking pool (two thread wake-ups per step, 17 steps a second).
            let pruned = kv.clone();
            tasks.push(tokio::spawn(prune_kv(KV_PRUNE_EVERY / crate::sharded::SHARDS as u32, move || {
                let removed = pruned.prune_expired_step() as u64;
                async move { Ok::<u64, std::convert::Infallible>(removed) }
            })));
            Arc::new(kv)
        }
        None => {
            let kv = SqlKv::connect(&config.database).await.map_err(|e| anyhow::anyhow!("cannot open the database for plugin state: {e}"))?;
            let pruned = kv.clone();
            tasks.push(tokio::spawn(prune_kv(KV_PRUNE_EVERY, move || {
                let kv = pruned.clone();
                async move { kv.prune_expired().await }
            })));
            Arc::new(kv)
        }
    };
    let builder = Arc::new(AppBuilder::new(
        Arc::clone(&runtime),
        Arc::clone(&source),
        Arc::clone(&kv),
        Arc::new(ReqwestHttp::default()),
        config.catalog.backend_timeout_ms,
    ));
    let state = Arc::new(CatalogState::new(Duration::from_secs(config.sync.staleness_secs)));
    let limiters = Arc::new(Limiters::new(config.limits.clone()));
    let follower = Follower {
        source: Arc::clone(&source),
        key,
        builder,
        state: Arc::clone(&state),
        gateway_id: config.gateway.gateway_id.clone(),
        config: config.sync.clone(),
    };
    if let Err(e) = follower.load_snapshot().await {
        tracing::error!(error = %e, "no catalog snapshot yet; refusing traffic until one loads");
        state.mark_error(e);
    }
    let holders: Arc<dyn HolderDirectory> = match &config.holders {
        Some(path) => Arc::new(FileHolders::read(path).map_err(anyhow::Error::msg)?),
        None => Arc::new(FileHolders::default()),
    };
    let audit = AuditWriter::spawn(audit, config.audit.clone()).context("cannot start the audit writer")?;
    let gateway = Gateway {
        state: Arc::clone(&state),
        runtime,
        nonces: nonce_store(&config.nonces).await?,
        limiters: Arc::clone(&limiters),
        audit,
        holders,
        accesses: AccessReporter::spawn(source, config.gateway.gateway_id.clone()),
        config: Arc::new(config.gateway.clone()),
    };
    // Rate limiters follow the enforced snapshot: built now from the first one, rebuilt on
    // every swap.
    let mut versions = state.subscribe();
    if let Some(e) = state.load() {
        limiters.update(&e.snapshot);
    }
    let limiter_updates = tokio::spawn(async move {
        while versions.changed().await.is_ok() {
            if let Some(e) = state.load() {
                limiters.update(&e.snapshot);
            }
        }
    });
    tasks.extend([follower.spawn_reporter(), tokio::spawn(follower.run()), gateway.limiters.spawn_pruner(), limiter_updates, self::metrics::spawn_upkeep()]);
    Ok(Served { gateway, kv, tasks, catalog: None })
}

/// What [`listen`] serves: the data plane, what it flushes on shutdown, its background tasks
/// and (single-process mode) the catalog store.
struct Served {
    gateway: Gateway,
    kv: Arc<dyn KvBackend>,
    tasks: Vec<JoinHandle<()>>,
    catalog: Option<Store>,
}

async fn listen(config: &ServeConfig, app: axum::Router, served: Served) -> anyhow::Result<Running> {
    let listener = tokio::net::TcpListener::bind(&config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let stopped = async move {
            let _ = stopped.await;
        };
        if let Err(e) = axum::serve(nodelay::answering_at_once(listener), app).with_graceful_shutdown(stopped).await {
            tracing::error!(error = %e, "server stopped");
        }
    });
    let Served { gateway, kv, tasks, catalog } = served;
    Ok(Running { addr, gateway, catalog, kv, server: Some((server, stop)), tasks })
}

/// `onecard serve`: the catalog (under `/catalog`) and the gateway in one process, on one
/// database.
pub async fn serve(config: &ServeConfig) -> anyhow::Result<Running> {
    if let Some(parent) = Path::new(&config.database).parent()
        && !config.database.contains("://")
    {
        std::fs::create_dir_all(parent).ok();
    }
    let store = Store::open(&config.database).await.context("cannot open the catalog database")?;
    let ttl = chrono::Duration::seconds(i64::try_from(config.catalog.snapshot_ttl_secs).unwrap_or(3600));
    let key = store.signing_key().await?.verifying_key();
    let source: Arc<dyn CatalogSource> = Arc::new(LocalCatalog::new(store.clone(), ttl));
    let audit = AuditStore::connect(&config.database, &config.gateway.gateway_id).await.context("cannot open the audit store")?;
    let mut served = data_plane(config, source, key, audit).await?;
    let api = onecard_catalog::api::ApiConfig { snapshot_ttl: ttl, ..Default::default() };
    let app = router::router(served.gateway.clone()).nest("/catalog", onecard_catalog::api::router(store.clone(), &api));
    served.catalog = Some(store);
    listen(config, app, served).await
}

/// `onecard gateway`: a gateway alone against the catalog server at `catalog_url`.
pub async fn gateway(config: &ServeConfig) -> anyhow::Result<Running> {
    let url = config.catalog.url.as_deref().context("no catalog URL (--catalog or [catalog] url)")?;
    let token = config.catalog.token.as_deref().context("no catalog token ([catalog] token or ONECARD_CATALOG_TOKEN)")?;
    let key_text = match &config.catalog.public_key {
        Some(k) => k.clone(),
        None => {
            tracing::warn!("no catalog public key pinned; trusting the key the catalog publishes");
            onecard_catalog::client::RemoteCatalog::new(url, token).public_key().await?.public_key
        }
    };
    let key = onecard_catalog::snapshot::parse_public_key(&key_text).context("the catalog public key is not a 32-byte Ed25519 key")?;
    let source: Arc<dyn CatalogSource> = Arc::new(RemoteCatalog::new(url, token));
    let audit = AuditStore::connect(&config.database, &config.gateway.gateway_id).await.context("cannot open the audit store")?;
    let served = data_plane(config, source, key, audit).await?;
    let app = router::router(served.gateway.clone());
    listen(config, app, served).await
}
