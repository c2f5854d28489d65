//! The admin API of the job queue, outside the FHIR base path:
//! - `GET /admin/jobs?state=…&_count=…`: jobs, newest first (`state` one of `queued`,
//!   `running`, `done`, `dead`; `_count` at most 1000, default 100);
//! - `GET /admin/jobs/{id}`: one job;
//! - `POST /admin/jobs/{id}/retry`: queues a dead job again, its attempts reset (409
//!   when it is not dead).
//!
//! Jobs are plain JSON (`id`, `kind`, `state`, `attempts`, `due`, `owner`, `payload`,
//! `progress`, `error`, `created`, `started`, `finished`); errors are
//! OperationOutcomes like everywhere else.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ember_fhir::instant;
use ember_store::{Job, JobState};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::path::JobPath;

type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Most jobs one listing returns.
const MAX_COUNT: u32 = 1000;

/// The admin routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/jobs", get(list))
        .route("/admin/jobs/{id}", get(one))
        .route("/admin/jobs/{id}/retry", post(retry))
}

#[derive(serde::Deserialize)]
struct ListQuery {
    state: Option<String>,
    #[serde(rename = "_count")]
    count: Option<u32>,
}

async fn list(
    State(state): State<AppState>,
    query: std::result::Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let wanted = match query.state.as_deref() {
        None => None,
        Some(s) => Some(JobState::parse(s).ok_or_else(|| {
            ApiError::BadRequest(format!("state: {s:?} is not queued, running, done or dead"))
        })?),
    };
    let count = query.count.unwrap_or(100).min(MAX_COUNT);
    let jobs = state.repo.jobs(wanted, count).await?;
    Ok(json(
        StatusCode::OK,
        &json!({"jobs": jobs.iter().map(job_json).collect::<Vec<_>>()}),
    ))
}

async fn one(State(state): State<AppState>, JobPath { id }: JobPath) -> Result<Response> {
    let job = state
        .repo
        .job(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no job {id}")))?;
    Ok(json(StatusCode::OK, &job_json(&job)))
}

async fn retry(State(state): State<AppState>, JobPath { id }: JobPath) -> Result<Response> {
    if !state.repo.retry_job(&id).await? {
        return match state.repo.job(&id).await? {
            None => Err(ApiError::NotFound(format!("no job {id}"))),
            Some(job) => Err(ApiError::Conflict(format!(
                "job {id} is {}, not dead; only dead jobs are retried",
                job.state.as_str()
            ))),
        };
    }
    one(State(state), JobPath { id }).await
}

fn json(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// A job as the admin API shows it.
fn job_json(job: &Job) -> Value {
    let parsed = |text: &Option<String>| {
        text.as_deref()
            .map(|t| serde_json::from_str::<Value>(t).unwrap_or_else(|_| Value::String(t.into())))
    };
    let time = |t: Option<i64>| t.map(instant::format_instant);
    json!({
        "id": job.id,
        "kind": job.kind,
        "state": job.state.as_str(),
        "attempts": job.attempts,
        "due": instant::format_instant(job.due),
        "owner": job.lease_owner,
        "payload": parsed(&Some(job.payload.clone())),
        "progress": parsed(&job.progress),
        "error": job.last_error,
        "created": instant::format_instant(job.created_at),
        "started": time(job.started_at),
        "finished": time(job.finished_at),
    })
}
