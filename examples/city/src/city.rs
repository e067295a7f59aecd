//! Starting the whole city in one process: the sandbox doubles, the catalog filed from
//! `catalog.toml`, the holder data, an admin token and `onecard serve` from `onecard.toml`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use onecard_catalog::Store;
use onecard_gateway::runtime::Runtime;
use onecard_gateway::server::{Running, ServeConfig};
use tokio::task::JoinHandle;

use crate::filing::Filed;
use crate::holders::DemoHolder;
use crate::{CityError, paths, sandbox};

/// How to start the city.
#[derive(Debug, Clone)]
pub struct CityOptions {
    /// The gateway configuration. Default `examples/city/onecard.toml`.
    pub config: PathBuf,
    /// The data folder: `city.db`, `holders.json`, `cards.json`, the plugin compile cache.
    /// `None`: the configuration's `database` and `holders` (`.onecard/` at the repository root).
    pub data_dir: Option<PathBuf>,
    /// Overrides the configuration's listen address (e.g. `127.0.0.1:0` in tests).
    pub listen: Option<String>,
    /// Where the sandbox doubles listen. Default [`sandbox::DEFAULT_LISTEN`].
    pub sandbox_listen: SocketAddr,
}

impl Default for CityOptions {
    fn default() -> Self {
        CityOptions {
            config: paths::config_file(),
            data_dir: None,
            listen: None,
            sandbox_listen: sandbox::DEFAULT_LISTEN.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 7301))),
        }
    }
}

/// The running city.
#[derive(Debug)]
pub struct City {
    /// The server (catalog at `/catalog`, gateway at `/`).
    pub running: Running,
    /// `http://host:port` of the gateway.
    pub gateway_url: String,
    /// `http://host:port` of the sandbox doubles.
    pub sandbox_url: String,
    /// The configuration it runs.
    pub config: ServeConfig,
    /// The data folder.
    pub data_dir: PathBuf,
    /// The applications as filed.
    pub filed: Vec<Filed>,
    /// Catalog changes this start made (empty on a restart with nothing new).
    pub catalog_changes: Vec<String>,
    /// The test holders, by name.
    pub holders: BTreeMap<String, DemoHolder>,
    /// A `province_admin` token of the catalog API, created at this start.
    pub admin_token: String,
    sandbox_task: JoinHandle<()>,
}

impl Drop for City {
    fn drop(&mut self) {
        self.sandbox_task.abort();
    }
}

/// The name of the card-reference file in the data folder (read by `onecard-city calls`).
pub const CARDS_FILE: &str = "cards.json";

fn read_config(options: &CityOptions) -> Result<(ServeConfig, PathBuf), CityError> {
    let mut config = ServeConfig::read(&options.config).map_err(|e| CityError::Config(format!("{e:#}")))?;
    let data_dir = match &options.data_dir {
        Some(dir) => {
            config.database = dir.join("city.db").display().to_string();
            config.holders = Some(dir.join("holders.json"));
            dir.clone()
        }
        None => {
            if config.database.contains("://") {
                return Err(CityError::Config("the example city keeps its catalog in a SQLite file; give --data DIR".into()));
            }
            Path::new(&config.database).parent().map_or_else(paths::default_data_dir, Path::to_path_buf)
        }
    };
    if let Some(listen) = &options.listen {
        config.listen = listen.clone();
    }
    if config.holders.is_none() {
        config.holders = Some(data_dir.join("holders.json"));
    }
    if config.runtime.cache_dir.is_none() {
        config.runtime.cache_dir = Some(data_dir.join("plugin-cache"));
    }
    Ok((config, data_dir))
}

/// Starts the city.
pub async fn start(options: &CityOptions) -> Result<City, CityError> {
    let (config, data_dir) = read_config(options)?;
    std::fs::create_dir_all(&data_dir).map_err(|e| CityError::file(&data_dir, e))?;

    let (sandbox_addr, sandbox_task) = sandbox::start(options.sandbox_listen).await?;
    let sandbox_url = format!("http://{sandbox_addr}");

    let store = Store::open(&config.database).await?;
    let runtime = Runtime::new(config.runtime.clone()).map_err(|e| CityError::Serve(format!("cannot start the plugin runtime: {e}")))?;
    let (filed, report) = crate::filing::file_city(&store, &runtime, &sandbox_url).await?;
    drop(runtime);

    let holders_file = config.holders.clone().unwrap_or_else(|| data_dir.join("holders.json"));
    let holders = crate::holders::parse(crate::holders::HOLDERS_JSON)?;
    let holders = crate::holders::write_gateway_file(&store, &holders, &holders_file).await?;
    let cards = data_dir.join(CARDS_FILE);
    let refs = serde_json::to_string_pretty(&crate::holders::card_refs(&holders)).unwrap_or_default();
    std::fs::write(&cards, refs).map_err(|e| CityError::file(&cards, e))?;
    sandbox::fund(&sandbox_url, &sandbox::bank_accounts(&holders), sandbox::OPENING_BALANCE_FEN).await?;
    let admin_token = crate::admin::fresh_admin_token(&store).await?;

    forget_plugin_state(&config.database)?;
    let running = onecard_gateway::server::serve(&config).await.map_err(|e| CityError::Serve(format!("{e:#}")))?;
    let gateway_url = format!("http://{}", running.addr);
    Ok(City {
        running,
        gateway_url,
        sandbox_url,
        config,
        data_dir,
        filed,
        catalog_changes: report.changes.iter().map(ToString::to_string).collect(),
        holders,
        admin_token,
        sandbox_task,
    })
}

/// Deletes the plugins' key-value state (SQLite only). The sandbox's doubles of the outside
/// systems — bank, e-CNY operator, medical insurance, fare system — start empty on every run, so
/// plugin state kept from an earlier run (wallets loaded, visits opened) would point at records
/// they no longer have. A real gateway keeps this state across restarts; the demo starts both
/// sides afresh. The catalog, the audit trail and the ledger are kept.
fn forget_plugin_state(database: &str) -> Result<(), CityError> {
    let kv = onecard_gateway::capabilities::kv::sqlite_file_beside(database);
    if kv == database.trim() {
        return Ok(()); // PostgreSQL: shared with other gateways, never ours to delete.
    }
    let file = kv.strip_prefix("sqlite://").unwrap_or(&kv);
    let file = file.split_once('?').map_or(file, |(path, _)| path);
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{file}{suffix}"));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(CityError::file(&path, e)),
        }
    }
    Ok(())
}

/// The card references `start` wrote to `data_dir`, by holder name.
pub fn read_card_refs(data_dir: &Path) -> Result<BTreeMap<String, String>, CityError> {
    let path = data_dir.join(CARDS_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| CityError::file(&path, format!("{e} (start the city first: cargo run -p onecard-city)")))?;
    serde_json::from_str(&text).map_err(|e| CityError::file(&path, e))
}

/// The data folder the city would use with `options` (without starting anything).
pub fn data_dir(options: &CityOptions) -> Result<PathBuf, CityError> {
    read_config(options).map(|(_, dir)| dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_is_read_and_the_data_folder_overrides_it() {
        let (config, dir) = read_config(&CityOptions::default()).expect("onecard.toml");
        assert!(dir.ends_with(".onecard"), "{}", dir.display());
        assert!(config.database.ends_with("city.db"), "{}", config.database);
        assert_eq!(config.gateway.gateway_id, "hz-gw-1");
        let options = CityOptions { data_dir: Some("/tmp/x".into()), listen: Some("127.0.0.1:0".into()), ..CityOptions::default() };
        let (config, dir) = read_config(&options).expect("onecard.toml");
        assert_eq!((config.database.as_str(), config.listen.as_str()), ("/tmp/x/city.db", "127.0.0.1:0"));
        assert_eq!(config.holders, Some(PathBuf::from("/tmp/x/holders.json")));
        assert_eq!(dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn an_unknown_key_in_the_configuration_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("onecard.toml");
        let text = std::fs::read_to_string(paths::config_file()).expect("read") + "\ncolour = \"red\"\n";
        std::fs::write(&path, text).expect("write");
        let err = read_config(&CityOptions { config: path, ..CityOptions::default() }).expect_err("unknown key");
        assert_eq!(err.code(), "CITY_CONFIG_INVALID");
        assert!(err.to_string().contains("colour"), "{err}");
    }
}
