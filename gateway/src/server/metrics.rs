//! `/metrics` in the Prometheus text format, through the `metrics` facade and its Prometheus
//! exporter: requests by app, action and outcome, latency and plugin-time histograms, limiter
//! refusals, and the catalog snapshot's version and age.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Histogram buckets, seconds: from 100 µs (a cached refusal) to 5 s (a slow backend).
const BUCKETS: [f64; 14] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once) and returns its handle.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&BUCKETS)
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
        }
        handle
    })
}

/// How often histogram samples are folded into their buckets. The exporter keeps each sample
/// until this upkeep (or a scrape) drains it: without it, a gateway nobody scrapes would keep
/// two samples per request forever.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Folds recorded histogram samples into their buckets every [`UPKEEP_EVERY`], until aborted.
pub fn spawn_upkeep() -> tokio::task::JoinHandle<()> {
    let handle = handle();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        loop {
            every.tick().await;
            handle.run_upkeep();
        }
    })
}

/// Records one decision. `app`/`action` must be catalog names (not caller input) to keep the
/// label set bounded; `outcome` is `allowed` or the error code.
pub fn record_decision(app: &str, action: &str, code: Option<&str>, latency: Duration, plugin_time: Option<Duration>) {
    handle();
    let outcome = code.unwrap_or("allowed").to_string();
    if code == Some(crate::error::codes::RATE_LIMITED) {
        metrics::counter!("onecard_rate_limited_total", "app" => app.to_string()).increment(1);
    }
    metrics::counter!("onecard_requests_total", "app" => app.to_string(), "action" => action.to_string(), "outcome" => outcome).increment(1);
    metrics::histogram!("onecard_request_duration_seconds", "app" => app.to_string(), "action" => action.to_string())
        .record(latency.as_secs_f64());
    if let Some(t) = plugin_time {
        metrics::histogram!("onecard_plugin_duration_seconds", "app" => app.to_string()).record(t.as_secs_f64());
    }
}

/// Sets the catalog gauges and renders the text format.
pub fn render(version: Option<i64>, snapshot_age: Option<Duration>) -> String {
    let h = handle();
    if let Some(v) = version {
        // Versions are small integers: exact in an f64.
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!("onecard_catalog_version").set(v as f64);
    }
    if let Some(age) = snapshot_age {
        metrics::gauge!("onecard_catalog_sync_age_seconds").set(age.as_secs_f64());
    }
    h.render()
}
