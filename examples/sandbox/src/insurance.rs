//! TEST DOUBLE of the medical-insurance system (the national interface's message style).
//!
//! `POST /api/{infno}` with `{"infno", "msgid", "mdtrt_cvs": {..., "mdtrt_cert_no"}, "input"}`;
//! answers `{"infcode": 0, "msgid", "output"}` or `{"infcode": -1, "msgid", "err_msg"}` (HTTP 200
//! either way). The insured person is the `mdtrt_cvs.mdtrt_cert_no` (the card holder's
//! reference). Message ids must be 12 letters or digits (institution) + 18 digits (local time,
//! sequence) and are never accepted twice. Amounts are two-decimal yuan strings.
//!
//! | infno | does |
//! |---|---|
//! | 9001 | sign-in: `{"sign_no"}` |
//! | 1101 | person info: `{"baseinfo": {"psn_no"}, "insuinfo": {"balc"}}` |
//! | 2201 | registration: `{"mdtrt_id", "psn_no"}` |
//! | 2203 | visit information (diagnosis) for a registered visit |
//! | 2204 | fee upload, lines keyed by `feedetl_sn` (a line sent again replaces itself) |
//! | 2206 | pre-settlement of a visit's uploaded fees |
//! | 2207 | settlement (its `medfee_sumamt` must be the uploaded total) |
//! | 2102 | pharmacy settlement, drug lines in `drugdetail` |
//! | 2601 | reversal of `omsgid` (a settlement of `oinfno`): `{"reversed": bool}` |
//!
//! The split is deterministic ([`Rules`]): the fund pays `fund_permille` of the total above the
//! deductible, the personal account pays what it can of the rest, the holder pays the remainder.
//! A reversed settlement disappears from the state and its personal-account part is restored.
//! `PUT /_rules` changes the rules.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{Shared, lock};

/// How the double splits a bill.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Fees up to this are not paid by the fund, fen. Default 10000 (100 CNY).
    #[serde(default = "default_deductible")]
    pub deductible_fen: u64,
    /// The fund's share above the deductible, per mille. Default 700.
    #[serde(default = "default_fund_permille")]
    pub fund_permille: u64,
    /// Personal-account balance of a person seen for the first time, fen. Default 5000.
    #[serde(default = "default_account")]
    pub opening_account_fen: u64,
}

fn default_deductible() -> u64 {
    10_000
}
fn default_fund_permille() -> u64 {
    700
}
fn default_account() -> u64 {
    5_000
}

impl Default for Rules {
    fn default() -> Self {
        Rules { deductible_fen: default_deductible(), fund_permille: default_fund_permille(), opening_account_fen: default_account() }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Person {
    pub psn_no: String,
    pub account_fen: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Visit {
    pub cert_no: String,
    pub psn_no: String,
    pub dept_code: String,
    pub diagnosis: Option<String>,
    /// Fee lines by serial number: amount in fen.
    pub fees: BTreeMap<String, u64>,
    /// The message id of the settlement that stands, if any.
    pub settled_by: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Settled {
    pub infno: String,
    pub setl_id: String,
    pub cert_no: String,
    pub mdtrt_id: Option<String>,
    pub total_fen: u64,
    pub fund_fen: u64,
    pub account_fen: u64,
    pub self_pay_fen: u64,
}

/// One message received and how it was answered.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    pub infno: String,
    pub msgid: String,
    pub infcode: i64,
    pub input: Value,
}

#[derive(Debug, Default, Serialize)]
pub struct InsuranceState {
    pub rules: Rules,
    pub persons: BTreeMap<String, Person>,
    pub visits: BTreeMap<String, Visit>,
    /// Settlements that stand, by message id.
    pub settlements: BTreeMap<String, Settled>,
    pub received: Vec<Received>,
    sign_ins: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    infno: String,
    msgid: String,
    #[serde(default)]
    mdtrt_cvs: Value,
    #[serde(default)]
    input: Value,
}

pub fn routes() -> Router {
    let state: Shared<InsuranceState> = Arc::new(Mutex::new(InsuranceState::default()));
    let business = Router::new().route("/api/{infno}", post(message)).with_state(Arc::clone(&state));
    let setup = Router::new().route("/_rules", put(set_rules)).with_state(Arc::clone(&state));
    crate::backend(business, state, Default::default()).merge(setup)
}

async fn set_rules(State(state): State<Shared<InsuranceState>>, Json(rules): Json<Rules>) -> Json<Rules> {
    lock(&state).rules = rules.clone();
    Json(rules)
}

/// `12345` fen → `"123.45"`.
pub fn yuan(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// `"123.45"` (at most two decimals) → fen.
pub fn fen(value: &Value) -> Result<u64, String> {
    let text = value.as_str().ok_or_else(|| format!("amount {value} is not a decimal string"))?;
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || fraction.len() > 2 || (text.contains('.') && !digits(fraction)) {
        return Err(format!("amount {text:?} is not a two-decimal amount"));
    }
    let cents = format!("{fraction:0<2}").parse::<u64>().map_err(|e| e.to_string())?;
    whole.parse::<u64>().ok().and_then(|y| y.checked_mul(100)?.checked_add(cents)).ok_or_else(|| format!("amount {text:?} too large"))
}

fn msgid_ok(msgid: &str) -> bool {
    msgid.len() == 30 && msgid[..12].bytes().all(|b| b.is_ascii_alphanumeric()) && msgid[12..].bytes().all(|b| b.is_ascii_digit())
}

async fn message(State(state): State<Shared<InsuranceState>>, Path(infno): Path<String>, body: Bytes) -> Response {
    let envelope: Envelope = match serde_json::from_slice(&body) {
        Ok(envelope) => envelope,
        Err(e) => return Json(json!({ "infcode": -1, "err_msg": format!("unreadable message: {e}") })).into_response(),
    };
    let mut state = lock(&state);
    let result = if envelope.infno != infno {
        Err(format!("infno {} does not match the path's {infno}", envelope.infno))
    } else if !msgid_ok(&envelope.msgid) {
        Err(format!("msgid {:?} is not institution code (12) + time (14) + sequence (4)", envelope.msgid))
    } else if state.received.iter().any(|r| r.msgid == envelope.msgid) {
        Err(format!("duplicate msgid {}", envelope.msgid))
    } else {
        let cert_no = envelope.mdtrt_cvs.get("mdtrt_cert_no").and_then(Value::as_str).unwrap_or_default().to_owned();
        state.handle(&infno, &envelope.msgid, &cert_no, &envelope.input)
    };
    let infcode = if result.is_ok() { 0 } else { -1 };
    state.received.push(Received { infno, msgid: envelope.msgid.clone(), infcode, input: envelope.input });
    Json(match result {
        Ok(output) => json!({ "infcode": 0, "msgid": envelope.msgid, "output": output }),
        Err(err_msg) => json!({ "infcode": -1, "msgid": envelope.msgid, "err_msg": err_msg }),
    })
    .into_response()
}

fn text<'a>(input: &'a Value, field: &str) -> Result<&'a str, String> {
    input.get(field).and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or_else(|| format!("input.{field} is required"))
}

impl InsuranceState {
    fn person(&mut self, cert_no: &str) -> Result<&mut Person, String> {
        if cert_no.is_empty() {
            return Err("mdtrt_cvs.mdtrt_cert_no is required".into());
        }
        let next = self.persons.len() + 1;
        let opening = self.rules.opening_account_fen;
        Ok(self.persons.entry(cert_no.into()).or_insert_with(|| Person { psn_no: format!("P{next:06}"), account_fen: opening }))
    }

    fn visit(&mut self, input: &Value, cert_no: &str) -> Result<(String, &mut Visit), String> {
        let id = text(input, "mdtrt_id")?.to_owned();
        match self.visits.get_mut(&id) {
            Some(visit) if visit.cert_no == cert_no => Ok((id, visit)),
            _ => Err(format!("no visit {id} of this person")),
        }
    }

    fn handle(&mut self, infno: &str, msgid: &str, cert_no: &str, input: &Value) -> Result<Value, String> {
        match infno {
            "9001" => {
                self.sign_ins += 1;
                Ok(json!({ "sign_no": format!("SIGN{:08}", self.sign_ins) }))
            }
            "1101" => {
                let person = self.person(cert_no)?;
                Ok(json!({ "baseinfo": { "psn_no": person.psn_no }, "insuinfo": { "insutype": "310", "balc": yuan(person.account_fen) } }))
            }
            "2201" => {
                let dept_code = text(input, "dept_code")?.to_owned();
                let psn_no = self.person(cert_no)?.psn_no.clone();
                // Unique across restarts of this double, as a real system's ids are: from the
                // message id, which the hospital never reuses.
                let id = format!("MDT{}", &msgid[msgid.len().saturating_sub(18)..]);
                let visit = Visit { cert_no: cert_no.into(), psn_no: psn_no.clone(), dept_code, diagnosis: None, fees: BTreeMap::new(), settled_by: None };
                self.visits.insert(id.clone(), visit);
                Ok(json!({ "mdtrt_id": id, "psn_no": psn_no }))
            }
            "2203" => {
                let diagnosis = text(input, "dise_codg")?.to_owned();
                let (id, visit) = self.visit(input, cert_no)?;
                visit.diagnosis = Some(diagnosis);
                Ok(json!({ "mdtrt_id": id }))
            }
            "2204" => {
                let lines = lines(input, "feedetail")?;
                let (id, visit) = self.visit(input, cert_no)?;
                if visit.settled_by.is_some() {
                    return Err(format!("visit {id} is settled"));
                }
                visit.fees.extend(lines);
                Ok(json!({ "mdtrt_id": id, "count": visit.fees.len(), "fee_sumamt": yuan(visit.fees.values().sum()) }))
            }
            "2206" | "2207" => {
                let (id, visit) = self.visit(input, cert_no)?;
                if visit.settled_by.is_some() {
                    return Err(format!("visit {id} is settled"));
                }
                let total: u64 = visit.fees.values().sum();
                if total == 0 {
                    return Err(format!("visit {id} has no fees"));
                }
                if infno == "2207" && fen(input.get("medfee_sumamt").unwrap_or(&Value::Null))? != total {
                    return Err(format!("medfee_sumamt differs from the uploaded fees of {}", yuan(total)));
                }
                self.settle(infno, msgid, cert_no, Some(id), total)
            }
            "2102" => {
                let lines = lines(input, "drugdetail")?;
                let total: u64 = lines.iter().map(|(_, fee)| fee).sum();
                if fen(input.get("medfee_sumamt").unwrap_or(&Value::Null))? != total || total == 0 {
                    return Err("medfee_sumamt differs from the drug lines".into());
                }
                self.settle(infno, msgid, cert_no, None, total)
            }
            "2601" => {
                let original = text(input, "omsgid")?;
                let oinfno = text(input, "oinfno")?;
                let Some(settled) = self.settlements.get(original) else {
                    return Ok(json!({ "reversed": false }));
                };
                if settled.infno != oinfno {
                    return Err(format!("{original} was a {} message, not {oinfno}", settled.infno));
                }
                let settled = self.settlements.remove(original).ok_or("vanished")?;
                if let Some(person) = self.persons.get_mut(&settled.cert_no) {
                    person.account_fen += settled.account_fen;
                }
                if let Some(visit) = settled.mdtrt_id.and_then(|id| self.visits.get_mut(&id)) {
                    visit.settled_by = None;
                }
                Ok(json!({ "reversed": true }))
            }
            other => Err(format!("infno {other} is not supported by this double")),
        }
    }

    /// Split `total` (and, for 2207/2102, settle it under `msgid`).
    fn settle(&mut self, infno: &str, msgid: &str, cert_no: &str, mdtrt_id: Option<String>, total: u64) -> Result<Value, String> {
        let rules = self.rules.clone();
        let person = self.person(cert_no)?;
        let fund = total.saturating_sub(rules.deductible_fen) * rules.fund_permille / 1000;
        let account = person.account_fen.min(total - fund);
        let self_pay = total - fund - account;
        let setl_id = format!("SETL{}", &msgid[msgid.len().saturating_sub(18)..]);
        if infno != "2206" {
            person.account_fen -= account;
            if let Some(visit) = mdtrt_id.as_ref().and_then(|id| self.visits.get_mut(id)) {
                visit.settled_by = Some(msgid.into());
            }
            let settled = Settled {
                infno: infno.into(),
                setl_id: setl_id.clone(),
                cert_no: cert_no.into(),
                mdtrt_id: mdtrt_id.clone(),
                total_fen: total,
                fund_fen: fund,
                account_fen: account,
                self_pay_fen: self_pay,
            };
            self.settlements.insert(msgid.into(), settled);
        }
        Ok(json!({
            "setl_id": if infno == "2206" { Value::Null } else { json!(setl_id) },
            "mdtrt_id": mdtrt_id,
            "medfee_sumamt": yuan(total),
            "fund_pay": yuan(fund),
            "acct_pay": yuan(account),
            "psn_cash_pay": yuan(self_pay),
        }))
    }
}

/// Fee or drug lines: `feedetl_sn`, `cnt`, `pric`, `det_item_fee_sumamt` (= cnt × pric).
fn lines(input: &Value, field: &str) -> Result<Vec<(String, u64)>, String> {
    let lines = input.get(field).and_then(Value::as_array).filter(|l| !l.is_empty()).ok_or_else(|| format!("input.{field} is required"))?;
    lines
        .iter()
        .map(|line| {
            let sn = text(line, "feedetl_sn")?.to_owned();
            let count = line.get("cnt").and_then(Value::as_u64).ok_or_else(|| format!("line {sn}: cnt must be a whole number"))?;
            let price = fen(line.get("pric").unwrap_or(&Value::Null))?;
            let amount = fen(line.get("det_item_fee_sumamt").unwrap_or(&Value::Null))?;
            if count.checked_mul(price) != Some(amount) {
                return Err(format!("line {sn}: det_item_fee_sumamt is not cnt × pric"));
            }
            Ok((sn, amount))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::{fen, yuan};
    use crate::testing::{call, request, unanswered};

    const HOLDER: &str = "holder-1";

    struct Counter(u32);

    impl Counter {
        fn msgid(&mut self) -> String {
            self.0 += 1;
            format!("H33010600001{}{:04}", "20261123100000", self.0)
        }
    }

    fn message(infno: &str, msgid: &str, input: Value) -> axum::http::Request<axum::body::Body> {
        let body = json!({"infno": infno, "msgid": msgid, "mdtrt_cvs": {"mdtrt_cert_type": "03", "mdtrt_cert_no": HOLDER}, "input": input});
        request("POST", &format!("/api/{infno}"), Some(body))
    }

    async fn send(app: &axum::Router, ids: &mut Counter, infno: &str, input: Value) -> Value {
        call(app, message(infno, &ids.msgid(), input)).await.1
    }

    async fn visit_with_fees(app: &axum::Router, ids: &mut Counter, fee_fen: u64) -> String {
        let registered = send(app, ids, "2201", json!({"dept_code": "D01", "insutype": "310"})).await;
        let id = registered["output"]["mdtrt_id"].as_str().unwrap().to_owned();
        let line = json!({"feedetl_sn": "1", "med_list_codg": "X", "cnt": 1, "pric": yuan(fee_fen), "det_item_fee_sumamt": yuan(fee_fen)});
        let uploaded = send(app, ids, "2204", json!({"mdtrt_id": id, "feedetail": [line]})).await;
        assert_eq!(uploaded["infcode"], 0, "{uploaded}");
        id
    }

    #[tokio::test]
    async fn a_visit_is_split_deterministically_and_settled_once() {
        let app = super::routes();
        let mut ids = Counter(0);
        let id = visit_with_fees(&app, &mut ids, 30_000).await;
        let pre = send(&app, &mut ids, "2206", json!({"mdtrt_id": id, "medfee_sumamt": "300.00"})).await;
        assert_eq!(pre["output"]["fund_pay"], "140.00");
        assert_eq!(pre["output"]["acct_pay"], "50.00");
        assert_eq!(pre["output"]["psn_cash_pay"], "110.00");
        let settled = send(&app, &mut ids, "2207", json!({"mdtrt_id": id, "medfee_sumamt": "300.00"})).await;
        assert_eq!(settled["infcode"], 0);
        assert!(settled["output"]["setl_id"].is_string());
        let parts: u64 = ["fund_pay", "acct_pay", "psn_cash_pay"].iter().map(|f| fen(&settled["output"][f]).unwrap()).sum();
        assert_eq!(parts, 30_000);
        let twice = send(&app, &mut ids, "2207", json!({"mdtrt_id": id, "medfee_sumamt": "300.00"})).await;
        assert_eq!(twice["infcode"], -1, "a settled visit settles no more");
        let (_, state) = call(&app, request("GET", "/_state", None)).await;
        assert_eq!(state["settlements"].as_object().unwrap().len(), 1);
        assert_eq!(state["persons"][HOLDER]["account_fen"], 0);
    }

    #[tokio::test]
    async fn a_reversed_settlement_disappears_and_restores_the_account() {
        let app = super::routes();
        let mut ids = Counter(0);
        let id = visit_with_fees(&app, &mut ids, 30_000).await;
        let msgid = ids.msgid();
        call(&app, message("2207", &msgid, json!({"mdtrt_id": id, "medfee_sumamt": "300.00"}))).await;
        let reversed = send(&app, &mut ids, "2601", json!({"omsgid": msgid, "oinfno": "2207"})).await;
        assert_eq!(reversed["output"]["reversed"], true);
        let again = send(&app, &mut ids, "2601", json!({"omsgid": msgid, "oinfno": "2207"})).await;
        assert_eq!(again["output"]["reversed"], false, "nothing left to reverse");
        let (_, state) = call(&app, request("GET", "/_state", None)).await;
        assert_eq!(state["settlements"], json!({}));
        assert_eq!(state["persons"][HOLDER]["account_fen"], 5_000);
        assert_eq!(state["visits"][&id]["settled_by"], Value::Null);
        let settled = send(&app, &mut ids, "2207", json!({"mdtrt_id": id, "medfee_sumamt": "300.00"})).await;
        assert_eq!(settled["infcode"], 0, "the visit can be settled again after the reversal");
    }

    #[tokio::test]
    async fn a_settlement_left_unanswered_still_stands_until_reversed() {
        let app = super::routes();
        let mut ids = Counter(0);
        let id = visit_with_fees(&app, &mut ids, 20_000).await;
        call(&app, request("PUT", "/_faults", Some(json!({"timeout_next": 1})))).await;
        let msgid = ids.msgid();
        unanswered(&app, message("2207", &msgid, json!({"mdtrt_id": id, "medfee_sumamt": "200.00"})), Duration::from_millis(200)).await;
        let (_, state) = call(&app, request("GET", "/_state", None)).await;
        assert!(state["settlements"].get(&msgid).is_some());
        assert_eq!(state["faults"]["timeout_next"], 0);
        let reversed = send(&app, &mut ids, "2601", json!({"omsgid": msgid, "oinfno": "2207"})).await;
        assert_eq!(reversed["output"]["reversed"], true);
    }

    #[tokio::test]
    async fn message_ids_are_checked_and_never_accepted_twice() {
        let app = super::routes();
        let (_, bad) = call(&app, message("9001", "H3301-short", json!({}))).await;
        assert_eq!(bad["infcode"], -1);
        let msgid = "H33010600001202611231000000001";
        let (_, first) = call(&app, message("9001", msgid, json!({}))).await;
        assert_eq!(first["infcode"], 0);
        let (_, again) = call(&app, message("9001", msgid, json!({}))).await;
        assert_eq!(again["infcode"], -1);
        assert!(again["err_msg"].as_str().unwrap().contains("duplicate"));
        let (_, mismatch) = call(&app, request("POST", "/api/2207", Some(json!({"infno": "2206", "msgid": "H33010600001202611231000000002"})))).await;
        assert_eq!(mismatch["infcode"], -1);
    }

    #[tokio::test]
    async fn a_pharmacy_settlement_checks_its_lines() {
        let app = super::routes();
        let mut ids = Counter(0);
        let line = json!({"feedetl_sn": "1", "med_list_codg": "XC", "cnt": 3, "pric": "12.50", "det_item_fee_sumamt": "37.50"});
        let ok = send(&app, &mut ids, "2102", json!({"medfee_sumamt": "37.50", "drugdetail": [line]})).await;
        assert_eq!(ok["output"]["acct_pay"], "37.50");
        let wrong = json!({"feedetl_sn": "1", "med_list_codg": "XC", "cnt": 3, "pric": "12.50", "det_item_fee_sumamt": "37.51"});
        let refused = send(&app, &mut ids, "2102", json!({"medfee_sumamt": "37.51", "drugdetail": [wrong]})).await;
        assert_eq!(refused["infcode"], -1);
    }

    #[test]
    fn amounts_convert_exactly() {
        assert_eq!(fen(&json!("123.45")), Ok(12_345));
        assert_eq!(fen(&json!("0.5")), Ok(50));
        assert_eq!(fen(&json!("7")), Ok(700));
        assert!(fen(&json!(1.5)).is_err());
        assert!(fen(&json!("1.234")).is_err());
        assert!(fen(&json!("1.")).is_err());
        assert_eq!(yuan(5), "0.05");
    }
}
