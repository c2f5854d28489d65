//! The HTTP face of Ember: axum routers for the FHIR REST API and the operations
//! endpoints. Handlers translate HTTP into calls on the domain (`ember-repo`) and
//! domain results back into HTTP; all error responses are `OperationOutcome`s built
//! in [`error`].

mod admin;
mod capabilities;
mod error;
mod fhir;
mod negotiate;
mod observe;
mod ops;
mod reindex;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use ember_platform::Lifecycle;
use ember_repo::Repo;

pub use error::ApiError;

/// HTTP-level settings.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// `""` or `/fhir`: where the FHIR API is mounted.
    pub base_path: String,
    /// How the public base URL of each request is found.
    pub public_url: ember_platform::public_url::PublicUrl,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// Path of the liveness probe (`/livez`).
    pub liveness_path: String,
    /// Path of the readiness probe (`/readyz`; readiness also answers at `/healthz`).
    pub readiness_path: String,
}

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub repo: Repo,
    pub lifecycle: Lifecycle,
    pub metrics: Arc<ember_platform::metrics::Metrics>,
    /// Span export, when an OpenTelemetry collector is configured.
    pub spans: Option<ember_platform::otlp::SpanExporter>,
    pub settings: Arc<ApiSettings>,
}

/// The complete HTTP application: the FHIR API under its base path plus `/livez`,
/// `/readyz` and `/healthz`.
pub fn router(state: AppState) -> Router {
    let base_path = state.settings.base_path.clone();
    let fhir = fhir::routes(&state);
    let app = if base_path.is_empty() {
        fhir
    } else {
        Router::new()
            .nest(&base_path, fhir)
            .merge(fhir::system_routes(&format!("{base_path}/")))
    };
    app.merge(ops::routes(&state.settings))
        .merge(admin::routes())
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            error::guard,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panic_response,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        .with_state(state)
}
