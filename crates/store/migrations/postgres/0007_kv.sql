-- The key-value store of small, non-clinical application settings: bytes with their
-- media type under (namespace, key), versioned for If-Match, with an optional expiry
-- (an expired entry is invisible at once and removed by a job later).
CREATE TABLE kv (
    namespace  TEXT   NOT NULL,
    key        TEXT   NOT NULL,
    value      BYTEA  NOT NULL,
    media_type TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    expires_at BIGINT,                       -- microseconds since the epoch
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX kv_expires ON kv (expires_at) WHERE expires_at IS NOT NULL;
