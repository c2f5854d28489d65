//! Typed path parameters. Each extractor checks what it carries once: the resource
//! type (`ember_repo::check_type`: an unknown type is a 404) and the logical id
//! (`ember_repo::check_id`: an invalid one is a 400); a malformed path is a 400. Every
//! rejection is the `ApiError` a handler would have returned, so handlers receive only
//! names that can exist.
//!
//! Put them after [`Fhir`](crate::negotiate::Fhir) in a handler's arguments: content
//! negotiation answers first, as it did when handlers checked by hand.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use ember_repo::{check_id, check_type};

use crate::error::{ApiError, Result};

/// `[type]`.
pub(crate) struct TypePath {
    pub res_type: String,
}

/// `[type]/[id]`.
pub(crate) struct ResourcePath {
    pub res_type: String,
    pub id: String,
}

/// `[type]/[id]/_history/[vid]`. The version is not checked: one that is not a
/// version of the resource is a 404 from the repo.
pub(crate) struct VersionPath {
    pub res_type: String,
    pub id: String,
    pub vid: String,
}

/// `[compartment]/[id]/[type]`.
pub(crate) struct CompartmentPath {
    pub compartment: String,
    pub id: String,
    pub res_type: String,
}

/// A job id (`$reindex/[id]`, `/admin/jobs/[id]`), which follows the logical-id rules.
pub(crate) struct JobPath {
    pub id: String,
}

/// A 404 naming the operation when a segment where a type or id stands names one
/// (`$name`): the routes of the operations Ember has come first, so this one is
/// unknown, or unknown at this level.
fn no_operation(segments: &[&str]) -> Result<()> {
    match segments.iter().find(|s| s.starts_with('$')) {
        Some(op) => Err(unknown_operation(op)),
        None => Ok(()),
    }
}

pub(crate) fn unknown_operation(op: &str) -> ApiError {
    ApiError::NotFound(format!("the operation {op} is not supported here"))
}

impl TypePath {
    pub(crate) fn check(res_type: String) -> Result<Self> {
        no_operation(&[&res_type])?;
        check_type(&res_type)?;
        Ok(TypePath { res_type })
    }
}

impl ResourcePath {
    pub(crate) fn check((res_type, id): (String, String)) -> Result<Self> {
        no_operation(&[&res_type, &id])?;
        check_type(&res_type)?;
        check_id(&id)?;
        Ok(ResourcePath { res_type, id })
    }
}

impl VersionPath {
    fn check((res_type, id, vid): (String, String, String)) -> Result<Self> {
        no_operation(&[&vid])?;
        let ResourcePath { res_type, id } = ResourcePath::check((res_type, id))?;
        Ok(VersionPath { res_type, id, vid })
    }
}

impl CompartmentPath {
    fn check((compartment, id, res_type): (String, String, String)) -> Result<Self> {
        no_operation(&[&compartment, &id, &res_type])?;
        check_type(&compartment)?;
        check_type(&res_type)?;
        check_id(&id)?;
        Ok(CompartmentPath {
            compartment,
            id,
            res_type,
        })
    }
}

impl JobPath {
    fn check(id: String) -> Result<Self> {
        check_id(&id)?;
        Ok(JobPath { id })
    }
}

/// The extractor of each path type: the route's parameters in order, then `check`.
macro_rules! from_path {
    ($($path:ty),+) => {$(
        impl<S: Send + Sync> FromRequestParts<S> for $path {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
                let Path(params) = Path::from_request_parts(parts, state)
                    .await
                    .map_err(|e| ApiError::BadRequest(format!("invalid path: {e}")))?;
                Self::check(params)
            }
        }
    )+};
}

from_path!(
    TypePath,
    ResourcePath,
    VersionPath,
    CompartmentPath,
    JobPath
);
