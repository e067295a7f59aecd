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

    /// Uploads a plugin artifact; returns its SHA-256.
    pub async fn upload_artifact(&self, bytes: Vec<u8>) -> Result<String, RemoteError> {
        let resp = self
            .http
            .post(format!("{}/v1/admin/artifacts", self.base))
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/wasm")
            .body(bytes)
            .send()
            .await?;
        let stored: crate::api::admin::ArtifactStored = Self::check(resp).await?.json().await?;
        Ok(stored.sha256)
    }

    /// The signed snapshot (gateways).
    pub async fn snapshot(&self) -> Result<crate::snapshot::SignedSnapshot, RemoteError> {
        let resp = self.http.get(format!("{}/v1/sync/snapshot", self.base)).bearer_auth(&self.token).send().await?;
        Ok(Self::check(resp).await?.json().await?)
    }

    /// Changes after `after`, long-polling up to `wait` (the request's own timeout is `wait`
    /// plus `slack`).
    pub async fn changes(
        &self,
        after: i64,
        wait: std::time::Duration,
        slack: std::time::Duration,
    ) -> Result<crate::feed::ChangePage, RemoteError> {
        let resp = self
            .http
            .get(format!("{}/v1/sync/changes?after={after}&wait_ms={}", self.base, wait.as_millis()))
            .bearer_auth(&self.token)
            .timeout(wait + slack)
            .send()
            .await?;
        Ok(Self::check(resp).await?.json().await?)
    }

    /// Reports the version a gateway enforces.
    pub async fn report(&self, report: &crate::store::GatewayReport) -> Result<(), RemoteError> {
        let resp = self.http.post(format!("{}/v1/sync/report", self.base)).bearer_auth(&self.token).json(report).send().await?;
        Self::check(resp).await?;
        Ok(())
    }

    /// Reports holder-data accesses served by a gateway.
    pub async fn report_accesses(&self, gateway_id: &str, records: &[crate::store::AccessRecord]) -> Result<(), RemoteError> {
        let body = serde_json::json!({ "gateway_id": gateway_id, "records": records });
        let resp = self.http.post(format!("{}/v1/sync/accesses", self.base)).bearer_auth(&self.token).json(&body).send().await?;
        Self::check(resp).await?;
        Ok(())
    }

    /// A plugin artifact by SHA-256.
    pub async fn artifact(&self, sha256: &str) -> Result<Vec<u8>, RemoteError> {
        let resp = self.http.get(format!("{}/v1/sync/artifacts/{sha256}", self.base)).bearer_auth(&self.token).send().await?;
        Ok(Self::check(resp).await?.bytes().await?.to_vec())
    }

    /// The catalog's snapshot-signing public key as published (pin it in configuration).
    pub async fn public_key(&self) -> Result<crate::api::sync::PublicKey, RemoteError> {
        let resp = self.http.get(format!("{}/v1/sync/public-key", self.base)).send().await?;
        Ok(Self::check(resp).await?.json().await?)
    }
}
