//! Host capability errors and how `?` turns them into a [`HandleError`].
//!
//! A failing host call is almost always a backend problem (the blame is the backend's), except
//! where the catalog refused it (a backend or scope not granted): that is a plugin bug, because
//! the plugin asks only for what it declared.

use crate::types::HandleError;

pub use crate::bindings::onecard::plugin::card::CardError;
pub use crate::bindings::onecard::plugin::http::HttpError;
pub use crate::bindings::onecard::plugin::kv::KvError;
pub use crate::bindings::onecard::plugin::payments::PaymentError;

impl From<KvError> for HandleError {
    fn from(e: KvError) -> Self {
        match e {
            KvError::Unavailable(m) => HandleError::backend("KV_UNAVAILABLE", m),
            KvError::TooLarge(m) => HandleError::Internal(format!("kv: too large: {m}")),
            KvError::NotANumber => HandleError::Internal("kv: value is not a number".into()),
        }
    }
}

impl From<HttpError> for HandleError {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Timeout => HandleError::backend("BACKEND_TIMEOUT", "backend did not answer in time"),
            HttpError::Unavailable(m) => HandleError::backend("BACKEND_UNAVAILABLE", m),
            HttpError::BackendNotAllowed(b) => {
                HandleError::Internal(format!("http: backend `{b}` is not granted to this application"))
            }
            HttpError::InvalidRequest(m) => HandleError::Internal(format!("http: invalid request: {m}")),
        }
    }
}

impl From<PaymentError> for HandleError {
    fn from(e: PaymentError) -> Self {
        match e {
            PaymentError::Declined(m) => HandleError::refused("PAYMENT_DECLINED", m),
            PaymentError::InsufficientFunds => {
                HandleError::refused("INSUFFICIENT_FUNDS", "the account balance is too low")
            }
            PaymentError::LimitExceeded(m) => HandleError::refused("PAYMENT_LIMIT_EXCEEDED", m),
            PaymentError::Timeout => HandleError::backend("PAYMENT_TIMEOUT", "settlement did not answer in time"),
            PaymentError::Unavailable(m) => HandleError::backend("PAYMENT_UNAVAILABLE", m),
        }
    }
}

impl From<CardError> for HandleError {
    fn from(e: CardError) -> Self {
        match e {
            CardError::NoCard => HandleError::invalid("CARD_REQUIRED", "the action needs a presented card"),
            CardError::NotConsented(scope) => {
                HandleError::Internal(format!("card: scope `{scope}` was not declared or consented"))
            }
        }
    }
}
