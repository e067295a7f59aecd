//! `pharmacy_purchase`: a purchase at a designated retail pharmacy's counter, settled in one step.
//!
//! Pharmacies do not register visits: the national interface gives them their own settlement
//! transaction, 2102 (药店结算), which carries the drug lines itself. It follows the same rules as
//! an outpatient settlement — message id stored first, reversal (2601 with `oinfno` 2102) when no
//! answer comes, the self-pay debited under the message id — keyed by the pharmacy's order id.

use onecard_sdk::{HandleError, Request, Response, clock, kv};
use serde::Deserialize;
use serde_json::json;

use crate::config::Config;
use crate::fees::{self, FeeLine};
use crate::insurance::{Insurance, infno};
use crate::money::to_yuan;
use crate::record::{PharmacyOrder, Stored, order_key};
use crate::settlement::{self, Job};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PurchaseParams {
    order_id: String,
    items: Vec<FeeLine>,
    /// The total the holder confirmed at the counter.
    total_fen: u64,
}

pub fn purchase(request: &Request) -> Result<Response, HandleError> {
    let params: PurchaseParams = request.params()?;
    let config = Config::of(request)?;
    let card = request.card()?;
    let items = fees::priced(&params.items)?;
    let total = fees::total(&items)
        .ok_or_else(|| HandleError::invalid("INVALID_PARAMS", "parameters: field `items`: total too large"))?;
    if total != params.total_fen {
        return Err(HandleError::refused(
            "AMOUNT_MISMATCH",
            format!("the drug lines add up to {total} fen, not the confirmed {} fen", params.total_fen),
        ));
    }

    let mut order = match Stored::<PharmacyOrder>::load(order_key(&params.order_id))? {
        Some(order) if order.value.holder_ref == card.holder_ref && order.value.total_fen == total => order,
        Some(_) => {
            return Err(HandleError::refused(
                "ORDER_CONFLICT",
                format!("pharmacy order {:?} exists for another holder or amount", params.order_id),
            ));
        }
        None => {
            // No pre-settlement at a pharmacy: whether a self-pay remains is known only after
            // settling, so a locked financial account is refused before anything is sent.
            if card.financial_locked {
                return Err(HandleError::refused(
                    "CARD_FINANCIAL_LOCKED",
                    "the card's financial account is locked or not activated; the self-pay cannot be charged to it",
                ));
            }
            let order = PharmacyOrder { holder_ref: card.holder_ref.clone(), total_fen: total, settlement: None, reversals: Vec::new() };
            Stored::new(order_key(&params.order_id), order)
        }
    };

    let insurance = Insurance::new(&config, Some(&card.holder_ref), clock::now());
    let job = Job {
        insurance: &insurance,
        infno: infno::PHARMACY_SETTLEMENT,
        input: json!({ "order_id": params.order_id, "medfee_sumamt": to_yuan(total), "drugdetail": fees::detail(&items) }),
        expected_total_fen: total,
        subject: ("order_id", &params.order_id),
    };
    let result = settlement::settle(&mut order, &job);
    // A purchase the insurance system refused outright leaves no order behind.
    if result.is_err() && order.value.settlement.is_none() && order.value.reversals.is_empty() {
        kv::delete(&order.key)?;
    }
    result
}
