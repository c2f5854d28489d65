//! Per-request platform concerns: the trace context, the access log, metrics, the
//! span export and polite connection closing while the instance drains.

use std::time::{Instant, SystemTime};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use ember_platform::otlp::{self, Span};
use ember_platform::trace::TraceContext;
use serde_json::json;

use crate::AppState;

/// Routes polled by the platform; their access events are logged at DEBUG.
const PROBES: &[&str] = &["/livez", "/readyz", "/healthz", "/metrics"];

/// Runs the request inside its trace context and logs one access event: method, route
/// template (never the raw path or query, which can carry personal data), status and
/// duration.
pub(crate) async fn observe(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let wall_start = SystemTime::now();
    let context = TraceContext::from_headers(request.headers());
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(no route)".to_owned(), |m| m.as_str().to_owned());
    let mut response = context.clone().scope(next.run(request)).await;
    if state.lifecycle.is_draining() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let status = response.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    state
        .metrics
        .observe_request(method.as_str(), &route, status, elapsed);
    if let Some(spans) = &state.spans {
        spans.record(Span {
            trace_id: otlp::otlp_trace_id(&context.trace_id),
            span_id: otlp::new_span_id(),
            parent_span_id: context.parent_span_id.clone(),
            name: format!("{method} {route}"),
            start: wall_start,
            end: SystemTime::now(),
            attributes: vec![
                ("http.request.method", json!(method.as_str())),
                ("http.route", json!(route)),
                ("http.response.status_code", json!(status)),
            ],
            error: status >= 500,
        });
    }
    let duration_ms = format!("{:.3}", elapsed * 1000.0);
    context
        .scope(async {
            if PROBES.contains(&route.as_str()) {
                tracing::debug!(target: "ember_api::access", %method, %route, status, duration_ms, "request");
            } else {
                tracing::info!(target: "ember_api::access", %method, %route, status, duration_ms, "request");
            }
        })
        .await;
    response
}
