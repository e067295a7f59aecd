//! The e-CNY operator's wallet API, reached through `http`: open a hard wallet bound to the card
//! (`POST /wallets`) and read its balance (`GET /wallets/{id}`). Money itself moves through the
//! settlement port (`payments`), never through these calls.

use onecard_sdk::http::{self, Method, OutgoingRequest};
use onecard_sdk::{HandleError, HttpError};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
pub struct Opened {
    pub wallet_id: String,
}

#[derive(Debug, Deserialize)]
pub struct WalletView {
    pub wallet_id: String,
    pub balance_fen: u64,
}

fn unavailable(e: HttpError) -> HandleError {
    match e {
        HttpError::Timeout => HandleError::backend("ECNY_UNAVAILABLE", "the e-CNY operator did not answer in time"),
        HttpError::Unavailable(m) => HandleError::backend("ECNY_UNAVAILABLE", format!("the e-CNY operator is unreachable: {m}")),
        other => other.into(),
    }
}

fn read<T: for<'de> Deserialize<'de>>(status: u16, body: &[u8], what: &str) -> Result<T, HandleError> {
    match status {
        200 => serde_json::from_slice(body)
            .map_err(|e| HandleError::backend("ECNY_MALFORMED", format!("the operator's {what} answer is unreadable: {e}"))),
        400..=499 => {
            let message = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v.get("message").or(v.get("error")).and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| format!("HTTP {status}"));
            Err(HandleError::refused("ECNY_REFUSED", format!("the e-CNY operator refused the {what}: {message}")))
        }
        _ => Err(HandleError::backend("ECNY_UNAVAILABLE", format!("the e-CNY operator answered HTTP {status}"))),
    }
}

/// Open (or find again: the operator binds one hard wallet to a holder) the holder's wallet.
pub fn open(backend: &str, holder_ref: &str, tier: &str) -> Result<Opened, HandleError> {
    let response = http::post_json(backend, "/wallets", &json!({ "holder_ref": holder_ref, "tier": tier })).map_err(unavailable)?;
    read(response.status, &response.body, "wallet opening")
}

pub fn wallet(backend: &str, wallet_id: &str) -> Result<WalletView, HandleError> {
    let request = OutgoingRequest { method: Method::Get, path: format!("/wallets/{wallet_id}"), headers: vec![], body: vec![] };
    let response = http::send(backend, &request).map_err(unavailable)?;
    let view: WalletView = read(response.status, &response.body, "balance query")?;
    if view.wallet_id != wallet_id {
        return Err(HandleError::backend("ECNY_MALFORMED", "the operator answered for another wallet"));
    }
    Ok(view)
}
