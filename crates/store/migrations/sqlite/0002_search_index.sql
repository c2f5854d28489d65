-- Search indexes: one table per value type, rows for current versions only, written in
-- the same statement as the version they describe. `p` is the key of the search
-- parameter (a stable 64-bit hash of "Type.code"); `grp` numbers the values of one
-- composite parameter (0 for ordinary values) so that components pair up.
-- Text compares bytewise (BINARY), so prefix ranges are exact.

-- The numeric key of each live resource; the row goes when the resource is deleted.
CREATE TABLE resource_keys (
    rid      INTEGER PRIMARY KEY AUTOINCREMENT,
    res_type TEXT NOT NULL,
    res_id   TEXT NOT NULL,
    UNIQUE (res_type, res_id)
);
CREATE INDEX resource_keys_type ON resource_keys (res_type, rid);
INSERT INTO resource_keys (res_type, res_id) SELECT res_type, res_id FROM resources WHERE NOT deleted;

CREATE TABLE idx_string (
    rid   BIGINT  NOT NULL,
    p     BIGINT  NOT NULL,
    grp   INTEGER NOT NULL,
    norm  TEXT NOT NULL,
    exact TEXT NOT NULL
);
CREATE INDEX idx_string_value ON idx_string (p, norm, rid);
CREATE INDEX idx_string_rid ON idx_string (rid, p);

CREATE TABLE idx_token (
    rid    BIGINT  NOT NULL,
    p      BIGINT  NOT NULL,
    grp    INTEGER NOT NULL,
    system TEXT,
    code   TEXT,
    text   TEXT
);
CREATE INDEX idx_token_value ON idx_token (p, code, system, rid);
CREATE INDEX idx_token_rid ON idx_token (rid, p);

CREATE TABLE idx_date (
    rid BIGINT  NOT NULL,
    p   BIGINT  NOT NULL,
    grp INTEGER NOT NULL,
    lo  BIGINT  NOT NULL,
    hi  BIGINT  NOT NULL
);
CREATE INDEX idx_date_value ON idx_date (p, lo, rid);
CREATE INDEX idx_date_rid ON idx_date (rid, p, lo, hi);

CREATE TABLE idx_number (
    rid BIGINT           NOT NULL,
    p   BIGINT           NOT NULL,
    grp INTEGER          NOT NULL,
    v   REAL             NOT NULL
);
CREATE INDEX idx_number_value ON idx_number (p, v, rid);
CREATE INDEX idx_number_rid ON idx_number (rid, p);

CREATE TABLE idx_quantity (
    rid    BIGINT           NOT NULL,
    p      BIGINT           NOT NULL,
    grp    INTEGER          NOT NULL,
    system TEXT,
    code   TEXT,
    v      REAL             NOT NULL
);
CREATE INDEX idx_quantity_value ON idx_quantity (p, code, v, rid);
CREATE INDEX idx_quantity_rid ON idx_quantity (rid, p);

CREATE TABLE idx_reference (
    rid         BIGINT  NOT NULL,
    p           BIGINT  NOT NULL,
    grp         INTEGER NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    url         TEXT
);
CREATE INDEX idx_reference_value ON idx_reference (p, target_id, target_type, rid);
CREATE INDEX idx_reference_rid ON idx_reference (rid, p);

CREATE TABLE idx_uri (
    rid BIGINT  NOT NULL,
    p   BIGINT  NOT NULL,
    grp INTEGER NOT NULL,
    uri TEXT NOT NULL
);
CREATE INDEX idx_uri_value ON idx_uri (p, uri, rid);
CREATE INDEX idx_uri_rid ON idx_uri (rid, p);

-- Full text (`_text`: the narrative, kind 0; `_content`: every string, kind 1), folded
-- like string values. The row id is `rid * 2 + kind`.
CREATE VIRTUAL TABLE idx_text USING fts5(doc, tokenize = 'unicode61 remove_diacritics 2');
