//! Plugin artifacts: their SHA-256 identity and the on-disk cache of compiled components.
//!
//! Compiling a component with cranelift takes from tens of milliseconds to seconds; a gateway
//! restarting with many plugins should not pay that again. The cache is keyed by the artifact's
//! SHA-256 and the engine's compatibility hash (which covers the wasmtime version and every
//! setting that changes generated code), so an upgrade or a config change never loads stale code.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::error::LoadError;

/// Lower-case hex SHA-256 of `bytes`: the identity under which a plugin is filed.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn cache_path(engine: &Engine, dir: &Path, sha256: &str) -> PathBuf {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    dir.join(format!("{sha256}-{:016x}.cwasm", hasher.finish()))
}

/// Compile `bytes` (already verified to hash to `sha256`), through the cache when there is one.
pub(super) fn compile(engine: &Engine, bytes: &[u8], sha256: &str, cache_dir: Option<&Path>) -> Result<Component, LoadError> {
    let Some(dir) = cache_dir else { return compile_fresh(engine, bytes) };
    let path = cache_path(engine, dir, sha256);
    if path.is_file() {
        match deserialize(engine, &path) {
            Ok(component) => return Ok(component),
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "compiled plugin cache entry unusable; recompiling"),
        }
    }
    let component = compile_fresh(engine, bytes)?;
    if let Err(e) = store(&component, dir, &path) {
        tracing::warn!(path = %path.display(), error = %e, "could not write the compiled plugin cache");
    }
    Ok(component)
}

fn compile_fresh(engine: &Engine, bytes: &[u8]) -> Result<Component, LoadError> {
    Component::new(engine, bytes).map_err(|e| LoadError::Invalid(format!("{e:#}")))
}

/// Write atomically (temporary file, then rename) so a crash never leaves half an entry.
fn store(component: &Component, dir: &Path, path: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let serialized = component.serialize().map_err(|e| e.to_string())?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, serialized).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize_file` trusts the file to be wasmtime's own output: it maps it as
    // executable code. The cache directory is the gateway's own (it must not be writable by
    // anyone else — documented with `runtime.cache_dir`), entries are written atomically by
    // `store` above, and wasmtime itself rejects files from another version or configuration.
    unsafe { Component::deserialize_file(engine, path) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
