//! onecard's tamper-evident audit trail: one record per gateway decision, hash-chained per
//! gateway, written by a batching writer behind a bounded queue (full queue: the gateway refuses
//! new work with `AUDIT_BACKPRESSURE`, nothing is dropped); money-moving decisions commit their
//! ledger entries and their record in one transaction; `verify` checks a chain and names the
//! first broken record. The hash encoding is documented in [`canonical`].
#![forbid(unsafe_code)]

pub mod canonical;
mod config;
mod entry;
mod error;
mod store;
mod verify;
mod writer;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod writer_tests;
#[cfg(test)]
mod verify_tests;

pub use config::AuditConfig;
pub use entry::{AuditEntry, AuditReceipt, AuditRecord, Head, LEDGER_KINDS, LedgerEntry, Outcome, RecordFields};
pub use error::{AuditError, codes};
pub use store::{AuditStore, Backend, LedgerRecord, MIGRATIONS_TABLE, SQLITE_BUSY_TIMEOUT_MS, database_url};
pub use verify::{Broken, VerifyReport, verify};
pub use writer::{AuditHandle, AuditSlot, AuditWriter, WriterStatus};
