//! The one place where catalog errors become HTTP responses:
//! `{"error":{"code":"…","message":"…","blame":"caller|catalog"}}` with a fitting status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{Blame, Error, Refusal};

/// The JSON body of every error response.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Code, message and blame of an error.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable SCREAMING_SNAKE code.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Who is to blame: `caller` or `catalog`.
    pub blame: String,
}

fn status(e: &Error) -> StatusCode {
    match e {
        Error::Refused { kind, .. } => match kind {
            Refusal::BadRequest => StatusCode::BAD_REQUEST,
            Refusal::Unauthorized => StatusCode::UNAUTHORIZED,
            Refusal::Forbidden => StatusCode::FORBIDDEN,
            Refusal::NotFound => StatusCode::NOT_FOUND,
            Refusal::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Refusal::Conflict => StatusCode::CONFLICT,
            Refusal::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refusal::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        },
        Error::Database(_) | Error::Migrate(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = status(&self);
        let message = match self.blame() {
            Blame::Caller => self.to_string(),
            Blame::Catalog => {
                // Details of our own failures go to the log, not to callers.
                tracing::error!(error = %self, "catalog failure");
                "the catalog failed to handle the request; try again later".to_string()
            }
        };
        let blame = match self.blame() {
            Blame::Caller => "caller",
            Blame::Catalog => "catalog",
        };
        let body = ErrorBody { error: ErrorDetail { code: self.code().to_string(), message, blame: blame.into() } };
        let mut resp = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}
