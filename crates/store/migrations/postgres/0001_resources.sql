-- Every version of every resource. `body` is the JSON text; NULL marks a deletion.
CREATE TABLE resource_versions (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY,
    res_type     TEXT   NOT NULL,
    res_id       TEXT   NOT NULL,
    version      BIGINT NOT NULL,
    last_updated BIGINT NOT NULL, -- microseconds since the Unix epoch, UTC
    change       TEXT   NOT NULL, -- create | update | patch | delete
    body         TEXT,
    PRIMARY KEY (res_type, res_id, version)
);
CREATE UNIQUE INDEX resource_versions_seq ON resource_versions (seq);
CREATE INDEX resource_versions_type_seq ON resource_versions (res_type, seq);

-- The current-version pointer: one row per resource, deleted or not.
CREATE TABLE resources (
    res_type     TEXT    NOT NULL,
    res_id       TEXT    NOT NULL,
    version      BIGINT  NOT NULL,
    last_updated BIGINT  NOT NULL,
    deleted      BOOLEAN NOT NULL,
    PRIMARY KEY (res_type, res_id)
);
