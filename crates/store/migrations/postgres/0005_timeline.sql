-- Patient timelines: an access path for searches pinned to one patient. A live
-- document in a patient's compartment has one entry per compartment (`cmp`, the key
-- of `Patient/id`) and key: under the key of its type's timeline, with empty `system`
-- and `code`, and under the key of its type's code parameter, once per coded value. `at` and `updated`
-- are the document's sort values (the latest end of its date rows under the timeline's
-- date key and last-updated key), the same in every entry, so an index scan in this
-- order is a search in sort order that stops after the page. Entries exist only for
-- live documents and are replaced with every write, like the other index rows.
CREATE TABLE idx_timeline (
    rid     BIGINT NOT NULL,
    cmp     BIGINT NOT NULL,
    p       BIGINT NOT NULL,
    system  TEXT COLLATE "C" NOT NULL,
    code    TEXT COLLATE "C" NOT NULL,
    at      BIGINT NOT NULL,
    updated BIGINT NOT NULL
);
-- The two orderings share their leading columns, and right after a bulk load a
-- planner without statistics cannot tell which one a query wants: each is partial on a
-- condition that holds for every entry, and a query names the one of the ordering it
-- reads, which makes the other unusable for it.
CREATE INDEX idx_timeline_at ON idx_timeline (cmp, p, code, system, at DESC, rid)
    WHERE at >= '-9223372036854775808'::bigint;
CREATE INDEX idx_timeline_updated ON idx_timeline (cmp, p, code, system, updated DESC, rid)
    WHERE updated >= '-9223372036854775808'::bigint;
CREATE INDEX idx_timeline_rid ON idx_timeline (rid);

-- The version whose timeline entries are stored: every write of this release sets it
-- to the version it writes. A write by an earlier release (during a rolling update,
-- or after a rollback) leaves it behind, and the trigger queues the document in
-- `timeline_stale`; each instance's background work puts queued documents into the
-- timeline, and searches do not use the timeline while any are queued.
ALTER TABLE resources ADD COLUMN timeline_version BIGINT;

CREATE TABLE timeline_stale (
    res_type TEXT NOT NULL,
    res_id   TEXT NOT NULL,
    PRIMARY KEY (res_type, res_id)
);

CREATE FUNCTION timeline_mark_stale() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO timeline_stale (res_type, res_id) VALUES (NEW.res_type, NEW.res_id)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER resources_timeline_stale AFTER INSERT OR UPDATE ON resources
    FOR EACH ROW WHEN (NEW.timeline_version IS DISTINCT FROM NEW.version)
    EXECUTE FUNCTION timeline_mark_stale();

-- What is stored already is not in the timeline yet.
INSERT INTO timeline_stale (res_type, res_id)
SELECT res_type, res_id FROM resources WHERE NOT deleted;
