//! What the gateway hands the audit trail (one decision, ledger entries) and what the trail
//! stores (the record as written, with its place in the chain).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::error::AuditError;

/// How a decision ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The action was allowed and the plugin answered.
    Allowed,
    /// The gateway or the plugin refused the action.
    Refused,
    /// Something failed (plugin fault, backend down, gateway error).
    Failed,
}

impl Outcome {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }
}

/// What the pipeline knows about one decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The gateway's request id.
    pub request_id: String,
    /// When the decision was taken (stored with microsecond precision).
    pub at: DateTime<Utc>,
    /// The calling channel, once authenticated.
    pub channel: Option<String>,
    /// The venue named by the request.
    pub venue: Option<String>,
    /// The terminal named by the request.
    pub terminal: Option<String>,
    /// The catalog card reference (already a keyed hash, not personal data): stored as given.
    pub card_ref: Option<String>,
    /// The application.
    pub app: String,
    /// The action.
    pub action: String,
    /// SHA-256 of the plugin bytes that ran, when one ran.
    pub plugin_sha256: Option<String>,
    /// The catalog snapshot version the decision was taken on.
    pub snapshot_version: i64,
    /// How it ended.
    pub outcome: Outcome,
    /// The error code of a refusal or failure.
    pub code: Option<String>,
    /// Who is to blame for a refusal or failure (caller, holder, catalog, plugin, backend, gateway).
    pub blame: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
    /// Time spent on the request, in microseconds.
    pub latency_us: u64,
    /// Small JSON (the plugin's refusal message, a suspension notice …).
    pub detail: serde_json::Value,
}

/// One money movement, committed in the same transaction as the audit record that decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The application that moved the money.
    pub app: String,
    /// `debit`, `credit` or `refund`.
    pub kind: String,
    /// The account (a reference the settlement port understands).
    pub account: String,
    /// Amount in fen (1/100 CNY), positive.
    pub amount_fen: u64,
    /// The operator's or bank's reference.
    pub reference: String,
    /// Unique per application: a second entry with the same key is refused (`LEDGER_CONFLICT`).
    pub idempotency_key: String,
    /// The receipt given to the caller.
    pub receipt_id: String,
    /// When the movement settled, milliseconds since the Unix epoch.
    pub settled_at_ms: i64,
}

/// Ledger kinds accepted.
pub const LEDGER_KINDS: [&str; 3] = ["debit", "credit", "refund"];

impl LedgerEntry {
    /// Checks the entry can be stored as given.
    pub fn validate(&self) -> Result<(), AuditError> {
        let bad = |what: String| Err(AuditError::LedgerInvalid(what));
        if !LEDGER_KINDS.contains(&self.kind.as_str()) {
            return bad(format!("kind {:?} is not one of debit, credit, refund", self.kind));
        }
        if self.amount_fen == 0 || i64::try_from(self.amount_fen).is_err() {
            return bad(format!("amount_fen {} is not between 1 and {}", self.amount_fen, i64::MAX));
        }
        for (name, value) in [("app", &self.app), ("idempotency_key", &self.idempotency_key), ("account", &self.account), ("receipt_id", &self.receipt_id)] {
            if value.trim().is_empty() {
                return bad(format!("{name} is empty"));
            }
        }
        Ok(())
    }
}

/// The fields of a decision as stored (and hashed): text exactly as in the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordFields {
    /// See [`AuditEntry::request_id`].
    pub request_id: String,
    /// RFC 3339 UTC with microseconds, e.g. `2026-11-23T10:00:00.123456Z`.
    pub at: String,
    /// See [`AuditEntry::channel`].
    pub channel: Option<String>,
    /// See [`AuditEntry::venue`].
    pub venue: Option<String>,
    /// See [`AuditEntry::terminal`].
    pub terminal: Option<String>,
    /// See [`AuditEntry::card_ref`].
    pub card_ref: Option<String>,
    /// See [`AuditEntry::app`].
    pub app: String,
    /// See [`AuditEntry::action`].
    pub action: String,
    /// See [`AuditEntry::plugin_sha256`].
    pub plugin_sha256: Option<String>,
    /// See [`AuditEntry::snapshot_version`].
    pub snapshot_version: i64,
    /// `allowed`, `refused` or `failed`.
    pub outcome: String,
    /// See [`AuditEntry::code`].
    pub code: Option<String>,
    /// See [`AuditEntry::blame`].
    pub blame: Option<String>,
    /// See [`AuditEntry::status`].
    pub status: i64,
    /// See [`AuditEntry::latency_us`] (saturated at `i64::MAX`).
    pub latency_us: i64,
    /// The detail as JSON text, hashed byte for byte as stored.
    pub detail: String,
    /// Digest of the ledger entries committed with this record (see `canonical::ledger_digest`).
    pub ledger_sha256: Option<String>,
}

impl RecordFields {
    /// The stored form of an entry (moved, not copied: this runs for every decision).
    pub fn from_entry(entry: AuditEntry) -> RecordFields {
        RecordFields {
            request_id: entry.request_id,
            at: entry.at.to_rfc3339_opts(SecondsFormat::Micros, true),
            channel: entry.channel,
            venue: entry.venue,
            terminal: entry.terminal,
            card_ref: entry.card_ref,
            app: entry.app,
            action: entry.action,
            plugin_sha256: entry.plugin_sha256,
            snapshot_version: entry.snapshot_version,
            outcome: entry.outcome.as_str().to_string(),
            code: entry.code,
            blame: entry.blame,
            status: i64::from(entry.status),
            latency_us: i64::try_from(entry.latency_us).unwrap_or(i64::MAX),
            // A `Value` always serializes; the fallback only keeps this total.
            detail: serde_json::to_string(&entry.detail).unwrap_or_else(|_| "null".to_string()),
            ledger_sha256: None,
        }
    }
}

/// One stored record: a decision and its place in its chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The chain (gateway id).
    pub chain: String,
    /// Position in the chain, dense from 1.
    pub seq: i64,
    /// Version of the canonical encoding the hash was computed with.
    pub format: i64,
    /// The previous record's hash (64 zeros for the first).
    pub prev_hash: String,
    /// Lowercase hex SHA-256 of the canonical encoding.
    pub hash: String,
    /// The decision.
    pub fields: RecordFields,
}

/// The last record of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Its sequence number.
    pub seq: i64,
    /// Its hash.
    pub hash: String,
}

/// Proof that a record (and its ledger entries) is durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReceipt {
    /// The chain.
    pub chain: String,
    /// The record's sequence number.
    pub seq: i64,
    /// The record's hash.
    pub hash: String,
}
