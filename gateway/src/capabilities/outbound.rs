//! The gateway's real outbound clients: [`ReqwestHttp`] sends a plugin's `http` requests to the
//! backends its catalog entry names, and [`HttpSettlementPort`] speaks the settlement-port
//! protocol (docs/PLUGINS.md) to a bank or the e-CNY operator for the `payments` capability.
//! Both bound every request by the backend's deadline and never follow redirects, so a plugin
//! cannot be steered to a host the catalog did not name.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::http::{BackendTarget, HttpClient};
use super::payments::SettlementPort;
use crate::bindings::onecard::plugin::http::{HttpError, IncomingResponse, Method, OutgoingRequest};
use crate::bindings::onecard::plugin::payments::{Kind, Payment, PaymentError, Receipt};

/// Largest backend answer handed to a plugin, bytes.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

/// Outbound HTTP over a shared connection pool.
#[derive(Debug, Clone)]
pub struct ReqwestHttp {
    client: reqwest::Client,
}

impl Default for ReqwestHttp {
    fn default() -> Self {
        ReqwestHttp { client: client() }
    }
}

fn join(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}

fn transport_error(e: &reqwest::Error) -> HttpError {
    if e.is_timeout() { HttpError::Timeout } else { HttpError::Unavailable(e.to_string()) }
}

#[async_trait]
impl HttpClient for ReqwestHttp {
    async fn send(&self, _name: &str, target: &BackendTarget, request: OutgoingRequest) -> Result<IncomingResponse, HttpError> {
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self
            .client
            .request(method, join(&target.base_url, &request.path))
            .timeout(Duration::from_millis(target.timeout_ms))
            .body(request.body);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let response = builder.send().await.map_err(|e| transport_error(&e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_string(), v.to_string())))
            .collect();
        let body = response.bytes().await.map_err(|e| transport_error(&e))?;
        if body.len() > MAX_RESPONSE_BYTES {
            return Err(HttpError::InvalidRequest(format!("the backend answered more than {MAX_RESPONSE_BYTES} bytes")));
        }
        Ok(IncomingResponse { status, headers, body: body.to_vec() })
    }
}

/// The settlement port of one application, reached over HTTP.
#[derive(Debug, Clone)]
pub struct HttpSettlementPort {
    client: reqwest::Client,
    target: BackendTarget,
}

#[derive(Serialize)]
struct SettlementRequest<'a> {
    kind: &'static str,
    account: &'a str,
    amount_fen: u64,
    reference: &'a str,
    idempotency_key: &'a str,
    original_receipt: Option<&'a str>,
}

#[derive(Deserialize)]
struct SettlementReceipt {
    receipt_id: String,
    amount_fen: u64,
    settled_at_ms: i64,
}

#[derive(Deserialize, Default)]
struct SettlementRefusal {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

impl HttpSettlementPort {
    /// A port at `target` (its base URL serves `POST /settlements`).
    pub fn new(target: BackendTarget) -> Self {
        HttpSettlementPort { client: client(), target }
    }
}

#[async_trait]
impl SettlementPort for HttpSettlementPort {
    async fn submit(&self, _app: &str, payment: Payment) -> Result<Receipt, PaymentError> {
        let body = SettlementRequest {
            kind: match payment.kind {
                Kind::Debit => "debit",
                Kind::Credit => "credit",
                Kind::Refund => "refund",
            },
            account: &payment.account,
            amount_fen: payment.amount_fen,
            reference: &payment.reference,
            idempotency_key: &payment.idempotency_key,
            original_receipt: payment.original_receipt.as_deref(),
        };
        let response = self
            .client
            .post(join(&self.target.base_url, "/settlements"))
            .timeout(Duration::from_millis(self.target.timeout_ms))
            .json(&body)
            .send()
            .await
            .map_err(|e| if e.is_timeout() { PaymentError::Timeout } else { PaymentError::Unavailable(e.to_string()) })?;
        let status = response.status().as_u16();
        if status == 200 {
            let r: SettlementReceipt =
                response.json().await.map_err(|e| PaymentError::Unavailable(format!("unreadable receipt: {e}")))?;
            return Ok(Receipt { id: r.receipt_id, amount_fen: r.amount_fen, settled_at_ms: r.settled_at_ms });
        }
        let refusal: SettlementRefusal = response.json().await.unwrap_or_default();
        let message = refusal.message.or(refusal.error).unwrap_or_else(|| format!("status {status}"));
        Err(match status {
            402 => PaymentError::InsufficientFunds,
            422 => PaymentError::Declined(message),
            429 => PaymentError::LimitExceeded(message),
            _ => PaymentError::Unavailable(message),
        })
    }
}

/// The settlement port of an application whose catalog entry names none: every payment is
/// refused as unavailable, so a misconfigured application cannot move money.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSettlementPort;

#[async_trait]
impl SettlementPort for NoSettlementPort {
    async fn submit(&self, app: &str, _payment: Payment) -> Result<Receipt, PaymentError> {
        Err(PaymentError::Unavailable(format!("application `{app}` has no `settlement` backend in its catalog entry")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;

    async fn serve(router: axum::Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{addr}")
    }

    fn payment() -> Payment {
        Payment { kind: Kind::Debit, account: "a".into(), amount_fen: 300, reference: "r".into(), idempotency_key: "k".into(), original_receipt: None }
    }

    #[tokio::test]
    async fn settlement_port_maps_answers() {
        let base = serve(axum::Router::new().route(
            "/ok/settlements",
            post(|| async { axum::Json(serde_json::json!({"receipt_id": "r1", "amount_fen": 300, "settled_at_ms": 5})) }),
        ).route(
            "/poor/settlements",
            post(|| async { (axum::http::StatusCode::PAYMENT_REQUIRED, axum::Json(serde_json::json!({"error": "insufficient_funds"}))) }),
        ).route(
            "/slow/settlements",
            post(|| async { tokio::time::sleep(Duration::from_secs(5)).await; "late" }),
        )).await;
        let port = |p: &str, timeout_ms| HttpSettlementPort::new(BackendTarget { base_url: format!("{base}/{p}"), timeout_ms });
        let r = port("ok", 2000).submit("x", payment()).await.unwrap();
        assert_eq!((r.id.as_str(), r.amount_fen), ("r1", 300));
        assert_eq!(port("poor", 2000).submit("x", payment()).await, Err(PaymentError::InsufficientFunds));
        assert_eq!(port("slow", 100).submit("x", payment()).await, Err(PaymentError::Timeout));
    }

    #[tokio::test]
    async fn http_client_appends_the_path_and_times_out() {
        let base = serve(axum::Router::new()
            .route("/api/echo", post(|body: String| async move { body }))
            .route("/api/slow", post(|| async { tokio::time::sleep(Duration::from_secs(5)).await; "late" }))).await;
        let http = ReqwestHttp::default();
        let target = |timeout_ms| BackendTarget { base_url: format!("{base}/api/"), timeout_ms };
        let req = |path: &str| OutgoingRequest { method: Method::Post, path: path.into(), headers: vec![], body: b"hi".to_vec() };
        let r = http.send("b", &target(2000), req("/echo")).await.unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, b"hi".as_slice()));
        assert_eq!(http.send("b", &target(100), req("/slow")).await, Err(HttpError::Timeout));
    }
}
