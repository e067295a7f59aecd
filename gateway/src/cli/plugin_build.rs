//! `onecard plugin build`: compile a plugin crate to a `wasm32-wasip2` component without WASI
//! imports (linked as a core module, then `onecard_componentize`, as the project's own tests build
//! plugins), load it with the gateway's own runtime, check its `plugin.toml` against what the
//! component describes, and print what the department files: the component's path, size and
//! SHA-256, and the catalog filing (`[[applications.filings]]` with the hash and the manifest
//! derived from `describe`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use clap::Args;
use onecard_catalog::model::Filing;
use onecard_catalog::workflow::FilingState;
use onecard_componentize::{TARGET, TARGET_RUSTFLAGS};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::bindings::onecard::plugin::types::PluginInfo;
use crate::runtime::{LoadedPlugin, Runtime, RuntimeConfig};

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The plugin crate (the folder holding its `Cargo.toml` and `plugin.toml`).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Build with this cargo profile instead of `release` (inside the onecard workspace, `plugin`
    /// gives the same bytes its tests build).
    #[arg(long)]
    profile: Option<String>,
    /// The filing's number within the application (1 for the first filing).
    #[arg(long, default_value_t = 1)]
    filing_number: u32,
    /// The filing's state in the printed snippet (a department files `submitted`; the province
    /// moves it on).
    #[arg(long, default_value = "submitted", value_parser = ["draft", "submitted", "reviewed", "security_tested", "filed", "online"])]
    filing_state: String,
    /// Print JSON (`path`, `size`, `sha256`, `plugin`, `version`, `wit`, `filing_toml`).
    #[arg(long)]
    json: bool,
}

/// Why `plugin build` failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("PLUGIN_CRATE_NOT_FOUND: {0}")]
    CrateNotFound(String),
    #[error("PLUGIN_BUILD_FAILED: {0}")]
    BuildFailed(String),
    #[error("PLUGIN_UNUSABLE: {0}")]
    Unusable(String),
    #[error("PLUGIN_MANIFEST_MISMATCH: plugin.toml does not agree with the component's describe:\n  {}", .0.join("\n  "))]
    ManifestMismatch(Vec<String>),
}

impl BuildError {
    /// 2 for a folder that is not a plugin crate, 1 for a failed build or a disagreeing manifest.
    pub fn exit_code(&self) -> i32 {
        match self {
            BuildError::CrateNotFound(_) => 2,
            _ => 1,
        }
    }
}

/// `plugin.toml`: what the department files beside the component's hash.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginToml {
    pub id: String,
    pub version: String,
    /// `onecard:plugin@X.Y.Z`.
    pub wit: String,
    pub capabilities: Vec<String>,
    pub actions: BTreeMap<String, ActionToml>,
}

/// One action of `plugin.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionToml {
    pub description: String,
    /// `real_name`, `real_card` or `real_person`.
    pub assurance: String,
    pub scopes: Vec<String>,
    pub needs_card: bool,
    pub moves_money: bool,
    /// Path of the parameters' JSON Schema, relative to the crate.
    pub params_schema: String,
}

/// Runs `onecard plugin build`; returns what to print.
pub async fn build(args: &BuildArgs) -> Result<String, BuildError> {
    let dir = std::fs::canonicalize(&args.dir).map_err(|e| BuildError::CrateNotFound(format!("{}: {e}", args.dir.display())))?;
    for file in ["Cargo.toml", "plugin.toml"] {
        if !dir.join(file).is_file() {
            return Err(BuildError::CrateNotFound(format!("{} has no {file}: run it in a plugin crate or pass --dir", dir.display())));
        }
    }
    let manifest = read_plugin_toml(&dir)?;
    ensure_target(&dir)?;
    let wasm = cargo_build(&dir, args.profile.as_deref())?;
    let bytes = onecard_componentize::componentize_in_place(&wasm).map_err(|e| BuildError::BuildFailed(e.to_string()))?;
    let runtime = Runtime::new(RuntimeConfig { max_instances: 2, ..RuntimeConfig::default() }).map_err(|e| BuildError::Unusable(e.to_string()))?;
    let plugin = runtime.load_file_unfiled(&wasm).await.map_err(|e| BuildError::Unusable(format!("{}: {e}", wasm.display())))?;
    let problems = disagreements(&manifest, &plugin, &dir);
    if !problems.is_empty() {
        return Err(BuildError::ManifestMismatch(problems));
    }
    let state: FilingState = serde_json::from_value(Value::String(args.filing_state.clone()))
        .map_err(|e| BuildError::CrateNotFound(format!("--filing-state: {e}")))?;
    let filing_toml = filing_snippet(plugin.info(), plugin.sha256(), args.filing_number, state).map_err(BuildError::Unusable)?;
    let info = plugin.info();
    let wit = plugin.wit_version().unwrap_or("?");
    if args.json {
        let out = json!({
            "path": wasm.display().to_string(), "size": bytes.len(), "sha256": plugin.sha256(),
            "plugin": info.id, "version": info.version, "wit": format!("onecard:plugin@{wit}"), "filing_toml": filing_toml,
        });
        return Ok(serde_json::to_string_pretty(&out).unwrap_or_default());
    }
    Ok(format!(
        "component  {}\nsize       {} bytes\nsha256     {}\nplugin     {} {} (onecard:plugin@{wit})\nplugin.toml agrees with describe\n\n\
         # Upload the component to the catalog's artifact store (POST /catalog/v1/admin/artifacts) and\n\
         # put this filing under the application's [[applications]] entry of the catalog TOML\n\
         # (`onecard catalog apply`). Granted capabilities start as all the plugin asks for.\n{filing_toml}",
        wasm.display(),
        bytes.len(),
        plugin.sha256(),
        info.id,
        info.version,
    ))
}

fn read_plugin_toml(dir: &Path) -> Result<PluginToml, BuildError> {
    let path = dir.join("plugin.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| BuildError::CrateNotFound(format!("{}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| BuildError::ManifestMismatch(vec![format!("{} is not a plugin manifest: {e}", path.display())]))
}

/// Installs the wasm target when it is missing (as `tests/artifacts/build.rs` does), so a fresh
/// machine with rustup needs no manual step.
fn ensure_target(dir: &Path) -> Result<(), BuildError> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(rustc)
        .current_dir(dir)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| BuildError::BuildFailed(format!("cannot run rustc: {e}")))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.join("lib/rustlib").join(TARGET).is_dir() {
        return Ok(());
    }
    eprintln!("installing the {TARGET} target with rustup");
    let status = Command::new("rustup")
        .current_dir(dir)
        .args(["target", "add", TARGET])
        .status()
        .map_err(|e| BuildError::BuildFailed(format!("the {TARGET} target is missing and rustup cannot be run: {e}")))?;
    if !status.success() {
        return Err(BuildError::BuildFailed(format!("`rustup target add {TARGET}` failed")));
    }
    Ok(())
}

/// `cargo build --target wasm32-wasip2 --release` in `dir`, linking a core module; the `.wasm`
/// cargo reports.
fn cargo_build(dir: &Path, profile: Option<&str>) -> Result<PathBuf, BuildError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest_path = dir.join("Cargo.toml");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(dir).args(["build", "--target", TARGET, "--message-format", "json-render-diagnostics", "--manifest-path"]).arg(&manifest_path);
    match profile {
        Some(p) => cmd.args(["--profile", p]),
        None => cmd.arg("--release"),
    };
    // `RUSTFLAGS` and `CARGO_ENCODED_RUSTFLAGS` would replace the wasm target's flags (and the
    // component would then differ from the one the project's tests build): plugins get only these.
    cmd.env_remove("RUSTFLAGS").env_remove("CARGO_ENCODED_RUSTFLAGS").env(TARGET_RUSTFLAGS.0, TARGET_RUSTFLAGS.1);
    // Diagnostics and progress go to the user's terminal; stdout carries cargo's JSON messages.
    let output = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| BuildError::BuildFailed(format!("cannot run cargo: {e}")))?;
    if !output.status.success() {
        return Err(BuildError::BuildFailed(format!("cargo build --target {TARGET} failed in {} (see the messages above)", dir.display())));
    }
    let wasm = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && same_file(m["manifest_path"].as_str(), &manifest_path))
        .filter(|m| m["target"]["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "cdylib")))
        .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.extension().is_some_and(|e| e == "wasm"));
    wasm.ok_or_else(|| BuildError::BuildFailed(format!("cargo built no wasm module: is `crate-type = [\"cdylib\", …]` set in {}?", manifest_path.display())))
}

fn same_file(reported: Option<&str>, path: &Path) -> bool {
    reported.is_some_and(|r| std::fs::canonicalize(r).is_ok_and(|r| r == path))
}

/// How `plugin.toml` disagrees with the component's `describe` (empty when it agrees).
pub fn disagreements(manifest: &PluginToml, plugin: &LoadedPlugin, dir: &Path) -> Vec<String> {
    let info = plugin.info();
    let mut problems = Vec::new();
    let mut differ = |what: &str, filed: &dyn std::fmt::Debug, described: &dyn std::fmt::Debug| {
        problems.push(format!("{what}: plugin.toml says {filed:?}, the component describes {described:?}"));
    };
    if manifest.id != info.id {
        differ("id", &manifest.id, &info.id);
    }
    if manifest.version != info.version {
        differ("version", &manifest.version, &info.version);
    }
    let wit = plugin.wit_version().map(|v| format!("onecard:plugin@{v}"));
    if Some(&manifest.wit) != wit.as_ref() {
        differ("wit", &manifest.wit, &wit);
    }
    if manifest.capabilities != info.capabilities {
        differ("capabilities", &manifest.capabilities, &info.capabilities);
    }
    for name in manifest.actions.keys().filter(|n| !info.actions.iter().any(|a| &a.name == *n)) {
        problems.push(format!("action `{name}` is in plugin.toml but the component does not describe it"));
    }
    for spec in &info.actions {
        let Some(filed) = manifest.actions.get(&spec.name) else {
            problems.push(format!("action `{}` is described by the component but missing from plugin.toml", spec.name));
            continue;
        };
        let mut differ = |field: &str, filed: &dyn std::fmt::Debug, described: &dyn std::fmt::Debug| {
            problems.push(format!("action `{}` {field}: plugin.toml says {filed:?}, the component describes {described:?}", spec.name));
        };
        if filed.description != spec.description {
            differ("description", &filed.description, &spec.description);
        }
        if filed.assurance != spec.assurance.as_str() {
            differ("assurance", &filed.assurance, &spec.assurance.as_str());
        }
        if filed.scopes != spec.scopes {
            differ("scopes", &filed.scopes, &spec.scopes);
        }
        if filed.needs_card != spec.needs_card {
            differ("needs_card", &filed.needs_card, &spec.needs_card);
        }
        if filed.moves_money != spec.moves_money {
            differ("moves_money", &filed.moves_money, &spec.moves_money);
        }
        let schema_path = dir.join(&filed.params_schema);
        let filed_schema = std::fs::read_to_string(&schema_path).map_err(|e| e.to_string()).and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| e.to_string()));
        match (filed_schema, serde_json::from_str::<Value>(&spec.params_schema)) {
            (Ok(filed), Ok(described)) if filed == described => {}
            (Ok(filed), Ok(described)) => differ("params_schema", &filed, &described),
            (Err(e), _) => problems.push(format!("action `{}` params_schema {}: {e}", spec.name, schema_path.display())),
            (_, Err(e)) => problems.push(format!("action `{}`: the component's schema is not JSON: {e}", spec.name)),
        }
    }
    problems
}

/// The `[[applications.filings]]` TOML of a plugin that describes itself as `info` and hashes to
/// `sha256`: the manifest from `describe` (`filing::manifest`) and all the capabilities it asks for.
pub fn filing_snippet(info: &PluginInfo, sha256: &str, number: u32, state: FilingState) -> Result<String, String> {
    let manifest = crate::filing::manifest(info);
    let filing = Filing { number, state, sha256: sha256.into(), capabilities: manifest.capabilities.clone(), manifest, backends: BTreeMap::new() };
    // Serialized inside an application so the tables get their full `applications.filings` names;
    // the application's own header is then cut off: the department's entry supplies it.
    #[derive(Serialize)]
    struct Document<'a> {
        applications: [Application<'a>; 1],
    }
    #[derive(Serialize)]
    struct Application<'a> {
        filings: [&'a Filing; 1],
    }
    let text = toml::to_string_pretty(&Document { applications: [Application { filings: [&filing] }] }).map_err(|e| format!("cannot write the filing as TOML: {e}"))?;
    let start = text.find("[[applications.filings]]").ok_or_else(|| "the filing TOML has no [[applications.filings]] table".to_owned())?;
    Ok(text[start..].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::{ActionSpec, Assurance};

    fn info() -> PluginInfo {
        PluginInfo {
            id: "library".into(),
            version: "0.2.0".into(),
            actions: vec![ActionSpec {
                name: "borrow".into(),
                description: "Borrow a book".into(),
                params_schema: r#"{"type":"object","required":["book"],"properties":{"book":{"type":"string","minLength":1},"copies":{"enum":[1,2]}},"additionalProperties":false}"#.into(),
                assurance: Assurance::RealCard,
                scopes: vec!["holder.age".into()],
                moves_money: false,
                needs_card: true,
            }],
            capabilities: vec!["card".into(), "kv".into()],
        }
    }

    #[test]
    fn the_snippet_applies_under_an_application_and_gives_back_the_filing() {
        let sha = "ab".repeat(32);
        let snippet = filing_snippet(&info(), &sha, 2, FilingState::Submitted).expect("snippet");
        assert!(snippet.starts_with("[[applications.filings]]"), "{snippet}");
        let src = format!(
            "[[provinces]]\ncode = \"33\"\nname = \"浙江省\"\n\n[[cities]]\ncode = \"3301\"\nname = \"杭州市\"\n\n\
             [[departments]]\nid = \"d\"\nname = \"D\"\ncity = \"3301\"\n\n\
             [[applications]]\nid = \"library\"\nname = \"Library\"\nscenario = \"library\"\ndepartment = \"d\"\n\n{snippet}"
        );
        let catalog = onecard_catalog::declarative::parse(&src).expect("the snippet parses in a catalog");
        let filing = &catalog.applications[0].filings[0];
        assert_eq!((filing.number, filing.state, filing.sha256.as_str()), (2, FilingState::Submitted, sha.as_str()));
        assert_eq!(filing.manifest, crate::filing::manifest(&info()));
        assert_eq!(filing.capabilities, filing.manifest.capabilities);
        assert_eq!(filing.manifest.actions[0].params_schema["properties"]["copies"]["enum"], json!([1, 2]));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_manifest_check_names_each_disagreement() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/parks");
        let runtime = Runtime::new(RuntimeConfig { max_instances: 2, ..RuntimeConfig::default() }).expect("runtime");
        let plugin = runtime.load_file_unfiled(Path::new(onecard_plugin_artifacts::PARKS)).await.expect("parks loads");
        let agreeing = read_plugin_toml(&dir).expect("plugins/parks/plugin.toml");
        assert_eq!(disagreements(&agreeing, &plugin, &dir), Vec::<String>::new());

        let mut wrong = read_plugin_toml(&dir).expect("plugins/parks/plugin.toml");
        wrong.version = "9.9.9".into();
        wrong.capabilities.push("payments".into());
        wrong.actions.remove("exit");
        let enter = wrong.actions.get_mut("enter").expect("enter");
        enter.assurance = "real_person".into();
        enter.params_schema = "schemas/empty.json".into();
        let problems = disagreements(&wrong, &plugin, &dir);
        assert_eq!(problems.len(), 5, "{problems:#?}");
        for needle in ["version", "capabilities", "`exit` is described by the component but missing", "`enter` assurance", "`enter` params_schema"] {
            assert!(problems.iter().any(|p| p.contains(needle)), "{needle}: {problems:#?}");
        }
    }
}
