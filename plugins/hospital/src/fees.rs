//! Fee lines as the counter sends them (fen, counts) and as the insurance messages carry them
//! (decimal yuan strings).

use std::collections::BTreeSet;

use onecard_sdk::HandleError;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::money::to_yuan;
use crate::record::FeeItem;

/// One fee line of a visit or a pharmacy purchase.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeLine {
    /// Serial number of the line (`feedetl_sn`), unique within the visit or order.
    pub sn: String,
    /// Catalogue code of the drug, material or service (`med_list_codg`).
    pub code: String,
    pub count: u32,
    pub unit_price_fen: u64,
}

/// Check the lines (unique serial numbers, amounts that fit) and price them.
pub fn priced(lines: &[FeeLine]) -> Result<Vec<(String, FeeItem)>, HandleError> {
    let mut seen = BTreeSet::new();
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            if !seen.insert(line.sn.as_str()) {
                return Err(HandleError::invalid(
                    "INVALID_PARAMS",
                    format!("parameters: field `items[{i}].sn`: serial number {:?} appears twice", line.sn),
                ));
            }
            let amount_fen = u64::from(line.count).checked_mul(line.unit_price_fen).ok_or_else(|| {
                HandleError::invalid("INVALID_PARAMS", format!("parameters: field `items[{i}]`: amount too large"))
            })?;
            let item = FeeItem { code: line.code.clone(), count: line.count, unit_price_fen: line.unit_price_fen, amount_fen };
            Ok((line.sn.clone(), item))
        })
        .collect()
}

/// Sum of priced lines; `None` on overflow.
pub fn total(items: &[(String, FeeItem)]) -> Option<u64> {
    items.iter().try_fold(0u64, |sum, (_, item)| sum.checked_add(item.amount_fen))
}

/// The lines as the insurance message's detail list.
pub fn detail(items: &[(String, FeeItem)]) -> Value {
    items
        .iter()
        .map(|(sn, item)| {
            json!({
                "feedetl_sn": sn,
                "med_list_codg": item.code,
                "cnt": item.count,
                "pric": to_yuan(item.unit_price_fen),
                "det_item_fee_sumamt": to_yuan(item.amount_fen),
            })
        })
        .collect()
}
