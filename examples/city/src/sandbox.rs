//! The sandbox: the TEST DOUBLES of the systems behind the city's applications
//! (`onecard_sandbox`: fare system at `/fare`, medical insurance at `/insurance`, bank at
//! `/bank`, e-CNY operator at `/ecny`), started in-process, and the holders' bank accounts
//! funded so the sample calls can pay. Nothing real moves.

use std::net::SocketAddr;

use tokio::task::JoinHandle;

use crate::CityError;
use crate::holders::DemoHolder;

/// Default address of the doubles: fixed, because the filed backends name it (a new address
/// would be a new filing).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7301";

/// What each test holder's bank accounts start with at every start, fen (1,000 CNY).
pub const OPENING_BALANCE_FEN: u64 = 100_000;

/// Starts the doubles on `addr` (port 0 picks one).
pub async fn start(addr: SocketAddr) -> Result<(SocketAddr, JoinHandle<()>), CityError> {
    onecard_sandbox::spawn(addr).await.map_err(|e| CityError::Sandbox(format!("cannot listen on {addr}: {e}")))
}

/// The bank accounts of the holders: their card's financial account (transit fares, subsidy
/// credits) and the account named by their card reference (the hospital plugin debits the
/// holder's reference).
pub fn bank_accounts(holders: &std::collections::BTreeMap<String, DemoHolder>) -> Vec<String> {
    let mut accounts = Vec::new();
    for h in holders.values() {
        accounts.extend(h.attributes.get("holder.financial_account").cloned());
        accounts.push(h.card_ref.clone());
    }
    accounts
}

/// Sets each of `accounts` at the bank double (`base` = `http://host:port`) to `balance_fen`.
pub async fn fund(base: &str, accounts: &[String], balance_fen: u64) -> Result<(), CityError> {
    let http = reqwest::Client::new();
    for account in accounts {
        let url = format!("{base}/bank/_balances/{account}");
        let answer = http
            .put(&url)
            .json(&serde_json::json!({ "balance_fen": balance_fen }))
            .send()
            .await
            .map_err(|e| CityError::Sandbox(format!("PUT {url}: {e}")))?;
        if !answer.status().is_success() {
            return Err(CityError::Sandbox(format!("PUT {url}: HTTP {}", answer.status())));
        }
    }
    Ok(())
}
