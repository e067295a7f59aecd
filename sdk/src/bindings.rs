//! Bindings generated from `wit/plugin.wit`.
//!
//! The generated types (requests, card views, errors) are the SDK's types on every target, so a
//! plugin compiles natively for its unit tests; the generated import functions are only called on
//! `wasm32` (see `host.rs`), natively the test harness answers instead.
#![allow(missing_docs, missing_debug_implementations, unsafe_code, clippy::all)]

wit_bindgen::generate!({
    world: "plugin",
    path: "wit",
    pub_export_macro: true,
    export_macro_name: "export_world",
    default_bindings_module: "onecard_sdk::__private::bindings",
    additional_derives: [PartialEq],
});
