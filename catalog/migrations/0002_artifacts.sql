-- Plugin artifacts by SHA-256: what gateways fetch for the hash a filing names. Bytes are
-- base64 text so the file stays portable between SQLite and PostgreSQL.
CREATE TABLE artifacts (
    sha256      TEXT PRIMARY KEY,
    size        BIGINT NOT NULL,
    content     TEXT NOT NULL,
    uploaded_at TEXT NOT NULL,
    uploaded_by TEXT NOT NULL
);
