//! The request both the runtime benchmark and the `fresh_instances` profiling example send: the
//! parks plugin's `enter` for card holder `n` (each iteration a new holder, so each is a full
//! admission), included by both with `#[path]`.

use onecard_gateway::bindings::onecard::plugin::types::Request;
use onecard_gateway::bindings::{Assurance, CardStatus, CardView};

/// 2026-11-23 10:00 in China.
pub const NOW_MS: i64 = 1_795_399_200_000;

pub const CONFIG: &str = r#"{"venues":{"west-lake":{"name":"West Lake","opens":"06:00","closes":"22:00",
  "capacity_per_day":1000000000000,"terminals":["WL-G1"],
  "fees":{"standard_fen":1000,"senior_age":60,"senior_fen":0,"resident_regions":["3301"],"resident_fen":500}}}}"#;

pub fn request(n: u64) -> Request {
    Request {
        app: "parks".into(),
        action: "enter".into(),
        request_id: format!("bench-{n}"),
        channel: "3300000001".into(),
        venue: Some("west-lake".into()),
        terminal: Some("WL-G1".into()),
        params: "{}".into(),
        config: CONFIG.into(),
        card: Some(CardView {
            holder_ref: format!("holder-{n}"),
            status: CardStatus::Normal,
            financial_locked: false,
            assurance: Assurance::RealCard,
            issuing_region: "330106".into(),
            attributes: vec![("holder.age".into(), "67".into())],
        }),
        idempotency_key: format!("idem-{n}"),
    }
}
