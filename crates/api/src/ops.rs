//! Operations endpoints: liveness and readiness probes.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;

/// The probes at their configured paths (readiness also at `/healthz`), and `/metrics`.
pub(crate) fn routes(settings: &crate::ApiSettings) -> Router<AppState> {
    let mut router = Router::new()
        .route(&settings.liveness_path, get(livez))
        .route(&settings.readiness_path, get(readyz))
        .route("/metrics", get(metrics));
    if settings.readiness_path != "/healthz" && settings.liveness_path != "/healthz" {
        router = router.route("/healthz", get(readyz));
    }
    router
}

/// The process answers; no database call.
async fn livez() -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        r#"{"status":"live"}"#,
    )
        .into_response()
}

/// Ready when start-up is done, the instance is not draining and the latest cached
/// database check succeeded. Makes no database call itself.
async fn readyz(State(state): State<AppState>) -> Response {
    match state.lifecycle.not_ready_reason() {
        None => (
            StatusCode::OK,
            [("content-type", "application/json")],
            r#"{"status":"ready"}"#,
        )
            .into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [("content-type", "application/json")],
            format!(r#"{{"status":"not ready","reason":"{reason}"}}"#),
        )
            .into_response(),
    }
}

/// Prometheus metrics, with the pool state sampled now.
async fn metrics(State(state): State<AppState>) -> Response {
    let pool = state.repo.store().pool_status();
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    state.metrics.set_pool(ember_platform::metrics::PoolUse {
        max: count(pool.max),
        open: count(pool.open),
        idle: count(pool.idle),
        waiting: count(pool.waiting),
    });
    (
        StatusCode::OK,
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
