//! `GET [base]/metadata`: the CapabilityStatement, generated from what this server
//! really implements: the generated type list, the interactions of
//! [`interactions`](super) and every searchable parameter. `?mode=terminology` gives
//! the TerminologyCapabilities: the stored CodeSystems with content, `$expand`'s
//! parameters and `$validate-code`; `?mode=normative` is refused. With authentication on, `rest.security` names
//! SMART on FHIR with the issuer's OAuth endpoints, and
//! `/.well-known/smart-configuration` (at the root and under the base) describes them.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ember_store::Backend;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, Result};
use crate::negotiate::Fhir;
use crate::response::json_response;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/metadata", get(metadata))
        .route(crate::auth::SMART_CONFIGURATION, get(smart_configuration))
}

/// `GET /.well-known/smart-configuration`: 404 when Ember runs without authentication.
pub(crate) async fn smart_configuration(State(state): State<AppState>) -> Result<Response> {
    let Some(verifier) = &state.auth else {
        return Err(ApiError::NotFound(
            "authentication is not configured (EMBER_AUTH_ISSUERS)".into(),
        ));
    };
    let conf = verifier.smart_configuration().await.map_err(|e| {
        tracing::warn!(error = %e, "the issuer's discovery document is unavailable");
        ApiError::Unavailable("the token issuer's configuration is unavailable".into())
    })?;
    let mut response = axum::Json(conf).into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("max-age=300"),
    );
    Ok(response)
}

/// `rest.security` for the SMART configuration `conf`.
fn security(conf: &Value) -> Value {
    let mut uris = Vec::new();
    for (url, name) in [
        ("token", "token_endpoint"),
        ("authorize", "authorization_endpoint"),
    ] {
        if let Some(uri) = conf.get(name).and_then(Value::as_str) {
            uris.push(json!({"url": url, "valueUri": uri}));
        }
    }
    json!({
        "extension": [{
            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
            "extension": uris,
        }],
        "service": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
            "code": "SMART-on-FHIR",
        }]}],
        "description": "Bearer tokens from the trusted issuers; SMART App Launch v1 and v2 scopes",
    })
}

async fn metadata(State(state): State<AppState>, fhir: Fhir) -> Result<Response> {
    let mode = fhir
        .query
        .iter()
        .rev()
        .find(|(name, _)| name == "mode")
        .map(|(_, value)| value.as_str());
    let backend = state.repo.store().backend();
    let body = match mode {
        None | Some("full") => {
            let mut body = statement(&fhir.base, backend, state.repo.limits());
            if let Some(verifier) = &state.auth {
                // Without the issuer's document the statement still answers.
                if let Ok(conf) = verifier.smart_configuration().await {
                    body["rest"][0]["security"] = security(&conf);
                }
            }
            body
        }
        Some("terminology") => {
            let systems = state.repo.code_systems(CODE_SYSTEMS_LISTED).await?;
            terminology(&fhir.base, backend, &systems)
        }
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "mode={other} is not supported: ask for mode=full (the default) or mode=terminology"
            )));
        }
    };
    Ok(json_response(&fhir, StatusCode::OK, &body))
}

/// Most stored CodeSystems the TerminologyCapabilities lists.
const CODE_SYSTEMS_LISTED: u32 = 100;

/// The TerminologyCapabilities: who answers, the stored code systems (`(url,
/// version)`), `$expand` with its parameters (`operations::expand`) and
/// `$validate-code`; no translations or closures.
fn terminology(base: &str, backend: Backend, systems: &[(String, Option<String>)]) -> Value {
    let mut tc = json!({
        "resourceType": "TerminologyCapabilities",
        "status": "active",
        "date": RELEASE_DATE,
        "kind": "instance",
        "software": software(),
        "implementation": implementation(base, backend),
        "expansion": {
            "hierarchical": false,
            "paging": true,
            "incomplete": false,
            "parameter": [
                {"name": "filter"},
                {"name": "count"},
                {"name": "offset"},
                {"name": "activeOnly"},
            ],
            "textFilter": "Codes whose display or code contains the text, ignoring case.",
        },
        "validateCode": {"translations": false},
    });
    let systems: Vec<Value> = systems
        .iter()
        .map(|(url, version)| match version {
            Some(v) => json!({"uri": url, "version": [{"code": v}]}),
            None => json!({"uri": url}),
        })
        .collect();
    if !systems.is_empty() {
        tc["codeSystem"] = Value::Array(systems);
    }
    tc
}

fn software() -> Value {
    json!({"name": "Ember", "version": env!("CARGO_PKG_VERSION")})
}

fn implementation(base: &str, backend: Backend) -> Value {
    let storage = match backend {
        Backend::Postgres => "PostgreSQL",
        Backend::Sqlite => "embedded SQLite",
    };
    json!({"description": format!("Ember FHIR R4 server ({storage})"), "url": base})
}

/// Interactions every resource type supports. Keep in step with the routes of
/// [`interactions`](super); a test checks that each one answers.
const TYPE_INTERACTIONS: &[&str] = &[
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
];

/// When the content of this statement last changed; bump it with the interactions.
const RELEASE_DATE: &str = "2026-12-06";

/// Interactions on the whole system.
const SYSTEM_INTERACTIONS: &[&str] = &["transaction", "batch", "history-system", "search-system"];

/// The search parameters of `res_type` that searches honour: every one with an index
/// (special parameters have none), plus `_id`, `_list`, `_text` and `_content`.
fn search_params(res_type: &str) -> Vec<Value> {
    use ember_fhir::definitions::{SearchParamType, search_params};
    search_params(res_type)
        .into_iter()
        .filter(|p| {
            p.kind != SearchParamType::Special || matches!(p.code, "_list" | "_text" | "_content")
        })
        .map(|p| {
            let kind = format!("{:?}", p.kind).to_lowercase();
            json!({"name": p.code, "definition": p.url, "type": kind})
        })
        .collect()
}

/// `Type:param` for each reference parameter of `res_type`, and `*`.
fn includes(res_type: &str) -> Vec<Value> {
    use ember_fhir::definitions::{SearchParamType, search_params};
    std::iter::once(json!("*"))
        .chain(
            search_params(res_type)
                .into_iter()
                .filter(|p| p.kind == SearchParamType::Reference)
                .map(|p| json!(format!("{res_type}:{}", p.code))),
        )
        .collect()
}

/// `Source:param` for every reference parameter that can point at each type: what
/// `_revinclude` takes for a search of that type.
static REVINCLUDES: std::sync::LazyLock<std::collections::HashMap<&'static str, Vec<Value>>> =
    std::sync::LazyLock::new(|| {
        use ember_fhir::definitions::{SearchParamType, search_params};
        let mut by_target: std::collections::HashMap<&'static str, Vec<Value>> =
            std::collections::HashMap::new();
        for &source in ember_fhir::resource_types() {
            for p in search_params(source) {
                if p.kind != SearchParamType::Reference {
                    continue;
                }
                let targets: &[&'static str] = if p.targets.is_empty() {
                    ember_fhir::resource_types()
                } else {
                    p.targets
                };
                for &target in targets {
                    by_target
                        .entry(target)
                        .or_default()
                        .push(json!(format!("{source}:{}", p.code)));
                }
            }
        }
        by_target
    });

/// The WebSocket endpoint of Subscriptions: the base URL with `ws`/`wss`.
fn websocket_url(base: &str) -> String {
    let socket = match base.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}"),
        Some((_, rest)) => format!("ws://{rest}"),
        None => base.to_owned(),
    };
    format!("{socket}{}", crate::websocket::PATH)
}

/// The CapabilityStatement of this instance, with `base` as its implementation URL.
fn statement(base: &str, backend: Backend, limits: &ember_repo::Limits) -> Value {
    // R4 has no conditionalPatch element (R5 added it); conditional patch is served all
    // the same.
    let conditional_delete = if limits.max_conditional_delete > 1 {
        "multiple"
    } else {
        "single"
    };
    let interactions =
        |codes: &[&str]| -> Vec<Value> { codes.iter().map(|c| json!({"code": c})).collect() };
    let resources: Vec<Value> = ember_fhir::resource_types()
        .iter()
        .map(|t| {
            let mut resource = json!({
                "type": t,
                "interaction": interactions(TYPE_INTERACTIONS),
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalRead": "full-support",
                "conditionalUpdate": true,
                "conditionalDelete": conditional_delete,
                "searchInclude": includes(t),
                "searchRevInclude": REVINCLUDES.get(t).cloned().unwrap_or_default(),
                "searchParam": search_params(t),
            });
            let mut operations = Vec::new();
            if crate::operations::everything::TYPES.contains(t) {
                operations.push(json!({
                    "name": "everything",
                    "definition": format!("http://hl7.org/fhir/OperationDefinition/{t}-everything"),
                }));
            }
            let export = match *t {
                "Patient" => Some("patient-export"),
                "Group" => Some("group-export"),
                _ => None,
            };
            // The terminology operations (see `operations::{expand, lookup, validate_code}`).
            let terminology: &[&str] = match *t {
                "ValueSet" => &["expand", "validate-code"],
                "CodeSystem" => &["lookup"],
                _ => &[],
            };
            for op in terminology {
                operations.push(json!({
                    "name": op,
                    "definition": format!("http://hl7.org/fhir/OperationDefinition/{t}-{op}"),
                }));
            }
            if let Some(export) = export {
                operations.push(json!({
                    "name": "export",
                    "definition": format!("http://hl7.org/fhir/uv/bulkdata/OperationDefinition/{export}"),
                }));
            }
            if !operations.is_empty() {
                resource["operation"] = Value::Array(operations);
            }
            resource
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": RELEASE_DATE,
        "kind": "instance",
        "instantiates": ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"],
        "software": software(),
        "implementation": implementation(base, backend),
        "fhirVersion": "4.0.1",
        "format": ["json", "application/fhir+json", "xml", "application/fhir+xml"],
        "patchFormat": ["application/json-patch+json", "application/fhir+json", "application/fhir+xml"],
        "rest": [{
            "mode": "server",
            // Subscriptions with a websocket channel bind here (see `websocket`).
            "extension": [{
                "url": "http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket",
                "valueUri": websocket_url(base),
            }],
            "resource": resources,
            "interaction": interactions(SYSTEM_INTERACTIONS),
            "operation": [{
                "name": "export",
                "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
            }, {
                "name": "validate",
                "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
            }, {
                // Ember's own operation (system and type level, see `operations::reindex`);
                // R4 publishes no OperationDefinition for it.
                "name": "reindex",
                "definition": "urn:ember:OperationDefinition:reindex",
            }, {
                // Telemonitoring submissions (see `operations::submit_measurement`).
                "name": "submit-measurement",
                "definition": "urn:ember:OperationDefinition:submit-measurement",
            }],
        }],
    })
}
