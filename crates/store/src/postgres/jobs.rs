//! The job queue: claims in batches with `FOR UPDATE SKIP LOCKED`, so instances never
//! claim the same job at once and never wait on each other's claims.

use async_trait::async_trait;
use tokio_postgres::Row;

use super::{PgStore, pg_err, query_with_local};
use crate::{Job, JobState, Jobs, Micros, Result, StoreError};

const COLUMNS: &str = "id, kind, payload, state, attempts, due, lease_owner, progress,
    last_error, idempotency_key, trace, created_at, started_at, finished_at";

/// Takes the due jobs of the given kinds, oldest due first: queued ones whose time has
/// come and running ones whose lease ended.
static CLAIM: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "UPDATE jobs SET state = 'running', lease_owner = $1, due = $3,
            attempts = attempts + 1, started_at = COALESCE(started_at, $2)
        WHERE id IN (SELECT id FROM jobs
            WHERE state IN ('queued', 'running') AND due <= $2 AND kind = ANY($4)
            ORDER BY due LIMIT $5 FOR UPDATE SKIP LOCKED)
        RETURNING {COLUMNS}"
    )
});

const FINISH: &str = "UPDATE jobs
    SET state = 'done', finished_at = $3, progress = COALESCE($4, progress)
    WHERE id = $1 AND lease_owner = $2 AND state = 'running'";

const FAIL: &str = "UPDATE jobs
    SET state = CASE WHEN $4::bigint IS NULL THEN 'dead' ELSE 'queued' END,
        due = COALESCE($4::bigint, due), last_error = $3, lease_owner = NULL
    WHERE id = $1 AND lease_owner = $2 AND state = 'running'";

const RELEASE: &str = "UPDATE jobs
    SET state = 'queued', due = $3, lease_owner = NULL, attempts = GREATEST(attempts - 1, 0)
    WHERE id = $1 AND lease_owner = $2 AND state = 'running'";

static JOB: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"));

static LIST: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS} FROM jobs WHERE ($1::text IS NULL OR state = $1::text)
        ORDER BY created_at DESC, id DESC LIMIT $2"
    )
});

const RETRY: &str = "UPDATE jobs SET state = 'queued', due = $2, attempts = 0, lease_owner = NULL
    WHERE id = $1 AND state = 'dead'";

const PURGE: &str = "DELETE FROM jobs WHERE state = 'done' AND finished_at < $1";

pub(super) fn statements() -> Vec<String> {
    let mut all = vec![CLAIM.clone(), JOB.clone(), LIST.clone()];
    all.extend(
        [FINISH, FAIL, RELEASE, RETRY, PURGE]
            .iter()
            .map(|s| (*s).to_owned()),
    );
    all
}

fn job_from_row(r: &Row) -> Result<Job> {
    let state: String = r.get(3);
    Ok(Job {
        id: r.get(0),
        kind: r.get(1),
        payload: r.get(2),
        state: JobState::parse(&state)
            .ok_or_else(|| StoreError::Backend(format!("unknown job state {state:?}")))?,
        attempts: r.get(4),
        due: r.get(5),
        lease_owner: r.get(6),
        progress: r.get(7),
        last_error: r.get(8),
        key: r.get(9),
        trace: r.get(10),
        created_at: r.get(11),
        started_at: r.get(12),
        finished_at: r.get(13),
    })
}

impl PgStore {
    /// Runs a statement that changes one job; whether it did.
    async fn change_job(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<bool> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
        Ok(client.execute(&stmt, params).await.map_err(pg_err)? == 1)
    }
}

#[async_trait]
impl Jobs for PgStore {
    async fn claim(
        &self,
        owner: &str,
        kinds: &[&str],
        now: Micros,
        lease_until: Micros,
        limit: u32,
    ) -> Result<Vec<Job>> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(&CLAIM).await.map_err(pg_err)?;
        let kinds: Vec<&str> = kinds.to_vec();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
            [&owner, &now, &lease_until, &kinds, &i64::from(limit)];
        // A claim need not wait for its WAL flush: one lost in a crash leaves the job
        // queued, and every later commit of the claimer (progress, end) checks the
        // lease and flushes the WAL before it, the claim's included.
        let rows = query_with_local(
            &client,
            "SET LOCAL synchronous_commit = off",
            &stmt,
            &params,
        )
        .await?;
        rows.iter().map(job_from_row).collect()
    }

    async fn finish(
        &self,
        id: &str,
        owner: &str,
        now: Micros,
        progress: Option<&str>,
    ) -> Result<bool> {
        self.change_job(FINISH, &[&id, &owner, &now, &progress])
            .await
    }

    async fn fail(
        &self,
        id: &str,
        owner: &str,
        error: &str,
        retry_at: Option<Micros>,
    ) -> Result<bool> {
        self.change_job(FAIL, &[&id, &owner, &error, &retry_at])
            .await
    }

    async fn release(&self, id: &str, owner: &str, now: Micros) -> Result<bool> {
        self.change_job(RELEASE, &[&id, &owner, &now]).await
    }

    async fn job(&self, id: &str) -> Result<Option<Job>> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(&JOB).await.map_err(pg_err)?;
        let row = client.query_opt(&stmt, &[&id]).await.map_err(pg_err)?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn jobs(&self, state: Option<JobState>, limit: u32) -> Result<Vec<Job>> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(&LIST).await.map_err(pg_err)?;
        let state = state.map(JobState::as_str);
        let rows = client
            .query(&stmt, &[&state, &i64::from(limit)])
            .await
            .map_err(pg_err)?;
        rows.iter().map(job_from_row).collect()
    }

    async fn retry(&self, id: &str, now: Micros) -> Result<bool> {
        self.change_job(RETRY, &[&id, &now]).await
    }

    async fn purge_done(&self, before: Micros) -> Result<u64> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(PURGE).await.map_err(pg_err)?;
        client.execute(&stmt, &[&before]).await.map_err(pg_err)
    }
}
