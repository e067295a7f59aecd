//! # onecard-sandbox — TEST DOUBLES of external systems. NOT real backends.
//!
//! **Everything here is a simulation for tests and demos.** No money moves, no insurance claim is
//! filed, no trip is billed. These doubles stand in for the systems a city's onecard plugins
//! reach through the gateway's `http` and `payments` capabilities, following the contracts in
//! the plugin helpers' brief, under one prefix each:
//!
//! | prefix | stands in for | contract |
//! |---|---|---|
//! | `/fare` | the transit fare system | `POST /trips` (header `Idempotency-Key` = trip id), `GET /trips` |
//! | `/insurance` | the medical-insurance system | `POST /api/{infno}` messages (9001, 1101, 2201, 2203, 2204, 2206, 2207, 2102, 2601) |
//! | `/bank` | the bank settlement port | `POST /settlements` |
//! | `/ecny` | the e-CNY operator | `POST /wallets`, `GET /wallets/{id}`, `POST /settlements` |
//!
//! Each double also serves, for tests: `PUT /{prefix}/_faults` (delay, error rate, fail the next
//! N requests, process the next N and never answer, answer the next N with a body outside the
//! contract, cut the next N off mid-answer, hold requests until released; see
//! [`faults::Faults`]) and
//! `GET /{prefix}/_state` (what it received and holds: trips, messages, settlements, wallets,
//! balances). The bank and e-CNY doubles also take `PUT /{prefix}/_balances/{account}`
//! `{"balance_fen": n}` to set up an account.
//!
//! Run it with `onecard-sandbox --listen 127.0.0.1:8088`, or start it inside a test with
//! [`spawn`].
#![forbid(unsafe_code)]

pub mod bank;
pub mod ecny;
pub mod fare;
pub mod faults;
pub mod insurance;
pub mod settlement;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router, middleware};
use serde::Serialize;
use tokio::task::JoinHandle;

use faults::Switches;

/// All four doubles under their prefixes, each with fresh state.
pub fn router() -> Router {
    Router::new()
        .nest("/fare", fare::routes())
        .nest("/insurance", insurance::routes())
        .nest("/bank", bank::routes())
        .nest("/ecny", ecny::routes())
}

/// Serve [`router`] on `addr` (port 0 picks a free port) in a background task; the bound address
/// and the task.
pub async fn spawn(addr: SocketAddr) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router()).await {
            eprintln!("onecard-sandbox stopped: {e}");
        }
    });
    Ok((bound, task))
}

/// The state of one double, shared by its handlers.
pub(crate) type Shared<S> = Arc<Mutex<S>>;

pub(crate) fn lock<S>(shared: &Mutex<S>) -> MutexGuard<'_, S> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// A double's router: its business routes behind the fault switches, plus `_faults` and `_state`.
pub(crate) fn backend<S: Serialize + Send + 'static>(business: Router, state: Shared<S>, switches: Switches) -> Router {
    let faults_route = Router::new().route("/_faults", put(faults::put)).with_state(switches.clone());
    let state_route = Router::new().route("/_state", get(show::<S>)).with_state((state, switches.clone()));
    business.layer(middleware::from_fn_with_state(switches, faults::apply)).merge(faults_route).merge(state_route)
}

async fn show<S: Serialize>(State((state, switches)): State<(Shared<S>, Switches)>) -> Response {
    let mut value = serde_json::to_value(&*lock(&state)).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert("faults".into(), serde_json::to_value(faults::current(&switches)).unwrap_or_default());
    }
    Json(value).into_response()
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn spawn_serves_every_double_on_a_free_port() {
        let (addr, server) = super::spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
        assert_ne!(addr.port(), 0);
        for path in ["/fare/_state", "/insurance/_state", "/bank/_state", "/ecny/_state", "/fare/trips"] {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let request = format!("GET {path} HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.unwrap();
            assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
        }
        server.abort();
    }
}
