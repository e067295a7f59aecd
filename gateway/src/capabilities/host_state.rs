//! [`HostState`]: the store data of one plugin instance, composed of every capability's
//! per-instance state; [`Grants`]: which capabilities an application's catalog entry allows.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use wasmtime::component::Linker;

use super::card::CardState;
use super::clock::ClockState;
use super::http::{BackendTarget, HttpClient, HttpState, ScriptedHttp};
use super::kv::{KvBackend, KvConfig, KvState, MemoryKv};
use super::log::LogState;
use super::meter::Meter;
use super::payments::{MemoryLedger, PaymentsState, SettlementPort};
use super::{card, clock, http, kv, log, payments};
use crate::bindings::CardView;
use crate::runtime::InstanceLimiter;

/// A host capability, named as in the WIT package (`onecard:plugin/<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Card,
    Http,
    Kv,
    Payments,
    Log,
    Clock,
}

impl Capability {
    pub const ALL: [Capability; 6] =
        [Capability::Card, Capability::Http, Capability::Kv, Capability::Payments, Capability::Log, Capability::Clock];

    pub fn name(self) -> &'static str {
        match self {
            Capability::Card => "card",
            Capability::Http => "http",
            Capability::Kv => "kv",
            Capability::Payments => "payments",
            Capability::Log => "log",
            Capability::Clock => "clock",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// `log` and `clock` reach nothing outside the instance and are always linked.
    pub fn always_granted(self) -> bool {
        matches!(self, Capability::Log | Capability::Clock)
    }

    fn link(self, linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
        match self {
            Capability::Card => card::link(linker),
            Capability::Http => http::link(linker),
            Capability::Kv => kv::link(linker),
            Capability::Payments => payments::link(linker),
            Capability::Log => log::link(linker),
            Capability::Clock => clock::link(linker),
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The capabilities an application may use, from its catalog entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants(BTreeSet<Capability>);

impl Grants {
    /// Grant exactly `capabilities` (plus the always-granted `log` and `clock`).
    pub fn of(capabilities: impl IntoIterator<Item = Capability>) -> Self {
        Grants(capabilities.into_iter().collect())
    }

    /// Every capability: for `onecard plugin run` and tests.
    pub fn all() -> Self {
        Self::of(Capability::ALL)
    }

    pub fn allows(&self, capability: Capability) -> bool {
        capability.always_granted() || self.0.contains(&capability)
    }

    /// Add the granted capabilities' host functions to `linker`.
    pub fn link(&self, linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
        for capability in Capability::ALL.into_iter().filter(|c| self.allows(*c)) {
            capability.link(linker)?;
        }
        Ok(())
    }
}

/// The backends one application's plugin reaches, shared by all its instances.
#[derive(Debug, Clone)]
pub struct AppEnv {
    /// Catalog application id: the kv namespace, the log tag, the ledger's account owner.
    pub app: String,
    pub kv: Arc<dyn KvBackend>,
    pub kv_config: KvConfig,
    pub http_backends: Arc<BTreeMap<String, BackendTarget>>,
    pub http: Arc<dyn HttpClient>,
    pub settlement: Arc<dyn SettlementPort>,
}

impl AppEnv {
    /// In-memory backends only: no backend reachable over HTTP, a memory ledger.
    pub fn in_memory(app: &str) -> Self {
        AppEnv {
            app: app.into(),
            kv: Arc::new(MemoryKv::new()),
            kv_config: KvConfig::default(),
            http_backends: Arc::new(BTreeMap::new()),
            http: Arc::new(ScriptedHttp::unreachable()),
            settlement: Arc::new(MemoryLedger::new()),
        }
    }
}

/// Per-instance limits, from the runtime configuration.
#[derive(Debug, Clone, Copy)]
pub struct InstanceLimits {
    pub memory_bytes: usize,
    pub max_host_calls: u32,
    pub max_log_bytes: usize,
}

/// The store data of one plugin instance.
#[derive(Debug)]
pub struct HostState {
    pub(crate) limiter: InstanceLimiter,
    pub meter: Meter,
    pub card: CardState,
    pub http: HttpState,
    pub kv: KvState,
    pub payments: PaymentsState,
    pub log: LogState,
    pub clock: ClockState,
}

impl HostState {
    pub fn new(env: &AppEnv, limits: InstanceLimits, request_id: &str, card: Option<CardView>, clock: ClockState) -> Self {
        HostState {
            limiter: InstanceLimiter::new(limits.memory_bytes),
            meter: Meter::new(limits.max_host_calls),
            card: CardState { view: card },
            http: HttpState::new(Arc::clone(&env.http_backends), Arc::clone(&env.http)),
            kv: KvState::new(Arc::clone(&env.kv), &env.app, env.kv_config.clone()),
            payments: PaymentsState::new(&env.app, Arc::clone(&env.settlement)),
            log: LogState::new(&env.app, request_id, limits.max_log_bytes),
            clock,
        }
    }
}
