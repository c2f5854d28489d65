//! The HTTP face of Ember: axum routers for the FHIR REST API and the operations
//! endpoints. Handlers are thin: typed extractors (`negotiate::Fhir`, the checked
//! paths of `path`, the bodies and `If-Match` of `body`) bring the request in, one
//! call on the domain (`ember-repo`) does the work, and `response` shapes the answer.
//! Each FHIR interaction group is a module of `interactions`, each operation a module
//! of `operations`; every one exposes `routes()`, and [`router`] composes them with
//! the cross-cutting layers. All error responses are `OperationOutcome`s built in
//! `error`.

mod admin;
mod audit;
mod auth;
mod body;
mod cds;
mod compression;
mod cors;
mod error;
mod interactions;
mod kv;
mod negotiate;
mod observe;
mod operations;
mod ops;
mod path;
mod response;
mod websocket;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use axum::{Router, ServiceExt};
use ember_platform::Lifecycle;
use ember_repo::Repo;
use interactions::{
    bundle, capabilities, conditional, create, delete, history, patch, read, search, update,
};
use operations::{
    everything, expand, export, lookup, reindex, submit_measurement, validate, validate_code,
};
use tower_http::normalize_path::NormalizePath;

pub use audit::Audit;
pub use cds::CdsTrust;
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
    /// Browser origins allowed by CORS (`EMBER_CORS_ORIGINS`).
    pub cors_origins: Vec<String>,
    /// The largest key-value value (`EMBER_KV_MAX_BYTES`).
    pub kv_max_bytes: usize,
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
    /// Token verification; `None` when Ember runs open (see `ember_auth::Posture`).
    pub auth: Option<Arc<ember_auth::Verifier>>,
    /// Where the audit trail goes (`EMBER_AUDIT`).
    pub audit: Audit,
    /// Who may call the CDS services (`EMBER_CDS_CLIENTS`).
    pub cds: CdsTrust,
    /// The client for outgoing calls (CDS Hooks data from a client's FHIR server).
    pub client: ember_platform::http_client::HttpClient,
    /// Subscriptions: this instance's WebSocket clients.
    pub subscriptions: ember_subscriptions::Subscriptions,
}

/// The complete HTTP application, ready to serve: [`router`], with a trailing slash
/// dropped before routing (so `Patient/` is `Patient` and `Patient/1/` is
/// `Patient/1`; a layer on the router itself would run after the routing).
pub fn service(
    state: AppState,
) -> IntoMakeServiceWithConnectInfo<NormalizePath<Router>, std::net::SocketAddr> {
    ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info(
        NormalizePath::trim_trailing_slash(router(state)),
    )
}

/// The FHIR API under its base path plus `/livez`, `/readyz` and `/healthz`.
pub fn router(state: AppState) -> Router {
    let base_path = state.settings.base_path.clone();
    let fhir = fhir_routes(&state);
    let app = if base_path.is_empty() {
        fhir
    } else {
        Router::new().nest(&base_path, fhir)
    };
    app.route(
        auth::SMART_CONFIGURATION,
        axum::routing::get(capabilities::smart_configuration),
    )
    .merge(ops::routes(&state.settings))
    .merge(admin::routes())
    .merge(kv::routes())
    .merge(cds::routes(&state))
    .fallback(error::not_found)
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        error::guard,
    ))
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::authenticate,
    ))
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        audit::audit,
    ))
    .layer(negotiate::XmlResponses {
        base_path: state.settings.base_path.as_str().into(),
    })
    .layer(tower_http::catch_panic::CatchPanicLayer::custom(
        error::panic_response,
    ))
    .layer(compression::responses())
    .layer(tower::util::option_layer(cors::layer(
        &state.settings.cors_origins,
    )))
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        observe::observe,
    ))
    .with_state(state)
}

/// The FHIR REST API, relative to its base path: every interaction and operation.
fn fhir_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .merge(base_routes())
        .merge(capabilities::routes())
        .merge(read::routes())
        .merge(create::routes())
        .merge(update::routes())
        .merge(patch::routes())
        .merge(delete::routes())
        .merge(conditional::routes())
        .merge(history::routes())
        .merge(search::routes())
        .merge(validate::routes())
        .merge(everything::routes())
        .merge(expand::routes())
        .merge(lookup::routes())
        .merge(validate_code::routes())
        .merge(export::routes())
        .merge(reindex::routes())
        .merge(submit_measurement::routes())
        .merge(websocket::routes())
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(
            state.settings.max_body_bytes,
        ))
        // Outside the limit: the limit counts the decompressed bytes.
        .layer(compression::requests())
        .layer(axum::middleware::from_fn(compression::supported_encoding))
}

/// The interactions on the base itself: batch and transaction, and system search.
fn base_routes() -> Router<AppState> {
    bundle::routes("/").merge(search::system_routes("/"))
}
