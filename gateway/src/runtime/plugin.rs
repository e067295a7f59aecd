//! [`LoadedPlugin`]: a compiled component linked once (`InstancePre`) with the capabilities its
//! application is granted, and [`LoadedPlugin::handle`]: one action on one fresh instance.

use std::time::{Duration, Instant};

use wasmtime::component::{Component, ComponentExportIndex, Linker};
use wasmtime::{Engine, PoolConcurrencyLimitError, Store, Trap, UpdateDeadline, WasmBacktrace};

use super::Runtime;
use super::error::{InvokeError, LoadError, valid_plugin_code};
use super::limiter::MemoryCapReached;
use crate::bindings::{HandleError, Plugin as PluginBindings, PluginInfo, PluginPre, Request, Response};
use crate::capabilities::{AppEnv, Capability, Grants, HostCallBudgetExceeded, HostState, InstanceLimits};

/// Extra time past the deadline before a call stuck in a host function (not in wasm, where the
/// epoch stops it) is abandoned.
const HOST_CALL_GRACE: Duration = Duration::from_millis(50);

/// The WIT package plugins import from.
const PACKAGE: &str = "onecard:plugin/";

/// A plugin ready to be instantiated, once per request.
pub struct LoadedPlugin {
    sha256: String,
    info: PluginInfo,
    imports: Vec<String>,
    pre: PluginPre<HostState>,
    /// Where the `handle` export is, resolved (and its type checked by `PluginPre::new`) at load.
    handle_export: ComponentExportIndex,
    engine: Engine,
    limits: InstanceLimits,
    fuel: Option<u64>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin").field("id", &self.info.id).field("sha256", &self.sha256).finish_non_exhaustive()
    }
}

/// The outcome of one call, with the instance's final state (logs, host-call count) for the
/// caller's audit record.
#[derive(Debug)]
pub struct Invocation {
    pub result: Result<Response, InvokeError>,
    pub state: HostState,
    pub elapsed: Duration,
}

impl LoadedPlugin {
    pub(super) async fn link(runtime: &Runtime, component: Component, sha256: String, grants: &Grants) -> Result<Self, LoadError> {
        let engine = runtime.engine().clone();
        let imports = check_imports(&engine, &component, grants)?;
        let mut linker = Linker::<HostState>::new(&engine);
        grants.link(&mut linker).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        // What is left is WASI, which onecard does not provide: the toolchain's standard library
        // imports it, and a plugin that calls it (files, sockets, ambient clocks) traps. Plugins
        // built by `onecard plugin build` import none (`onecard-componentize` makes each WASI
        // function a trap inside the module); components built otherwise still load.
        linker.define_unknown_imports_as_traps(&component).map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
        let instance_pre = linker.instantiate_pre(&component).map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
        let pre = PluginPre::new(instance_pre).map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
        let handle_export = component
            .get_export_index(None, "handle")
            .ok_or_else(|| LoadError::Invalid("the component exports no `handle`".into()))?;
        let mut plugin = LoadedPlugin {
            sha256,
            info: PluginInfo { id: String::new(), version: String::new(), actions: Vec::new(), capabilities: Vec::new() },
            imports,
            pre,
            handle_export,
            engine,
            limits: runtime.instance_limits(),
            fuel: runtime.config().fuel,
        };
        plugin.info = plugin.describe(Duration::from_millis(runtime.config().deadline_ms.max(1_000))).await?;
        Ok(plugin)
    }

    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// What `describe` returned at load.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// The component's imports (interface names with versions), sorted.
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// The `onecard:plugin` version the component was built against, from its imports.
    pub fn wit_version(&self) -> Option<&str> {
        self.imports.iter().find_map(|i| i.strip_prefix(PACKAGE)?.split_once('@').map(|(_, v)| v))
    }

    pub fn limits(&self) -> InstanceLimits {
        self.limits
    }

    async fn describe(&self, deadline: Duration) -> Result<PluginInfo, LoadError> {
        let state = HostState::new(&AppEnv::in_memory("describe"), self.limits, "describe", None, crate::capabilities::clock::ClockState::now());
        let mut store = self.store(state, deadline);
        let call = async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            instance.call_describe(&mut store).await
        };
        let info = tokio::time::timeout(deadline + HOST_CALL_GRACE, call)
            .await
            .map_err(|_| LoadError::Describe(format!("did not answer within {deadline:?}")))?
            .map_err(|e| LoadError::Describe(format!("{e:#}")))?;
        Ok(info)
    }

    fn store(&self, state: HostState, deadline: Duration) -> Store<HostState> {
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        if let Some(fuel) = self.fuel {
            // Setting fuel only fails when fuel is disabled, which `fuel: Some` rules out.
            let _ = store.set_fuel(fuel);
        }
        let deadline_at = Instant::now() + deadline;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            // Past the deadline: stop. Before it: let other requests on this thread run, then
            // continue for another tick.
            Ok(if Instant::now() >= deadline_at { UpdateDeadline::Interrupt } else { UpdateDeadline::Yield(1) })
        });
        store
    }

    /// Run `request` on a fresh instance with `state` as its host state, within `deadline`.
    pub async fn handle(&self, state: HostState, request: &Request, deadline: Duration) -> Invocation {
        let started = Instant::now();
        let mut store = self.store(state, deadline);
        let call = async {
            // Not `PluginPre::instantiate_async`: it looks up and type-checks every export
            // (`describe` and `handle`) on each instance, about 3,500 instructions per request
            // (callgrind, docs/PERFORMANCE.md). Only `handle` is looked up (by the index found at
            // load) and checked here; skipping that check too would take `unsafe` for ~1,700
            // instructions, which this crate does not trade.
            let instance = self.pre.instance_pre().instantiate_async(&mut store).await?;
            let func = instance
                .get_func(&mut store, self.handle_export)
                .ok_or_else(|| wasmtime::format_err!("the instance has no `handle` export"))?;
            let handle = func.typed::<(&Request,), (Result<Response, HandleError>,)>(&store)?;
            let (result,) = handle.call_async(&mut store, (request,)).await?;
            Ok::<_, wasmtime::Error>(result)
        };
        let outcome = tokio::time::timeout(deadline + HOST_CALL_GRACE, call).await;
        let state = store.into_data();
        let deadline_ms = deadline.as_millis() as u64;
        let result = match outcome {
            Err(_elapsed) => Err(InvokeError::Timeout { deadline_ms }),
            Ok(Err(trap)) => Err(classify_trap(&trap, &state, deadline_ms)),
            Ok(Ok(Ok(response))) => Ok(response),
            Ok(Ok(Err(refusal))) => Err(from_plugin_error(refusal)),
        };
        Invocation { result, state, elapsed: started.elapsed() }
    }
}

/// An instance kept across calls. Only for benchmarks and diagnostics: the request path always
/// uses a fresh instance ([`LoadedPlugin::handle`]), so no state leaks between requests.
pub struct WarmInstance {
    store: Store<HostState>,
    instance: PluginBindings,
}

impl std::fmt::Debug for WarmInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WarmInstance")
    }
}

impl LoadedPlugin {
    /// Instantiate once for repeated calls (see [`WarmInstance`]); the deadline covers the
    /// instance's whole life.
    pub async fn warm(&self, state: HostState, lifetime: Duration) -> wasmtime::Result<WarmInstance> {
        let mut store = self.store(state, lifetime);
        let instance = self.pre.instantiate_async(&mut store).await?;
        Ok(WarmInstance { store, instance })
    }
}

impl WarmInstance {
    pub async fn handle(&mut self, request: &Request) -> wasmtime::Result<Result<Response, HandleError>> {
        self.instance.call_handle(&mut self.store, request).await
    }
}

/// Which imports the component has, refusing any capability not granted and anything onecard
/// does not offer.
fn check_imports(engine: &Engine, component: &Component, grants: &Grants) -> Result<Vec<String>, LoadError> {
    let mut names: Vec<String> = component.component_type().imports(engine).map(|(name, _)| name.to_owned()).collect();
    names.sort();
    for name in &names {
        if let Some(rest) = name.strip_prefix(PACKAGE) {
            let interface = rest.split('@').next().unwrap_or(rest);
            if interface == "types" {
                continue;
            }
            match Capability::from_name(interface) {
                Some(capability) if grants.allows(capability) => {}
                Some(capability) => return Err(LoadError::CapabilityNotGranted { capability: capability.name().into() }),
                None => return Err(LoadError::UnknownImport { import: name.clone() }),
            }
        } else if !name.starts_with(onecard_componentize::WASI_PREFIX) {
            return Err(LoadError::UnknownImport { import: name.clone() });
        }
    }
    Ok(names)
}

fn classify_trap(error: &wasmtime::Error, state: &HostState, deadline_ms: u64) -> InvokeError {
    if let Some(budget) = error.downcast_ref::<HostCallBudgetExceeded>() {
        return InvokeError::Fault { reason: budget.to_string() };
    }
    if let Some(cap) = error.downcast_ref::<MemoryCapReached>() {
        return InvokeError::Fault { reason: cap.to_string() };
    }
    if error.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
        return InvokeError::Busy;
    }
    let reason = match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => return InvokeError::Timeout { deadline_ms },
        Some(Trap::StackOverflow) => "stack overflow (unbounded recursion?)".to_string(),
        Some(Trap::MemoryOutOfBounds) => {
            "out of bounds memory access (deep recursion overflowing the shadow stack looks like this too)".to_string()
        }
        Some(Trap::OutOfFuel) => "out of fuel".to_string(),
        Some(Trap::UnreachableCodeReached) => match (state.log.panic_message(), wasi_function(error)) {
            (Some(panic), _) => format!("panicked: {panic}"),
            (None, Some(wasi)) => format!(
                "called the WASI function `{wasi}`, which onecard does not provide (no files, environment, stdio, \
                 sockets or ambient clock): use the SDK's capabilities (log, clock, kv, http, …)"
            ),
            (None, None) => "aborted (wasm `unreachable`)".to_string(),
        },
        Some(trap) => trap.to_string(),
        None => error.root_cause().to_string(),
    };
    InvokeError::Fault { reason }
}

/// The WASI function a trap happened in: `onecard-componentize` defines each WASI import of a
/// plugin as a trap named after it (`wasi:…#name`), so the innermost frame names the call.
fn wasi_function(error: &wasmtime::Error) -> Option<&str> {
    let frame = error.downcast_ref::<WasmBacktrace>()?.frames().first()?;
    frame.func_name().filter(|name| name.starts_with(onecard_componentize::WASI_PREFIX))
}

fn from_plugin_error(error: HandleError) -> InvokeError {
    let (refusal, make): (_, fn(String, String) -> InvokeError) = match error {
        HandleError::Internal(reason) => return InvokeError::Fault { reason: format!("plugin error: {reason}") },
        HandleError::Refused(r) => (r, |code, message| InvokeError::Refused { code, message }),
        HandleError::InvalidParams(r) => (r, |code, message| InvokeError::InvalidParams { code, message }),
        HandleError::BackendUnavailable(r) => (r, |code, message| InvokeError::Backend { code, message }),
    };
    if !valid_plugin_code(&refusal.code) {
        return InvokeError::Fault { reason: format!("plugin answered with an invalid error code {:?}", refusal.code) };
    }
    make(refusal.code, refusal.message)
}
