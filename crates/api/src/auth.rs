//! Authentication and authorization of requests: the layer that verifies the bearer
//! token (`ember-auth`) and hands the caller's grants to the repository
//! (`ember_repo::access`), which applies them to every read, search, include, history
//! entry and write, Bundle entries and operations included.
//!
//! Open without a token: the probes, `/metrics`, `metadata` and
//! `/.well-known/smart-configuration`; the CDS Hooks endpoints, which trust their
//! callers by the client's own signed JWT (`cds::trust`). The admin endpoints (`/admin/…`, `$reindex`)
//! need a `system/` scope on every type or the admin role.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ember_auth::{Action, Decision, Principal};
use ember_fhir::index::{in_compartment, matches_tokens};
use ember_fhir::{IssueType, OperationOutcome};
use ember_repo::access::{Access, Narrowing, Need, Reach, with_access};
use serde_json::Value;

use crate::AppState;
use crate::error::outcome_response;

/// The path of the SMART configuration, at the root and under the FHIR base.
pub(crate) const SMART_CONFIGURATION: &str = "/.well-known/smart-configuration";

/// Verifies the bearer token of every request that needs one and runs the request
/// with the caller's grants.
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(verifier) = state.auth.clone() else {
        return next.run(request).await;
    };
    let path = request.uri().path().to_owned();
    if is_open(&path, &state) {
        return next.run(request).await;
    }
    let Some(token) = bearer_token(request.headers()) else {
        tracing::warn!(path, "refused: no bearer token");
        return unauthorized("a bearer token is required");
    };
    let principal = match verifier.verify(&token).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(path, reason = %e, "refused: invalid token");
            return unauthorized(&e.to_string());
        }
    };
    let mut response = if is_admin_path(&path) && !principal.is_admin() {
        forbidden(
            &principal,
            &path,
            "the admin endpoints need a system/ scope on every type or the admin role",
        )
    } else {
        // Handlers that decide by the caller (the key-value API) find it here.
        request.extensions_mut().insert(principal.clone());
        let grants = grants(principal.clone());
        let response = with_access(grants, next.run(request)).await;
        if response.status() == StatusCode::FORBIDDEN {
            log_refusal(&principal, &path);
        }
        response
    };
    // The audit trail, outside this layer, reads the caller from the answer.
    response.extensions_mut().insert(principal);
    response
}

fn is_open(path: &str, state: &AppState) -> bool {
    let settings = &state.settings;
    let under_base = path.strip_prefix(settings.base_path.as_str());
    path == settings.liveness_path
        || path == settings.readiness_path
        || path == "/healthz"
        || path == "/metrics"
        || path == SMART_CONFIGURATION
        || path == crate::cds::CDS_SERVICES
        || path.starts_with("/cds-services/")
        || under_base.is_some_and(|p| p == "/metadata" || p == SMART_CONFIGURATION)
}

fn is_admin_path(path: &str) -> bool {
    path.starts_with("/admin/") || path.contains("/$reindex")
}

/// The token of an `Authorization: Bearer …` header, when there is a non-empty one.
pub(crate) fn bearer_token(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// A 401 with `WWW-Authenticate: Bearer error="invalid_token"`.
pub(crate) fn unauthorized(reason: &str) -> Response {
    let outcome = OperationOutcome::error(IssueType::Login, reason.to_owned());
    let mut response = outcome_response(StatusCode::UNAUTHORIZED, &outcome);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    response
}

fn forbidden(principal: &Principal, path: &str, reason: &str) -> Response {
    log_refusal(principal, path);
    let outcome = OperationOutcome::error(IssueType::Forbidden, reason.to_owned());
    outcome_response(StatusCode::FORBIDDEN, &outcome).into_response()
}

/// An `alert` event for a refusal: who (subject and client) and where, never the token.
fn log_refusal(principal: &Principal, path: &str) {
    tracing::warn!(
        subject = principal.subject,
        client = principal.client.as_deref().unwrap_or("-"),
        path,
        "refused: insufficient scope"
    );
}

/// A verified caller's grants, as the repository applies them.
struct Grants(Arc<Principal>);

/// The grants of `principal`, for work that runs under them outside this layer.
pub(crate) fn grants(principal: Arc<Principal>) -> Arc<dyn Access> {
    Arc::new(Grants(principal))
}

fn action(need: Need) -> Action {
    match need {
        Need::Create => Action::Create,
        Need::Read => Action::Read,
        Need::Update => Action::Update,
        Need::Delete => Action::Delete,
        Need::Search => Action::Search,
    }
}

impl Grants {
    /// Whether `resource` is within what `decision` grants.
    fn fits(&self, decision: &Decision, resource: &Value) -> bool {
        let in_patient = |p: &str| in_compartment(resource, "Patient", p).unwrap_or(true);
        match decision {
            Decision::Allow => true,
            Decision::Deny(_) => false,
            Decision::Compartment(p) => in_patient(p),
            Decision::Matching { patient, queries } => {
                // Criteria that cannot be judged in memory (not token parameters)
                // match nothing, so they never widen access.
                patient.as_deref().is_none_or(in_patient)
                    && queries
                        .iter()
                        .any(|q| matches_tokens(resource, q) == Some(true))
            }
        }
    }
}

impl Access for Grants {
    fn reach(&self, res_type: &str, need: Need) -> Reach {
        match self.0.decide(res_type, action(need)) {
            Decision::Deny(reason) => Reach::None(reason),
            Decision::Allow => Reach::All,
            Decision::Compartment(_) | Decision::Matching { .. } => Reach::Some,
        }
    }

    fn narrowing(&self, res_type: &str) -> Narrowing {
        let patient = |p: String| Some(("Patient".to_owned(), p));
        match self.0.decide(res_type, Action::Search) {
            Decision::Compartment(p) => Narrowing {
                compartment: patient(p),
                criteria: Vec::new(),
            },
            Decision::Matching {
                patient: p,
                queries,
            } => Narrowing {
                compartment: p.and_then(patient),
                criteria: queries,
            },
            Decision::Allow | Decision::Deny(_) => Narrowing::default(),
        }
    }

    fn may_read(&self, res_type: &str, resource: &Value) -> bool {
        let decision = self.0.decide(res_type, Action::Read);
        self.fits(&decision, resource)
    }

    fn may_write(&self, res_type: &str, need: Need, resource: &Value) -> bool {
        let decision = self.0.decide(res_type, action(need));
        self.fits(&decision, resource)
    }

    fn expires_at(&self) -> Option<u64> {
        Some(self.0.expires).filter(|&at| at > 0)
    }
}
