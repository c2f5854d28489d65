-- Reindex jobs: recompute the index rows of every live document (of one type, or of
-- all when `scope` is NULL) in batches by `rid`. `cursor_rid` is the last `rid` whose
-- batch was committed; a worker holds a job while `claimed_until` (microseconds) is in
-- the future, and another instance resumes it from `cursor_rid` after that.
CREATE TABLE reindex_jobs (
    id            TEXT   PRIMARY KEY,
    scope         TEXT,
    status        TEXT   NOT NULL, -- queued | running | done
    cursor_rid    BIGINT NOT NULL DEFAULT 0,
    processed     BIGINT NOT NULL DEFAULT 0,
    total         BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    started_at    BIGINT,
    finished_at   BIGINT,
    claimed_by    TEXT,
    claimed_until BIGINT
);
CREATE INDEX reindex_jobs_open ON reindex_jobs (created_at, id) WHERE status <> 'done';

-- Resources stored before the search release have no index rows: index everything once.
INSERT INTO reindex_jobs (id, scope, status, total, created_at)
SELECT 'migration-0003', NULL, 'queued', count(*),
       (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
FROM resources WHERE NOT deleted HAVING count(*) > 0;
