-- Support access for the licensor (a Customer-Lockbox-like flow): requests the licensor signed,
-- the operator's security administrator's decision, and the time-boxed credentials an approval
-- issues (the secret only wrapped by the root key, associated data = the access key id).

CREATE TABLE support_access (
    request_id    TEXT    PRIMARY KEY,
    document      TEXT    NOT NULL,             -- the signed request, verbatim
    scope         TEXT    NOT NULL,             -- JSON: {"kind": ..., "operations": [...]}
    state         TEXT    NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'revoked')),
    submitted_us  BIGINT  NOT NULL,
    decided_by    TEXT,
    decided_us    BIGINT,
    expires_us    BIGINT,
    access_key    TEXT    UNIQUE,
    secret        BLOB
);
