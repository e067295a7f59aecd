//! Builds the runnable form of each application in a snapshot: its plugin fetched by hash,
//! checked and compiled once (cached by hash and grants), its backends and settlement port,
//! and a compiled JSON Schema validator per action.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use onecard_catalog::model::Capability as CatalogCapability;
use onecard_catalog::snapshot::{Snapshot, SnapshotApplication};
use serde_json::Value;

use super::Enforced;
use crate::capabilities::http::{BackendTarget, HttpClient};
use crate::capabilities::kv::{KvBackend, KvConfig};
use crate::capabilities::outbound::{HttpSettlementPort, NoSettlementPort};
use crate::capabilities::payments::SettlementPort;
use crate::capabilities::{AppEnv, Capability, Grants};
use crate::runtime::{LoadedPlugin, Runtime};
use crate::server::metrics::ActionMetrics;
use crate::sync::CatalogSource;

/// The backend name whose URL is the application's settlement port.
pub const SETTLEMENT_BACKEND: &str = "settlement";

/// An application ready to serve.
#[derive(Debug)]
pub struct EnforcedApp {
    /// The catalog's entry.
    pub spec: SnapshotApplication,
    /// The loaded plugin, or why it could not be loaded.
    pub plugin: Result<Arc<LoadedPlugin>, String>,
    /// Backends its instances reach.
    pub env: AppEnv,
    pub(super) validators: HashMap<String, Arc<jsonschema::Validator>>,
    /// `spec.config` as the JSON text every request hands the plugin, serialized once.
    pub(super) config_json: Arc<str>,
    /// Each filed action's metric handles.
    pub(super) metrics: HashMap<String, Arc<ActionMetrics>>,
}

/// The outcome of validating parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    /// The first offending field (JSON pointer without the leading `/`, or the missing
    /// property's name).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl EnforcedApp {
    /// The application's configuration as JSON text (the plugin's `request.config`).
    pub fn config_json(&self) -> &str {
        &self.config_json
    }

    /// The metric handles of a filed action.
    pub fn metrics(&self, action: &str) -> Option<&Arc<ActionMetrics>> {
        self.metrics.get(action)
    }

    /// Validates `params` against the action's filed schema.
    pub fn validate(&self, action: &str, params: &Value) -> Result<(), Validation> {
        let Some(validator) = self.validators.get(action) else { return Ok(()) };
        // `is_valid` stops at the first failure and builds no error: the common case is cheap.
        if validator.is_valid(params) {
            return Ok(());
        }
        let Some(error) = validator.iter_errors(params).next() else { return Ok(()) };
        let mut field = error.instance_path().as_str().trim_start_matches('/').to_string();
        if let jsonschema::error::ValidationErrorKind::Required { property } = error.kind() {
            let name = property.as_str().map_or_else(|| property.to_string(), str::to_string);
            field = if field.is_empty() { name } else { format!("{field}/{name}") };
        }
        Err(Validation { field, message: error.to_string() })
    }

    /// Whether `action` needs a card credential (as the plugin describes it).
    pub fn needs_card(&self, action: &str) -> bool {
        self.plugin
            .as_ref()
            .ok()
            .and_then(|p| p.info().actions.iter().find(|a| a.name == action).map(|a| a.needs_card))
            .unwrap_or(true)
    }
}

/// Builds [`EnforcedApp`]s, caching compiled plugins by (hash, grants).
#[derive(Debug)]
pub struct AppBuilder {
    runtime: Arc<Runtime>,
    source: Arc<dyn CatalogSource>,
    kv: Arc<dyn KvBackend>,
    http: Arc<dyn HttpClient>,
    backend_timeout_ms: u64,
    plugins: Mutex<HashMap<(String, Vec<Capability>), Arc<LoadedPlugin>>>,
}

fn grants_of(app: &SnapshotApplication) -> Vec<Capability> {
    app.capabilities
        .iter()
        .filter_map(|c| {
            Capability::from_name(match c {
                CatalogCapability::Card => "card",
                CatalogCapability::Http => "http",
                CatalogCapability::Kv => "kv",
                CatalogCapability::Payments => "payments",
            })
        })
        .collect()
}

impl AppBuilder {
    /// A builder fetching artifacts from `source`, running plugins on `runtime`, with shared
    /// `kv` and `http` backends.
    pub fn new(
        runtime: Arc<Runtime>,
        source: Arc<dyn CatalogSource>,
        kv: Arc<dyn KvBackend>,
        http: Arc<dyn HttpClient>,
        backend_timeout_ms: u64,
    ) -> Self {
        AppBuilder { runtime, source, kv, http, backend_timeout_ms, plugins: Mutex::new(HashMap::new()) }
    }

    /// The runtime.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The enforced state of `snapshot`, reusing applications of `previous` whose catalog
    /// entry did not change.
    pub async fn build(&self, snapshot: Snapshot, previous: Option<&Enforced>) -> Enforced {
        let mut apps = HashMap::new();
        for spec in &snapshot.applications {
            let reuse = previous.and_then(|p| p.app(&spec.id)).filter(|a| a.spec == *spec && a.plugin.is_ok());
            let app = match reuse {
                Some(a) => Arc::clone(a),
                None => Arc::new(self.build_app(spec.clone()).await),
            };
            apps.insert(spec.id.clone(), app);
        }
        // Indexing a city's card holders (and digesting them for the content hash) takes a
        // while; it runs on the blocking pool, not on a request worker.
        match tokio::task::spawn_blocking(move || Enforced::new(snapshot, apps)).await {
            Ok(enforced) => enforced,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    async fn build_app(&self, spec: SnapshotApplication) -> EnforcedApp {
        let grants = grants_of(&spec);
        let plugin = self.plugin(&spec.plugin_sha256, grants).await;
        if let Err(e) = &plugin {
            tracing::error!(app = %spec.id, sha256 = %spec.plugin_sha256, error = %e, "plugin unavailable");
        }
        let validators = spec
            .actions
            .iter()
            .filter_map(|(name, action)| match jsonschema::validator_for(&action.spec.params_schema) {
                Ok(v) => Some((name.clone(), Arc::new(v))),
                Err(e) => {
                    tracing::error!(app = %spec.id, action = %name, error = %e, "filed schema does not compile; the action accepts no parameters");
                    jsonschema::validator_for(&serde_json::json!({"type": "object", "maxProperties": 0}))
                        .ok()
                        .map(|v| (name.clone(), Arc::new(v)))
                }
            })
            .collect();
        let backends: BTreeMap<String, BackendTarget> = spec
            .backends
            .iter()
            .map(|(name, url)| (name.clone(), BackendTarget { base_url: url.clone(), timeout_ms: self.backend_timeout_ms }))
            .collect();
        let settlement: Arc<dyn SettlementPort> = match backends.get(SETTLEMENT_BACKEND) {
            Some(target) => Arc::new(HttpSettlementPort::new(target.clone())),
            None => Arc::new(NoSettlementPort),
        };
        let env = AppEnv {
            app: spec.id.clone(),
            kv: Arc::clone(&self.kv),
            kv_config: KvConfig::default(),
            http_backends: Arc::new(backends),
            http: Arc::clone(&self.http),
            settlement,
        };
        let config_json = spec.config.to_string().into();
        let metrics = spec.actions.keys().map(|action| (action.clone(), Arc::new(ActionMetrics::new(&spec.id, action)))).collect();
        EnforcedApp { spec, plugin, env, validators, config_json, metrics }
    }

    async fn plugin(&self, sha256: &str, grants: Vec<Capability>) -> Result<Arc<LoadedPlugin>, String> {
        let key = (sha256.to_string(), grants);
        if let Some(p) = self.plugins.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(Arc::clone(p));
        }
        let bytes = self.source.artifact(sha256).await.map_err(|e| format!("cannot fetch the artifact: {e}"))?;
        let plugin = self
            .runtime
            .load(&bytes, sha256, &Grants::of(key.1.iter().copied()))
            .await
            .map_err(|e| format!("cannot load the plugin: {e}"))?;
        let plugin = Arc::new(plugin);
        self.plugins.lock().unwrap_or_else(|p| p.into_inner()).insert(key, Arc::clone(&plugin));
        Ok(plugin)
    }
}
