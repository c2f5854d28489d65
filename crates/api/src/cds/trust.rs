//! Who may call the CDS services (`EMBER_CDS_CLIENTS`): with clients configured, every
//! call carries a JWT its client signed for the exact URL called, checked by
//! `ember_auth::CdsVerifier`, and used once across all instances (`ember_cds::admit_once`).
//! With none, the services answer on a loopback listen address only, as the FHIR API
//! does. Preflights never get here: the CORS layer answers them.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ember_fhir::{IssueType, OperationOutcome};

use crate::AppState;
use crate::auth::{bearer_token, unauthorized};
use crate::error::outcome_response;

/// How CDS Hooks calls are trusted.
#[derive(Clone)]
pub enum CdsTrust {
    /// Every call needs a JWT signed by one of these clients.
    Clients(Arc<ember_auth::CdsVerifier>),
    /// No clients and a loopback listen address: open.
    Loopback,
    /// No clients on a network address: every call is refused.
    Closed,
}

/// Clock skew allowed on a client token's `exp`, which also keeps its `jti` that much
/// longer.
const LEEWAY: Duration = Duration::from_secs(60);

pub(crate) async fn check(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let verifier = match &state.cds {
        CdsTrust::Loopback => return next.run(request).await,
        CdsTrust::Closed => {
            return refuse(
                StatusCode::FORBIDDEN,
                IssueType::Forbidden,
                "the CDS services need EMBER_CDS_CLIENTS when Ember listens on a network address",
            );
        }
        CdsTrust::Clients(v) => v.clone(),
    };
    let token = bearer_token(request.headers());
    let path = request.uri().path().to_owned();
    let Some(token) = token else {
        tracing::warn!(path, "CDS call refused: no client token");
        return unauthorized("a JWT signed by an allowed CDS client is required");
    };
    let peer = request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let base = state.settings.public_url.resolve(request.headers(), peer);
    let root = base
        .strip_suffix(state.settings.base_path.as_str())
        .unwrap_or(&base);
    let endpoint = format!("{root}{path}");
    let caller = match verifier.verify(&token, &endpoint).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(path, reason = %e, "CDS call refused: invalid client token");
            return unauthorized(&e.to_string());
        }
    };
    match ember_cds::admit_once(
        &state.repo,
        &caller.issuer,
        &caller.jti,
        caller.expires,
        LEEWAY,
    )
    .await
    {
        Ok(true) => {
            let mut response = next.run(request).await;
            // The audit trail, outside this layer, reads the caller from the answer.
            response.extensions_mut().insert(Arc::new(caller));
            response
        }
        Ok(false) => {
            tracing::warn!(
                path,
                issuer = caller.issuer,
                "CDS call refused: replayed token"
            );
            unauthorized("the token was used before (jti)")
        }
        Err(e) => crate::error::ApiError::from(e).into_response(),
    }
}

fn refuse(status: StatusCode, code: IssueType, reason: &str) -> Response {
    outcome_response(status, &OperationOutcome::error(code, reason.to_owned()))
}
