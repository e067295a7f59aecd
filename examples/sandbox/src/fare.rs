//! TEST DOUBLE of the transit fare system: it records the trips gates upload.
//!
//! `POST /trips` with header `Idempotency-Key: <trip id>` and body `{"trip_id", "holder_ref",
//! "entry": {"station", "at_ms"} | null, "exit": … | null, "fare_fen", "rule"}` answers
//! `{"accepted": true, "duplicate": bool}`; the same trip again is a duplicate, the same trip id
//! with other content a 409. `GET /trips` lists what was recorded.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{Shared, lock};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tap {
    pub station: String,
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trip {
    pub trip_id: String,
    pub holder_ref: String,
    #[serde(default)]
    pub entry: Option<Tap>,
    #[serde(default)]
    pub exit: Option<Tap>,
    pub fare_fen: u64,
    pub rule: String,
}

#[derive(Debug, Default, Serialize)]
pub struct FareState {
    /// Trips recorded, in order of arrival.
    pub trips: Vec<Trip>,
    /// Every upload received, duplicates included: (idempotency key, trip id).
    pub received: Vec<(String, String)>,
}

pub fn routes() -> Router {
    let state: Shared<FareState> = Arc::new(Mutex::new(FareState::default()));
    let business = Router::new().route("/trips", post(record).get(list)).with_state(Arc::clone(&state));
    crate::backend(business, state, Default::default())
}

fn bad(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": "bad_request", "message": message }))).into_response()
}

async fn record(State(state): State<Shared<FareState>>, headers: HeaderMap, body: Bytes) -> Response {
    let trip: Trip = match serde_json::from_slice(&body) {
        Ok(trip) => trip,
        Err(e) => return bad(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned) else {
        return bad(StatusCode::BAD_REQUEST, "the Idempotency-Key header is required".into());
    };
    if key != trip.trip_id {
        return bad(StatusCode::BAD_REQUEST, "the Idempotency-Key header must be the trip id".into());
    }
    if trip.entry.is_none() && trip.exit.is_none() {
        return bad(StatusCode::BAD_REQUEST, "a trip has an entry, an exit or both".into());
    }
    let mut state = lock(&state);
    state.received.push((key, trip.trip_id.clone()));
    let duplicate = match state.trips.iter().find(|t| t.trip_id == trip.trip_id) {
        Some(known) if *known == trip => true,
        Some(_) => {
            return (StatusCode::CONFLICT, Json(json!({ "error": "conflict", "message": "trip id already recorded with other content" })))
                .into_response();
        }
        None => false,
    };
    if !duplicate {
        state.trips.push(trip);
    }
    Json(json!({ "accepted": true, "duplicate": duplicate })).into_response()
}

async fn list(State(state): State<Shared<FareState>>) -> Json<Vec<Trip>> {
    Json(lock(&state).trips.clone())
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::json;

    use crate::testing::{call, with_header};

    fn trip(id: &str, fare: u64) -> serde_json::Value {
        json!({"trip_id": id, "holder_ref": "h1", "entry": {"station": "S01", "at_ms": 1}, "exit": {"station": "S05", "at_ms": 2}, "fare_fen": fare, "rule": "distance"})
    }

    #[tokio::test]
    async fn a_trip_is_recorded_once_by_its_id() {
        let app = super::routes();
        let (status, body) = call(&app, with_header("POST", "/trips", Some(trip("T1", 300)), "Idempotency-Key", "T1")).await;
        assert_eq!((status, body["duplicate"].as_bool()), (StatusCode::OK, Some(false)));
        let (_, again) = call(&app, with_header("POST", "/trips", Some(trip("T1", 300)), "Idempotency-Key", "T1")).await;
        assert_eq!(again["duplicate"], true);
        let (status, _) = call(&app, with_header("POST", "/trips", Some(trip("T1", 400)), "Idempotency-Key", "T1")).await;
        assert_eq!(status, StatusCode::CONFLICT);
        let (_, trips) = call(&app, crate::testing::request("GET", "/trips", None)).await;
        assert_eq!(trips.as_array().unwrap().len(), 1);
        let (_, state) = call(&app, crate::testing::request("GET", "/_state", None)).await;
        assert_eq!(state["received"].as_array().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn the_idempotency_key_must_be_the_trip_id() {
        let app = super::routes();
        let (status, _) = call(&app, crate::testing::request("POST", "/trips", Some(trip("T1", 300)))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = call(&app, with_header("POST", "/trips", Some(trip("T1", 300)), "Idempotency-Key", "T2")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (_, state) = call(&app, crate::testing::request("GET", "/_state", None)).await;
        assert_eq!(state["trips"], json!([]));
    }

    #[tokio::test]
    async fn fail_next_refuses_without_recording() {
        let app = super::routes();
        let (status, faults) = call(&app, crate::testing::request("PUT", "/_faults", Some(json!({"fail_next": 1, "status": 502})))).await;
        assert_eq!((status, faults["fail_next"].as_u64()), (StatusCode::OK, Some(1)));
        let (status, _) = call(&app, with_header("POST", "/trips", Some(trip("T1", 300)), "Idempotency-Key", "T1")).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        let (_, state) = call(&app, crate::testing::request("GET", "/_state", None)).await;
        assert_eq!(state["trips"], json!([]));
        assert_eq!(state["faults"]["fail_next"], 0);
        let (status, _) = call(&app, with_header("POST", "/trips", Some(trip("T1", 300)), "Idempotency-Key", "T1")).await;
        assert_eq!(status, StatusCode::OK);
    }
}
