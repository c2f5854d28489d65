//! The errors of FHIR interactions.

use ember_fhir::json::BodyError;
use ember_fhir::patch::PatchError;
use ember_store::StoreError;

/// Why an interaction failed. Each variant corresponds to one HTTP status family;
/// the API layer maps them to `OperationOutcome` responses in one place.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The request is malformed (400).
    #[error("{0}")]
    Invalid(String),
    /// The resource type is not an R4 resource type (404).
    #[error("unknown resource type {0:?}")]
    UnknownType(String),
    /// The resource or version does not exist (404).
    #[error("{0} is not known")]
    NotFound(String),
    /// The resource was deleted (410).
    #[error("{0} was deleted")]
    Gone(String),
    /// `If-Match` named another version than the current one (412).
    #[error(
        "version mismatch on {reference}: If-Match expected {expected}, the current version is {current}"
    )]
    VersionMismatch {
        reference: String,
        expected: i64,
        current: String,
    },
    /// The search of a conditional interaction matched more resources than it may act
    /// on (412): the criteria are not selective enough.
    #[error("{0}")]
    MultipleMatches(String),
    /// A conditional delete matched more resources than the server deletes at once (412).
    #[error("{0}")]
    TooManyMatches(String),
    /// The request conflicts with the state of the server (409).
    #[error("{0}")]
    Conflict(String),
    /// The request is well-formed but cannot be carried out on this content (422).
    #[error("{0}")]
    Unprocessable(String),
    /// The resource breaks the structural rules of its type (422); the outcome lists
    /// each problem with its location.
    #[error("the resource is not valid: {} issue(s)", .0.issues.len())]
    Invalidated(ember_fhir::OperationOutcome),
    /// The interaction is not supported (501 or 405, by context).
    #[error("{0}")]
    NotSupported(String),
    /// The request body is not an acceptable JSON resource (400, or 404 for an unknown type).
    /// A precondition of the request does not hold (412), outside FHIR versioning.
    #[error("{0}")]
    Precondition(String),

    /// The request's content is larger than allowed (413).
    #[error("{0}")]
    TooLarge(String),

    /// The caller's grants do not reach this resource (see [`crate::access`]).
    #[error("{0}")]
    Forbidden(String),

    #[error(transparent)]
    Body(#[from] BodyError),
    /// The storage layer failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for RepoError {
    fn from(e: StoreError) -> Self {
        RepoError::Store(e)
    }
}

impl From<PatchError> for RepoError {
    fn from(e: PatchError) -> Self {
        match e {
            PatchError::Invalid(_) => RepoError::Invalid(e.to_string()),
            PatchError::NotApplicable(_) => RepoError::Unprocessable(e.to_string()),
        }
    }
}

use ember_fhir::{IssueType, OperationOutcome};

impl RepoError {
    /// The HTTP status this error is reported with (also used in Bundle entry responses).
    pub fn status(&self) -> u16 {
        match self {
            RepoError::Invalid(_) => 400,
            RepoError::UnknownType(_) | RepoError::NotFound(_) => 404,
            RepoError::Gone(_) => 410,
            RepoError::VersionMismatch { .. }
            | RepoError::MultipleMatches(_)
            | RepoError::TooManyMatches(_) => 412,
            RepoError::Conflict(_) => 409,
            RepoError::Unprocessable(_) | RepoError::Invalidated(_) => 422,
            RepoError::NotSupported(_) => 501,
            RepoError::Forbidden(_) => 403,
            RepoError::Precondition(_) => 412,
            RepoError::TooLarge(_) => 413,
            RepoError::Body(BodyError::UnknownResourceType(_)) => 400,
            RepoError::Body(_) => 400,
            RepoError::Store(StoreError::Unavailable(_)) => 503,
            RepoError::Store(StoreError::Conflict { .. }) => 409,
            RepoError::Store(_) => 500,
        }
    }

    /// The OperationOutcome that explains this error. Storage details stay in the logs.
    pub fn outcome(&self) -> OperationOutcome {
        if let RepoError::Invalidated(outcome) = self {
            return outcome.clone();
        }
        let code = match self {
            RepoError::Invalid(_) => IssueType::Invalid,
            RepoError::Body(BodyError::TooDeep(_)) => IssueType::TooCostly,
            RepoError::Body(_) => IssueType::Structure,
            RepoError::UnknownType(_) => IssueType::NotSupported,
            RepoError::NotFound(_) => IssueType::NotFound,
            RepoError::Gone(_) => IssueType::Deleted,
            RepoError::VersionMismatch { .. } | RepoError::Conflict(_) => IssueType::Conflict,
            RepoError::MultipleMatches(_) => IssueType::Duplicate,
            RepoError::TooManyMatches(_) => IssueType::TooCostly,
            RepoError::Unprocessable(_) | RepoError::Invalidated(_) => IssueType::Processing,
            RepoError::NotSupported(_) => IssueType::NotSupported,
            RepoError::Forbidden(_) => IssueType::Forbidden,
            RepoError::Precondition(_) => IssueType::Conflict,
            RepoError::TooLarge(_) => IssueType::TooLong,
            RepoError::Store(StoreError::Unavailable(_)) => IssueType::Transient,
            RepoError::Store(StoreError::Conflict { .. }) => IssueType::Conflict,
            RepoError::Store(_) => IssueType::Exception,
        };
        let diagnostics = match self {
            RepoError::Store(StoreError::Unavailable(_)) => {
                "the database is unavailable; retry later".to_owned()
            }
            RepoError::Store(StoreError::Conflict { .. }) => {
                "a concurrent change conflicted; retry".to_owned()
            }
            RepoError::Store(_) => "an internal storage error occurred".to_owned(),
            other => other.to_string(),
        };
        OperationOutcome::error(code, diagnostics)
    }
}
