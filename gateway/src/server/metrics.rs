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

/// The metric handles of one filed (application, action), registered when the snapshot is
/// enforced. The `metrics` macros build and hash their label set on every call (three label
/// strings per metric); a request that reached a plugin records through these instead.
#[derive(Debug, Clone)]
pub struct ActionMetrics {
    app: String,
    action: String,
    allowed: metrics::Counter,
    duration: metrics::Histogram,
    plugin_duration: metrics::Histogram,
}

impl ActionMetrics {
    /// Registers the handles of `app`/`action` (catalog names: the label set stays bounded).
    pub fn new(app: &str, action: &str) -> Self {
        handle();
        ActionMetrics {
            app: app.to_owned(),
            action: action.to_owned(),
            allowed: metrics::counter!("onecard_requests_total", "app" => app.to_owned(), "action" => action.to_owned(), "outcome" => "allowed"),
            duration: metrics::histogram!("onecard_request_duration_seconds", "app" => app.to_owned(), "action" => action.to_owned()),
            plugin_duration: metrics::histogram!("onecard_plugin_duration_seconds", "app" => app.to_owned()),
        }
    }
}

/// Records one decision: through `action`'s handles once the request was admitted to a filed
/// action, under app and action `-` before that. `code` is the error code, `None` when allowed.
pub fn record_decision(action: Option<&ActionMetrics>, code: Option<&str>, latency: Duration, plugin_time: Option<Duration>) {
    let Some(m) = action else {
        handle();
        let outcome = code.unwrap_or("allowed").to_owned();
        metrics::counter!("onecard_requests_total", "app" => "-", "action" => "-", "outcome" => outcome).increment(1);
        metrics::histogram!("onecard_request_duration_seconds", "app" => "-", "action" => "-").record(latency.as_secs_f64());
        return;
    };
    match code {
        None => m.allowed.increment(1),
        Some(code) => {
            if code == crate::error::codes::RATE_LIMITED {
                metrics::counter!("onecard_rate_limited_total", "app" => m.app.clone()).increment(1);
            }
            metrics::counter!("onecard_requests_total", "app" => m.app.clone(), "action" => m.action.clone(), "outcome" => code.to_owned()).increment(1);
        }
    }
    m.duration.record(latency.as_secs_f64());
    if let Some(t) = plugin_time {
        m.plugin_duration.record(t.as_secs_f64());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An application name no other test in this binary uses: the recorder is process-wide.
    const APP: &str = "metrics-unit-test";

    #[test]
    fn decisions_are_counted_under_their_action_and_outcome() {
        let enter = ActionMetrics::new(APP, "enter");
        record_decision(Some(&enter), None, Duration::from_micros(800), Some(Duration::from_micros(300)));
        record_decision(Some(&enter), None, Duration::from_micros(900), Some(Duration::from_micros(350)));
        record_decision(Some(&enter), Some(crate::error::codes::RATE_LIMITED), Duration::from_micros(100), None);
        let text = render(None, None);
        let line = |needle: &str| text.lines().find(|l| l.starts_with(needle)).unwrap_or_else(|| panic!("no {needle} in\n{text}")).to_owned();
        assert!(line(&format!("onecard_requests_total{{app=\"{APP}\",action=\"enter\",outcome=\"allowed\"}}")).ends_with(" 2"));
        assert!(line(&format!("onecard_requests_total{{app=\"{APP}\",action=\"enter\",outcome=\"RATE_LIMITED\"}}")).ends_with(" 1"));
        assert!(line(&format!("onecard_rate_limited_total{{app=\"{APP}\"}}")).ends_with(" 1"));
        assert!(line(&format!("onecard_request_duration_seconds_count{{app=\"{APP}\",action=\"enter\"}}")).ends_with(" 3"));
        assert!(line(&format!("onecard_plugin_duration_seconds_count{{app=\"{APP}\"}}")).ends_with(" 2"));
    }
}
