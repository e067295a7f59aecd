//! Helpers of the doubles' own tests: one request through a router with `oneshot`.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub fn request(method: &str, uri: &str, body: Option<Value>) -> Request<Body> {
    let builder = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    builder.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).unwrap()
}

pub fn with_header(method: &str, uri: &str, body: Option<Value>, name: &str, value: &str) -> Request<Body> {
    let mut r = request(method, uri, body);
    r.headers_mut().insert(axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
    r
}

/// Send `request` and read the JSON answer (`Null` when the body is not JSON).
pub async fn call(app: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Send `request` and expect no answer within `wait`.
pub async fn unanswered(app: &Router, request: Request<Body>, wait: Duration) {
    let answered = tokio::time::timeout(wait, app.clone().oneshot(request)).await;
    assert!(answered.is_err(), "the double answered a request it was told to leave unanswered");
}
