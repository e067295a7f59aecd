//! Paths of the plugin components built by this crate's build script.
//!
//! `PARKS`, `HOSTILE`, ...: one constant per plugin crate (its package name in upper case), the
//! absolute path of its release `.wasm`. `foreach_plugin!` and `foreach_test_plugin!` list them,
//! so a test suite can require a test per plugin at compile time.
#![forbid(unsafe_code)]

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
