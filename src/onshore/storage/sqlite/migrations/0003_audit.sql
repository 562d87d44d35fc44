-- The tamper-evident audit trail (see onshore.service.audit and docs/audit.md).
--
-- audit_events is append-only: one row per recorded request, in chain order. ``seq`` is the
-- position in the deployment's hash chain (1, 2, 3, ... with no gaps); ``event`` is the record's
-- canonical JSON exactly as it was hashed; ``hash`` = H(prev_hash || event) with H named by
-- ``alg`` (sha256 or sm3). No code path updates or deletes a row inside the retention period.
-- It has no secondary index on purpose: a write's record is inserted in the write's own
-- transaction, and each index would add a page to every commit's fsync.
CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY,
    time_ms BIGINT NOT NULL,
    alg TEXT NOT NULL,
    event TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
);

-- The searchable fields of each record, written in bulk by the audit flusher (at most about
-- audit_flush_interval after the record; rebuilt from audit_events after a crash). Not part of
-- the chain: search only, never verification.
CREATE TABLE audit_search (
    seq INTEGER PRIMARY KEY,
    time_ms BIGINT NOT NULL,
    account TEXT NOT NULL,
    user_name TEXT NOT NULL,
    event_name TEXT NOT NULL,
    bucket TEXT,
    object_key TEXT,
    error_code TEXT
);
CREATE INDEX audit_search_time ON audit_search (time_ms);
CREATE INDEX audit_search_account ON audit_search (account, time_ms);
CREATE INDEX audit_search_user ON audit_search (user_name, time_ms);
CREATE INDEX audit_search_name ON audit_search (event_name, time_ms);
CREATE INDEX audit_search_object ON audit_search (bucket, object_key);
CREATE INDEX audit_search_error ON audit_search (error_code, time_ms) WHERE error_code IS NOT NULL;

-- Signed digests, chained to each other: each covers the events first_seq..last_seq (possibly
-- none: last_seq = first_seq - 1). ``payload`` is the canonical JSON that was signed.
CREATE TABLE audit_digests (
    seq INTEGER PRIMARY KEY,
    time_ms BIGINT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    payload TEXT NOT NULL,
    signature TEXT NOT NULL,
    hash TEXT NOT NULL
);

-- The deployment's audit signing keys (Ed25519); the private key is wrapped by the root key.
CREATE TABLE audit_keys (
    id INTEGER PRIMARY KEY,
    created_ms BIGINT NOT NULL,
    fingerprint TEXT NOT NULL UNIQUE,
    public_pem TEXT NOT NULL,
    wrapped_private BLOB NOT NULL
);
