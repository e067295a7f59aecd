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
