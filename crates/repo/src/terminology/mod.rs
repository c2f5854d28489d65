//! Terminology over the `ValueSet`s and `CodeSystem`s stored on this server and the R4
//! value sets of the generated tables: `$expand` ([`expand`]), `$lookup` ([`lookup`]),
//! `$validate-code` ([`validate_code`]), and the code sets behind the search modifiers
//! `:in`, `:not-in`, `:below` and `:above` ([`terms`]).
//!
//! A canonical URL names a stored resource first (the one with that `url`, and that
//! `version` when `url|version` is given; the most recently updated when several
//! match), then an R4 value set of the tables. Code-system content (whole systems,
//! hierarchy filters, displays) comes from stored CodeSystems only; a value set that
//! needs a system Ember does not hold cannot be expanded (422), never partly.
//!
//! Expansions and hierarchies are cached per instance ([`cache`]) and emptied on every
//! instance whenever a ValueSet or CodeSystem is written.

pub(crate) mod cache;
pub(crate) mod code_system;
mod expand;
mod lookup;
pub(crate) mod terms;
mod validate_code;

use std::sync::Arc;

use ember_store::{Col, Cond, Filter, Op, Rows, SearchQuery, Table, Val, key};
use serde_json::Value;

pub use expand::ExpandRequest;
pub use lookup::LookupRequest;
pub use validate_code::{Coded, ValidateCodeRequest};

use crate::{Repo, RepoError, Result};

/// Which value set an operation works on.
#[derive(Debug, Clone)]
pub enum ValueSetRef {
    /// A canonical URL, optionally `url|version`.
    Url(String),
    /// A stored ValueSet by id (the instance-level operations).
    Id(String),
    /// A ValueSet given in the request (the `valueSet` parameter).
    Resource(Value),
}

/// One code of an expansion.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Concept {
    pub system: String,
    pub version: Option<String>,
    pub code: String,
    pub display: Option<String>,
    pub inactive: bool,
}

/// The codes of a value set, in the order its definition gives them, without
/// duplicates.
#[derive(Debug)]
pub(crate) struct Expansion {
    pub identifier: String,
    pub timestamp: String,
    pub concepts: Vec<Concept>,
}

/// Most levels of `valueSet` imports followed (a cycle ends here with an error).
const MAX_DEPTH: usize = 8;

/// Splits `url|version`.
fn canonical(s: &str) -> (&str, Option<&str>) {
    match s.split_once('|') {
        Some((url, version)) if !version.is_empty() => (url, Some(version)),
        Some((url, _)) => (url, None),
        None => (s, None),
    }
}

impl Repo {
    /// The stored resource of `res_type` whose `url` (and `version`, when given) is
    /// `canonical`: the most recently updated when several match. Read without the
    /// caller's grants: callers that hand it out check them.
    pub(crate) async fn canonical_resource(
        &self,
        res_type: &str,
        canonical_url: &str,
    ) -> Result<Option<(String, Value)>> {
        let (url, version) = canonical(canonical_url);
        let query = SearchQuery {
            types: vec![res_type.to_owned()],
            filters: vec![Filter::Has(Rows {
                table: Table::Uri,
                keys: vec![key(res_type, "url")],
                conds: vec![Cond::Cmp(Col::Uri, Op::Eq, Val::Text(url.to_owned()))],
            })],
            sort: vec![],
            cursor: None,
            limit: 50,
            timeline: None,
        };
        let mut best: Option<(i64, String, Value)> = None;
        for hit in self.store.search(&query).await?.hits {
            let Ok(body) = serde_json::from_str::<Value>(&hit.body) else {
                continue;
            };
            if version.is_some_and(|v| body.get("version").and_then(Value::as_str) != Some(v)) {
                continue;
            }
            if best
                .as_ref()
                .is_none_or(|(at, _, _)| hit.last_updated > *at)
            {
                best = Some((hit.last_updated, hit.id, body));
            }
        }
        Ok(best.map(|(_, id, body)| (id, body)))
    }

    /// The hierarchy of the stored CodeSystem `canonical` (cached), or `None`.
    pub(crate) async fn hierarchy(
        &self,
        canonical_url: &str,
    ) -> Result<Option<Arc<code_system::Hierarchy>>> {
        if let Some(h) = self.terminology.hierarchies.get(canonical_url) {
            return Ok(Some(h));
        }
        let since = self.terminology.generation();
        let Some((_, body)) = self.canonical_resource("CodeSystem", canonical_url).await? else {
            return Ok(None);
        };
        let h = Arc::new(code_system::Hierarchy::of(&body));
        self.terminology
            .keep_hierarchy(canonical_url, since, h.clone());
        Ok(Some(h))
    }

    /// The ValueSet resource `target` names and the cache key of its expansion (none
    /// for one given in the request); 404 when there is none.
    pub(crate) async fn value_set(&self, target: &ValueSetRef) -> Result<(Value, Option<String>)> {
        match target {
            ValueSetRef::Resource(vs) => {
                if vs.get("resourceType").and_then(Value::as_str) != Some("ValueSet") {
                    return Err(RepoError::Invalid(
                        "the valueSet parameter must be a ValueSet".into(),
                    ));
                }
                Ok((vs.clone(), None))
            }
            ValueSetRef::Id(id) => {
                let stored = self.read("ValueSet", id).await?;
                let body = serde_json::from_str(&stored.body).map_err(|e| {
                    RepoError::Unprocessable(format!("ValueSet/{id} is not JSON: {e}"))
                })?;
                let key = format!("ValueSet/{id}/_history/{}", stored.version);
                Ok((body, Some(key)))
            }
            ValueSetRef::Url(url) => match self.canonical_resource("ValueSet", url).await? {
                Some((id, body)) => {
                    let text = serde_json::to_string(&body).unwrap_or_default();
                    crate::access::check_read("ValueSet", &id, &text)?;
                    Ok((body, Some(url.clone())))
                }
                None if ember_fhir::definitions::value_set_codes(url).is_some() => Ok((
                    serde_json::json!({"resourceType": "ValueSet", "url": url, "status": "active"}),
                    Some(url.clone()),
                )),
                None => Err(RepoError::NotFound(format!("the ValueSet {url}"))),
            },
        }
    }
}

impl Repo {
    /// `(url, version)` of up to `limit` stored CodeSystems that hold concepts (not
    /// `content` `not-present`), for the TerminologyCapabilities.
    pub async fn code_systems(&self, limit: u32) -> Result<Vec<(String, Option<String>)>> {
        let docs = self
            .store
            .live_documents(Some("CodeSystem"), 0, limit)
            .await?;
        Ok(docs
            .iter()
            .filter_map(|d| serde_json::from_str::<Value>(&d.body).ok())
            .filter(|cs| cs.get("content").and_then(Value::as_str) != Some("not-present"))
            .filter_map(|cs| {
                let text = |k: &str| cs.get(k).and_then(Value::as_str).map(str::to_owned);
                Some((text("url")?, text("version")))
            })
            .collect())
    }
}
