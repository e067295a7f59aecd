//! The audit crate's errors, each with a stable SCREAMING_SNAKE code the gateway turns into a
//! response or an exit status.

/// Stable error codes.
pub mod codes {
    /// The bounded audit queue is full: the gateway refuses new work rather than drop records.
    pub const AUDIT_BACKPRESSURE: &str = "AUDIT_BACKPRESSURE";
    /// The audit writer has stopped; nothing more can be recorded.
    pub const AUDIT_CLOSED: &str = "AUDIT_CLOSED";
    /// The database failed (connection, SQL, migration).
    pub const AUDIT_DATABASE: &str = "AUDIT_DATABASE";
    /// The database URL is neither `postgres://…` nor a SQLite path, or the file is missing.
    pub const AUDIT_DATABASE_URL: &str = "AUDIT_DATABASE_URL";
    /// The database holds no audit tables.
    pub const AUDIT_NOT_INITIALISED: &str = "AUDIT_NOT_INITIALISED";
    /// A stored row cannot be read back (wrong types, negative amounts).
    pub const AUDIT_CORRUPT: &str = "AUDIT_CORRUPT";
    /// The audit configuration is unusable.
    pub const AUDIT_CONFIG_INVALID: &str = "AUDIT_CONFIG_INVALID";
    /// A ledger entry with the same idempotency key already exists for the application.
    pub const LEDGER_CONFLICT: &str = "LEDGER_CONFLICT";
    /// A ledger entry is malformed (unknown kind, zero or too large amount, empty key).
    pub const LEDGER_INVALID: &str = "LEDGER_INVALID";
}

/// What can go wrong while recording or verifying.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The bounded queue is full.
    #[error("AUDIT_BACKPRESSURE: the audit queue is full ({capacity} records waiting to be written); refusing new work")]
    Backpressure {
        /// The queue's capacity.
        capacity: usize,
    },
    /// The writer task has stopped.
    #[error("AUDIT_CLOSED: the audit writer has stopped")]
    Closed,
    /// A database error.
    #[error("AUDIT_DATABASE: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration error.
    #[error("AUDIT_DATABASE: migrating the audit tables failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A bad database URL or a missing SQLite file.
    #[error("AUDIT_DATABASE_URL: {0}")]
    DatabaseUrl(String),
    /// The database has no audit tables.
    #[error("AUDIT_NOT_INITIALISED: the database holds no audit tables")]
    NotInitialised,
    /// A stored row cannot be read back.
    #[error("AUDIT_CORRUPT: {0}")]
    Corrupt(String),
    /// A bad configuration value.
    #[error("AUDIT_CONFIG_INVALID: {0}")]
    Config(String),
    /// Same idempotency key, same application: nothing of this commit was written.
    #[error("LEDGER_CONFLICT: application {app} already has a ledger entry with idempotency key {idempotency_key:?}")]
    LedgerConflict {
        /// The application.
        app: String,
        /// The key already used.
        idempotency_key: String,
    },
    /// A malformed ledger entry: nothing of this commit was written.
    #[error("LEDGER_INVALID: {0}")]
    LedgerInvalid(String),
}

impl AuditError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            AuditError::Backpressure { .. } => codes::AUDIT_BACKPRESSURE,
            AuditError::Closed => codes::AUDIT_CLOSED,
            AuditError::Database(_) | AuditError::Migration(_) => codes::AUDIT_DATABASE,
            AuditError::DatabaseUrl(_) => codes::AUDIT_DATABASE_URL,
            AuditError::NotInitialised => codes::AUDIT_NOT_INITIALISED,
            AuditError::Corrupt(_) => codes::AUDIT_CORRUPT,
            AuditError::Config(_) => codes::AUDIT_CONFIG_INVALID,
            AuditError::LedgerConflict { .. } => codes::LEDGER_CONFLICT,
            AuditError::LedgerInvalid(_) => codes::LEDGER_INVALID,
        }
    }
}
