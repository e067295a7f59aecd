//! Extractors that turn every malformed request into a catalog [`Error`] with a stable code:
//! JSON bodies, query strings, path parameters, the bearer token and the holder header.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::AppState;
use crate::error::{Error, Refusal, codes};
use crate::roles::Principal;

/// A JSON body; rejections become `MALFORMED_JSON`, `UNKNOWN_FIELD`, `WRONG_TYPE`,
/// `MISSING_FIELD`, `PAYLOAD_TOO_LARGE` or `UNSUPPORTED_MEDIA_TYPE`.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                let v = v.trim();
                v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
            });
        if !is_json {
            return Err(Error::refused(
                Refusal::UnsupportedMediaType,
                codes::UNSUPPORTED_MEDIA_TYPE,
                "the body must be JSON with content-type application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                Error::bad_request(codes::INVALID_BODY, rej.body_text())
            }
        })?;
        // Syntax first, then shape: a well-formed body of the wrong shape is never "malformed".
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::bad_request(codes::MALFORMED_JSON, format!("the body is not valid JSON: {e}")))?;
        serde_path_to_error::deserialize(value).map(Json).map_err(|e| {
            let text = e.to_string();
            let code = if text.contains("unknown field") {
                codes::UNKNOWN_FIELD
            } else if text.contains("invalid type") || text.contains("invalid value") || text.contains("unknown variant") {
                codes::WRONG_TYPE
            } else if text.contains("missing field") {
                codes::MISSING_FIELD
            } else {
                codes::INVALID_BODY
            };
            Error::refused(Refusal::Unprocessable, code, format!("the body does not fit: {text}"))
        })
    }
}

/// The refusal of an oversized body.
pub fn too_large() -> Error {
    Error::refused(Refusal::PayloadTooLarge, codes::PAYLOAD_TOO_LARGE, "the request body is too large")
}

/// A text body (the declarative TOML), size-limited like every body.
#[derive(Debug)]
pub struct Text(pub String);

impl<S: Send + Sync> FromRequest<S> for Text {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        String::from_request(req, state).await.map(Text).map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                Error::bad_request(codes::INVALID_BODY, rej.body_text())
            }
        })
    }
}

/// A query string.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|rej| Error::bad_request(codes::INVALID_QUERY, rej.body_text()))
    }
}

/// Path parameters.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|rej| Error::bad_request(codes::INVALID_PATH, rej.body_text()))
    }
}

/// The principal behind `Authorization: Bearer <token>`.
#[derive(Debug)]
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            return Err(Error::refused(Refusal::Unauthorized, codes::TOKEN_MISSING, "send Authorization: Bearer <token>"));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::refused(Refusal::Unauthorized, codes::TOKEN_MISSING, "the Authorization header is not Bearer <token>"))?;
        Ok(Auth(state.store.authenticate(token).await?))
    }
}

/// The holder a channel acts for: `x-onecard-holder-ssn`, resolved to the card reference.
#[derive(Debug)]
pub struct Holder(pub String);

/// The header naming the holder a channel acts for.
pub const HOLDER_HEADER: &str = "x-onecard-holder-ssn";

impl FromRequestParts<AppState> for Holder {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let ssn = parts
            .headers
            .get(HOLDER_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::bad_request(codes::HOLDER_MISSING, format!("send the holder's ID number in {HOLDER_HEADER}")))?;
        Ok(Holder(state.store.card_ref(ssn).await?))
    }
}
