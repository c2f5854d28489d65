-- How many live documents have each coded token value (`system|code` under key `p`),
-- so that `[type]?param=system|code&_summary=count` reads a few rows instead of
-- scanning the index. Kept by triggers on `idx_token` as appended deltas; a
-- background job folds the deltas of a value into one row (`delta = 0`). The sum of
-- `n` over a value's rows is its count at any time.
CREATE TABLE idx_token_counts (
    p      INTEGER NOT NULL,
    system TEXT    NOT NULL,
    code   TEXT    NOT NULL,
    n      INTEGER NOT NULL,
    delta  INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX idx_token_counts_value ON idx_token_counts (p, code, system, n);
CREATE INDEX idx_token_counts_deltas ON idx_token_counts (p, code, system) WHERE delta;

-- A document counts once per value, however many of its rows carry it: a row counts
-- when it is the document's first (or last) row with that value.
CREATE TRIGGER idx_token_added AFTER INSERT ON idx_token
WHEN NEW.system IS NOT NULL AND NEW.code IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM idx_token t
    WHERE t.p = NEW.p AND t.code = NEW.code AND t.system = NEW.system AND t.rid = NEW.rid
      AND t.rowid <> NEW.rowid)
BEGIN
    INSERT INTO idx_token_counts (p, system, code, n) VALUES (NEW.p, NEW.system, NEW.code, 1);
END;
CREATE TRIGGER idx_token_removed AFTER DELETE ON idx_token
WHEN OLD.system IS NOT NULL AND OLD.code IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM idx_token t
    WHERE t.p = OLD.p AND t.code = OLD.code AND t.system = OLD.system AND t.rid = OLD.rid)
BEGIN
    INSERT INTO idx_token_counts (p, system, code, n) VALUES (OLD.p, OLD.system, OLD.code, -1);
END;

INSERT INTO idx_token_counts (p, system, code, n, delta)
SELECT p, system, code, count(DISTINCT rid), 0 FROM idx_token
WHERE system IS NOT NULL AND code IS NOT NULL
GROUP BY p, system, code;
