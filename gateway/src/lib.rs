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
