//! Where a call's data comes from when it was not prefetched: the client's FHIR server
//! through the platform's outgoing client (trace headers and `User-Agent` go along),
//! or Ember's own store when `fhirServer` is Ember's public base URL, read with the
//! grants of the `fhirAuthorization` token when Ember checks tokens.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use ember_cds::{CdsError, HookRequest, LocalSource, Source};
use ember_platform::http_client::HttpClient;
use ember_repo::access::Access;
use http_body_util::Full;
use serde_json::Value;

use crate::AppState;

/// The client's own FHIR server.
pub(crate) struct Remote {
    client: HttpClient,
    base: String,
    token: Option<String>,
}

impl Remote {
    pub fn new(state: &AppState, base: &str, request: &HookRequest) -> Self {
        Self {
            client: state.client.clone(),
            base: base.to_owned(),
            token: request
                .fhir_authorization
                .as_ref()
                .map(|a| a.access_token.clone()),
        }
    }
}

#[async_trait]
impl Source for Remote {
    async fn get(&self, query: &str) -> Result<Value, CdsError> {
        let failed = |why: String| {
            CdsError::Precondition(format!(
                "{query} could not be fetched from the fhirServer: {why}"
            ))
        };
        let mut request = http::Request::get(format!("{}/{query}", self.base))
            .header(http::header::ACCEPT, "application/fhir+json");
        if let Some(token) = &self.token {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(|e| failed(e.to_string()))?;
        let response = self
            .client
            .send(request)
            .await
            .map_err(|e| failed(e.to_string()))?;
        if !response.status().is_success() {
            return Err(failed(format!("it answered {}", response.status())));
        }
        serde_json::from_slice(response.body()).map_err(|_| failed("the answer is not JSON".into()))
    }
}

/// A source that cannot be used, and says why.
struct Refused(String);

#[async_trait]
impl Source for Refused {
    async fn get(&self, query: &str) -> Result<Value, CdsError> {
        Err(CdsError::Precondition(format!(
            "{query} cannot be read: {}",
            self.0
        )))
    }
}

/// Ember's own store as a source, with the grants its reads run under. When Ember
/// checks tokens, the reads need the request's `fhirAuthorization` token and run with
/// its grants; without a usable one the source refuses (a 412 if it is needed).
pub(crate) async fn own(
    state: &AppState,
    request: &HookRequest,
    local: LocalSource,
) -> (Box<dyn Source>, Option<Arc<dyn Access>>) {
    let Some(verifier) = &state.auth else {
        return (Box::new(local), None);
    };
    let Some(auth) = &request.fhir_authorization else {
        let why = "reading Ember's own data needs fhirAuthorization".to_owned();
        return (Box::new(Refused(why)), None);
    };
    match verifier.verify(&auth.access_token).await {
        Ok(principal) => (Box::new(local), Some(crate::auth::grants(principal))),
        Err(e) => {
            let why = format!("the fhirAuthorization token is refused: {e}");
            (Box::new(Refused(why)), None)
        }
    }
}
