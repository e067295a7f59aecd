//! Where the example city's files are: its sources in `examples/city/` (found at build time, so
//! the binary works from any directory) and its data in `.onecard/` at the repository root.

use std::path::{Path, PathBuf};

/// `examples/city/`.
pub fn example_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    let root = example_dir().join("../..");
    root.canonicalize().unwrap_or(root)
}

/// The gateway configuration, `examples/city/onecard.toml`.
pub fn config_file() -> PathBuf {
    example_dir().join("onecard.toml")
}

/// The default data folder, `.onecard/` at the repository root.
pub fn default_data_dir() -> PathBuf {
    repo_root().join(".onecard")
}

/// A test key file of the example city (`keys/NAME.toml`).
pub fn key_file(name: &str) -> PathBuf {
    example_dir().join("keys").join(format!("{name}.toml"))
}

/// `path` as a user types it in the current directory: relative when it lies below it.
pub fn shown(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let here = std::env::current_dir().ok().and_then(|d| d.canonicalize().ok());
    match here.as_deref().and_then(|here| path.strip_prefix(here).ok()) {
        Some(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        _ => path.display().to_string(),
    }
}
