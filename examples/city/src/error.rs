//! Why the example city could not start or play its calls; each case has a stable code.

/// A failure of the example city.
#[derive(Debug, thiserror::Error)]
pub enum CityError {
    /// A file of the city (data folder, configuration, holder data) could not be read or written.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The gateway configuration is not valid.
    #[error("{0}")]
    Config(String),
    /// The holder data file is not valid.
    #[error("examples/city/holders.json: {0}")]
    Holders(String),
    /// A plugin component could not be read or loaded.
    #[error("plugin {app}: {message}")]
    Plugin {
        /// The application.
        app: String,
        /// What went wrong.
        message: String,
    },
    /// The catalog refused or failed.
    #[error("catalog: {0}")]
    Catalog(#[from] onecard_catalog::Error),
    /// The sandbox doubles could not start or be set up.
    #[error("sandbox: {0}")]
    Sandbox(String),
    /// The server did not start.
    #[error("server: {0}")]
    Serve(String),
    /// A sample call could not be made.
    #[error("sample call {step}: {source}")]
    Call {
        /// Which call.
        step: String,
        /// Why.
        #[source]
        source: onecard_venue_client::ClientError,
    },
}

impl CityError {
    /// The stable code of this failure.
    pub fn code(&self) -> &'static str {
        match self {
            CityError::File { .. } => "CITY_FILE",
            CityError::Config(_) => "CITY_CONFIG_INVALID",
            CityError::Holders(_) => "CITY_HOLDERS_INVALID",
            CityError::Plugin { .. } => "CITY_PLUGIN_UNUSABLE",
            CityError::Catalog(_) => "CITY_CATALOG_REFUSED",
            CityError::Sandbox(_) => "CITY_SANDBOX_FAILED",
            CityError::Serve(_) => "CITY_SERVE_FAILED",
            CityError::Call { .. } => "CITY_CALL_FAILED",
        }
    }

    pub(crate) fn file(path: &std::path::Path, e: impl std::fmt::Display) -> CityError {
        CityError::File { path: path.display().to_string(), message: e.to_string() }
    }
}
