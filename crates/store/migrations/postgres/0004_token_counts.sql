-- How many live documents have each coded token value (`system|code` under key `p`),
-- so that `[type]?param=system|code&_summary=count` reads a few rows instead of
-- scanning the index. Kept by triggers on `idx_token`, whoever writes it, as appended
-- deltas: writers never wait on one another for a counter row. A background job
-- folds the deltas of a value into one row (`delta = false`); the sum of `n` over a
-- value's rows is its count at any time.
CREATE TABLE idx_token_counts (
    p      BIGINT  NOT NULL,
    system TEXT COLLATE "C" NOT NULL,
    code   TEXT COLLATE "C" NOT NULL,
    n      BIGINT  NOT NULL,
    delta  BOOLEAN NOT NULL DEFAULT true
);
CREATE INDEX idx_token_counts_value ON idx_token_counts (p, code, system) INCLUDE (n);
CREATE INDEX idx_token_counts_deltas ON idx_token_counts (p, code, system) WHERE delta;

-- A document counts once per value, however many of its rows carry it. Index rows
-- are replaced per document (all old rows deleted, all new rows inserted), so each
-- statement changes a document's membership at most once per value.
CREATE FUNCTION idx_token_count_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO idx_token_counts (p, system, code, n)
    SELECT p, system, code, count(DISTINCT rid) FROM added
    WHERE system IS NOT NULL AND code IS NOT NULL
    GROUP BY p, system, code;
    RETURN NULL;
END $$;

CREATE FUNCTION idx_token_count_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO idx_token_counts (p, system, code, n)
    SELECT p, system, code, -count(DISTINCT rid) FROM removed
    WHERE system IS NOT NULL AND code IS NOT NULL
    GROUP BY p, system, code;
    RETURN NULL;
END $$;

CREATE TRIGGER idx_token_added AFTER INSERT ON idx_token
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION idx_token_count_added();
CREATE TRIGGER idx_token_removed AFTER DELETE ON idx_token
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION idx_token_count_removed();

-- The counts of what is indexed already (the triggers hold writers off until commit).
INSERT INTO idx_token_counts (p, system, code, n, delta)
SELECT p, system, code, count(DISTINCT rid), false FROM idx_token
WHERE system IS NOT NULL AND code IS NOT NULL
GROUP BY p, system, code;
