-- The licensor plane (service/licensing): the deployment's signing key, installed licenses, the
-- signed clock high-water mark, per-day usage counters and the chain of usage reports.
-- Nothing here names a tenant, user, bucket or key: usage is aggregate by construction.

-- The deployment's Ed25519 key pair; the private half wrapped by the operator root key.
CREATE TABLE license_deployment (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    public_key   TEXT    NOT NULL,              -- ed25519:<base64>
    wrapped_key  BLOB    NOT NULL,
    created_us   BIGINT  NOT NULL
);

-- Every license file installed, verbatim; the newest one is in force.
CREATE TABLE license_files (
    seq          INTEGER PRIMARY KEY,
    license_id   TEXT    NOT NULL,
    document     TEXT    NOT NULL,
    installed_us BIGINT  NOT NULL
);

-- The highest time the deployment has seen, signed with the deployment key.
CREATE TABLE license_clock (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    high_water_us BIGINT  NOT NULL,
    signature     BLOB    NOT NULL
);

-- Request counters per UTC day, added to by every server process (additive upserts).
CREATE TABLE usage_days (
    day           TEXT    PRIMARY KEY,          -- YYYY-MM-DD
    requests_a    BIGINT  NOT NULL DEFAULT 0,   -- PUT, COPY, POST, LIST
    requests_b    BIGINT  NOT NULL DEFAULT 0,   -- GET, HEAD and other reads
    requests_free BIGINT  NOT NULL DEFAULT 0,   -- DELETE, abort
    bytes_in      BIGINT  NOT NULL DEFAULT 0,
    bytes_out     BIGINT  NOT NULL DEFAULT 0
);

-- The store's totals per hour: every sample taken in an hour replaces the previous one (the
-- latest wins) and raises peak_bytes; a day's stored byte-hours are the sum of its hours.
CREATE TABLE usage_samples (
    hour_us       BIGINT  PRIMARY KEY,          -- start of the UTC hour
    stored_bytes  BIGINT  NOT NULL,
    peak_bytes    BIGINT  NOT NULL,
    object_count  BIGINT  NOT NULL,
    tenant_count  BIGINT  NOT NULL
);

-- The usage reports generated, in chain order.
CREATE TABLE usage_reports (
    month         TEXT    PRIMARY KEY,          -- YYYY-MM
    seq           INTEGER NOT NULL UNIQUE,
    hash          TEXT    NOT NULL,
    document      TEXT    NOT NULL,
    created_us    BIGINT  NOT NULL
);
