-- Tenants, users, access keys, inline user policies, quotas and per-account usage counters.
--
-- Secrets are stored only wrapped by the operator's root key (AES-GCM, associated data = the
-- access key id), never in plain text. Names are compared case-insensitively (name_key holds the
-- lower-cased name), as AWS compares IAM names.

CREATE TABLE tenants (
    account_id    TEXT    PRIMARY KEY,          -- 12 digits
    name          TEXT    NOT NULL UNIQUE,
    created_us    BIGINT  NOT NULL
);

CREATE TABLE iam_users (
    account_id    TEXT    NOT NULL REFERENCES tenants (account_id),
    name_key      TEXT    NOT NULL,             -- lower(name): uniqueness per tenant
    name          TEXT    NOT NULL,
    user_id       TEXT    NOT NULL UNIQUE,      -- AIDA...
    is_admin      INTEGER NOT NULL DEFAULT 0,
    created_us    BIGINT  NOT NULL,
    PRIMARY KEY (account_id, name_key)
);

CREATE TABLE access_keys (
    access_key    TEXT    PRIMARY KEY,
    user_id       TEXT    NOT NULL REFERENCES iam_users (user_id),
    status        TEXT    NOT NULL,             -- 'Active' or 'Inactive'
    secret        BLOB    NOT NULL,             -- wrapped by the root key, context = access_key
    created_us    BIGINT  NOT NULL
);
CREATE INDEX access_keys_by_user ON access_keys (user_id);

CREATE TABLE user_policies (
    user_id       TEXT    NOT NULL REFERENCES iam_users (user_id),
    name          TEXT    NOT NULL,
    document      TEXT    NOT NULL,
    PRIMARY KEY (user_id, name)
);

CREATE TABLE tenant_quotas (
    account_id    TEXT    PRIMARY KEY REFERENCES tenants (account_id),
    max_bytes     BIGINT,                       -- NULL: unlimited
    max_objects   BIGINT,
    max_buckets   BIGINT
);

-- What each account (bucket owner) stores, kept by the triggers below in the same transaction
-- as the rows they count, so reading it is one primary-key seek. bytes = every version's size
-- plus every uploaded part of unfinished multipart uploads; objects = versions that are not
-- delete markers; buckets = buckets.
CREATE TABLE account_usage (
    account_id    TEXT    PRIMARY KEY,
    bytes         BIGINT  NOT NULL DEFAULT 0,
    objects       BIGINT  NOT NULL DEFAULT 0,
    buckets       BIGINT  NOT NULL DEFAULT 0
);

INSERT INTO account_usage (account_id, bytes, objects, buckets)
SELECT b.owner_id,
       COALESCE((SELECT SUM(v.size) FROM versions v JOIN buckets o ON v.bucket_id = o.id
                 WHERE o.owner_id = b.owner_id), 0)
     + COALESCE((SELECT SUM(p.size) FROM parts p JOIN uploads u ON p.upload_seq = u.seq
                 JOIN buckets o ON u.bucket_id = o.id WHERE o.owner_id = b.owner_id), 0),
       (SELECT COUNT(*) FROM versions v JOIN buckets o ON v.bucket_id = o.id
         WHERE o.owner_id = b.owner_id AND NOT v.is_delete_marker),
       COUNT(*)
FROM buckets b GROUP BY b.owner_id;

CREATE TRIGGER usage_bucket_insert AFTER INSERT ON buckets BEGIN
    INSERT INTO account_usage (account_id, buckets) VALUES (NEW.owner_id, 1)
        ON CONFLICT (account_id) DO UPDATE SET buckets = buckets + 1;
END;

CREATE TRIGGER usage_bucket_delete AFTER DELETE ON buckets BEGIN
    UPDATE account_usage SET buckets = buckets - 1 WHERE account_id = OLD.owner_id;
END;

CREATE TRIGGER usage_version_insert AFTER INSERT ON versions BEGIN
    UPDATE account_usage
       SET bytes = bytes + NEW.size, objects = objects + (1 - NEW.is_delete_marker)
     WHERE account_id = (SELECT owner_id FROM buckets WHERE id = NEW.bucket_id);
END;

CREATE TRIGGER usage_version_delete AFTER DELETE ON versions BEGIN
    UPDATE account_usage
       SET bytes = bytes - OLD.size, objects = objects - (1 - OLD.is_delete_marker)
     WHERE account_id = (SELECT owner_id FROM buckets WHERE id = OLD.bucket_id);
END;

CREATE TRIGGER usage_part_insert AFTER INSERT ON parts BEGIN
    UPDATE account_usage SET bytes = bytes + NEW.size
     WHERE account_id = (SELECT b.owner_id FROM uploads u JOIN buckets b ON u.bucket_id = b.id
                          WHERE u.seq = NEW.upload_seq);
END;

CREATE TRIGGER usage_part_update AFTER UPDATE OF size ON parts BEGIN
    UPDATE account_usage SET bytes = bytes + NEW.size - OLD.size
     WHERE account_id = (SELECT b.owner_id FROM uploads u JOIN buckets b ON u.bucket_id = b.id
                          WHERE u.seq = NEW.upload_seq);
END;

CREATE TRIGGER usage_part_delete AFTER DELETE ON parts BEGIN
    UPDATE account_usage SET bytes = bytes - OLD.size
     WHERE account_id = (SELECT b.owner_id FROM uploads u JOIN buckets b ON u.bucket_id = b.id
                          WHERE u.seq = OLD.upload_seq);
END;
