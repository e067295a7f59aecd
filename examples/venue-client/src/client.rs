//! The call itself: build the invoke body, sign method + path + body with the channel's key,
//! send, read the decision.

use std::path::Path;
use std::time::Duration;

use onecard_gateway::auth::{RequestSigner, SigningKeyFile};
use serde::Serialize;
use serde_json::Value;

use crate::{ClientError, Decision};

/// One call's body (`POST /v1/apps/{app}/actions/{action}`); `None` fields are left out.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Invoke {
    /// The scanned card token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// The action's parameters (a JSON object).
    pub params: Value,
    /// Makes a retry safe; required by money-moving actions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The venue (registered to the application in the catalog).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub venue: Option<String>,
    /// The terminal (gate, counter) that read the card.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminal: Option<String>,
    /// Checks this channel did on the holder for this request (`real_person`: face match
    /// with liveness).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub verified: Vec<String>,
}

/// Calls one gateway as one channel.
#[derive(Debug, Clone)]
pub struct VenueClient {
    gateway: String,
    signer: RequestSigner,
    http: reqwest::Client,
}

/// How long one call may take before the venue gives up (a gate must answer fast).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

impl VenueClient {
    /// A client for `gateway` (`http://host:port`) signing as `channel` with `key`.
    pub fn new(gateway: &str, channel: &str, key: SigningKeyFile) -> Result<VenueClient, ClientError> {
        let gateway = gateway.trim_end_matches('/').to_string();
        if !(gateway.starts_with("http://") || gateway.starts_with("https://")) {
            return Err(ClientError::GatewayUrl(gateway));
        }
        let signer = RequestSigner::new(channel, key.key_id, key.key).map_err(ClientError::Channel)?;
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| ClientError::Unreachable { url: gateway.clone(), message: e.to_string() })?;
        Ok(VenueClient { gateway, signer, http })
    }

    /// As [`new`](Self::new), with the channel key read from a key file.
    pub fn from_key_file(gateway: &str, channel: &str, key_file: &Path) -> Result<VenueClient, ClientError> {
        VenueClient::new(gateway, channel, SigningKeyFile::read(key_file).map_err(ClientError::KeyFile)?)
    }

    /// The channel this client signs as.
    pub fn channel(&self) -> &str {
        self.signer.channel()
    }

    /// Calls `action` of `app`: signs, sends, reads the decision.
    pub async fn invoke(&self, app: &str, action: &str, call: &Invoke) -> Result<Decision, ClientError> {
        if !call.params.is_object() {
            return Err(ClientError::Input("params must be a JSON object".into()));
        }
        let path = format!("/v1/apps/{app}/actions/{action}");
        // The exact bytes sent are the bytes signed.
        let body = serde_json::to_vec(call).map_err(|e| ClientError::Input(e.to_string()))?;
        let headers = self.signer.sign("POST", &path, &body);
        let url = format!("{}{path}", self.gateway);
        let mut request = self.http.post(&url).header("content-type", "application/json").body(body);
        for (name, value) in headers.pairs() {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| ClientError::Unreachable { url: url.clone(), message: e.to_string() })?;
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes = response.bytes().await.map_err(|e| ClientError::Unreachable { url, message: e.to_string() })?;
        Decision::from_answer(status, retry_after, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKeyFile {
        let text = "key_id = \"gate-2026\"\nalgorithm = \"ed25519\"\nprivate_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n";
        SigningKeyFile::parse(text, "test").expect("key file")
    }

    #[test]
    fn bad_urls_channels_and_params_are_refused_before_sending() {
        assert_eq!(VenueClient::new("localhost:7300", "3300000001", key()).unwrap_err().code(), "GATEWAY_URL_INVALID");
        assert_eq!(VenueClient::new("http://127.0.0.1:7300", "33", key()).unwrap_err().code(), "CHANNEL_INVALID");
        let client = VenueClient::new("http://127.0.0.1:9/", "3300000001", key()).unwrap();
        assert_eq!(client.channel(), "3300000001");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let call = Invoke { params: Value::Array(vec![]), ..Invoke::default() };
        assert_eq!(rt.block_on(client.invoke("parks", "enter", &call)).unwrap_err().code(), "INPUT_INVALID");
        let call = Invoke { params: serde_json::json!({}), ..Invoke::default() };
        assert_eq!(rt.block_on(client.invoke("parks", "enter", &call)).unwrap_err().code(), "GATEWAY_UNREACHABLE");
    }

    #[test]
    fn empty_fields_are_left_out_of_the_body() {
        let call = Invoke { params: serde_json::json!({"gate": 1}), venue: Some("v".into()), ..Invoke::default() };
        assert_eq!(serde_json::to_string(&call).unwrap(), r#"{"params":{"gate":1},"venue":"v"}"#);
    }
}
