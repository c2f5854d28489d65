//! The data a service needs: each prefetch key from the request when the client sent
//! it, otherwise fetched with the service's template through a [`Source`]; a 412 when
//! neither can be had.

use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::Value;

use crate::{CdsError, HookRequest, Service};

/// Where data that was not prefetched comes from: the client's FHIR server, or
/// Ember's own store when that is the server.
#[async_trait]
pub trait Source: Send + Sync {
    /// The answer to a relative FHIR query (`Patient/1`, `Task?patient=1`): a resource
    /// or a searchset Bundle. [`CdsError::Precondition`] when it cannot be had.
    async fn get(&self, query: &str) -> Result<Value, CdsError>;
}

/// The resolved prefetch of one call.
#[derive(Debug, Default)]
pub(crate) struct Data {
    values: HashMap<&'static str, Value>,
}

impl Data {
    /// The value of a prefetch key (every key of the service is resolved).
    pub fn get(&self, key: &str) -> &Value {
        self.values.get(key).unwrap_or(&Value::Null)
    }

    /// The resources of a searchset Bundle under `key`, or the resource itself.
    pub fn resources(&self, key: &str) -> Vec<&Value> {
        let v = self.get(key);
        match v.get("resourceType").and_then(Value::as_str) {
            Some("Bundle") => v
                .get("entry")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|e| e.get("resource"))
                .collect(),
            Some(_) => vec![v],
            None => Vec::new(),
        }
    }
}

/// Every prefetch key of `service`, from the request or fetched.
pub(crate) async fn resolve(
    service: &Service,
    request: &HookRequest,
    source: Option<&dyn Source>,
) -> Result<Data, CdsError> {
    let mut data = Data::default();
    for (key, template) in service.prefetch {
        let value = match request.prefetch.get(*key) {
            Some(v) => v.clone(),
            None => {
                let Some(source) = source else {
                    return Err(CdsError::Precondition(format!(
                        "the prefetch {key:?} was not sent, and Ember cannot fetch it: the \
                         request has no usable fhirServer"
                    )));
                };
                source.get(&render(template, request)?).await?
            }
        };
        data.values.insert(key, value);
    }
    Ok(data)
}

/// A prefetch template with its tokens replaced: `{{context.name}}` by the context's
/// value (a FHIR id, so it needs no escaping), and `{{userPractitionerId}}` and its
/// siblings by the id in `context.userId` when it is of that type.
pub(crate) fn render(template: &str, request: &HookRequest) -> Result<String, CdsError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| CdsError::BadRequest(format!("the template {template} is malformed")))?;
        out.push_str(&token(after[..end].trim(), request)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn token(name: &str, request: &HookRequest) -> Result<String, CdsError> {
    let value = if let Some(field) = name.strip_prefix("context.") {
        request
            .context
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_owned)
    } else {
        let user = request
            .context
            .get("userId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let wanted = match name {
            "userPractitionerId" => "Practitioner",
            "userPractitionerRoleId" => "PractitionerRole",
            "userPatientId" => "Patient",
            "userRelatedPersonId" => "RelatedPerson",
            _ => {
                return Err(CdsError::BadRequest(format!(
                    "unknown prefetch token {name}"
                )));
            }
        };
        user.split_once('/')
            .filter(|(t, _)| *t == wanted)
            .map(|(_, id)| id.to_owned())
    };
    value
        .filter(|v| ember_repo::check_id(v).is_ok())
        .ok_or_else(|| {
            CdsError::BadRequest(format!(
                "the prefetch token {name} has no FHIR id to fill it"
            ))
        })
}
