//! The application configuration a hospital (or pharmacy) files with the catalog: its
//! designated-institution code and how it reaches the medical-insurance system.

use onecard_sdk::{HandleError, Request};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The 12-character designated medical institution code (定点医药机构编码), e.g.
    /// `H33010600001`; it starts every message id. Required.
    pub institution_code: String,
    /// Backend name of the medical-insurance system in the catalog entry. Default `insurance`.
    #[serde(default = "default_backend")]
    pub backend: String,
    /// Insurance type sent with a registration that names none. Default `310` (employees' basic
    /// medical insurance).
    #[serde(default = "default_insutype")]
    pub insutype: String,
    /// How long a settlement message may be in flight before `reconcile` treats it as lost and
    /// reverses it, ms. Default 120000 (two minutes, well beyond any backend deadline).
    #[serde(default = "default_in_flight_grace_ms")]
    pub in_flight_grace_ms: u64,
}

fn default_backend() -> String {
    "insurance".into()
}

fn default_insutype() -> String {
    "310".into()
}

fn default_in_flight_grace_ms() -> u64 {
    120_000
}

impl Config {
    /// The configuration of `request`, with the institution code checked.
    pub fn of(request: &Request) -> Result<Self, HandleError> {
        let config: Config = request.config()?;
        let code_ok = config.institution_code.len() == 12 && config.institution_code.bytes().all(|b| b.is_ascii_alphanumeric());
        if !code_ok {
            return Err(HandleError::Internal(format!(
                "configuration: institution_code {:?} must be 12 ASCII letters or digits",
                config.institution_code
            )));
        }
        Ok(config)
    }
}
