//! The input parameters of an operation, from the query string (`GET`) or a
//! `Parameters` body (`POST`), read the same way by the operations that take both.

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::Method;
use serde_json::Value;

use crate::AppState;
use crate::body::Resource;
use crate::error::{ApiError, Result};
use crate::path::{ResourcePath, TypePath};

/// One call of an operation at the type (`[type]/$op`) or instance (`[type]/[id]/$op`)
/// level, `GET` or `POST`: the checked path and the parameters.
pub(crate) struct Call {
    pub res_type: String,
    pub id: Option<String>,
    pub params: Params,
}

impl Call {
    /// The id (at the instance level) and parameters of a call of `op`, which only
    /// `res_type` has (a 404 on another type).
    pub fn on(self, res_type: &str, op: &str) -> Result<(Option<String>, Params)> {
        if self.res_type != res_type {
            return Err(crate::path::unknown_operation(op));
        }
        Ok((self.id, self.params))
    }
}

impl FromRequest<AppState> for Call {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self> {
        let (mut parts, body) = request.into_parts();
        let Path(segments): Path<Vec<(String, String)>> =
            Path::from_request_parts(&mut parts, state)
                .await
                .map_err(|e| ApiError::BadRequest(format!("invalid path: {e}")))?;
        let segment = |name: &str| {
            segments
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let (res_type, id) = match (segment("type"), segment("id")) {
            (Some(t), Some(id)) => {
                let p = ResourcePath::check((t, id))?;
                (p.res_type, Some(p.id))
            }
            (Some(t), None) => (TypePath::check(t)?.res_type, None),
            _ => return Err(ApiError::BadRequest("invalid path".into())),
        };
        let params = if parts.method == Method::POST {
            let Resource(body) =
                Resource::from_request(Request::from_parts(parts, body), state).await?;
            Params::from_body(&body)?
        } else {
            let query = parts.uri.query().unwrap_or_default();
            let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
            Params::from_query(&pairs)
        };
        Ok(Call {
            res_type,
            id,
            params,
        })
    }
}

/// `(name, value)`: a query value is a JSON string; a body parameter's value is its
/// `value[x]` or its `resource`.
pub(crate) struct Params(Vec<(String, Value)>);

impl Params {
    fn from_query(query: &[(String, String)]) -> Self {
        Params(
            query
                .iter()
                .filter(|(n, _)| !matches!(n.as_str(), "_format" | "_pretty"))
                .map(|(n, v)| (n.clone(), Value::String(v.clone())))
                .collect(),
        )
    }

    /// The parameters of a `Parameters` resource.
    pub fn from_body(body: &Value) -> Result<Self> {
        let op = "the operation";
        if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
            return Err(ApiError::BadRequest(format!(
                "{op} takes a Parameters resource in a POST"
            )));
        }
        let mut out = Vec::new();
        for p in body["parameter"].as_array().into_iter().flatten() {
            let Some(name) = p.get("name").and_then(Value::as_str) else {
                return Err(ApiError::BadRequest(format!(
                    "{op}: a parameter has no name"
                )));
            };
            let value = p.get("resource").cloned().or_else(|| {
                p.as_object()?
                    .iter()
                    .find(|(k, _)| k.starts_with("value"))
                    .map(|(_, v)| v.clone())
            });
            match value {
                Some(v) => out.push((name.to_owned(), v)),
                None => {
                    return Err(ApiError::BadRequest(format!(
                        "{op}: the parameter {name} has no value"
                    )));
                }
            }
        }
        Ok(Params(out))
    }

    /// The first value of `name`.
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The first value of `name`, which must be text.
    pub fn text(&self, name: &str) -> Result<Option<&str>> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::BadRequest(format!("{name} must be text"))),
        }
    }

    /// Every text value of `name`.
    pub fn texts(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .filter_map(|(_, v)| v.as_str())
            .collect()
    }

    /// A whole number (`123` in a query, `valueInteger` in a body).
    pub fn number(&self, name: &str) -> Result<Option<usize>> {
        let bad = || ApiError::BadRequest(format!("{name} must be a whole number"));
        match self.value(name) {
            None => Ok(None),
            Some(Value::String(s)) => s.parse().map(Some).map_err(|_| bad()),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .map(Some)
                .ok_or_else(bad),
            Some(_) => Err(bad()),
        }
    }

    /// `true` or `false`.
    pub fn flag(&self, name: &str) -> Result<Option<bool>> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" => Ok(Some(true)),
            Some(Value::String(s)) if s == "false" => Ok(Some(false)),
            Some(_) => Err(ApiError::BadRequest(format!(
                "{name} must be true or false"
            ))),
        }
    }
}
