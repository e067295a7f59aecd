//! The outpatient actions: `register` (2201), `upload_fees` (2204), `presettle` (2206) and
//! `settle` (2207).

use onecard_sdk::{HandleError, Request, Response, clock, kv};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::Config;
use crate::fees::{self, FeeLine};
use crate::insurance::{Insurance, Split, infno};
use crate::money::to_yuan;
use crate::msgid;
use crate::record::{Stored, Visit, visit_key};
use crate::settlement::{self, Job};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterParams {
    dept_code: String,
    insutype: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadParams {
    mdtrt_id: String,
    items: Vec<FeeLine>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VisitParams {
    mdtrt_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettleParams {
    mdtrt_id: String,
    /// The total the holder confirmed after pre-settlement.
    total_fen: u64,
}

fn visit_unknown(mdtrt_id: &str) -> HandleError {
    HandleError::refused("VISIT_UNKNOWN", format!("no registered visit {mdtrt_id:?} for this card holder"))
}

/// The visit `mdtrt_id`; when `holder` is given, it must be that holder's.
fn load_visit(mdtrt_id: &str, holder: Option<&str>) -> Result<Stored<Visit>, HandleError> {
    match Stored::<Visit>::load(visit_key(mdtrt_id))? {
        Some(visit) if holder.is_none_or(|h| h == visit.value.holder_ref) => Ok(visit),
        _ => Err(visit_unknown(mdtrt_id)),
    }
}

fn not_open(mdtrt_id: &str) -> HandleError {
    HandleError::refused("VISIT_SETTLED", format!("visit {mdtrt_id} is settled or being settled; its fees can no longer change"))
}

fn malformed(what: &str, output: &Value) -> HandleError {
    HandleError::backend("INSURANCE_MALFORMED", format!("the insurance system's {what} answer is incomplete: {output}"))
}

pub fn register(request: &Request) -> Result<Response, HandleError> {
    let params: RegisterParams = request.params()?;
    let config = Config::of(request)?;
    let holder = &request.card()?.holder_ref;

    // A retried registration (same idempotency key) answers the visit it opened.
    let replay_key = format!("register:{holder}:{}", request.idempotency_key);
    if let Some(id) = kv::get(&replay_key)? {
        let id = String::from_utf8_lossy(&id).into_owned();
        let visit = load_visit(&id, Some(holder))?;
        return Response::json(&json!({
            "mdtrt_id": id, "psn_no": visit.value.psn_no, "dept_code": visit.value.dept_code, "replayed": true,
        }));
    }

    let now = clock::now();
    let insurance = Insurance::new(&config, Some(holder), now);
    let msgid = insurance.next_msgid()?;
    let insutype = params.insutype.unwrap_or_else(|| config.insutype.clone());
    let input = json!({ "insutype": insutype, "dept_code": params.dept_code, "begntime": msgid::local_timestamp(&now) });
    let output = insurance.send(infno::REGISTRATION, &msgid, input)?.into_output()?;
    let field = |name: &str| output.get(name).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    let (Some(mdtrt_id), Some(psn_no)) = (field("mdtrt_id"), field("psn_no")) else {
        return Err(malformed("registration", &output));
    };

    let visit = Visit {
        holder_ref: holder.clone(),
        psn_no: psn_no.clone(),
        dept_code: params.dept_code.clone(),
        fees: Default::default(),
        presettled: None,
        settlement: None,
        reversals: Vec::new(),
    };
    Stored::new(visit_key(&mdtrt_id), visit).save()?;
    kv::set(&replay_key, mdtrt_id.as_bytes(), Some(now.ms_until_local_midnight() + 86_400_000))?;
    Response::json(&json!({
        "mdtrt_id": mdtrt_id, "psn_no": psn_no, "dept_code": params.dept_code, "msgid": msgid, "replayed": false,
    }))
}

pub fn upload_fees(request: &Request) -> Result<Response, HandleError> {
    let params: UploadParams = request.params()?;
    let config = Config::of(request)?;
    let mut visit = load_visit(&params.mdtrt_id, None)?;
    if visit.value.settlement.is_some() {
        return Err(not_open(&params.mdtrt_id));
    }
    let items = fees::priced(&params.items)?;
    for (sn, item) in &items {
        if visit.value.fees.get(sn).is_some_and(|known| known != item) {
            return Err(HandleError::invalid(
                "FEE_ITEM_CONFLICT",
                format!("fee line {sn:?} was uploaded before with other content; use a new serial number"),
            ));
        }
    }

    let insurance = Insurance::new(&config, Some(&visit.value.holder_ref), clock::now());
    let msgid = insurance.next_msgid()?;
    let input = json!({ "mdtrt_id": params.mdtrt_id, "psn_no": visit.value.psn_no, "feedetail": fees::detail(&items) });
    insurance.send(infno::FEE_UPLOAD, &msgid, input)?.into_output()?;

    visit.value.fees.extend(items);
    visit.value.presettled = None;
    let total = visit.value.fees_total_fen();
    visit.save()?;
    Response::json(&json!({
        "mdtrt_id": params.mdtrt_id, "msgid": msgid, "items": visit.value.fees.len(), "fees_total_fen": total,
    }))
}

pub fn presettle(request: &Request) -> Result<Response, HandleError> {
    let params: VisitParams = request.params()?;
    let config = Config::of(request)?;
    let mut visit = load_visit(&params.mdtrt_id, None)?;
    if visit.value.settlement.is_some() {
        return Err(not_open(&params.mdtrt_id));
    }
    let total = fees_total(&visit.value, &params.mdtrt_id)?;

    let insurance = Insurance::new(&config, Some(&visit.value.holder_ref), clock::now());
    let msgid = insurance.next_msgid()?;
    let input = json!({ "mdtrt_id": params.mdtrt_id, "psn_no": visit.value.psn_no, "medfee_sumamt": to_yuan(total) });
    let output = insurance.send(infno::PRE_SETTLEMENT, &msgid, input)?.into_output()?;
    let split = Split::from_output(&output).ok_or_else(|| malformed("pre-settlement", &output))?;
    if split.total_fen != total {
        return Err(HandleError::refused(
            "AMOUNT_MISMATCH",
            format!("the insurance system counts {} fen of fees for this visit, the hospital {total} fen; upload the fees again", split.total_fen),
        ));
    }
    visit.value.presettled = Some(split);
    visit.save()?;
    Response::json(&json!({
        "mdtrt_id": params.mdtrt_id,
        "msgid": msgid,
        "total_fen": split.total_fen,
        "fund_fen": split.fund_fen,
        "personal_account_fen": split.personal_account_fen,
        "self_pay_fen": split.self_pay_fen,
    }))
}

fn fees_total(visit: &Visit, mdtrt_id: &str) -> Result<u64, HandleError> {
    match visit.fees_total_fen() {
        0 => Err(HandleError::refused("FEES_NOT_UPLOADED", format!("visit {mdtrt_id} has no fees uploaded"))),
        total => Ok(total),
    }
}

pub fn settle(request: &Request) -> Result<Response, HandleError> {
    let params: SettleParams = request.params()?;
    let config = Config::of(request)?;
    let card = request.card()?;
    let mut visit = load_visit(&params.mdtrt_id, Some(&card.holder_ref))?;
    let insurance = Insurance::new(&config, Some(&card.holder_ref), clock::now());
    let total = visit.value.fees_total_fen();
    let job = Job {
        insurance: &insurance,
        infno: infno::SETTLEMENT,
        input: json!({ "mdtrt_id": params.mdtrt_id, "psn_no": visit.value.psn_no, "medfee_sumamt": to_yuan(total) }),
        expected_total_fen: total,
        subject: ("mdtrt_id", &params.mdtrt_id),
    };
    if visit.value.settlement.is_none() {
        fees_total(&visit.value, &params.mdtrt_id)?;
        let Some(presettled) = visit.value.presettled else {
            return Err(HandleError::refused(
                "NOT_PRESETTLED",
                format!("visit {} must be pre-settled (for its current fees) before it is settled", params.mdtrt_id),
            ));
        };
        if params.total_fen != presettled.total_fen {
            return Err(HandleError::refused(
                "AMOUNT_MISMATCH",
                format!("the confirmed total {} fen is not the pre-settled {} fen", params.total_fen, presettled.total_fen),
            ));
        }
        if card.financial_locked && presettled.self_pay_fen > 0 {
            return Err(HandleError::refused(
                "CARD_FINANCIAL_LOCKED",
                "the card's financial account is locked or not activated; the self-pay cannot be charged to it",
            ));
        }
    }
    settlement::settle(&mut visit, &job)
}
