-- Tenant offboarding (provable deletion at contract end, docs/offboarding.md): one row per
-- tenant that was ever asked to leave. state: 'notice' (writes refused, reads allowed until
-- notice_us + notice_days), 'executing' (deletion under way; step says how far, so an
-- interrupted run resumes), 'offboarded' (everything deleted; the row stays as the tombstone
-- that keeps the account id from ever being reused, with the signed certificate). A cancelled
-- request deletes its row. The counters grow in the same transaction as each deletion.

CREATE TABLE offboarding (
    account_id    TEXT    PRIMARY KEY,
    tenant_name   TEXT    NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('notice', 'executing', 'offboarded')),
    requested_us  BIGINT  NOT NULL,
    notice_days   INTEGER NOT NULL,
    started_us    BIGINT,
    executed_us   BIGINT,
    step          TEXT    NOT NULL DEFAULT '',
    forced        INTEGER NOT NULL DEFAULT 0,
    counts        TEXT    NOT NULL DEFAULT '{}',   -- JSON {"objects": n, "bytes": n, ...}
    fingerprints  TEXT    NOT NULL DEFAULT '[]',   -- JSON ["tenant:<hex>", "kms:<key id>:<hex>"]
    certificate   TEXT                             -- the signed certificate (JSON), when done
);
