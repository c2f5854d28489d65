//! Single use of CDS client tokens across instances: each token's `jti` is recorded in
//! the shared key-value store until the token expires, create-only, so a second use
//! on any instance finds it.

use std::time::Duration;

use ember_repo::{Repo, RepoError};
use ember_store::KvExpect;
use uuid::Uuid;

use crate::CdsError;

/// The key-value namespace of CDS Hooks' own records (`ember.` is reserved).
pub(crate) const NAMESPACE: &str = "ember.cds";

/// Records the token `jti` of `issuer`, valid until `expires` (epoch seconds) plus
/// `leeway`; `false` when it was recorded before (a replay).
pub async fn admit_once(
    repo: &Repo,
    issuer: &str,
    jti: &str,
    expires: u64,
    leeway: Duration,
) -> Result<bool, CdsError> {
    let id = Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("{issuer}|{jti}").as_bytes());
    let now = ember_fhir::instant::now() / 1_000_000;
    let left = (expires as i64 - now).max(0) as u64 + leeway.as_secs();
    let ttl = Duration::from_secs(left.clamp(1, ember_repo::kv::MAX_TTL.as_secs()));
    let put = repo
        .kv_put(
            NAMESPACE,
            &format!("jti/{id}"),
            b"1",
            "text/plain",
            Some(ttl),
            KvExpect::Absent,
            16,
        )
        .await;
    match put {
        Ok(_) => Ok(true),
        Err(RepoError::Precondition(_)) => Ok(false),
        Err(e) => Err(CdsError::Repo(e)),
    }
}
