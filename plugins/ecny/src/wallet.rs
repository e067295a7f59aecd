//! `load_wallet` and `balance`: bind a hard wallet to the card, and tell what it holds.

use onecard_sdk::{HandleError, Request, Response, clock, kv};
use serde::Deserialize;
use serde_json::json;

use crate::config::Config;
use crate::limits;
use crate::operator;
use crate::records::{self, WalletRecord, wallet_key};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadParams {
    tier: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

/// How long an opening may stay in progress before another request may try again, ms.
const OPENING_TTL_MS: u64 = 60_000;

pub fn load(request: &Request) -> Result<Response, HandleError> {
    let params: LoadParams = request.params()?;
    let config: Config = request.config()?;
    let holder = &request.card()?.holder_ref;
    if !config.tiers.contains_key(&params.tier) {
        return Err(HandleError::invalid(
            "TIER_UNKNOWN",
            format!("parameters: field `tier`: `{}` is not a wallet tier here ({})", params.tier, config.tiers.keys().cloned().collect::<Vec<_>>().join(", ")),
        ));
    }
    let key = wallet_key(holder);
    let me = request.idempotency_key.clone();
    let opening = records::bytes(&WalletRecord::Opening { request: me.clone() })?;
    match records::get::<WalletRecord>(&key)? {
        Some((_, WalletRecord::Loaded { wallet_id, tier, request })) if request == me => {
            return loaded(&config, &wallet_id, &tier, true);
        }
        Some((_, WalletRecord::Loaded { .. })) => {
            return Err(HandleError::refused("WALLET_ALREADY_LOADED", "an e-CNY hard wallet is already loaded on this card"));
        }
        Some((_, WalletRecord::Opening { request })) if request != me => {
            return Err(HandleError::refused("WALLET_LOAD_IN_PROGRESS", "a wallet is being loaded on this card by another request"));
        }
        Some(_) => {} // this request's own opening, retried
        None => {
            if !kv::compare_and_swap(&key, None, &opening, Some(OPENING_TTL_MS))? {
                return Err(HandleError::refused("WALLET_LOAD_IN_PROGRESS", "a wallet is being loaded on this card by another request"));
            }
        }
    }

    let opened = match operator::open(&config.backend, holder, &params.tier) {
        Ok(opened) => opened,
        Err(e) => {
            // The operator binds one hard wallet per holder, so a retry after a failed opening
            // finds the same wallet: the marker can go.
            kv::delete(&key)?;
            return Err(e);
        }
    };
    let record = WalletRecord::Loaded { wallet_id: opened.wallet_id.clone(), tier: params.tier.clone(), request: me };
    if !kv::compare_and_swap(&key, Some(&opening), &records::bytes(&record)?, None)? {
        return Err(HandleError::refused("WALLET_LOAD_IN_PROGRESS", "the wallet opening took too long; load it again"));
    }
    loaded(&config, &opened.wallet_id, &params.tier, false)
}

fn loaded(config: &Config, wallet_id: &str, tier: &str, replayed: bool) -> Result<Response, HandleError> {
    Response::json(&json!({ "wallet_id": wallet_id, "tier": tier, "limits": config.tier(tier)?, "replayed": replayed }))
}

pub fn balance(request: &Request) -> Result<Response, HandleError> {
    let _: NoParams = request.params()?;
    let config: Config = request.config()?;
    let holder = &request.card()?.holder_ref;
    let (wallet_id, tier) = records::loaded_wallet(holder)?;
    let limits = config.tier(&tier)?;
    let view = operator::wallet(&config.backend, &wallet_id)?;
    let spent = limits::spent(&limits::daily_key(&wallet_id, &clock::now()))?;
    Response::json(&json!({
        "wallet_id": wallet_id,
        "tier": tier,
        "balance_fen": view.balance_fen,
        "limits": limits,
        "paid_today_fen": spent,
        "daily_remaining_fen": limits.daily_payment_limit_fen.saturating_sub(spent),
    }))
}
