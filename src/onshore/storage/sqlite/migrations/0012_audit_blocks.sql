-- The audit trail stores its records in blocks, and indexes them per group of alike records
-- (see onshore.storage.sqlite.audit and docs/audit.md "How records are stored").
--
-- One row per record (0003's audit_events) cost a B-tree insert per request, and its search
-- row six more: most of the audit's CPU on a small read. A block holds consecutive records of
-- the chain: a state change's record is a block of one, inserted in the change's own
-- transaction; the records the flusher appends (reads, failures) go in blocks of up to a few
-- hundred, one row each.

-- audit_blocks is append-only, in chain order: the records first_seq..last_seq (consecutive,
-- no gaps between blocks). ``events`` holds their canonical JSON exactly as hashed, separated by
-- a newline (a canonical record has no raw newline): as TEXT for a block of one record, as a
-- zlib-compressed BLOB of that UTF-8 text for a larger one; ``hashes`` their hashes, 32 bytes
-- each, in the same order; ``prev_hash`` the hash the first links to and ``head_hash`` the last
-- one's (the chain head when this is the last block). The small columns come first, so reading
-- the head never reads the records. No code path updates or deletes a row inside the retention
-- period, and the table has no secondary index (a change's record is inserted with the change:
-- each index would add a page to that commit).
CREATE TABLE audit_blocks (
    first_seq INTEGER PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    alg TEXT NOT NULL,
    head_hash BLOB NOT NULL,
    prev_hash BLOB NOT NULL,
    hashes BLOB NOT NULL,
    events TEXT NOT NULL
);

INSERT INTO audit_blocks (first_seq, last_seq, start_ms, end_ms, alg, head_hash, prev_hash,
                          hashes, events)
    SELECT seq, seq, time_ms, time_ms, alg, hash, prev_hash, hash, event FROM audit_events;

-- The search index: one row per group of records that share account, user, operation, bucket
-- and error code and whose times fall in the same minute (GROUP_SPAN_MS), per flush: ``seqs`` is
-- the JSON array of their seqs, ``object_keys`` the JSON array of their object keys (null where
-- none), in the same order; start_ms/end_ms the earliest and latest of their times. Not part of
-- the chain (search only, never verification); written in bulk by the flusher, rebuilt from
-- audit_blocks after a crash. Search reads the groups its filters select, then checks each
-- record itself.
CREATE TABLE audit_index (
    id INTEGER PRIMARY KEY,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    account TEXT NOT NULL,
    user_name TEXT NOT NULL,
    event_name TEXT NOT NULL,
    bucket TEXT,
    error_code TEXT,
    seqs TEXT NOT NULL,
    object_keys TEXT NOT NULL
);
CREATE INDEX audit_index_time ON audit_index (start_ms);
CREATE INDEX audit_index_account ON audit_index (account, start_ms);
CREATE INDEX audit_index_user ON audit_index (user_name, start_ms);
CREATE INDEX audit_index_name ON audit_index (event_name, start_ms);
CREATE INDEX audit_index_bucket ON audit_index (bucket, start_ms);
CREATE INDEX audit_index_error ON audit_index (error_code, start_ms) WHERE error_code IS NOT NULL;
CREATE INDEX audit_index_last ON audit_index (last_seq);

INSERT INTO audit_index (first_seq, last_seq, start_ms, end_ms, account, user_name, event_name,
                         bucket, error_code, seqs, object_keys)
    SELECT seq, seq, time_ms, time_ms, account, user_name, event_name, bucket, error_code,
           json_array(seq), json_array(object_key)
    FROM audit_search;

-- Changes' records not yet in the chain. A change's record must commit with the change, in its
-- transaction; rendering, hashing and inserting a whole record there costs the change several
-- times more than this row: the request's own values as columns and its group's values as
-- JSON (onshore.service.audit.capture). The flusher renders the pending rows, in id order (the
-- order their changes committed in), appends them to the chain and deletes them, in one
-- transaction; anything else appending to the chain takes the pending rows first, so the
-- chain keeps the changes' commit order. After a crash, the next start chains what is left.
CREATE TABLE audit_pending (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    shared TEXT NOT NULL,
    time_ms BIGINT NOT NULL,
    duration_ms INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    object_key TEXT,
    bytes_in INTEGER NOT NULL,
    bytes_out INTEGER NOT NULL,
    response TEXT NOT NULL,
    change_index INTEGER NOT NULL
);

DROP TABLE audit_search;
DROP TABLE audit_events;
