//! A complete, ordered dump of every table, so tests (and operators) can prove that a refused
//! request changed nothing.

use serde_json::{Value, json};
use sqlx::{Column as _, Row as _};

use super::Store;
use crate::error::Result;

/// Every table with the columns that order it (and the pending accesses' tables, by `id`).
const TABLES: [(&str, &str); 11] = [
    ("entities", "kind, id"),
    ("filings", "application, number"),
    ("filing_history", "version, application, number"),
    ("cards", "card_ref"),
    ("consents", "id"),
    ("accesses", "id"),
    ("changes", "version"),
    ("tokens", "id"),
    ("gateways", "id"),
    ("snapshot_hashes", "version"),
    ("settings", "key"),
];

impl Store {
    /// Every row of every table, as JSON.
    pub async fn dump(&self) -> Result<Value> {
        let mut out = serde_json::Map::new();
        let pending = super::accesses::pending_tables().map(|table| (table, "id"));
        for (table, order) in TABLES.into_iter().chain(pending) {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM {table} ORDER BY {order}"))).fetch_all(&self.pool).await?;
            let rows: Vec<Value> = rows
                .iter()
                .map(|row| {
                    let mut obj = serde_json::Map::new();
                    for (i, col) in row.columns().iter().enumerate() {
                        let v = if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
                            json!(v)
                        } else if let Ok(v) = row.try_get::<Option<String>, _>(i) {
                            json!(v)
                        } else {
                            json!("<undecodable>")
                        };
                        obj.insert(col.name().to_string(), v);
                    }
                    Value::Object(obj)
                })
                .collect();
            out.insert(table.to_string(), Value::Array(rows));
        }
        Ok(Value::Object(out))
    }
}
