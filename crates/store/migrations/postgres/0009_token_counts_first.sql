-- A value's count row is stored folded (`delta = false`) when the value has no row
-- yet. Values that identify one record (identifiers, e-mail addresses, phone numbers)
-- are about half of the coded token values of the CRUD benchmark's creates; their
-- rows are then written once and never folded, deleted and vacuumed. `delta` only
-- marks the rows the fold takes: the sum of `n` over a value's rows is its count
-- whatever it says, so every release reads the same counts. Two writers that add one
-- new value at the same time may each store a folded row; the value's next delta
-- folds them into one.
CREATE OR REPLACE FUNCTION idx_token_count_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A lateral probe with LIMIT, not EXISTS: the planner may turn an EXISTS into a
    -- hashed scan of the whole count table.
    INSERT INTO idx_token_counts (p, system, code, n, delta)
    SELECT a.p, a.system, a.code, a.n, k.known IS NOT NULL
    FROM (
        SELECT p, system, code, count(DISTINCT rid) AS n FROM added
        WHERE system IS NOT NULL AND code IS NOT NULL
        GROUP BY p, system, code
    ) a
    LEFT JOIN LATERAL (
        SELECT true AS known FROM idx_token_counts c
        WHERE c.p = a.p AND c.code = a.code AND c.system = a.system
        LIMIT 1
    ) k ON true;
    RETURN NULL;
END $$;
