-- A value's count row is stored folded (`delta = 0`) when the value has no row yet:
-- values that identify one record (identifiers, contact points) are then written once
-- and never folded. `delta` only marks the rows the fold takes; the sum of `n` over a
-- value's rows is its count whatever it says.
DROP TRIGGER idx_token_added;
CREATE TRIGGER idx_token_added AFTER INSERT ON idx_token
WHEN NEW.system IS NOT NULL AND NEW.code IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM idx_token t
    WHERE t.p = NEW.p AND t.code = NEW.code AND t.system = NEW.system AND t.rid = NEW.rid
      AND t.rowid <> NEW.rowid)
BEGIN
    INSERT INTO idx_token_counts (p, system, code, n, delta)
    VALUES (NEW.p, NEW.system, NEW.code, 1, EXISTS (
        SELECT 1 FROM idx_token_counts c
        WHERE c.p = NEW.p AND c.code = NEW.code AND c.system = NEW.system));
END;
