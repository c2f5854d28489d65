//! A hook request (CDS Hooks 2.0 "HTTP Request"), checked against the service called:
//! `hook` must be the service's, `hookInstance` a UUID, `context` must hold what the
//! hook defines, and `fhirServer` with `fhirAuthorization` must be usable together.

use serde_json::{Map, Value};

use crate::{CdsError, Service};

/// The client's access to its FHIR server, as the request passes it on.
#[derive(Clone)]
pub struct FhirAuthorization {
    pub access_token: String,
    pub token_type: String,
    pub scope: String,
    pub subject: String,
}

impl std::fmt::Debug for FhirAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FhirAuthorization")
            .field("access_token", &"****")
            .field("scope", &self.scope)
            .field("subject", &self.subject)
            .finish()
    }
}

/// A checked hook request.
#[derive(Debug, Clone)]
pub struct HookRequest {
    pub hook: String,
    pub hook_instance: String,
    /// The client's FHIR base URL, without a trailing slash.
    pub fhir_server: Option<String>,
    pub fhir_authorization: Option<FhirAuthorization>,
    pub context: Map<String, Value>,
    /// Prefetched data by key; keys the client could not fill are absent.
    pub prefetch: Map<String, Value>,
}

impl HookRequest {
    /// `body` as a call of `service`, or why it is not one.
    pub fn parse(service: &Service, body: &Value) -> Result<Self, CdsError> {
        let bad = |m: &str| Err(CdsError::BadRequest(m.to_owned()));
        let Some(body) = body.as_object() else {
            return bad("the request must be a JSON object");
        };
        let text = |name: &str| body.get(name).and_then(Value::as_str);
        let Some(hook) = text("hook") else {
            return bad("hook: required, a string");
        };
        if hook != service.hook {
            return Err(CdsError::BadRequest(format!(
                "the service {} answers the hook {}, not {hook:?}",
                service.id, service.hook
            )));
        }
        let Some(hook_instance) = text("hookInstance").filter(|i| uuid::Uuid::parse_str(i).is_ok())
        else {
            return bad("hookInstance: required, a UUID");
        };
        let fhir_server = match body.get("fhirServer") {
            None => None,
            Some(Value::String(url)) if is_http_url(url) => {
                Some(url.trim_end_matches('/').to_owned())
            }
            Some(_) => return bad("fhirServer: an https URL (http only on a loopback host)"),
        };
        let fhir_authorization = match body.get("fhirAuthorization") {
            None => None,
            Some(auth) => Some(authorization(auth)?),
        };
        if fhir_authorization.is_some() && fhir_server.is_none() {
            return bad("fhirAuthorization needs fhirServer");
        }
        let Some(context) = body.get("context").and_then(Value::as_object) else {
            return bad("context: required, an object");
        };
        let prefetch = match body.get("prefetch") {
            None => Map::new(),
            Some(Value::Object(p)) => p
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(
                    |(k, v)| match v.get("resourceType").and_then(Value::as_str) {
                        Some(_) => Ok((k.clone(), v.clone())),
                        None => Err(CdsError::BadRequest(format!(
                            "prefetch.{k}: a FHIR resource or null"
                        ))),
                    },
                )
                .collect::<Result<_, _>>()?,
            Some(_) => return bad("prefetch: an object"),
        };
        let request = Self {
            hook: hook.to_owned(),
            hook_instance: hook_instance.to_owned(),
            fhir_server,
            fhir_authorization,
            context: context.clone(),
            prefetch,
        };
        request.check_context()?;
        Ok(request)
    }

    /// The checks of the context the hook defines.
    fn check_context(&self) -> Result<(), CdsError> {
        let user = self.context.get("userId").and_then(Value::as_str);
        if user.is_none_or(|u| !u.contains('/')) {
            return Err(CdsError::BadRequest(
                "context.userId: required, a relative reference such as Practitioner/123".into(),
            ));
        }
        self.patient_id()?;
        let bundle = match self.hook.as_str() {
            "order-sign" => Some("draftOrders"),
            "appointment-book" => Some("appointments"),
            _ => None,
        };
        if let Some(name) = bundle {
            let ok = self.context.get(name).and_then(|b| b.get("resourceType"))
                == Some(&Value::from("Bundle"));
            if !ok {
                return Err(CdsError::BadRequest(format!(
                    "context.{name}: required, a Bundle"
                )));
            }
        }
        Ok(())
    }

    /// `context.patientId`: a FHIR id.
    pub fn patient_id(&self) -> Result<&str, CdsError> {
        self.context
            .get("patientId")
            .and_then(Value::as_str)
            .filter(|id| ember_repo::check_id(id).is_ok())
            .ok_or_else(|| CdsError::BadRequest("context.patientId: required, a FHIR id".into()))
    }

    /// The resources of a Bundle in the context (`draftOrders`, `appointments`).
    pub(crate) fn context_resources(&self, name: &str) -> impl Iterator<Item = &Value> {
        self.context
            .get(name)
            .and_then(|b| b.get("entry"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| e.get("resource"))
    }
}

fn authorization(auth: &Value) -> Result<FhirAuthorization, CdsError> {
    let field = |name: &str| {
        auth.get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| CdsError::BadRequest(format!("fhirAuthorization.{name}: required")))
    };
    let token_type = field("token_type")?;
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(CdsError::BadRequest(
            "fhirAuthorization.token_type: Bearer".into(),
        ));
    }
    if auth.get("expires_in").and_then(Value::as_u64).is_none() {
        return Err(CdsError::BadRequest(
            "fhirAuthorization.expires_in: required, seconds".into(),
        ));
    }
    Ok(FhirAuthorization {
        access_token: field("access_token")?,
        token_type,
        scope: field("scope")?,
        subject: field("subject")?,
    })
}

/// An https URL, or http to a loopback host (Ember sends the client's access token
/// there, so never in the clear across a network), with no query or fragment.
fn is_http_url(url: &str) -> bool {
    ember_platform::http_client::secure_or_loopback(url)
        && !url.contains(['?', '#', ' '])
        && ember_fhir::control_char(url).is_none()
}
