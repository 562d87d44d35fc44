-- Operator accounts: the deployment's system, security and audit administrators (three separate
-- roles, as China's MLPS 2.0 and SecNumCloud expect). Each has one access key for the admin
-- API; the secret is stored only wrapped by the root key (associated data = the access key id).

CREATE TABLE operators (
    name          TEXT    PRIMARY KEY,
    role          TEXT    NOT NULL CHECK (role IN ('system', 'security', 'audit')),
    access_key    TEXT    NOT NULL UNIQUE,
    secret        BLOB    NOT NULL,
    created_us    BIGINT  NOT NULL
);
