-- KMS key lifecycle carried out (issue 5): key material rotation and due deletions.
--
-- kms_keys.wrapped stays the key's first key material (version 1). Every rotation (automatic or
-- RotateKeyOnDemand) adds one row to kms_key_materials with the next version and makes it the
-- key's current material (kms_keys.material_version): new ciphertexts use it, older ciphertexts
-- name the version they were made with. Material rows go with their key (ON DELETE CASCADE),
-- whether a due deletion or an offboarding removes it.
--
-- rotation_period_days / next_rotation_us: set while automatic rotation is enabled (NULL
-- otherwise); keys that EnableKeyRotation had enabled before this migration (when it only
-- recorded the setting) get the default period, counted from now.

ALTER TABLE kms_keys ADD COLUMN material_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE kms_keys ADD COLUMN rotation_period_days INTEGER;
ALTER TABLE kms_keys ADD COLUMN next_rotation_us BIGINT;

UPDATE kms_keys
   SET rotation_period_days = 365,
       next_rotation_us = CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)
                          + 365 * 86400000000
 WHERE rotation_enabled = 1;

CREATE TABLE kms_key_materials (
    key_id           TEXT    NOT NULL REFERENCES kms_keys (key_id) ON DELETE CASCADE,
    version          INTEGER NOT NULL,
    wrapped          BLOB    NOT NULL,
    root_fingerprint TEXT    NOT NULL,
    rotated_us       BIGINT  NOT NULL,
    rotation_type    TEXT    NOT NULL,
    PRIMARY KEY (key_id, version)
);

-- The sweep's two questions: which deletions and which automatic rotations are due.
CREATE INDEX kms_keys_by_deletion ON kms_keys (deletion_us) WHERE deletion_us IS NOT NULL;
CREATE INDEX kms_keys_by_next_rotation ON kms_keys (next_rotation_us)
    WHERE next_rotation_us IS NOT NULL;
