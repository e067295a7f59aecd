//! What changes between two catalogs, entity by entity: shown by `apply` (and `--dry-run`),
//! and the list the store writes and journals.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::catalog::{Catalog, policy_key};
use crate::feed::Op;

/// One entity added, changed or removed.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct EntityDiff {
    /// Entity kind: `province`, `city`, `department`, `application`, `filing`, `channel`,
    /// `grant`, `venue`, `policy`, `issuer_key`, `card`, `consent`.
    pub kind: String,
    /// Entity id (`application#n` for filings).
    pub id: String,
    /// What happens.
    pub op: Op,
    /// Top-level fields that differ (changes only).
    pub fields: Vec<String>,
    /// Value before.
    #[serde(skip)]
    pub old: Option<Value>,
    /// Value after.
    #[serde(skip)]
    pub new: Option<Value>,
}

impl std::fmt::Display for EntityDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.op {
            Op::Added => write!(f, "+ {} {}", self.kind, self.id),
            Op::Removed => write!(f, "- {} {}", self.kind, self.id),
            Op::Changed => write!(f, "~ {} {} ({})", self.kind, self.id, self.fields.join(", ")),
        }
    }
}

/// The catalog entity kinds stored in the `entities` table, in dependency order.
pub const ENTITY_KINDS: [&str; 9] = [
    "province", "city", "department", "application", "channel", "grant", "venue", "policy", "issuer_key",
];

/// Every entity of `c` as `(kind, id, JSON)`, applications without their filings; filings,
/// cards and consents as their own kinds.
pub fn entities(c: &Catalog) -> Vec<(&'static str, String, Value)> {
    fn v<T: Serialize>(x: &T) -> Value {
        serde_json::to_value(x).unwrap_or(Value::Null)
    }
    let mut out = Vec::new();
    out.extend(c.provinces.iter().map(|x| ("province", x.code.clone(), v(x))));
    out.extend(c.cities.iter().map(|x| ("city", x.code.clone(), v(x))));
    out.extend(c.departments.iter().map(|x| ("department", x.id.clone(), v(x))));
    for a in &c.applications {
        let mut body = v(a);
        if let Some(o) = body.as_object_mut() {
            o.remove("filings");
        }
        out.push(("application", a.id.clone(), body));
        out.extend(a.filings.iter().map(|f| ("filing", format!("{}#{}", a.id, f.number), v(f))));
    }
    out.extend(c.channels.iter().map(|x| ("channel", x.id.clone(), v(x))));
    out.extend(c.grants.iter().map(|x| ("grant", x.key(), v(x))));
    out.extend(c.venues.iter().map(|x| ("venue", x.id.clone(), v(x))));
    out.extend(c.policies.iter().map(|x| ("policy", policy_key(x), v(x))));
    out.extend(c.issuer_keys.iter().map(|x| ("issuer_key", x.key_id.clone(), v(x))));
    out.extend(c.cards.iter().map(|x| ("card", x.card_ref.clone(), v(x))));
    out.extend(c.consents.iter().map(|x| ("consent", x.id.clone(), v(x))));
    out
}

fn rank(kind: &str) -> usize {
    match kind {
        "filing" => 4,
        "card" => 10,
        "consent" => 11,
        k => ENTITY_KINDS.iter().position(|x| *x == k).unwrap_or(12),
    }
}

/// The changes turning `old` into `new`. Cards and consents missing from `new` are not
/// removals (registry data is only ever added or updated by a catalog file).
pub fn diff(old: &Catalog, new: &Catalog) -> Vec<EntityDiff> {
    let before: BTreeMap<(&str, String), Value> =
        entities(old).into_iter().map(|(k, id, v)| ((k, id), v)).collect();
    let after: BTreeMap<(&str, String), Value> =
        entities(new).into_iter().map(|(k, id, v)| ((k, id), v)).collect();
    let mut out = Vec::new();
    for ((kind, id), new_v) in &after {
        match before.get(&(*kind, id.clone())) {
            None => out.push(EntityDiff { kind: kind.to_string(), id: id.clone(), op: Op::Added, fields: vec![], old: None, new: Some(new_v.clone()) }),
            Some(old_v) if old_v != new_v => out.push(EntityDiff {
                kind: kind.to_string(),
                id: id.clone(),
                op: Op::Changed,
                fields: changed_fields(old_v, new_v),
                old: Some(old_v.clone()),
                new: Some(new_v.clone()),
            }),
            Some(_) => {}
        }
    }
    for ((kind, id), old_v) in &before {
        if !after.contains_key(&(*kind, id.clone())) && *kind != "card" && *kind != "consent" {
            out.push(EntityDiff { kind: kind.to_string(), id: id.clone(), op: Op::Removed, fields: vec![], old: Some(old_v.clone()), new: None });
        }
    }
    // Additions and changes parents first, removals children first.
    out.sort_by_key(|d| match d.op {
        Op::Removed => (1, usize::MAX - rank(&d.kind), d.id.clone()),
        _ => (0, rank(&d.kind), d.id.clone()),
    });
    out
}

fn changed_fields(a: &Value, b: &Value) -> Vec<String> {
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().filter(|k| a.get(*k) != b.get(*k)).cloned().collect()
        }
        _ => vec!["value".into()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Province;

    #[test]
    fn diff_reports_added_changed_removed() {
        let old = Catalog {
            provinces: vec![
                Province { code: "33".into(), name: "Zhejiang".into() },
                Province { code: "44".into(), name: "Guangdong".into() },
            ],
            ..Catalog::default()
        };
        let new = Catalog {
            provinces: vec![
                Province { code: "33".into(), name: "浙江省".into() },
                Province { code: "11".into(), name: "Beijing".into() },
            ],
            ..Catalog::default()
        };
        let d: Vec<String> = diff(&old, &new).iter().map(|d| d.to_string()).collect();
        assert_eq!(d, vec!["+ province 11", "~ province 33 (name)", "- province 44"]);
        assert!(diff(&new, &new).is_empty());
    }
}
