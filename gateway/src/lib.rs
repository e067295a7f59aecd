//! # onecard-gateway
//!
//! The data plane of onecard: the plugin [`runtime`], the host [`capabilities`] plugins reach,
//! and the `onecard` command line.
#![deny(unsafe_code)]

pub mod auth;
pub mod bindings;
pub mod capabilities;
pub mod cli;
pub mod credential;
pub mod limits;
pub mod runtime;
pub mod enforced;
pub mod error;
pub mod holders;
pub mod pipeline;
pub mod server;
pub mod sharded;
pub mod sync;
pub mod filing;

/// The allocator every onecard binary declares (`#[global_allocator]`), so that the load tool
/// measures the gateway with the allocator it runs with. mimalloc rather than glibc's: a
/// request allocates and frees many small buffers, some freed on another thread than the one
/// that made them (audit and access records), and glibc's allocator held 11.5 % of the server
/// threads' CPU samples in a full closed loop, a quarter of that consolidating and unlinking
/// chunks. With mimalloc 2, `request_path` used 15 % less server CPU per entry on the full path
/// and 13 % less on the native baseline, on average over five runs (docs/PERFORMANCE.md,
/// session 13). SQLite's own allocations still go to glibc's.
pub use mimalloc::MiMalloc as Allocator;
