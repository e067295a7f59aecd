//! Fault switches, one set per test double, settable at runtime with `PUT /{backend}/_faults`:
//! a delay before every answer, a random error rate, the next N requests failing with a status,
//! the next N requests processed but never answered (the client times out — the case a
//! settlement that must not be retried blindly has to survive), the next N requests answered
//! with a body outside the double's contract, the next N requests cut off (the connection breaks
//! before the answer is complete: the client sees the backend unreachable), and a hold that keeps
//! requests waiting until it is switched off (so a test can have two requests in flight at the
//! same moment without relying on timing: `_state` tells how many wait).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{Full, Limited};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// The fault switches of one backend. Every field is optional in `PUT /_faults`; the body
/// replaces all switches, so `{}` clears them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Wait this long before handling each request, ms. Default 0.
    #[serde(default)]
    pub delay_ms: u64,
    /// Probability (0 to 1) that a request fails with `status` without being processed.
    /// Default 0.
    #[serde(default)]
    pub error_rate: f64,
    /// The next N requests fail with `status` without being processed. Default 0.
    #[serde(default)]
    pub fail_next: u32,
    /// The next N requests are processed and then never answered. Default 0.
    #[serde(default)]
    pub timeout_next: u32,
    /// The next N requests are not processed and are answered 200 with `malformed_body`: an
    /// answer that breaks the double's contract. Default 0.
    #[serde(default)]
    pub malformed_next: u32,
    /// The body of the `malformed_next` answers. Default `{}`.
    #[serde(default = "empty_object")]
    pub malformed_body: Value,
    /// The next N requests are not processed and their connection breaks before the answer is
    /// complete (the client sees the backend unreachable, not slow). Default 0.
    #[serde(default)]
    pub disconnect_next: u32,
    /// While true, every request waits unprocessed before the other switches apply; switching
    /// it off lets the waiting requests go on. `_state` shows how many wait (`held`). Default
    /// false.
    #[serde(default)]
    pub hold: bool,
    /// Status of injected failures. Default 503.
    #[serde(default = "default_status")]
    pub status: u16,
}

fn default_status() -> u16 {
    503
}

fn empty_object() -> Value {
    json!({})
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            delay_ms: 0,
            error_rate: 0.0,
            fail_next: 0,
            timeout_next: 0,
            malformed_next: 0,
            malformed_body: empty_object(),
            disconnect_next: 0,
            hold: false,
            status: default_status(),
        }
    }
}

/// The switches of one backend and the requests its hold keeps waiting.
#[derive(Debug, Default)]
pub struct Board {
    faults: Mutex<Faults>,
    held: AtomicU32,
    released: Notify,
}

impl Board {
    fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The switches of one backend, shared by its routes.
pub type Switches = Arc<Board>;

/// The switches in force and how many requests the hold keeps waiting, as `_state` shows them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InForce {
    #[serde(flatten)]
    pub faults: Faults,
    /// Requests waiting on `hold` now.
    pub held: u32,
}

enum Decision {
    Pass,
    Fail(StatusCode),
    Hang,
    Malformed(Value),
    Disconnect,
}

fn decide(switches: &Switches) -> (u64, Decision) {
    let mut faults = switches.faults();
    let status = StatusCode::from_u16(faults.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let decision = if faults.fail_next > 0 {
        faults.fail_next -= 1;
        Decision::Fail(status)
    } else if faults.timeout_next > 0 {
        faults.timeout_next -= 1;
        Decision::Hang
    } else if faults.malformed_next > 0 {
        faults.malformed_next -= 1;
        Decision::Malformed(faults.malformed_body.clone())
    } else if faults.disconnect_next > 0 {
        faults.disconnect_next -= 1;
        Decision::Disconnect
    } else if faults.error_rate > 0.0 && rand::random::<f64>() < faults.error_rate {
        Decision::Fail(status)
    } else {
        Decision::Pass
    };
    (faults.delay_ms, decision)
}

/// Counts a request waiting on the hold for as long as it waits (also when its client gives up).
struct Waiting<'a>(&'a AtomicU32);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Wait while the hold is on.
async fn held(switches: &Switches) {
    loop {
        let released = switches.released.notified();
        tokio::pin!(released);
        // Registered before the hold is read, so a release in between is not missed.
        released.as_mut().enable();
        if !switches.faults().hold {
            return;
        }
        switches.held.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&switches.held);
        released.await;
    }
}

/// An answer whose body fails after the status line: the connection is closed mid-answer.
fn cut_off() -> Response {
    // A body of two bytes limited to one: announced with `content-length: 1`, it errors on its
    // first read, so the server closes the connection before a byte of it is sent. (A limit of 0
    // would announce an empty body, a complete answer.)
    let body = Limited::new(Full::new(Bytes::from_static(b"{}")), 1);
    (StatusCode::OK, [("content-type", "application/json")], Body::new(body)).into_response()
}

/// Middleware over a backend's business routes (not its `_faults` and `_state` routes).
pub async fn apply(State(switches): State<Switches>, request: Request, next: Next) -> Response {
    held(&switches).await;
    let (delay_ms, decision) = decide(&switches);
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    match decision {
        Decision::Pass => next.run(request).await,
        Decision::Fail(status) => {
            (status, Json(json!({ "error": "unavailable", "message": "fault injected by the sandbox" }))).into_response()
        }
        Decision::Hang => {
            drop(next.run(request).await);
            // Until the client gives up and the connection (and this future) is dropped.
            std::future::pending::<Response>().await
        }
        Decision::Malformed(body) => Json(body).into_response(),
        Decision::Disconnect => cut_off(),
    }
}

/// `PUT /_faults`: replace the switches; answers the switches now in force. Switching the hold
/// off releases the requests it kept waiting.
pub async fn put(State(switches): State<Switches>, Json(faults): Json<Faults>) -> Response {
    if !(0.0..=1.0).contains(&faults.error_rate) || !(400..=599).contains(&faults.status) {
        let message = "error_rate must be within 0..=1 and status an HTTP error status (400..=599)";
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "error": "invalid_faults", "message": message }))).into_response();
    }
    *switches.faults() = faults.clone();
    if !faults.hold {
        switches.released.notify_waiters();
    }
    Json(faults).into_response()
}

/// The switches now in force, for `_state`.
pub fn current(switches: &Switches) -> InForce {
    InForce { faults: switches.faults().clone(), held: switches.held.load(Ordering::SeqCst) }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::post;
    use serde_json::json;

    use crate::testing::{call, request};

    #[derive(Debug, Default, serde::Serialize)]
    struct Count {
        processed: u64,
    }

    /// A double that counts what it processed, behind the switches.
    fn counter() -> Router {
        let state: crate::Shared<Count> = Default::default();
        let business = Router::new()
            .route(
                "/work",
                post(|axum::extract::State(s): axum::extract::State<crate::Shared<Count>>| async move {
                    crate::lock(&s).processed += 1;
                    axum::Json(json!({ "done": true }))
                }),
            )
            .with_state(std::sync::Arc::clone(&state));
        crate::backend(business, state, Default::default())
    }

    async fn processed(app: &Router) -> u64 {
        call(app, request("GET", "/_state", None)).await.1["processed"].as_u64().expect("processed")
    }

    #[tokio::test]
    async fn malformed_answers_are_not_processed_and_say_what_they_were_told() {
        let app = counter();
        call(&app, request("PUT", "/_faults", Some(json!({ "malformed_next": 1, "malformed_body": { "infcode": 0 } })))).await;
        let (status, body) = call(&app, request("POST", "/work", None)).await;
        assert_eq!((status, body), (StatusCode::OK, json!({ "infcode": 0 })));
        assert_eq!(processed(&app).await, 0);
        let (_, body) = call(&app, request("POST", "/work", None)).await;
        assert_eq!(body, json!({ "done": true }));
        assert_eq!(processed(&app).await, 1);
    }

    /// One request over a real connection; everything the server sent until it closed.
    async fn over_tcp(addr: std::net::SocketAddr) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"POST /work HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").await.unwrap();
        let mut answer = Vec::new();
        // A reset connection ends the answer too.
        let _ = stream.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn a_disconnected_request_is_not_processed_and_its_answer_breaks_off() {
        let app = counter();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = app.clone();
        let server = tokio::spawn(async move { axum::serve(listener, served).await });
        call(&app, request("PUT", "/_faults", Some(json!({ "disconnect_next": 1 })))).await;
        let answer = over_tcp(addr).await;
        // Whatever came before the connection closed, it is not a complete answer: the body it
        // announces never arrives.
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let announced: usize = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
            .unwrap_or(usize::MAX);
        assert!(body.len() < announced, "a complete answer: {answer:?}");
        assert_eq!(processed(&app).await, 0);
        let again = over_tcp(addr).await;
        assert!(again.starts_with("HTTP/1.1 200") && again.contains(r#"{"done":true}"#), "{again}");
        server.abort();
    }

    #[tokio::test]
    async fn the_hold_keeps_requests_waiting_until_it_is_switched_off() {
        let app = counter();
        call(&app, request("PUT", "/_faults", Some(json!({ "hold": true })))).await;
        let waiting: Vec<_> = (0..2).map(|_| tokio::spawn(call_owned(app.clone()))).collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let (_, state) = call(&app, request("GET", "/_state", None)).await;
            if state["faults"]["held"] == 2 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "the requests never reached the hold: {state}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(processed(&app).await, 0, "nothing processed while held");
        call(&app, request("PUT", "/_faults", Some(json!({})))).await;
        for task in waiting {
            assert_eq!(task.await.unwrap(), StatusCode::OK);
        }
        assert_eq!(processed(&app).await, 2);
        let (_, state) = call(&app, request("GET", "/_state", None)).await;
        assert_eq!(state["faults"]["held"], 0);
    }

    async fn call_owned(app: Router) -> StatusCode {
        call(&app, request("POST", "/work", None)).await.0
    }
}
