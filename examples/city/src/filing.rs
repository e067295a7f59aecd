//! Filing the city's five plugins. `catalog.toml` holds each application with a placeholder
//! filing; here each component is uploaded to the catalog's artifact store and its filing is
//! made true: the real SHA-256, the manifest from the component's own `describe`
//! ([`onecard_gateway::filing::manifest`]), the capabilities it asks for, and its backends
//! pointed at the sandbox doubles.
//!
//! Against what the database already holds: a live filing with exactly that content is kept (a
//! restart changes nothing); otherwise — a rebuilt plugin, another sandbox address — the new
//! content is filed as the next filing, online, and the old live filing is terminated. Filings
//! are never edited in place (the catalog refuses that) and never deleted.

use std::collections::BTreeMap;

use onecard_catalog::model::{Filing, Manifest};
use onecard_catalog::roles::{Principal, Role};
use onecard_catalog::service::ChangeReport;
use onecard_catalog::workflow::FilingState;
use onecard_catalog::{Catalog, Store};
use onecard_gateway::capabilities::Grants;
use onecard_gateway::runtime::Runtime;

use crate::CityError;

/// `examples/city/catalog.toml`.
pub const CATALOG_TOML: &str = include_str!("../catalog.toml");

/// One of the city's plugins: its application, its component and the backends it expects.
#[derive(Debug, Clone, Copy)]
pub struct CityPlugin {
    /// Application id in `catalog.toml`.
    pub app: &'static str,
    /// The built component.
    pub wasm: &'static str,
    /// Backend name → path of its double under the sandbox address (`settlement` is the
    /// application's settlement port). Names as each plugin's `plugin.toml` documents them.
    pub backends: &'static [(&'static str, &'static str)],
}

/// The five plugins.
pub const PLUGINS: [CityPlugin; 5] = [
    CityPlugin { app: "parks", wasm: onecard_plugin_artifacts::PARKS, backends: &[] },
    CityPlugin { app: "transit", wasm: onecard_plugin_artifacts::TRANSIT, backends: &[("fare-system", "/fare"), ("settlement", "/bank")] },
    CityPlugin { app: "hospital", wasm: onecard_plugin_artifacts::HOSPITAL, backends: &[("insurance", "/insurance"), ("settlement", "/bank")] },
    CityPlugin { app: "subsidy", wasm: onecard_plugin_artifacts::SUBSIDY, backends: &[("settlement", "/bank")] },
    CityPlugin { app: "ecny", wasm: onecard_plugin_artifacts::ECNY, backends: &[("ecny", "/ecny"), ("settlement", "/ecny")] },
];

/// What happened to one application's filing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilingChange {
    /// The live filing already had this content.
    Unchanged,
    /// The application's first filing.
    First,
    /// Filed anew; the previous live filing was terminated.
    Replaced {
        /// The terminated filing's number.
        previous: u32,
    },
}

/// One application as filed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filed {
    /// Application id.
    pub app: String,
    /// Its live filing's number.
    pub number: u32,
    /// The component's SHA-256.
    pub sha256: String,
    /// Plugin version (from `describe`).
    pub version: String,
    /// What changed.
    pub change: FilingChange,
}

/// A plugin's filing content as the city would file it (number and state left to [`plan`]).
#[derive(Debug, Clone)]
pub struct Content {
    /// Application id.
    pub app: String,
    /// The filing (number 0, state online).
    pub filing: Filing,
}

/// Uploads each plugin and derives its filing content with `sandbox` (`http://host:port`) as the
/// doubles' address.
pub async fn contents(store: &Store, runtime: &Runtime, sandbox: &str) -> Result<Vec<Content>, CityError> {
    let mut out = Vec::new();
    for plugin in PLUGINS {
        let fail = |message: String| CityError::Plugin { app: plugin.app.into(), message };
        let bytes = std::fs::read(plugin.wasm).map_err(|e| fail(format!("cannot read {}: {e}", plugin.wasm)))?;
        let sha256 = store.put_artifact("onecard-city", &bytes).await?;
        let loaded = runtime.load(&bytes, &sha256, &Grants::all()).await.map_err(|e| fail(format!("the component does not load: {e}")))?;
        let manifest: Manifest = onecard_gateway::filing::manifest(loaded.info());
        let backends: BTreeMap<String, String> = plugin.backends.iter().map(|(name, path)| ((*name).to_string(), format!("{sandbox}{path}"))).collect();
        let filing = Filing { number: 0, state: FilingState::Online, sha256, capabilities: manifest.capabilities.clone(), manifest, backends };
        out.push(Content { app: plugin.app.into(), filing });
    }
    Ok(out)
}

/// Same content, whatever the number and state.
fn same_content(a: &Filing, b: &Filing) -> bool {
    a.sha256 == b.sha256 && a.manifest == b.manifest && a.backends == b.backends && a.capabilities == b.capabilities
}

/// `desired` (the parsed `catalog.toml`) with each application's filings replaced by what the
/// database should hold, given what it holds (`stored`) and the plugins' `contents`.
pub fn plan(mut desired: Catalog, stored: &Catalog, contents: &[Content]) -> Result<(Catalog, Vec<Filed>), CityError> {
    let mut filed = Vec::new();
    for content in contents {
        let app = desired.application_mut(&content.app).ok_or_else(|| CityError::Plugin {
            app: content.app.clone(),
            message: "catalog.toml has no such application".into(),
        })?;
        let old: Vec<Filing> = stored.application(&content.app).map(|a| a.filings.clone()).unwrap_or_default();
        let live = old.iter().find(|f| f.state.is_live());
        let (filings, number, change) = match live {
            Some(live) if same_content(live, &content.filing) => (old.clone(), live.number, FilingChange::Unchanged),
            _ => {
                let number = old.iter().map(|f| f.number).max().unwrap_or(0) + 1;
                let change = live.map_or(FilingChange::First, |l| FilingChange::Replaced { previous: l.number });
                let mut filings: Vec<Filing> = old
                    .iter()
                    .cloned()
                    .map(|mut f| {
                        if f.state.is_live() {
                            f.state = FilingState::Terminated;
                        }
                        f
                    })
                    .collect();
                filings.push(Filing { number, ..content.filing.clone() });
                (filings, number, change)
            }
        };
        app.filings = filings;
        filed.push(Filed {
            app: content.app.clone(),
            number,
            sha256: content.filing.sha256.clone(),
            version: content.filing.manifest.version.clone(),
            change,
        });
    }
    Ok((desired, filed))
}

/// Files the city: `catalog.toml` with the plugins' real filings, applied as the province admin.
pub async fn file_city(store: &Store, runtime: &Runtime, sandbox: &str) -> Result<(Vec<Filed>, ChangeReport), CityError> {
    let desired = onecard_catalog::declarative::parse(CATALOG_TOML)?;
    let contents = contents(store, runtime, sandbox).await?;
    let stored = store.catalog().await?;
    let (catalog, filed) = plan(desired, &stored, &contents)?;
    let admin = Principal::new("onecard-city", Role::ProvinceAdmin);
    let report = onecard_catalog::service::apply(store, &admin, catalog, false, &|_| None).await?;
    Ok((filed, report))
}
