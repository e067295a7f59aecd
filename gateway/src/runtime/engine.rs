//! The one place the wasmtime `Engine` is configured.
//!
//! Every request gets a fresh instance, so what matters is the cost of creating one and the
//! guarantee that a misbehaving one cannot hurt the others. Each setting below says which of the
//! two it serves.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use super::config::RuntimeConfig;

/// Core instances one component may create. A Rust `wasm32-wasip2` component has its main module
/// plus the small shim/fixup modules `wit-component` adds (3 to 5 in practice).
const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 16;
/// Linear memories one component may define: Rust, C and Go toolchains emit exactly one.
const MAX_MEMORIES_PER_COMPONENT: u32 = 1;
/// Tables one component may define: the main module's function table and the shims' tables.
const MAX_TABLES_PER_COMPONENT: u32 = 8;
/// Elements per table; Rust plugins of a few hundred KiB use a few hundred.
const TABLE_ELEMENTS: usize = 20_000; // = limiter::MAX_TABLE_ELEMENTS
/// Memory kept resident (and reset by `memset` of only the dirty pages, found with the
/// `PAGEMAP_SCAN` ioctl) when an instance's slot is returned: a request touches a few hundred KiB
/// of stack and heap, and keeping those pages mapped avoids a page fault per page on the next
/// request. Larger memories are still returned to the kernel with `madvise`.
const MEMORY_KEEP_RESIDENT: usize = 2 * 1024 * 1024;
/// Same for tables.
const TABLE_KEEP_RESIDENT: usize = 64 * 1024;
/// Same for the fiber stacks async calls run on.
const STACK_KEEP_RESIDENT: usize = 128 * 1024;
/// Host (fiber) stack for one async call: the wasm stack limit plus room for host calls.
const ASYNC_STACK_EXTRA: usize = 512 * 1024;

/// Build the engine every plugin of this gateway runs on.
///
/// - **Pooling allocator** sized from `max_instances`: instance memories, tables and stacks are
///   reserved once and reused; an instance costs no `mmap`, and the pool bounds concurrency.
/// - **Copy-on-write memory images**: a fresh instance maps its initial memory from the compiled
///   image instead of copying data segments.
/// - **Epoch interruption**: a ticker thread advances the epoch every `epoch_tick_ms`; a running
///   plugin yields to other requests at each tick and is stopped at its deadline.
/// - **Memory cap** per instance (`memory_cap_mib`); **wasm stack** cap (`max_wasm_stack_kib`).
/// - **Fuel** only when configured.
/// - Cranelift at `Speed`, with NaN canonicalisation so float results do not depend on the CPU
///   (plugins must be replayable on another machine).
pub fn build_engine(config: &RuntimeConfig) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    let instances = config.max_instances.max(1);
    pool.total_component_instances(instances)
        .total_core_instances(instances * 6)
        .total_memories(instances * MAX_MEMORIES_PER_COMPONENT)
        .total_tables(instances * 4)
        .total_stacks(instances)
        .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
        .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
        .table_elements(TABLE_ELEMENTS)
        .max_memory_size(config.memory_cap_bytes())
        .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
        .table_keep_resident(TABLE_KEEP_RESIDENT)
        .async_stack_keep_resident(STACK_KEEP_RESIDENT)
        .pagemap_scan(Enabled::Auto);

    let mut wasm = Config::new();
    wasm.wasm_component_model(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .memory_init_cow(true)
        .epoch_interruption(true)
        .max_wasm_stack(config.max_wasm_stack_kib * 1024)
        .async_stack_size(config.max_wasm_stack_kib * 1024 + ASYNC_STACK_EXTRA)
        .consume_fuel(config.fuel.is_some())
        .cranelift_opt_level(OptLevel::Speed)
        .cranelift_nan_canonicalization(true);
    Engine::new(&wasm)
}

/// Advances the engine's epoch every tick until dropped.
#[derive(Debug)]
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub fn start(engine: &Engine, tick: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.weak();
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("onecard-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    match engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .expect("spawn the epoch ticker thread");
        EpochTicker { stop, thread: Some(thread) }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
