//! Build a plugin component that imports no WASI.
//!
//! Why this crate exists: Rust's `std` for `wasm32-wasip2` links WASI imports into every plugin
//! (`wasi:io` streams, `wasi:cli` stdio, environment, exit, …) even when the plugin never calls
//! them, and `wit-component` adds shim functions for several of them. onecard provides no WASI
//! (a call could only trap), yet wasmtime pays for every import and shim of every fresh instance,
//! once per request: about a fifth of what a fresh instance costs above a warm call
//! (`docs/PERFORMANCE.md`, "Plugin runtime").
//!
//! So plugins are linked as core modules (`-C link-arg=--skip-wit-component`, see
//! [`TARGET_RUSTFLAGS`]) and [`componentize`] finishes the job that `wasm-component-ld` would
//! have done, after one rewrite: every function imported from a `wasi:` module becomes a function
//! of the module itself whose body is `unreachable` (see [`stub`]). A plugin that calls WASI still
//! traps, exactly where it did; the trapping function keeps the import's `module#name` in the
//! name section ([`stub_name`]), so the gateway can tell the author which WASI function it was.
//!
//! Both `tests/artifacts/build.rs` and `onecard plugin build` use this crate, so a department
//! files the same bytes the project's tests run.
#![forbid(unsafe_code)]

mod error;
pub mod stub;

use std::path::Path;

pub use error::Error;

/// The target plugins are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// The environment variable and value that make `cargo build --target wasm32-wasip2` link plugins
/// as core modules (`wasm-component-ld` then skips its own `wit-component` step). It applies to
/// the wasm target only: build scripts and proc macros of the same build do not see it. Cargo
/// ignores it when `RUSTFLAGS` or `CARGO_ENCODED_RUSTFLAGS` is set, so a build that sets this must
/// remove those (they are the host's flags anyway).
pub const TARGET_RUSTFLAGS: (&str, &str) = ("CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS", "-C link-arg=--skip-wit-component");

/// Module names of the imports [`componentize`] turns into traps.
pub const WASI_PREFIX: &str = "wasi:";

/// The name a stub keeps in the name section: the WASI import it replaces, `module#name`.
pub fn stub_name(module: &str, name: &str) -> String {
    format!("{module}#{name}")
}

/// Turn a plugin's core module (linked with [`TARGET_RUSTFLAGS`]) into a validated component whose
/// only imports are the ones the `component-type` sections of its bindings (the onecard world)
/// describe: WASI imports are defined as traps inside the module first ([`stub::stub_wasi_imports`]).
pub fn componentize(core: &[u8]) -> Result<Vec<u8>, Error> {
    let module = stub::stub_wasi_imports(core)?;
    let mut encoder = wit_component::ComponentEncoder::default();
    encoder.validate(true);
    encoder.module(&module).map_err(|e| Error::Encode(format!("{e:#}")))?;
    encoder.encode().map_err(|e| Error::Encode(format!("{e:#}")))
}

/// Replace the core module cargo wrote at `path` by its component ([`componentize`]); returns the
/// component. Cargo hard-links `path` to its copy in `deps/` and links it again on every build,
/// fresh or not, so the component is written beside it and renamed over it: the copy in `deps/`
/// stays the core module and the next build starts from that again.
pub fn componentize_in_place(path: &Path) -> Result<Vec<u8>, Error> {
    let io = |e: std::io::Error| Error::Io(format!("{}: {e}", path.display()));
    let component = componentize(&std::fs::read(path).map_err(io)?)?;
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    std::fs::write(&partial, &component).map_err(io)?;
    std::fs::rename(&partial, path).map_err(io)?;
    Ok(component)
}
