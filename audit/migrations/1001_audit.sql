-- The audit trail and the ledger. Portable SQL: the same file runs on SQLite and PostgreSQL
-- (TEXT and BIGINT only; timestamps are RFC 3339 UTC text with microseconds, JSON is text).
-- Versions of audit migrations start at 1001 and are tracked in their own table
-- (`_onecard_audit_migrations`), so they live beside the catalog's in one database.

-- One row per gateway decision, hash-chained per gateway (`chain` = the gateway id). The
-- canonical encoding hashed into `hash` is documented in audit/src/canonical.rs.
CREATE TABLE audit_records (
    chain            TEXT NOT NULL,
    seq              BIGINT NOT NULL,
    format           BIGINT NOT NULL,
    request_id       TEXT NOT NULL,
    at               TEXT NOT NULL,
    channel          TEXT,
    venue            TEXT,
    terminal         TEXT,
    card_ref         TEXT,
    app              TEXT NOT NULL,
    action           TEXT NOT NULL,
    plugin_sha256    TEXT,
    snapshot_version BIGINT NOT NULL,
    outcome          TEXT NOT NULL,
    code             TEXT,
    blame            TEXT,
    status           BIGINT NOT NULL,
    latency_us       BIGINT NOT NULL,
    detail           TEXT NOT NULL,
    ledger_sha256    TEXT,
    prev_hash        TEXT NOT NULL,
    hash             TEXT NOT NULL,
    PRIMARY KEY (chain, seq)
);
CREATE INDEX audit_records_request ON audit_records (request_id);

-- Money movements, each committed in one transaction with the audit record that decided it
-- (`chain`, `audit_seq`); `position` orders the entries of one record.
CREATE TABLE ledger_entries (
    app             TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    kind            TEXT NOT NULL,
    account         TEXT NOT NULL,
    amount_fen      BIGINT NOT NULL,
    reference       TEXT NOT NULL,
    receipt_id      TEXT NOT NULL,
    settled_at_ms   BIGINT NOT NULL,
    chain           TEXT NOT NULL,
    audit_seq       BIGINT NOT NULL,
    position        BIGINT NOT NULL,
    PRIMARY KEY (app, idempotency_key)
);
CREATE INDEX ledger_entries_record ON ledger_entries (chain, audit_seq, position);
