-- Encryption at rest (issue 5).
--
-- versions.encryption / uploads.encryption: JSON {"mode", "cipher", "key_id", "wrapped_key"
-- (base64), "sealed_metadata" (base64 or null), "customer_key_hmac", "customer_key_md5"}, NULL
-- for data stored in plain text (encryption off, or written before it existed).
--
-- tenant_keys: one key per tenant (account id), created on first use, stored only wrapped by the
-- operator's root key; root_fingerprint names the root key generation that wrapped it, so
-- `onshore kms rotate-root` can tell which rows still need re-wrapping.

ALTER TABLE versions ADD COLUMN encryption TEXT;
ALTER TABLE uploads ADD COLUMN encryption TEXT;

CREATE TABLE tenant_keys (
    account_id       TEXT    PRIMARY KEY,
    cipher           TEXT    NOT NULL,
    wrapped          BLOB    NOT NULL,
    root_fingerprint TEXT    NOT NULL,
    created_us       BIGINT  NOT NULL
);

-- KMS keys (the AWS KMS API subset, TrentService): key material only wrapped by the root key.
-- state: Enabled | Disabled | PendingDeletion; deletion_us: when a pending deletion is due.
CREATE TABLE kms_keys (
    key_id           TEXT    PRIMARY KEY,
    account_id       TEXT    NOT NULL,
    description      TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    created_us       BIGINT  NOT NULL,
    deletion_us      BIGINT,
    rotation_enabled INTEGER NOT NULL DEFAULT 0,
    wrapped          BLOB    NOT NULL,
    root_fingerprint TEXT    NOT NULL
);
CREATE INDEX kms_keys_by_account ON kms_keys (account_id, key_id);

CREATE TABLE kms_aliases (
    account_id  TEXT NOT NULL,
    alias_name  TEXT NOT NULL,
    key_id      TEXT NOT NULL REFERENCES kms_keys (key_id),
    created_us  BIGINT NOT NULL,
    PRIMARY KEY (account_id, alias_name)
);
