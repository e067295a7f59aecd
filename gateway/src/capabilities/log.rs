//! `log`: plugin log lines into the gateway's `tracing` log, tagged with the application and
//! request id, bounded per instance, and kept for the caller (the CLI prints them; the audit
//! trail can keep them with the decision).

use wasmtime::component::Linker;

use super::HostState;
use super::meter::{Metered, MeteredData};
use crate::bindings::onecard::plugin::log::{Host, Level, add_to_linker};

/// Per-instance log state.
#[derive(Debug, Clone, Default)]
pub struct LogState {
    pub app: String,
    pub request_id: String,
    pub lines: Vec<(Level, String)>,
    bytes: usize,
    max_bytes: usize,
    pub dropped: u32,
}

impl LogState {
    pub fn new(app: &str, request_id: &str, max_bytes: usize) -> Self {
        LogState { app: app.into(), request_id: request_id.into(), max_bytes, ..LogState::default() }
    }

    fn record(&mut self, level: Level, message: String) {
        if self.bytes + message.len() > self.max_bytes {
            self.dropped += 1;
            return;
        }
        self.bytes += message.len();
        let (app, request_id) = (&self.app, &self.request_id);
        match level {
            Level::Debug => tracing::debug!(target: "onecard::plugin", app, request_id, "{message}"),
            Level::Info => tracing::info!(target: "onecard::plugin", app, request_id, "{message}"),
            Level::Warn => tracing::warn!(target: "onecard::plugin", app, request_id, "{message}"),
            Level::Error => tracing::error!(target: "onecard::plugin", app, request_id, "{message}"),
        }
        self.lines.push((level, message));
    }

    /// The last panic message the SDK reported before a trap, if any.
    pub fn panic_message(&self) -> Option<&str> {
        self.lines.iter().rev().find_map(|(_, m)| m.strip_prefix("plugin panicked: "))
    }
}

impl Host for Metered<'_, LogState> {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.charge("log")?.record(level, message);
        Ok(())
    }
}

pub(crate) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    add_to_linker::<HostState, MeteredData<LogState>>(linker, |s| Metered { state: &mut s.log, meter: &mut s.meter })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_past_the_byte_limit_are_dropped_and_counted() {
        let mut log = LogState::new("parks", "r1", 10);
        log.record(Level::Info, "12345".into());
        log.record(Level::Info, "67890".into());
        log.record(Level::Info, "x".into());
        assert_eq!(log.lines.len(), 2);
        assert_eq!(log.dropped, 1);
    }

    #[test]
    fn finds_the_panic_message() {
        let mut log = LogState::new("parks", "r1", 1000);
        log.record(Level::Error, "plugin panicked: boom".into());
        assert_eq!(log.panic_message(), Some("boom"));
    }
}
