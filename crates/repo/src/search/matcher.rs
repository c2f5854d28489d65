//! A type search compiled once, for judging single resources against it in memory
//! (see [`ember_store::judge`]): what components that test many searches against each
//! written resource (Subscription criteria) use instead of a search per resource.

use std::sync::Arc;

use ember_store::Filter;
use serde_json::Value;

use crate::registry::Snapshot;
use crate::{Repo, Result};

/// The filters of a type search under strict handling, and the definitions they were
/// compiled under.
#[derive(Debug, Clone)]
pub struct Matcher {
    res_type: String,
    filters: Vec<Filter>,
    /// The SearchParameter definitions the filters and index rows are made with.
    params: Arc<Snapshot>,
    /// Code sets (`:in`, `:below`, …) are part of the filters: a stored ValueSet or
    /// CodeSystem may have changed them since, so the matcher is not kept.
    lasting: bool,
}

impl Matcher {
    pub fn res_type(&self) -> &str {
        &self.res_type
    }

    /// Whether it may be kept and used again while the definitions it was compiled
    /// under are in force (see [`Repo::matcher_is_current`]); one with code sets is
    /// compiled for each use.
    pub fn is_lasting(&self) -> bool {
        self.lasting
    }
}

impl Repo {
    /// Compiles the search `pairs` of `res_type` (strict handling) for [`Repo::judge`].
    pub async fn matcher(&self, res_type: &str, pairs: &[(String, String)]) -> Result<Matcher> {
        let params = self.params.snapshot();
        let terms = self.resolve_terms(pairs).await?;
        let lasting = terms.is_empty();
        let query = self.strict_query_with(res_type, pairs, &terms)?;
        Ok(Matcher {
            res_type: res_type.to_owned(),
            filters: query.filters,
            params,
            lasting,
        })
    }

    /// Whether `m` was compiled under the SearchParameter definitions in force.
    pub fn matcher_is_current(&self, m: &Matcher) -> bool {
        Arc::ptr_eq(&m.params, &self.params.snapshot())
    }

    /// `resource` (a version as stored) made ready to be judged against matchers of
    /// its type: its index rows, made once. `None` without a type or an id.
    pub fn candidate(&self, resource: &Value) -> Option<Candidate> {
        let params = self.params.snapshot();
        Some(Candidate {
            res_type: resource["resourceType"].as_str()?.to_owned(),
            id: resource["id"].as_str()?.to_owned(),
            rows: crate::indexer::rows_under(resource, &params),
            params,
        })
    }

    /// Whether the candidate would be found by `m`'s search: `None` when that needs the
    /// database (chains, reverse chains, full text), or when the definitions changed
    /// since `m` was compiled or the candidate made, and the search must run.
    pub fn judge(&self, m: &Matcher, c: &Candidate) -> Option<bool> {
        if !Arc::ptr_eq(&m.params, &c.params) || m.res_type != c.res_type {
            return None;
        }
        ember_store::judge(&m.filters, &c.id, &c.rows)
    }
}

/// A resource with its index rows, to judge against matchers (see [`Repo::candidate`]).
#[derive(Debug, Clone)]
pub struct Candidate {
    res_type: String,
    id: String,
    rows: ember_store::IndexRows,
    params: Arc<Snapshot>,
}
