-- The durable job queue, and the transactional outbox: a write enqueues the jobs its
-- listeners ask for in the same transaction, so a rolled-back write leaves none and a
-- committed one always leaves them. Any instance claims ready jobs in batches with
-- `FOR UPDATE SKIP LOCKED`, holds each under a lease (`lease_owner` until `due`) and
-- records progress while it works; an instance that dies leaves its lease to run out,
-- and another resumes the job from its last progress. A failure puts the job back,
-- due after a backoff, until `attempts` reaches the limit and it is `dead`, with the
-- reason in `last_error`, until someone retries it.
CREATE TABLE jobs (
    id              TEXT   PRIMARY KEY,
    kind            TEXT   NOT NULL,
    payload         TEXT   NOT NULL,          -- JSON
    state           TEXT   NOT NULL,          -- queued | running | done | dead
    attempts        INTEGER NOT NULL DEFAULT 0,
    due             BIGINT NOT NULL,          -- queued: not before; running: lease end
    lease_owner     TEXT,
    progress        TEXT,                     -- JSON
    last_error      TEXT,
    idempotency_key TEXT   UNIQUE,            -- enqueueing a key again makes no job
    trace           TEXT,                     -- JSON: the trace headers of the cause
    created_at      BIGINT NOT NULL,
    started_at      BIGINT,
    finished_at     BIGINT
);
CREATE INDEX jobs_due ON jobs (due) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_state ON jobs (state, created_at);

-- Reindex jobs move to the queue: unfinished ones continue there from their cursor.
INSERT INTO jobs (id, kind, payload, state, due, progress, created_at, started_at, finished_at)
SELECT id, 'reindex', json_build_object('scope', scope)::text,
       CASE status WHEN 'done' THEN 'done' ELSE 'queued' END, 0,
       json_build_object('cursor', cursor_rid, 'processed', processed, 'total', total)::text,
       created_at, started_at, finished_at
FROM reindex_jobs;
