//! A small client of a running catalog's admin API, used by `onecard catalog apply|export
//! --url URL --token T`.

use crate::api::response::ErrorBody;
use crate::service::ChangeReport;

/// Why a call to a remote catalog failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The catalog refused the request.
    #[error("{code}: {message} (HTTP {status})")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Stable error code.
        code: String,
        /// Message.
        message: String,
    },
    /// The catalog could not be reached or answered nonsense.
    #[error("cannot talk to the catalog: {0}")]
    Transport(#[from] reqwest::Error),
}

/// A running catalog.
#[derive(Debug, Clone)]
pub struct RemoteCatalog {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl RemoteCatalog {
    /// A client of the catalog at `base` (e.g. `http://127.0.0.1:7400`) using `token`.
    pub fn new(base: &str, token: &str) -> RemoteCatalog {
        RemoteCatalog { base: base.trim_end_matches('/').to_string(), token: token.to_string(), http: reqwest::Client::new() }
    }

    async fn check(resp: reqwest::Response) -> Result<reqwest::Response, RemoteError> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(b) => RemoteError::Refused { status, code: b.error.code, message: b.error.message },
            Err(_) => RemoteError::Refused { status, code: "UNEXPECTED_RESPONSE".into(), message: text },
        })
    }

    /// Applies a catalog file.
    pub async fn apply(&self, src: &str, dry_run: bool) -> Result<ChangeReport, RemoteError> {
        let resp = self
            .http
            .post(format!("{}/v1/admin/apply?dry_run={dry_run}", self.base))
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/toml")
            .body(src.to_string())
            .send()
            .await?;
        Ok(Self::check(resp).await?.json().await?)
    }

    /// Exports the catalog as TOML.
    pub async fn export(&self) -> Result<String, RemoteError> {
        let resp = self.http.get(format!("{}/v1/admin/export", self.base)).bearer_auth(&self.token).send().await?;
        Ok(Self::check(resp).await?.text().await?)
    }
}
