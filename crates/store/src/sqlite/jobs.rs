//! The job queue of the single SQLite instance: claims go through the single writer,
//! so no two claims overlap.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params};

use super::{SqliteStore, sqlite_err};
use crate::{Job, JobState, Jobs, Micros, Result, StoreError};

const COLUMNS: &str = "id, kind, payload, state, attempts, due, lease_owner, progress,
    last_error, idempotency_key, trace, created_at, started_at, finished_at";

/// The due jobs of the given kinds (bound as a JSON array), oldest due first.
const DUE: &str = "SELECT id FROM jobs
    WHERE state IN ('queued', 'running') AND due <= ?1
      AND kind IN (SELECT value FROM json_each(?2))
    ORDER BY due LIMIT ?3";

static CLAIM: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "UPDATE jobs SET state = 'running', lease_owner = ?2, due = ?4,
            attempts = attempts + 1, started_at = COALESCE(started_at, ?3)
        WHERE id = ?1 RETURNING {COLUMNS}"
    )
});

const FINISH: &str = "UPDATE jobs
    SET state = 'done', finished_at = ?3, progress = COALESCE(?4, progress)
    WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'";

const FAIL: &str = "UPDATE jobs
    SET state = CASE WHEN ?4 IS NULL THEN 'dead' ELSE 'queued' END,
        due = COALESCE(?4, due), last_error = ?3, lease_owner = NULL
    WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'";

const RELEASE: &str = "UPDATE jobs
    SET state = 'queued', due = ?3, lease_owner = NULL, attempts = max(attempts - 1, 0)
    WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'";

static JOB: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"));

static LIST: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS} FROM jobs WHERE (?1 IS NULL OR state = ?1)
        ORDER BY created_at DESC, id DESC LIMIT ?2"
    )
});

const RETRY: &str = "UPDATE jobs SET state = 'queued', due = ?2, attempts = 0, lease_owner = NULL
    WHERE id = ?1 AND state = 'dead'";

const PURGE: &str = "DELETE FROM jobs WHERE state = 'done' AND finished_at < ?1";

pub(super) fn statements() -> Vec<String> {
    let mut all = vec![DUE.to_owned(), CLAIM.clone(), JOB.clone(), LIST.clone()];
    all.extend(
        [FINISH, FAIL, RELEASE, RETRY, PURGE]
            .iter()
            .map(|s| (*s).to_owned()),
    );
    all
}

/// A job row before its state is checked.
fn raw_job(r: &Row<'_>) -> rusqlite::Result<(Job, String)> {
    Ok((
        Job {
            id: r.get(0)?,
            kind: r.get(1)?,
            payload: r.get(2)?,
            state: JobState::Queued,
            attempts: r.get(4)?,
            due: r.get(5)?,
            lease_owner: r.get(6)?,
            progress: r.get(7)?,
            last_error: r.get(8)?,
            key: r.get(9)?,
            trace: r.get(10)?,
            created_at: r.get(11)?,
            started_at: r.get(12)?,
            finished_at: r.get(13)?,
        },
        r.get(3)?,
    ))
}

fn checked((mut job, state): (Job, String)) -> Result<Job> {
    job.state = JobState::parse(&state)
        .ok_or_else(|| StoreError::Backend(format!("unknown job state {state:?}")))?;
    Ok(job)
}

impl SqliteStore {
    /// Runs a statement that changes one job, on the writer; whether it did.
    async fn change_job(
        &self,
        sql: &'static str,
        params: Vec<rusqlite::types::Value>,
    ) -> Result<bool> {
        self.writer
            .run(move |conn| {
                conn.prepare_cached(sql)
                    .and_then(|mut s| s.execute(rusqlite::params_from_iter(params)))
                    .map(|n| n == 1)
                    .map_err(sqlite_err)
            })
            .await
    }
}

fn text(s: &str) -> rusqlite::types::Value {
    rusqlite::types::Value::Text(s.to_owned())
}

fn int(i: i64) -> rusqlite::types::Value {
    rusqlite::types::Value::Integer(i)
}

fn opt_text(s: Option<&str>) -> rusqlite::types::Value {
    s.map_or(rusqlite::types::Value::Null, text)
}

#[async_trait]
impl Jobs for SqliteStore {
    async fn claim(
        &self,
        owner: &str,
        kinds: &[&str],
        now: Micros,
        lease_until: Micros,
        limit: u32,
    ) -> Result<Vec<Job>> {
        let owner = owner.to_owned();
        let kinds = format!(
            "[{}]",
            kinds
                .iter()
                .map(|k| format!("\"{}\"", k.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect::<Vec<_>>()
                .join(",")
        );
        self.writer
            .run(move |conn| {
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(sqlite_err)?;
                let ids: Vec<String> = {
                    let mut stmt = tx.prepare_cached(DUE).map_err(sqlite_err)?;
                    stmt.query_map(params![now, kinds, limit], |r| r.get(0))
                        .map_err(sqlite_err)?
                        .collect::<rusqlite::Result<_>>()
                        .map_err(sqlite_err)?
                };
                let mut jobs = Vec::with_capacity(ids.len());
                for id in ids {
                    let raw = tx
                        .prepare_cached(&CLAIM)
                        .and_then(|mut s| {
                            s.query_row(params![id, owner, now, lease_until], raw_job)
                        })
                        .map_err(sqlite_err)?;
                    jobs.push(checked(raw)?);
                }
                tx.commit().map_err(sqlite_err)?;
                Ok(jobs)
            })
            .await
    }

    async fn finish(
        &self,
        id: &str,
        owner: &str,
        now: Micros,
        progress: Option<&str>,
    ) -> Result<bool> {
        self.change_job(
            FINISH,
            vec![text(id), text(owner), int(now), opt_text(progress)],
        )
        .await
    }

    async fn fail(
        &self,
        id: &str,
        owner: &str,
        error: &str,
        retry_at: Option<Micros>,
    ) -> Result<bool> {
        let retry_at = retry_at.map_or(rusqlite::types::Value::Null, int);
        self.change_job(FAIL, vec![text(id), text(owner), text(error), retry_at])
            .await
    }

    async fn release(&self, id: &str, owner: &str, now: Micros) -> Result<bool> {
        self.change_job(RELEASE, vec![text(id), text(owner), int(now)])
            .await
    }

    async fn job(&self, id: &str) -> Result<Option<Job>> {
        let id = id.to_owned();
        self.readers
            .run(move |conn| {
                let raw = conn
                    .prepare_cached(&JOB)
                    .and_then(|mut s| s.query_row([id], raw_job).optional())
                    .map_err(sqlite_err)?;
                raw.map(checked).transpose()
            })
            .await
    }

    async fn jobs(&self, state: Option<JobState>, limit: u32) -> Result<Vec<Job>> {
        let state = state.map(JobState::as_str);
        self.readers
            .run(move |conn| {
                let mut stmt = conn.prepare_cached(&LIST).map_err(sqlite_err)?;
                let raws = stmt
                    .query_map(params![state, limit], raw_job)
                    .map_err(sqlite_err)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(sqlite_err)?;
                raws.into_iter().map(checked).collect()
            })
            .await
    }

    async fn retry(&self, id: &str, now: Micros) -> Result<bool> {
        self.change_job(RETRY, vec![text(id), int(now)]).await
    }

    async fn purge_done(&self, before: Micros) -> Result<u64> {
        self.writer
            .run(move |conn| {
                conn.prepare_cached(PURGE)
                    .and_then(|mut s| s.execute([before]))
                    .map(|n| n as u64)
                    .map_err(sqlite_err)
            })
            .await
    }
}
