//! Who may see and change which resources, for the request being served. `api` sets an
//! [`Access`] around a request ([`with_access`]); the repository applies it everywhere
//! data passes, so no route, Bundle entry or operation can go around it:
//! - every version a commit writes, and the version it replaces ([`Need::Create`],
//!   [`Need::Update`], [`Need::Delete`], then [`Access::may_write`] when the grant
//!   depends on the resource);
//! - reads and version reads ([`Need::Read`], then [`Access::may_read`] when the grant
//!   depends on the resource);
//! - searches ([`Need::Search`] for each type), narrowed by [`Access::narrowing`] to a
//!   compartment and to the criteria of granular scopes;
//! - history entries and included resources, which drop what the caller could not
//!   read directly.
//!
//! Without an [`Access`] (background jobs, an open server) nothing is checked.

use std::future::Future;
use std::sync::Arc;

use ember_store::Change;
use serde_json::Value;

use crate::RepoError;

/// What an interaction does to a resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Create,
    Read,
    Update,
    Delete,
    Search,
}

/// How a search of one type is narrowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Narrowing {
    /// `(compartment type, id)`: only resources in that compartment.
    pub compartment: Option<(String, String)>,
    /// Only resources matching one of these criteria (each a list of parameters, all
    /// of which apply); empty for no such condition.
    pub criteria: Vec<Vec<(String, String)>>,
}

/// How much of a type the caller may reach for one need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Nothing; the reason says what would be needed.
    None(String),
    /// Every resource of the type: no resource needs to be looked at.
    All,
    /// Some resources: each is checked with [`Access::may_read`] or
    /// [`Access::may_write`].
    Some,
}

/// The caller's grants.
pub trait Access: Send + Sync {
    /// How much of `res_type` the caller may reach for `need`.
    fn reach(&self, res_type: &str, need: Need) -> Reach;
    /// How the caller's searches of `res_type` are narrowed.
    fn narrowing(&self, res_type: &str) -> Narrowing;
    /// Whether the caller may read `resource`.
    fn may_read(&self, res_type: &str, resource: &Value) -> bool;
    /// Whether the caller may create, change or delete (`need`) `resource`.
    fn may_write(&self, res_type: &str, need: Need, resource: &Value) -> bool;
    /// When the grants end (seconds since the epoch), for work that outlives the
    /// request that brought them; `None` when they do not.
    fn expires_at(&self) -> Option<u64> {
        None
    }
}

tokio::task_local! {
    static ACCESS: Arc<dyn Access>;
}

/// Runs `work` with `access` applied to everything it reads and writes.
pub async fn with_access<F: Future>(access: Arc<dyn Access>, work: F) -> F::Output {
    ACCESS.scope(access, work).await
}

pub(crate) fn current() -> Option<Arc<dyn Access>> {
    ACCESS.try_with(Arc::clone).ok()
}

/// The grants of the request being served (`None` outside one, or on an open
/// server), for work that outlives the request, such as a WebSocket, and must run
/// [`with_access`] them.
pub fn current_access() -> Option<Arc<dyn Access>> {
    current()
}

/// How much of `res_type` the request being served may reach for `need`
/// ([`Reach::All`] without grants).
pub fn reach(res_type: &str, need: Need) -> Reach {
    current().map_or(Reach::All, |access| access.reach(res_type, need))
}

/// Refuses `need` on `res_type` when the caller may reach none of it.
pub(crate) fn check(res_type: &str, need: Need) -> Result<(), RepoError> {
    match current().map(|access| access.reach(res_type, need)) {
        Some(Reach::None(reason)) => Err(RepoError::Forbidden(reason)),
        _ => Ok(()),
    }
}

/// Whether the request being served may read the resource in `body` (JSON text); the
/// body is parsed only when the caller's grant depends on it.
pub(crate) fn readable(res_type: &str, body: &str) -> bool {
    let Some(access) = current() else {
        return true;
    };
    match access.reach(res_type, Need::Read) {
        Reach::None(_) => false,
        Reach::All => true,
        Reach::Some => {
            serde_json::from_str::<Value>(body).is_ok_and(|v| access.may_read(res_type, &v))
        }
    }
}

/// Refuses a read of `body` the caller may not see.
pub(crate) fn check_read(res_type: &str, id: &str, body: &str) -> Result<(), RepoError> {
    check(res_type, Need::Read)?;
    if readable(res_type, body) {
        Ok(())
    } else {
        Err(RepoError::Forbidden(format!(
            "the token does not allow reading {res_type}/{id}"
        )))
    }
}

/// The need of a change: a version that follows a deletion creates the resource again.
pub(crate) fn need_of(change: Change, replaces: bool) -> Need {
    match change {
        Change::Delete => Need::Delete,
        _ if replaces => Need::Update,
        _ => Need::Create,
    }
}

/// Refuses a write with `need` of (or over) `body` the caller may not make.
pub(crate) fn check_write(
    res_type: &str,
    id: &str,
    need: Need,
    body: &str,
) -> Result<(), RepoError> {
    let Some(access) = current() else {
        return Ok(());
    };
    let allowed = match access.reach(res_type, need) {
        Reach::None(_) => false,
        Reach::All => true,
        Reach::Some => {
            serde_json::from_str::<Value>(body).is_ok_and(|v| access.may_write(res_type, need, &v))
        }
    };
    if allowed {
        Ok(())
    } else {
        Err(RepoError::Forbidden(format!(
            "the token does not allow writing {res_type}/{id} as it is or would be"
        )))
    }
}
