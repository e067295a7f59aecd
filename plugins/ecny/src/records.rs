//! What the plugin keeps in kv: the wallet loaded on each holder's card (`wallet:{holder}`) and
//! one record per wallet operation (`op:{wallet}:{op_id}`) so that a retried top-up or payment is
//! answered again instead of moving money or counting towards a limit twice.

use onecard_sdk::{HandleError, kv};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The card's hard wallet, or the marker of an opening in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub enum WalletRecord {
    /// An opening is under way for the request with this idempotency key.
    Opening { request: String },
    Loaded { wallet_id: String, tier: String, request: String },
}

/// A top-up or payment and how far it got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpRecord {
    pub kind: String,
    pub amount_fen: u64,
    pub merchant: Option<String>,
    /// The daily-total key the amount is reserved under (payments only).
    pub reserved_on: Option<String>,
    /// The answer, once the money moved.
    pub response: Option<Value>,
}

impl OpRecord {
    /// The same operation (a retry), as opposed to another one reusing the op id.
    pub fn same_as(&self, other: &OpRecord) -> bool {
        self.kind == other.kind && self.amount_fen == other.amount_fen && self.merchant == other.merchant
    }
}

pub fn wallet_key(holder_ref: &str) -> String {
    format!("wallet:{holder_ref}")
}

pub fn op_key(wallet_id: &str, op_id: &str) -> String {
    format!("op:{wallet_id}:{op_id}")
}

pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<(Vec<u8>, T)>, HandleError> {
    let Some(bytes) = kv::get(key)? else { return Ok(None) };
    let value = serde_json::from_slice(&bytes).map_err(|e| HandleError::Internal(format!("kv record `{key}` is unreadable: {e}")))?;
    Ok(Some((bytes, value)))
}

pub fn bytes<T: Serialize>(value: &T) -> Result<Vec<u8>, HandleError> {
    serde_json::to_vec(value).map_err(|e| HandleError::Internal(format!("kv record not serializable: {e}")))
}

/// The holder's loaded wallet: `(wallet_id, tier)`.
pub fn loaded_wallet(holder_ref: &str) -> Result<(String, String), HandleError> {
    match get::<WalletRecord>(&wallet_key(holder_ref))? {
        Some((_, WalletRecord::Loaded { wallet_id, tier, .. })) => Ok((wallet_id, tier)),
        _ => Err(HandleError::refused("WALLET_NOT_LOADED", "no e-CNY hard wallet is loaded on this card")),
    }
}
