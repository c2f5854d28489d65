//! Operations endpoints: liveness and readiness probes.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/healthz", get(readyz))
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
