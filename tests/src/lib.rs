//! Shared helpers of the end-to-end tests: a runtime with a shared compile cache, requests and
//! cards as a gateway would build them.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use onecard_gateway::bindings::onecard::plugin::types::Request;
use onecard_gateway::bindings::{Assurance, CardStatus, CardView};
use onecard_gateway::capabilities::clock::ClockState;
use onecard_gateway::capabilities::{AppEnv, Grants, HostState};
use onecard_gateway::runtime::{Invocation, LoadedPlugin, Runtime, RuntimeConfig, sha256_hex};

pub use onecard_plugin_artifacts as artifacts;

pub mod city;

/// 2026-11-23 10:00 in China: inside every example venue's opening hours.
pub const MONDAY_10AM_MS: i64 = 1_795_399_200_000;

/// A compile cache shared by all test processes of this workspace.
pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/onecard-test-cache")
}

/// A runtime sized for tests (few instance slots), with the shared compile cache.
pub fn runtime() -> Runtime {
    runtime_with(RuntimeConfig { max_instances: 32, cache_dir: Some(cache_dir()), ..RuntimeConfig::default() })
}

pub fn runtime_with(config: RuntimeConfig) -> Runtime {
    Runtime::new(config).expect("build the runtime")
}

/// Load a built plugin, trusting its own hash.
pub async fn load(runtime: &Runtime, wasm: &str, grants: &Grants) -> LoadedPlugin {
    let bytes = std::fs::read(wasm).expect("read plugin artifact");
    runtime.load(&bytes, &sha256_hex(&bytes), grants).await.expect("load plugin")
}

/// A request as the pipeline hands it to a plugin.
pub fn request(app: &str, action: &str, params: &str) -> Request {
    Request {
        app: app.into(),
        action: action.into(),
        request_id: format!("test-{action}"),
        channel: "3300000001".into(),
        venue: None,
        terminal: None,
        params: params.into(),
        config: "{}".into(),
        card: None,
        idempotency_key: format!("idem-{action}-{params}"),
    }
}

/// A normal card with real-card assurance, issued in Hangzhou.
pub fn card(holder_ref: &str, attributes: &[(&str, &str)]) -> CardView {
    CardView {
        holder_ref: holder_ref.into(),
        status: CardStatus::Normal,
        financial_locked: false,
        assurance: Assurance::RealCard,
        issuing_region: "330100".into(),
        attributes: attributes.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
    }
}

/// Call `plugin` once on a fresh instance with `env`'s backends.
pub async fn call(runtime: &Runtime, plugin: &LoadedPlugin, env: &AppEnv, request: &Request, deadline: Duration) -> Invocation {
    let state = HostState::new(env, runtime.instance_limits(), &request.request_id, request.card.clone(), ClockState::fixed(MONDAY_10AM_MS));
    plugin.handle(state, request, deadline).await
}

/// An application environment with in-memory backends.
pub fn env(app: &str) -> AppEnv {
    AppEnv::in_memory(app)
}

pub fn shared<T>(value: T) -> Arc<T> {
    Arc::new(value)
}
