-- The catalog schema. Portable SQL: the same file runs on SQLite and PostgreSQL (TEXT and
-- BIGINT only; timestamps are RFC 3339 UTC text with milliseconds, JSON is text).

-- Catalog entities (provinces, cities, departments, applications, channels, grants, venues,
-- policies, issuer keys): validated as a whole in Rust, stored as JSON bodies, with who last
-- set each one and when.
CREATE TABLE entities (
    kind       TEXT NOT NULL,
    id         TEXT NOT NULL,
    body       TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);

-- Filings of applications; content is immutable once submitted, state follows the workflow.
CREATE TABLE filings (
    application TEXT NOT NULL,
    number      BIGINT NOT NULL,
    state       TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    PRIMARY KEY (application, number)
);

-- Every filing transition, kept forever.
CREATE TABLE filing_history (
    version     BIGINT NOT NULL,
    application TEXT NOT NULL,
    number      BIGINT NOT NULL,
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    actor       TEXT NOT NULL,
    role        TEXT NOT NULL,
    note        TEXT NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (version, application, number)
);
CREATE INDEX filing_history_app ON filing_history (application, number);

-- The card registry, keyed by the keyed hash of the holder's SSN.
CREATE TABLE cards (
    card_ref   TEXT NOT NULL PRIMARY KEY,
    status     TEXT NOT NULL,
    body       TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
);

-- Holder consents.
CREATE TABLE consents (
    id          TEXT NOT NULL PRIMARY KEY,
    card_ref    TEXT NOT NULL,
    application TEXT NOT NULL,
    body        TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
);
CREATE INDEX consents_card ON consents (card_ref);

-- Data accesses reported by gateways, shown to holders.
CREATE TABLE accesses (
    id          TEXT NOT NULL PRIMARY KEY,
    at          TEXT NOT NULL,
    card_ref    TEXT NOT NULL,
    application TEXT NOT NULL,
    action      TEXT NOT NULL,
    channel     TEXT NOT NULL,
    consent_id  TEXT,
    scopes      TEXT NOT NULL,
    gateway     TEXT NOT NULL
);
CREATE INDEX accesses_card ON accesses (card_ref, at);

-- The change journal: one row per change, numbered; the catalog version is the highest.
CREATE TABLE changes (
    version     BIGINT NOT NULL PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    application TEXT,
    body        TEXT NOT NULL
);
CREATE INDEX changes_app ON changes (application, version);

-- Bearer tokens, stored as SHA-256 of the token.
CREATE TABLE tokens (
    id         TEXT NOT NULL PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    department TEXT,
    city       TEXT,
    channel    TEXT,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at TEXT
);

-- Gateways and the version they last reported.
CREATE TABLE gateways (
    id              TEXT NOT NULL PRIMARY KEY,
    applied_version BIGINT NOT NULL,
    snapshot_sha256 TEXT NOT NULL,
    hash_ok         BIGINT,
    reported_at     TEXT NOT NULL,
    reported_by     TEXT NOT NULL
);

-- Content hash of each snapshot version the catalog served.
CREATE TABLE snapshot_hashes (
    version BIGINT NOT NULL PRIMARY KEY,
    sha256  TEXT NOT NULL
);

-- Catalog settings and its own secrets (signing key, SSN hashing key).
CREATE TABLE settings (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
