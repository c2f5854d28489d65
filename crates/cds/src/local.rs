//! Data from Ember's own store, for calls whose `fhirServer` is Ember itself: reads and
//! searches through the repository, with the caller's grants (set by `api`) applied.

use async_trait::async_trait;
use ember_repo::{Handling, Repo, RepoError, SearchScope};
use serde_json::Value;

use crate::{CdsError, Source};

/// Reads Ember's own store; `base` is the public FHIR base URL, for links.
pub struct LocalSource {
    pub repo: Repo,
    pub base: String,
}

#[async_trait]
impl Source for LocalSource {
    async fn get(&self, query: &str) -> Result<Value, CdsError> {
        let (path, params) = query.split_once('?').unwrap_or((query, ""));
        let text = match path.split_once('/') {
            Some((res_type, id)) => self.repo.read(res_type, id).await.map(|s| s.body),
            None => {
                let pairs: Vec<(String, String)> = form_urlencoded::parse(params.as_bytes())
                    .into_owned()
                    .collect();
                let endpoint = format!("{}/{path}", self.base);
                let scope = SearchScope::Type(path);
                self.repo
                    .search(scope, &pairs, Handling::Strict, &self.base, &endpoint)
                    .await
            }
        };
        let text = text.map_err(|e| match e {
            RepoError::NotFound(_)
            | RepoError::Gone(_)
            | RepoError::Forbidden(_)
            | RepoError::Invalid(_) => {
                CdsError::Precondition(format!("{query} could not be read: {e}"))
            }
            other => CdsError::Repo(other),
        })?;
        serde_json::from_str(&text)
            .map_err(|e| CdsError::Repo(RepoError::Unprocessable(e.to_string())))
    }
}
