-- Times are whole seconds since the Unix epoch (UTC).

CREATE TABLE approvals (
    id                 TEXT PRIMARY KEY NOT NULL,
    api_key_name       TEXT NOT NULL,
    action             TEXT NOT NULL,
    summary            TEXT NOT NULL,
    details            TEXT NOT NULL,           -- JSON
    requester_sub      TEXT NOT NULL,
    requester_name     TEXT NOT NULL,
    required_role      TEXT NOT NULL,
    origin             TEXT NOT NULL,
    payload_hash       TEXT NOT NULL,           -- sha256:<hex>
    events_token_hash  TEXT NOT NULL,           -- SHA-256 hex of the events token
    status             TEXT NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'approved', 'rejected')),
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    decided_at         INTEGER,
    approver_sub       TEXT,
    approver_name      TEXT,
    approver_username  TEXT,
    reason             TEXT,
    consumed_at        INTEGER,
    CHECK ((status = 'pending') = (decided_at IS NULL)),
    CHECK (consumed_at IS NULL OR status <> 'pending')
);

-- One sign-in attempt in the popup. Never holds a token.
CREATE TABLE login_transactions (
    key_hash           TEXT PRIMARY KEY NOT NULL,  -- SHA-256 hex of the cookie value
    approval_id        TEXT NOT NULL REFERENCES approvals (id),
    state              TEXT NOT NULL UNIQUE,
    nonce              TEXT NOT NULL,
    pkce_verifier      TEXT NOT NULL,
    csrf_token         TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    outcome            TEXT,                       -- NULL, 'signed_in' or an error code
    approver_sub       TEXT,
    approver_name      TEXT,
    approver_username  TEXT
);

CREATE INDEX login_transactions_expires_at ON login_transactions (expires_at);

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    recorded_at  INTEGER NOT NULL,
    event        TEXT NOT NULL,
    approval_id  TEXT,
    actor        TEXT,
    code         TEXT,
    details      TEXT NOT NULL DEFAULT '{}'       -- JSON
);

CREATE INDEX audit_log_approval_id ON audit_log (approval_id);

-- The audit log is append-only.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
