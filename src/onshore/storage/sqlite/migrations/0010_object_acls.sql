-- Object ACLs (only meaningful when the bucket's object ownership allows ACLs): one JSON ACL
-- document per object version, deleted with its version by the foreign key's cascade.

CREATE TABLE object_acls (
    version_seq  INTEGER PRIMARY KEY REFERENCES versions (seq) ON DELETE CASCADE,
    document     TEXT    NOT NULL
);

-- The ACL a CreateMultipartUpload asked for, until CompleteMultipartUpload gives it to the
-- version it creates (deleted with the upload).
CREATE TABLE upload_acls (
    upload_seq  INTEGER PRIMARY KEY REFERENCES uploads (seq) ON DELETE CASCADE,
    document    TEXT    NOT NULL
);
