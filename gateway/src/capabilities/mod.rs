//! Host capabilities: what a plugin can reach outside its own memory.
//!
//! One module per capability, all the same shape (after Spin's factors): the WIT interface it
//! implements (`sdk/wit/plugin.wit`), its per-instance state holding a backend behind a trait,
//! at least one in-memory backend for tests and the local harness, its configuration, its tests.
//! The catalog grants `card`, `http`, `kv` and `payments` per application; `log` and `clock` are
//! always linked. [`HostState`] composes them into the store data of one instance.

pub mod card;
pub mod clock;
pub mod http;
pub mod kv;
pub mod log;
pub mod outbound;
pub mod payments;

mod host_state;
mod meter;

pub use host_state::{AppEnv, Capability, Grants, HostState, InstanceLimits};
pub use meter::{HostCallBudgetExceeded, Meter, Metered};
