-- onshore metadata schema, version 1.
--
-- Keys are BLOBs holding the UTF-8 bytes of the object key, so the default (memcmp) ordering is
-- the byte order S3 lists in, and any key, including one with U+0000, round-trips. Timestamps are
-- integer microseconds since the Unix epoch (UTC). Booleans are 0/1 integers. JSON columns hold
-- small documents the store never queries into.
--
-- The migration runner (schema.py) wraps this file in one transaction and records it in
-- schema_version.

CREATE TABLE buckets (
    id            INTEGER PRIMARY KEY,          -- surrogate key: keeps version rows small
    name          TEXT    NOT NULL UNIQUE,
    owner_id      TEXT    NOT NULL,
    region        TEXT    NOT NULL,
    created_us    BIGINT  NOT NULL,
    versioning    TEXT    NOT NULL DEFAULT ''   -- '' (never enabled), 'Enabled', 'Suspended'
);

-- Sub-resource documents: policy, tagging, cors, lifecycle, ...
CREATE TABLE bucket_configs (
    bucket_id     INTEGER NOT NULL REFERENCES buckets (id),
    kind          TEXT    NOT NULL,
    document      TEXT    NOT NULL,
    PRIMARY KEY (bucket_id, kind)
);

-- Every version and delete marker. seq is assigned by the store and only grows, so within a key
-- the newest version has the largest seq and is the latest (is_latest mirrors that, for the
-- partial index below).
CREATE TABLE versions (
    seq              INTEGER PRIMARY KEY,
    bucket_id        INTEGER NOT NULL REFERENCES buckets (id),
    object_key       BLOB    NOT NULL,
    version_id       TEXT    NOT NULL,
    is_latest        INTEGER NOT NULL,
    is_delete_marker INTEGER NOT NULL,
    size             BIGINT  NOT NULL,
    etag             TEXT    NOT NULL,
    last_modified_us BIGINT  NOT NULL,
    owner_id         TEXT    NOT NULL,
    storage_class    TEXT    NOT NULL,
    headers          TEXT    NOT NULL,          -- JSON object
    user_metadata    TEXT    NOT NULL,          -- JSON object
    checksum         TEXT,                      -- JSON [algorithm, value, type] or NULL
    segments         TEXT,                      -- JSON [[blob_id, size, part, etag, checksum]...]
    inline_data      BLOB                       -- last: large values stay in overflow pages
);

-- Latest version of a key (ORDER BY seq DESC LIMIT 1) and ListObjectVersions order.
CREATE INDEX versions_by_key ON versions (bucket_id, object_key, seq DESC);
-- A version by id; also guarantees version ids are unique per key.
CREATE UNIQUE INDEX versions_by_id ON versions (bucket_id, object_key, version_id);
-- ListObjects: only current, visible versions, so a page costs O(page) however many old
-- versions and delete markers the bucket holds. The two flag columns are constant here; they are
-- in the key only so SQLite treats the index as covering for a (seq, object_key) scan.
CREATE INDEX versions_current ON versions (bucket_id, object_key, is_latest, is_delete_marker)
    WHERE is_latest AND NOT is_delete_marker;

-- Which version names which blob: answers "is this blob still referenced?" with one seek
-- (the segments JSON cannot be indexed portably). Maintained with the version row.
CREATE TABLE version_blobs (
    blob_id       TEXT    NOT NULL,
    version_seq   INTEGER NOT NULL,
    PRIMARY KEY (blob_id, version_seq)
) WITHOUT ROWID;

CREATE TABLE uploads (
    seq                INTEGER PRIMARY KEY,     -- creation order: breaks ties of initiated_us
    bucket_id          INTEGER NOT NULL REFERENCES buckets (id),
    upload_id          TEXT    NOT NULL,
    object_key         BLOB    NOT NULL,
    initiated_us       BIGINT  NOT NULL,
    owner_id           TEXT    NOT NULL,
    storage_class      TEXT    NOT NULL,
    headers            TEXT    NOT NULL,
    user_metadata      TEXT    NOT NULL,
    checksum_algorithm TEXT,
    checksum_type      TEXT
);

CREATE UNIQUE INDEX uploads_by_id ON uploads (bucket_id, upload_id);
CREATE INDEX uploads_by_key ON uploads (bucket_id, object_key, initiated_us, seq);

CREATE TABLE parts (
    upload_seq       INTEGER NOT NULL REFERENCES uploads (seq),
    part_number      INTEGER NOT NULL,
    size             BIGINT  NOT NULL,
    etag             TEXT    NOT NULL,
    last_modified_us BIGINT  NOT NULL,
    blob_id          TEXT    NOT NULL,
    checksum         TEXT,
    PRIMARY KEY (upload_seq, part_number)
);

CREATE INDEX parts_by_blob ON parts (blob_id);
