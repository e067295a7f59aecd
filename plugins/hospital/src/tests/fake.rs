//! A scripted medical-insurance system for the native tests: it answers like the sandbox double
//! (`examples/sandbox`), keeps visits, fees and settlements, and can be told to misbehave on the
//! next message of a given transaction.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use onecard_sdk::HttpError;
use onecard_sdk::http::{IncomingResponse, OutgoingRequest};
use onecard_sdk::testing::Harness;
use serde_json::{Value, json};

use crate::money::{parse_yuan, to_yuan};

/// Fees up to this are paid by the holder (personal account, then self-pay).
pub const DEDUCTIBLE_FEN: u64 = 10_000;
/// The fund pays this share (per mille) of fees above the deductible.
pub const FUND_PERMILLE: u64 = 700;

#[derive(Debug, Clone)]
pub enum Fault {
    /// Process the message, then never answer (the client times out).
    LostAnswer,
    /// Never receive the message (unreachable).
    Unreachable,
    /// Answer `infcode` -1 with this message.
    Refuse(&'static str),
    /// Answer an HTTP error status without processing.
    Status(u16),
    /// Answer `infcode` 0 with an empty output.
    EmptyOutput,
    /// Process, then the plugin instance dies with the message out (a trap, a crash).
    Crash,
    /// Process, but answer a split whose self-pay is one fen more than the total allows.
    SkewedSplit,
}

#[derive(Debug, Default)]
pub struct Fake {
    pub account_fen: u64,
    /// mdtrt_id -> (fees by sn, settled by msgid)
    pub visits: BTreeMap<String, (BTreeMap<String, u64>, Option<String>)>,
    /// msgid -> (infno, personal account part)
    pub settlements: BTreeMap<String, (String, u64)>,
    /// (infno, msgid, input) of every message received, in order.
    pub received: Vec<(String, String, Value)>,
    pub faults: VecDeque<(&'static str, Fault)>,
    next_visit: u32,
}

pub type Shared = Rc<RefCell<Fake>>;

/// Install a fake insurance system (personal account holding `account_fen`) on `h`.
pub fn install(h: &mut Harness, account_fen: u64) -> Shared {
    let fake = Rc::new(RefCell::new(Fake { account_fen, ..Fake::default() }));
    let script = Rc::clone(&fake);
    h.on_http(move |backend, request| {
        assert_eq!(backend, "insurance");
        script.borrow_mut().answer(request)
    });
    fake
}

/// How the fake splits `total`: the fund 70 % above the deductible, then the account, then cash.
pub fn split(total: u64, account: u64) -> (u64, u64, u64) {
    let fund = total.saturating_sub(DEDUCTIBLE_FEN) * FUND_PERMILLE / 1000;
    let acct = account.min(total - fund);
    (fund, acct, total - fund - acct)
}

impl Fake {
    pub fn fail_next(&mut self, infno: &'static str, fault: Fault) {
        self.faults.push_back((infno, fault));
    }

    pub fn infnos(&self) -> Vec<&str> {
        self.received.iter().map(|(i, _, _)| i.as_str()).collect()
    }

    pub fn last(&self, infno: &str) -> (String, Value) {
        let (_, msgid, input) = self.received.iter().rev().find(|(i, _, _)| i == infno).expect("message received");
        (msgid.clone(), input.clone())
    }

    fn answer(&mut self, request: &OutgoingRequest) -> Result<IncomingResponse, HttpError> {
        let body: Value = serde_json::from_slice(&request.body).expect("JSON message");
        let infno = body["infno"].as_str().expect("infno").to_owned();
        assert_eq!(request.path, format!("/api/{infno}"));
        let msgid = body["msgid"].as_str().expect("msgid").to_owned();
        assert!(self.received.iter().all(|(_, m, _)| *m != msgid), "message id {msgid} reused");
        let fault = self.faults.iter().position(|(i, _)| *i == infno).and_then(|at| self.faults.remove(at)).map(|(_, f)| f);
        if matches!(fault, Some(Fault::Unreachable)) {
            return Err(HttpError::Unavailable("connection refused".into()));
        }
        self.received.push((infno.clone(), msgid.clone(), body["input"].clone()));
        let answer = match fault {
            Some(Fault::Refuse(why)) => json!({"infcode": -1, "msgid": msgid, "err_msg": why}),
            Some(Fault::Status(status)) => return Ok(IncomingResponse { status, headers: vec![], body: b"busy".to_vec() }),
            Some(Fault::EmptyOutput) => json!({"infcode": 0, "msgid": msgid, "output": {}}),
            _ => match self.process(&infno, &msgid, &body["input"]) {
                Ok(mut output) => {
                    if matches!(fault, Some(Fault::SkewedSplit)) {
                        let cash = parse_yuan(output["psn_cash_pay"].as_str().unwrap()).unwrap();
                        output["psn_cash_pay"] = json!(to_yuan(cash + 1));
                    }
                    json!({"infcode": 0, "msgid": msgid, "output": output})
                }
                Err(why) => json!({"infcode": -1, "msgid": msgid, "err_msg": why}),
            },
        };
        if matches!(fault, Some(Fault::Crash)) {
            panic!("the instance died while {infno} {msgid} was out");
        }
        if matches!(fault, Some(Fault::LostAnswer)) {
            return Err(HttpError::Timeout);
        }
        Ok(IncomingResponse { status: 200, headers: vec![], body: serde_json::to_vec(&answer).unwrap() })
    }

    fn process(&mut self, infno: &str, msgid: &str, input: &Value) -> Result<Value, String> {
        let amount = |v: &Value| v.as_str().and_then(parse_yuan).ok_or_else(|| format!("bad amount {v}"));
        match infno {
            "2201" => {
                self.next_visit += 1;
                let id = format!("MD{:04}", self.next_visit);
                self.visits.insert(id.clone(), (BTreeMap::new(), None));
                Ok(json!({"mdtrt_id": id, "psn_no": "PSN0001"}))
            }
            "2204" => {
                let id = input["mdtrt_id"].as_str().unwrap();
                let (fees, _) = self.visits.get_mut(id).ok_or("unknown visit")?;
                for line in input["feedetail"].as_array().unwrap() {
                    let fee = amount(&line["det_item_fee_sumamt"])?;
                    assert_eq!(fee, amount(&line["pric"])? * line["cnt"].as_u64().unwrap(), "line amount = count × price");
                    fees.insert(line["feedetl_sn"].as_str().unwrap().to_owned(), fee);
                }
                Ok(json!({"mdtrt_id": id}))
            }
            "2206" | "2207" => {
                let id = input["mdtrt_id"].as_str().unwrap();
                let (fees, settled) = self.visits.get(id).ok_or("unknown visit")?;
                if settled.is_some() {
                    return Err("visit already settled".into());
                }
                let total: u64 = fees.values().sum();
                if infno == "2207" && total != amount(&input["medfee_sumamt"])? {
                    return Err("medfee_sumamt differs from the uploaded fees".into());
                }
                let output = self.split_output(total, msgid);
                if infno == "2207" {
                    self.settle(msgid, infno, &output);
                    self.visits.get_mut(id).unwrap().1 = Some(msgid.into());
                }
                Ok(output)
            }
            "2102" => {
                let total = amount(&input["medfee_sumamt"])?;
                let output = self.split_output(total, msgid);
                self.settle(msgid, infno, &output);
                Ok(output)
            }
            "2601" => {
                let original = input["omsgid"].as_str().unwrap();
                let reversed = match self.settlements.remove(original) {
                    Some((oinfno, acct)) => {
                        assert_eq!(input["oinfno"], oinfno);
                        self.account_fen += acct;
                        for (_, settled) in self.visits.values_mut() {
                            if settled.as_deref() == Some(original) {
                                *settled = None;
                            }
                        }
                        true
                    }
                    None => false,
                };
                Ok(json!({"reversed": reversed}))
            }
            other => Err(format!("unsupported infno {other}")),
        }
    }

    fn split_output(&self, total: u64, msgid: &str) -> Value {
        let (fund, acct, cash) = split(total, self.account_fen);
        json!({
            "setl_id": format!("SETL-{msgid}"),
            "medfee_sumamt": to_yuan(total),
            "fund_pay": to_yuan(fund),
            "acct_pay": to_yuan(acct),
            "psn_cash_pay": to_yuan(cash),
        })
    }

    fn settle(&mut self, msgid: &str, infno: &str, output: &Value) {
        let acct = parse_yuan(output["acct_pay"].as_str().unwrap()).unwrap();
        self.account_fen -= acct;
        self.settlements.insert(msgid.into(), (infno.into(), acct));
    }
}
