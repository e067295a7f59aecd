//! The medical-insurance interface as the plugin speaks it: one JSON message per transaction
//! (`POST /api/{infno}` with `infno`, `msgid`, `mdtrt_cvs` and `input`), answered with `infcode`
//! 0 and an `output`, or `infcode` -1 and an `err_msg`.
//!
//! What matters for money is the three-way [`Outcome`]: the system answered, the system refused,
//! or nobody knows whether the message took effect (timeout, unreachable, a 5xx, an unreadable
//! answer). Only the last one needs a reversal.

use onecard_sdk::clock::Datetime;
use onecard_sdk::{HandleError, HttpError, http, log};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::Config;
use crate::money;
use crate::msgid;

/// Transaction numbers (`infno`) this plugin sends.
pub mod infno {
    pub const REGISTRATION: &str = "2201";
    pub const FEE_UPLOAD: &str = "2204";
    pub const PRE_SETTLEMENT: &str = "2206";
    pub const SETTLEMENT: &str = "2207";
    /// Settlement at a designated retail pharmacy: no registration, the drugs travel with it.
    pub const PHARMACY_SETTLEMENT: &str = "2102";
    pub const REVERSAL: &str = "2601";
}

/// What became of one message.
#[derive(Debug)]
pub enum Outcome {
    /// `infcode` 0: the transaction took effect; its `output`.
    Answered(Value),
    /// `infcode` other than 0: the system refused; nothing took effect.
    Refused(String),
    /// No readable answer: the transaction may or may not have taken effect.
    Unknown(String),
}

impl Outcome {
    /// The output of a message whose uncertainty harms nobody (no money moved by it).
    pub fn into_output(self) -> Result<Value, HandleError> {
        match self {
            Outcome::Answered(output) => Ok(output),
            Outcome::Refused(message) => Err(refused(&message)),
            Outcome::Unknown(why) => Err(HandleError::backend(
                "INSURANCE_UNAVAILABLE",
                format!("the medical-insurance system did not answer: {why}"),
            )),
        }
    }
}

/// The insurance system refused a transaction: its own words go to the counter.
pub fn refused(err_msg: &str) -> HandleError {
    HandleError::refused("INSURANCE_REFUSED", format!("the medical-insurance system refused: {err_msg}"))
}

#[derive(Deserialize)]
struct Answer {
    infcode: i64,
    #[serde(default)]
    output: Option<Value>,
    #[serde(default)]
    err_msg: Option<String>,
}

/// The sender of messages for one request: the institution, the card holder's certificate, the
/// request's clock.
#[derive(Debug)]
pub struct Insurance<'a> {
    config: &'a Config,
    /// The holder's pseudonym, sent as the medical certificate number (`mdtrt_cert_no`); the
    /// certificate type `03` is the social security card.
    holder_ref: Option<&'a str>,
    now: Datetime,
}

impl<'a> Insurance<'a> {
    pub fn new(config: &'a Config, holder_ref: Option<&'a str>, now: Datetime) -> Self {
        Insurance { config, holder_ref, now }
    }

    pub fn now(&self) -> Datetime {
        self.now
    }

    pub fn config(&self) -> &Config {
        self.config
    }

    /// Allocate the next message id (the kv sequence advances).
    pub fn next_msgid(&self) -> Result<String, HandleError> {
        msgid::next(&self.config.institution_code, &self.now)
    }

    /// Send `input` as transaction `infno` under `msgid`.
    pub fn send(&self, infno: &str, msgid: &str, input: Value) -> Result<Outcome, HandleError> {
        let body = json!({
            "infno": infno,
            "msgid": msgid,
            "mdtrt_cvs": {
                "fixmedins_code": self.config.institution_code,
                "inf_time": msgid::local_timestamp(&self.now),
                "mdtrt_cert_type": "03",
                "mdtrt_cert_no": self.holder_ref.unwrap_or(""),
            },
            "input": input,
        });
        let outcome = match http::post_json(&self.config.backend, &format!("/api/{infno}"), &body) {
            Ok(response) if response.status == 200 => match serde_json::from_slice::<Answer>(&response.body) {
                Ok(Answer { infcode: 0, output, .. }) => Outcome::Answered(output.unwrap_or(Value::Null)),
                Ok(Answer { err_msg, .. }) => Outcome::Refused(err_msg.unwrap_or_else(|| "no reason given".into())),
                Err(e) => Outcome::Unknown(format!("unreadable answer: {e}")),
            },
            Ok(response) => Outcome::Unknown(format!("HTTP status {}", response.status)),
            Err(HttpError::Timeout) => Outcome::Unknown("no answer within the deadline".into()),
            Err(HttpError::Unavailable(why)) => Outcome::Unknown(format!("unreachable: {why}")),
            // The host refused before sending: nothing reached the insurance system.
            Err(e @ (HttpError::BackendNotAllowed(_) | HttpError::InvalidRequest(_))) => return Err(e.into()),
        };
        log::info(&format!("insurance {infno} {msgid}: {}", summary(&outcome)));
        Ok(outcome)
    }
}

fn summary(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Answered(_) => "answered".into(),
        Outcome::Refused(why) => format!("refused ({why})"),
        Outcome::Unknown(why) => format!("unknown ({why})"),
    }
}

/// How a (pre-)settlement splits the bill, in fen; the parts sum to the total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    pub total_fen: u64,
    /// Paid by the pooled insurance fund (统筹基金).
    pub fund_fen: u64,
    /// Paid from the holder's personal medical account (个人账户), inside the insurance system.
    pub personal_account_fen: u64,
    /// Paid by the holder (个人现金支付), through the card's financial account.
    pub self_pay_fen: u64,
}

impl Split {
    /// Read `medfee_sumamt`, `fund_pay`, `acct_pay` and `psn_cash_pay` from a (pre-)settlement
    /// output; `None` when an amount is missing or malformed or the parts do not sum to the total.
    pub fn from_output(output: &Value) -> Option<Split> {
        let amount = |field: &str| output.get(field).and_then(Value::as_str).and_then(money::parse_yuan);
        let split = Split {
            total_fen: amount("medfee_sumamt")?,
            fund_fen: amount("fund_pay")?,
            personal_account_fen: amount("acct_pay")?,
            self_pay_fen: amount("psn_cash_pay")?,
        };
        let parts = split.fund_fen.checked_add(split.personal_account_fen)?.checked_add(split.self_pay_fen)?;
        (parts == split.total_fen).then_some(split)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_must_add_up() {
        let ok = json!({"medfee_sumamt":"300.00","fund_pay":"140.00","acct_pay":"50.00","psn_cash_pay":"110.00"});
        assert_eq!(
            Split::from_output(&ok),
            Some(Split { total_fen: 30_000, fund_fen: 14_000, personal_account_fen: 5_000, self_pay_fen: 11_000 })
        );
        let off_by_a_fen = json!({"medfee_sumamt":"300.00","fund_pay":"140.00","acct_pay":"50.00","psn_cash_pay":"110.01"});
        assert_eq!(Split::from_output(&off_by_a_fen), None);
        let number = json!({"medfee_sumamt":300,"fund_pay":"140.00","acct_pay":"50.00","psn_cash_pay":"110.00"});
        assert_eq!(Split::from_output(&number), None, "amounts travel as decimal strings");
    }
}
