//! The native baseline: a bare axum handler on a loopback port that does, natively, the
//! signature work of the request path and nothing else — channel authentication (signature,
//! timestamp, single-use request nonce) and the card token (issuer signature, validity,
//! single-use spend) against the same keys and the same kind of replay cache — then answers a
//! fixed admission. No catalog lookups beyond the keys, no limits, no plugin, no audit: the
//! ceiling the full gateway is compared with.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use onecard_catalog::model::{Channel, IssuerKey};
use onecard_gateway::auth::{AuthConfig, MemoryNonceStore, NonceStore, RequestParts, authenticate};
use onecard_gateway::error::{GatewayError, codes};
use onecard_gateway::pipeline::body::InvokeBody;
use onecard_gateway::pipeline::new_request_id;
use onecard_gateway::server::router::MAX_BODY_BYTES;
use tokio::task::JoinHandle;

/// The replay cache's size: the gateway's default (`[nonces] capacity`).
const NONCE_CAPACITY: usize = 1_000_000;
/// Clock skew tolerated on card tokens: the gateway's default (`credential_skew_secs`).
const CREDENTIAL_SKEW: Duration = Duration::from_secs(5);

/// What the handler checks against.
#[derive(Debug)]
struct Checks {
    channels: Vec<Channel>,
    issuer_keys: Vec<IssuerKey>,
    nonces: Arc<dyn NonceStore>,
    auth: AuthConfig,
}

/// The running baseline.
#[derive(Debug)]
pub struct NativeServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    task: JoinHandle<()>,
}

impl Drop for NativeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl NativeServer {
    /// Serves the baseline on a free loopback port, checking against `channels` and
    /// `issuer_keys` (the catalog's).
    pub async fn start(channels: Vec<Channel>, issuer_keys: Vec<IssuerKey>) -> anyhow::Result<NativeServer> {
        let checks = Arc::new(Checks {
            channels,
            issuer_keys,
            nonces: Arc::new(MemoryNonceStore::new(NONCE_CAPACITY)),
            auth: AuthConfig::default(),
        });
        let app = Router::new().route("/v1/apps/{app}/actions/{action}", post(enter)).with_state(checks);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            // Answers sent at once, as the gateway's are.
            if let Err(e) = axum::serve(onecard_gateway::server::nodelay::answering_at_once(listener), app).await {
                eprintln!("native baseline stopped: {e}");
            }
        });
        Ok(NativeServer { base: format!("http://{addr}"), task })
    }
}

async fn enter(State(checks): State<Arc<Checks>>, request: Request) -> Response {
    let request_id = new_request_id();
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return GatewayError::of(codes::INVALID_BODY, "the body is too large").into_response_with(&request_id);
    };
    match check(&checks, &parts, &bytes).await {
        Ok(()) => {
            let body = serde_json::json!({
                "request_id": request_id,
                "decision": "allowed",
                "result": {
                    "decision": "admit",
                    "venue": crate::requests::VENUE,
                    "entitlement": { "kind": "standard", "fen": 0 },
                    "admitted_today": 1,
                    "slot": null,
                    "replayed": false,
                },
            });
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Err(e) => e.into_response_with(&request_id),
    }
}

async fn check(checks: &Checks, parts: &axum::http::request::Parts, bytes: &[u8]) -> Result<(), GatewayError> {
    let now = SystemTime::now();
    authenticate(&RequestParts::from_http(parts, bytes), &checks.channels, checks.nonces.as_ref(), now, &checks.auth).await?;
    let body = InvokeBody::parse(bytes)?;
    let token = body
        .credential
        .ok_or_else(|| GatewayError::of(codes::CREDENTIAL_REQUIRED, "the entry needs a card credential"))?;
    onecard_gateway::credential::redeem(&token, &checks.issuer_keys, checks.nonces.as_ref(), now, CREDENTIAL_SKEW).await?;
    Ok(())
}
