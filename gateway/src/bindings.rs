//! Host-side bindings of the plugin contract (`sdk/wit`, `onecard:plugin@1.0.0`).
//!
//! Every import is `async` (a host call may wait on a backend without blocking a gateway thread)
//! and `trappable` (a host call may end the instance: the per-request host-call budget).
#![allow(missing_docs, missing_debug_implementations, clippy::all)]

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../sdk/wit",
    imports: { default: async | trappable },
    exports: { default: async },
    additional_derives: [PartialEq],
});

pub use onecard::plugin::types::{ActionSpec, Assurance, CardStatus, CardView, Refusal};
