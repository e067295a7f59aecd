//! `reconcile`: bring a settlement that got no answer to a final state. A settlement still marked
//! in flight after the configured grace, or one whose reversal failed, is reversed (2601 with its
//! message id); anything else is reported as it stands.

use onecard_sdk::{HandleError, Request, Response, clock};
use serde::Deserialize;
use serde_json::json;

use crate::config::Config;
use crate::insurance::Insurance;
use crate::record::{PharmacyOrder, SettlementState, Settles, Stored, Visit, order_key, visit_key};
use crate::settlement;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReconcileParams {
    mdtrt_id: Option<String>,
    order_id: Option<String>,
}

pub fn reconcile(request: &Request) -> Result<Response, HandleError> {
    let params: ReconcileParams = request.params()?;
    let config = Config::of(request)?;
    match (params.mdtrt_id, params.order_id) {
        (Some(id), None) => {
            let visit = Stored::<Visit>::load(visit_key(&id))?
                .ok_or_else(|| HandleError::refused("VISIT_UNKNOWN", format!("no registered visit {id:?}")))?;
            run(visit, &config, ("mdtrt_id", &id))
        }
        (None, Some(id)) => {
            let order = Stored::<PharmacyOrder>::load(order_key(&id))?
                .ok_or_else(|| HandleError::refused("ORDER_UNKNOWN", format!("no pharmacy order {id:?}")))?;
            run(order, &config, ("order_id", &id))
        }
        _ => Err(HandleError::invalid("INVALID_PARAMS", "parameters: name exactly one of `mdtrt_id` and `order_id`")),
    }
}

fn run<T: Settles>(mut record: Stored<T>, config: &Config, subject: (&str, &str)) -> Result<Response, HandleError> {
    let holder = record.value.holder_ref().to_owned();
    let now = clock::now();
    let Some(s) = record.value.settlement_mut().clone() else {
        return state(subject, "open", None);
    };
    let stale = now.unix_ms.saturating_sub(s.started_ms) >= i64::try_from(config.in_flight_grace_ms).unwrap_or(i64::MAX);
    match s.state {
        SettlementState::Paid => state(subject, "paid", Some(&s.msgid)),
        SettlementState::Settled => state(subject, "settled_self_pay_pending", Some(&s.msgid)),
        SettlementState::Sending if !stale => Err(settlement::in_progress(&s)),
        SettlementState::Sending | SettlementState::Uncertain => {
            let insurance = Insurance::new(config, Some(&holder), now);
            settlement::try_reverse(&mut record, &insurance, "reconciliation of a settlement without answer")?;
            state(subject, "reversed", Some(&s.msgid))
        }
    }
}

fn state(subject: (&str, &str), state: &str, msgid: Option<&str>) -> Result<Response, HandleError> {
    Response::json(&json!({ subject.0: subject.1, "state": state, "msgid": msgid }))
}
