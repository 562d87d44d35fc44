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
