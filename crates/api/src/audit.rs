//! The audit trail of the FHIR API (`EMBER_AUDIT`): every request under the base
//! (but `metadata` and the SMART configuration) becomes one [`AuditRecord`]: who (the
//! token's subject and client), what (the interaction, type, id or the names of the
//! search parameters), which patient (the token's patient context, or the Patient the
//! path names), and the status. `log` writes it as one `event` line, `fhir` hands it to
//! the repository's [`AuditSink`], which stores AuditEvents in batches through the job
//! queue. Values of search parameters and bodies are never recorded. CDS Hooks calls
//! are recorded too, as the operation `cds-services/{id}`: the client (its JWT's issuer
//! and subject) and the patient of the hook's context, which the handler reports
//! ([`AuditPatient`]).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use ember_auth::Principal;
use ember_fhir::instant;
use ember_repo::audit::{AuditRecord, AuditSink};

use crate::AppState;

/// Where audit records go.
#[derive(Clone, Default)]
pub enum Audit {
    #[default]
    Off,
    /// One `event` line per request.
    Log,
    /// AuditEvent resources, written in batches.
    Fhir(AuditSink),
}

/// The patient whose data a request outside the FHIR API read, as its handler reports
/// it in the answer's extensions.
#[derive(Debug, Clone)]
pub(crate) struct AuditPatient(pub String);

/// Records each FHIR API request once its answer is known. Runs outside
/// authentication, so refused requests are recorded too (the caller is known from the
/// answer's extensions when the token was valid).
pub(crate) async fn audit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(state.audit, Audit::Off) {
        return next.run(request).await;
    }
    if let Some(service) = request.uri().path().strip_prefix("/cds-services/") {
        let operation = format!("cds-services/{service}");
        let call = request.method() == Method::POST;
        let response = next.run(request).await;
        if call {
            let caller = response.extensions().get::<Arc<ember_auth::CdsCaller>>();
            let record = AuditRecord {
                recorded: instant::format_instant(instant::now()),
                subject: caller
                    .and_then(|c| c.subject.clone())
                    .unwrap_or_else(|| "-".to_owned()),
                issuer: caller.map(|c| c.issuer.clone()),
                client: None,
                interaction: "operation".to_owned(),
                res_type: None,
                id: None,
                operation: Some(operation),
                params: Vec::new(),
                patient: response
                    .extensions()
                    .get::<AuditPatient>()
                    .map(|p| p.0.clone()),
                care_team: None,
                status: response.status().as_u16(),
            };
            emit(&state.audit, record);
        }
        return response;
    }
    let base = state.settings.base_path.as_str();
    let Some(rest) = request.uri().path().strip_prefix(base).map(str::to_owned) else {
        return next.run(request).await;
    };
    let segments: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    if matches!(
        segments.first().map(String::as_str),
        Some("metadata" | ".well-known" | "cds-services")
    ) {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let mut params: Vec<String> = request
        .uri()
        .query()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(name, _)| name.into_owned())
                .filter(|name| ember_fhir::control_char(name).is_none())
                .collect()
        })
        .unwrap_or_default();
    params.sort();
    params.dedup();
    let response = next.run(request).await;
    let principal = response.extensions().get::<Arc<Principal>>().cloned();
    let record = record(
        &method,
        &segments,
        params,
        principal.as_deref(),
        response.status().as_u16(),
    );
    emit(&state.audit, record);
    response
}

/// Writes one record where `EMBER_AUDIT` says.
fn emit(audit: &Audit, record: AuditRecord) {
    match audit {
        Audit::Off => {}
        Audit::Log => tracing::info!(
            log_type = "event",
            subject = record.subject,
            client = record.client.as_deref().unwrap_or("-"),
            interaction = record.interaction,
            resource_type = record.res_type.as_deref().unwrap_or("-"),
            id = record.id.as_deref().unwrap_or("-"),
            operation = record.operation.as_deref().unwrap_or("-"),
            params = record.params.join(","),
            patient = record.patient.as_deref().unwrap_or("-"),
            care_team = record.care_team.as_deref().unwrap_or("-"),
            status = record.status,
            "audit"
        ),
        Audit::Fhir(sink) => sink.record(record),
    }
}

/// What a request did, from its method and path (relative to the FHIR base).
fn record(
    method: &Method,
    segments: &[String],
    params: Vec<String>,
    principal: Option<&Principal>,
    status: u16,
) -> AuditRecord {
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let op = |s: &str| s.strip_prefix('$').map(str::to_owned);
    let m = method.as_str();
    let (interaction, res_type, id, operation) = match seg.as_slice() {
        [] if m == "POST" => ("batch", None, None, None),
        [] => ("search-system", None, None, None),
        ["_history"] => ("history-system", None, None, None),
        [o] if o.starts_with('$') => ("operation", None, None, op(o)),
        [t] => (
            match m {
                "POST" => "create",
                "PUT" => "update",
                "PATCH" => "patch",
                "DELETE" => "delete",
                _ => "search-type",
            },
            Some(*t),
            None,
            None,
        ),
        [t, "_search"] => ("search-type", Some(*t), None, None),
        [t, "_history"] => ("history-type", Some(*t), None, None),
        [t, o] if o.starts_with('$') => ("operation", Some(*t), None, op(o)),
        [t, id] => (
            match m {
                "PUT" => "update",
                "PATCH" => "patch",
                "DELETE" => "delete",
                _ => "read",
            },
            Some(*t),
            Some(*id),
            None,
        ),
        [t, id, "_history"] => ("history-instance", Some(*t), Some(*id), None),
        [t, id, "_history", _] => ("vread", Some(*t), Some(*id), None),
        [t, id, o] if o.starts_with('$') => ("operation", Some(*t), Some(*id), op(o)),
        [_, _, t] => ("search-compartment", Some(*t), None, None),
        _ => ("unknown", None, None, None),
    };
    let path_patient = match seg.as_slice() {
        ["Patient", id, ..] if !id.starts_with('$') && !id.starts_with('_') => Some(*id),
        _ => None,
    };
    AuditRecord {
        recorded: instant::format_instant(instant::now()),
        subject: principal.map_or("-".to_owned(), |p| p.subject.clone()),
        issuer: principal.map(|p| p.issuer.clone()),
        client: principal.and_then(|p| p.client.clone()),
        interaction: interaction.to_owned(),
        res_type: res_type.map(str::to_owned),
        id: id.map(str::to_owned),
        operation,
        params,
        patient: principal
            .and_then(|p| p.patient.clone())
            .or(path_patient.map(str::to_owned)),
        care_team: principal.and_then(|p| p.care_team.clone()),
        status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(method: Method, path: &str) -> AuditRecord {
        let segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        record(&method, &segments, Vec::new(), None, 200)
    }

    #[test]
    fn interactions_from_method_and_path() {
        let cases = [
            (Method::GET, "Patient/p1", "read", Some("p1")),
            (Method::GET, "Patient/p1/_history/2", "vread", Some("p1")),
            (Method::PUT, "Observation/o1", "update", None),
            (Method::DELETE, "Observation", "delete", None),
            (Method::GET, "Observation", "search-type", None),
            (Method::POST, "Observation/_search", "search-type", None),
            (Method::POST, "Observation", "create", None),
            (
                Method::GET,
                "Patient/p1/Observation",
                "search-compartment",
                Some("p1"),
            ),
            (Method::POST, "$submit-measurement", "operation", None),
            (Method::POST, "", "batch", None),
            (Method::GET, "_history", "history-system", None),
        ];
        for (method, path, interaction, patient) in cases {
            let r = of(method, path);
            assert_eq!(r.interaction, interaction, "{path}");
            assert_eq!(r.patient.as_deref(), patient, "{path}");
            assert_eq!(r.subject, "-");
        }
        assert_eq!(
            of(Method::POST, "$submit-measurement").operation.as_deref(),
            Some("submit-measurement")
        );
    }
}
