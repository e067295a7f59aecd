//! Runtime limits and tuning, from the gateway's TOML configuration (`[runtime]`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Limits every plugin instance runs under, and the engine's sizing.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Plugin instances alive at once across all plugins: the gateway's concurrency limit. The
    /// pooling allocator reserves this many slots up front; a request beyond it is refused as
    /// busy rather than queued inside the runtime.
    pub max_instances: u32,
    /// Linear memory one instance may grow to, in MiB.
    pub memory_cap_mib: u32,
    /// Default wall-clock deadline of one `handle` call, in ms (an action may set its own).
    pub deadline_ms: u64,
    /// How often the engine epoch advances, in ms: the granularity of deadlines and of yielding
    /// the thread to other requests while a plugin computes. Default 5: a plugin is stopped
    /// within 5 ms past its deadline (100 ms by default), and one that computes for longer than
    /// a tick lets the other requests on its thread run at least every 5 ms. Each tick wakes a
    /// thread, which on a busy gateway preempts one serving requests: at 1 ms the ticks cost
    /// about 9 µs of server CPU per admission under load (docs/PERFORMANCE.md, session 17).
    pub epoch_tick_ms: u64,
    /// Host calls one instance may make before it is ended as a fault (a flood guard).
    pub max_host_calls: u32,
    /// Log bytes one instance may write before further lines are dropped.
    pub max_log_bytes: usize,
    /// Wasm stack one call may use, in KiB: deeper recursion traps.
    pub max_wasm_stack_kib: usize,
    /// Optional fuel per call (instruction budget). Off by default: deadlines bound time, and
    /// fuel metering costs about 10-20% of plugin speed.
    pub fuel: Option<u64>,
    /// Where compiled plugins are cached, keyed by artifact hash and engine compatibility hash.
    /// `None` compiles at every start.
    pub cache_dir: Option<PathBuf>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_instances: 256,
            memory_cap_mib: 64,
            deadline_ms: 100,
            epoch_tick_ms: 5,
            max_host_calls: 1_000,
            max_log_bytes: 64 * 1024,
            max_wasm_stack_kib: 512,
            fuel: None,
            cache_dir: None,
        }
    }
}

impl RuntimeConfig {
    pub fn memory_cap_bytes(&self) -> usize {
        self.memory_cap_mib as usize * 1024 * 1024
    }
}
