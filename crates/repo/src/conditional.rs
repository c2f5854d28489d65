//! Conditional interactions: create with `If-None-Exist`, and update, patch and delete
//! of `[type]?criteria`.
//!
//! The criteria are a search (strict: an unknown parameter is a 400). A conditional
//! create is race-free across instances: the check and the write are one store commit
//! guarded by the criteria ([`ember_store::Store::commit_guarded`]) under a lock keyed by
//! their canonical form, so two creates with the same criteria run one after the other
//! and the second finds the first. Updates, patches and deletes of the match are
//! compare-and-swap writes against the version the search found; when it changed
//! meanwhile, the search runs again.

use ember_fhir::id;
use ember_store::{Committed, Current, Guard, Hit, SearchQuery, StoreError, key};
use serde_json::Value;

use crate::search::{Cx, Problem, filter};
use crate::write::{
    PatchDocument, Plan, Stored, backoff, body_id, check_body, check_if_match, plan_delete,
    plan_patch,
};
use crate::{Repo, RepoError, Result, check_type};

/// The result of a conditional delete.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConditionalDeleted {
    /// `(id, version of the deletion)` of every resource deleted; empty when nothing
    /// matched.
    pub deleted: Vec<(String, i64)>,
}

/// Parses criteria as sent in `If-None-Exist` or `Bundle.entry.request.ifNoneExist`:
/// `identifier=http://x|1`, also with a leading `?` or `Type?`.
pub fn parse_condition(criteria: &str) -> Vec<(String, String)> {
    let criteria = criteria.trim();
    let query = match criteria.split_once('?') {
        Some((head, rest)) if !head.contains('=') => rest,
        _ => criteria,
    };
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .filter(|(n, _)| !n.is_empty())
        .collect()
}

/// The search of a conditional interaction (`If-None-Exist`, `PUT/PATCH/DELETE
/// [type]?…`, a conditional reference), ready to run, with the key of the lock that
/// serializes conditional creates with the same criteria.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub query: SearchQuery,
    /// The criteria in canonical form: decoded pairs, sorted, form-encoded.
    pub canonical: String,
    pub lock: i64,
}

/// Parameters that shape results rather than select them: meaningless, and so refused,
/// in a condition.
const NOT_IN_CONDITIONS: &[&str] = &[
    "_count",
    "_sort",
    "_total",
    "_summary",
    "_elements",
    "_include",
    "_revinclude",
    "_contained",
    "_containedType",
    "_type",
    "_score",
    crate::search::CURSOR,
];

/// Decoded query parameters.
type Pairs = Vec<(String, String)>;

/// The filters of criteria on `res_type` (and the pairs they came from), checked as
/// [`condition`] describes; `what` names whose criteria they are in errors.
fn criteria(
    res_type: &str,
    pairs: &[(String, String)],
    cx: &Cx,
    what: &str,
) -> Result<(Vec<ember_store::Filter>, Pairs)> {
    check_type(res_type)?;
    crate::check_controls(pairs)?;
    let mut accepted: Vec<(String, String)> = Vec::new();
    let mut filters = Vec::new();
    for (name, value) in pairs {
        if name == "_format" || name == "_pretty" {
            continue;
        }
        let base_name = name.split(':').next().unwrap_or_default();
        if NOT_IN_CONDITIONS.contains(&base_name) {
            return Err(RepoError::Invalid(format!(
                "{name} is not allowed in the criteria of {what}"
            )));
        }
        let f = filter::filter_for(res_type, name, value, cx).map_err(|p| match p {
            Problem::Invalid(m) | Problem::Unsupported(m) => {
                RepoError::Invalid(format!("the criteria of {what}: {name}: {m}"))
            }
        })?;
        filters.push(f);
        accepted.push((name.clone(), value.clone()));
    }
    if filters.is_empty() {
        return Err(RepoError::Invalid(format!(
            "{what} needs search criteria (e.g. identifier=system|value)"
        )));
    }
    Ok((filters, accepted))
}

/// Parses the criteria of a conditional interaction on `res_type`, strictly: an unknown
/// or unsupported parameter is a 400 (ignoring it would widen the match), and so are
/// result parameters (`_count`, `_sort`, `_include`…) and empty criteria. `_format` and
/// `_pretty` are ignored. The query returns at most `limit` matches.
pub(crate) fn condition(
    res_type: &str,
    pairs: &[(String, String)],
    limit: u32,
    cx: &Cx,
) -> Result<Condition> {
    let (filters, mut accepted) = criteria(res_type, pairs, cx, "a conditional interaction")?;
    accepted.sort();
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (n, v) in &accepted {
        s.append_pair(n, v);
    }
    let canonical = s.finish();
    let lock = key(&format!("conditional:{res_type}"), &canonical);
    Ok(Condition {
        query: SearchQuery {
            types: vec![res_type.to_owned()],
            filters,
            sort: vec![],
            cursor: None,
            limit: limit.max(1),
            timeline: None,
        },
        canonical,
        lock,
    })
}

impl Repo {
    /// Checks search criteria of `res_type` as a conditional interaction would (strictly,
    /// result parameters refused), without running them; no criteria at all is accepted
    /// and matches every resource of the type. For components that store criteria
    /// to run later, such as Subscriptions.
    pub async fn check_criteria(&self, res_type: &str, pairs: &[(String, String)]) -> Result<()> {
        check_type(res_type)?;
        if pairs.is_empty() {
            return Ok(());
        }
        let (params, terms) = (self.params.snapshot(), self.resolve_terms(pairs).await?);
        criteria(res_type, pairs, &self.cx(&params, &terms), "a Subscription").map(|_| ())
    }
}

impl Condition {
    pub(crate) fn guard(&self) -> Guard {
        Guard {
            lock: self.lock,
            query: self.query.clone(),
        }
    }
}

/// The current state of a live document as a search found it.
pub(crate) fn current_of(hit: &Hit) -> Current {
    Current {
        version: hit.version,
        last_updated: hit.last_updated,
        deleted: false,
        body: Some(hit.body.clone()),
    }
}

/// A live document found by a search, as returned to a client (not created now).
pub(crate) fn stored_of(hit: Hit) -> Stored {
    Stored {
        res_type: hit.res_type,
        id: hit.id,
        version: hit.version,
        last_updated: hit.last_updated,
        body: hit.body,
        created: false,
    }
}

/// The 412 of criteria that match several resources.
pub(crate) fn multiple(res_type: &str, cond: &Condition, what: &str) -> RepoError {
    RepoError::MultipleMatches(format!(
        "{what}: the criteria {res_type}?{} match more than one resource; they are not selective enough",
        cond.canonical
    ))
}

/// `hits`, when the caller may read every one of them (see [`crate::access`]).
fn visible(hits: Vec<Hit>) -> Result<Vec<Hit>> {
    match hits
        .iter()
        .find(|h| !crate::access::readable(&h.res_type, &h.body))
    {
        Some(h) => Err(RepoError::Forbidden(format!(
            "the criteria match {}/{}, which the token does not allow reading",
            h.res_type, h.id
        ))),
        None => Ok(hits),
    }
}

/// The only match of `hits`, `None` for no match, a 412 for several.
pub(crate) fn at_most_one(
    res_type: &str,
    cond: &Condition,
    mut hits: Vec<Hit>,
    what: &str,
) -> Result<Option<Hit>> {
    match hits.len() {
        0 => Ok(None),
        1 => Ok(hits.pop()),
        _ => Err(multiple(res_type, cond, what)),
    }
}

impl Repo {
    /// The criteria of a conditional interaction, returning at most `limit` matches.
    pub(crate) async fn condition(
        &self,
        res_type: &str,
        criteria: &[(String, String)],
        limit: u32,
    ) -> Result<Condition> {
        let (params, terms) = (self.params.snapshot(), self.resolve_terms(criteria).await?);
        condition(res_type, criteria, limit, &self.cx(&params, &terms))
    }

    /// The live documents that meet `cond` (at most its limit). A match the caller may
    /// not read is a 403: a conditional interaction never answers with, or acts on, a
    /// resource outside the caller's grants.
    pub(crate) async fn matches(&self, cond: &Condition) -> Result<Vec<Hit>> {
        visible(self.store.search(&cond.query).await?.hits)
    }

    /// Most matches a conditional delete may remove, and whether several are allowed.
    pub(crate) fn delete_limit(&self) -> u32 {
        self.limits.max_conditional_delete.max(1)
    }

    /// Conditional create (`If-None-Exist`): the existing resource when the criteria
    /// match one (`created` is false; nothing is written), a new one when they match
    /// none, a 412 when they match several.
    pub async fn create_conditional(
        &self,
        res_type: &str,
        body: Value,
        criteria: &[(String, String)],
    ) -> Result<Stored> {
        check_type(res_type)?;
        let cond = self.condition(res_type, criteria, 2).await?;
        check_body(res_type, &body)?;
        let what = "conditional create";
        if let Some(hit) = at_most_one(res_type, &cond, self.matches(&cond).await?, what)? {
            return Ok(stored_of(hit));
        }
        let plan = self.plan_create(res_type, &id::new_id(), body)?;
        match self
            .commit_guarded(vec![cond.guard()], vec![plan.write])
            .await?
        {
            Committed::Stored { .. } => Ok(plan.stored),
            // Another create with these criteria committed first.
            Committed::Matched { hits, .. } => at_most_one(res_type, &cond, visible(hits)?, what)?
                .map(stored_of)
                .ok_or_else(|| {
                    RepoError::Store(StoreError::Backend("a guard matched nothing".into()))
                }),
        }
    }

    /// Conditional update (`PUT [type]?criteria`): updates the one match (an id in the
    /// body must be its id), creates the resource when nothing matches (with the body's
    /// id, or a new one), and is a 412 when several match.
    pub async fn update_conditional(
        &self,
        res_type: &str,
        criteria: &[(String, String)],
        mut body: Value,
        if_match: Option<i64>,
    ) -> Result<Stored> {
        check_type(res_type)?;
        let cond = self.condition(res_type, criteria, 2).await?;
        check_body(res_type, &body)?;
        let body_id = body_id(&body)?;
        let what = "conditional update";
        for attempt in 0..=self.limits.write_retries {
            let found = at_most_one(res_type, &cond, self.matches(&cond).await?, what)?;
            let outcome = match found {
                Some(hit) => {
                    if body_id.as_deref().is_some_and(|id| id != hit.id) {
                        return Err(RepoError::Invalid(format!(
                            "the resource id {:?} is not the id of the resource the criteria match ({}/{})",
                            body_id.unwrap_or_default(),
                            hit.res_type,
                            hit.id
                        )));
                    }
                    let current = current_of(&hit);
                    check_if_match(res_type, &hit.id, if_match, Some(&current))?;
                    body["id"] = Value::String(hit.id.clone());
                    let plan = self.plan_update(res_type, &hit.id, body.clone(), Some(&current))?;
                    let stored = plan.stored.clone();
                    self.commit_writes(vec![plan.write])
                        .await
                        .map(|()| (true, stored))
                }
                None => {
                    if let Some(expected) = if_match {
                        return Err(RepoError::VersionMismatch {
                            reference: format!("{res_type}?{}", cond.canonical),
                            expected,
                            current: "none (nothing matches the criteria)".into(),
                        });
                    }
                    let id = body_id.clone().unwrap_or_else(id::new_id);
                    let current = match &body_id {
                        Some(id) => self.store.read(res_type, id).await?,
                        None => None,
                    };
                    if current.as_ref().is_some_and(|c| !c.deleted) {
                        return Err(RepoError::Conflict(format!(
                            "{res_type}/{id} exists but does not meet the criteria {res_type}?{}",
                            cond.canonical
                        )));
                    }
                    body["id"] = Value::String(id.clone());
                    let plan = self.plan_update(res_type, &id, body.clone(), current.as_ref())?;
                    let stored = plan.stored.clone();
                    self.commit_guarded(vec![cond.guard()], vec![plan.write])
                        .await
                        .map(|c| (matches!(c, Committed::Stored { .. }), stored))
                }
            };
            match outcome {
                Ok((true, stored)) => return Ok(stored),
                // Created meanwhile: update it on the next round.
                Ok((false, _)) => {}
                Err(RepoError::Store(StoreError::Conflict { .. })) if if_match.is_none() => {
                    backoff(attempt).await
                }
                Err(RepoError::Store(StoreError::Conflict { .. })) => {
                    return Err(RepoError::Conflict(format!(
                        "{res_type}?{} changed concurrently; retry",
                        cond.canonical
                    )));
                }
                Err(e) => return Err(e),
            }
        }
        Err(gave_up(res_type, &cond, self.limits.write_retries))
    }

    /// Conditional patch (`PATCH [type]?criteria`): patches the one match; 404 when
    /// nothing matches, 412 when several do.
    pub async fn patch_conditional(
        &self,
        res_type: &str,
        criteria: &[(String, String)],
        patch_doc: &PatchDocument,
        if_match: Option<i64>,
    ) -> Result<Stored> {
        check_type(res_type)?;
        let cond = self.condition(res_type, criteria, 2).await?;
        for attempt in 0..=self.limits.write_retries {
            let hits = self.matches(&cond).await?;
            let hit =
                at_most_one(res_type, &cond, hits, "conditional patch")?.ok_or_else(|| {
                    RepoError::NotFound(format!(
                        "no resource matching {res_type}?{}",
                        cond.canonical
                    ))
                })?;
            let current = current_of(&hit);
            check_if_match(res_type, &hit.id, if_match, Some(&current))?;
            let plan = plan_patch(
                res_type,
                &hit.id,
                patch_doc,
                Some(&current),
                &self.limits,
                &self.params,
            )?;
            match self.commit_writes(vec![plan.write]).await {
                Ok(()) => return Ok(plan.stored),
                Err(RepoError::Store(StoreError::Conflict { .. })) if if_match.is_none() => {
                    backoff(attempt).await
                }
                Err(RepoError::Store(StoreError::Conflict { .. })) => {
                    return Err(RepoError::Conflict(format!(
                        "{res_type}/{} changed concurrently; retry",
                        hit.id
                    )));
                }
                Err(e) => return Err(e),
            }
        }
        Err(gave_up(res_type, &cond, self.limits.write_retries))
    }

    /// Conditional delete (`DELETE [type]?criteria`): deletes every match, all in one
    /// commit, when there are at most `Limits::max_conditional_delete` of them (one when
    /// that is 0 or 1); more matches are a 412 and nothing is deleted. No match deletes
    /// nothing and is not an error.
    pub async fn delete_conditional(
        &self,
        res_type: &str,
        criteria: &[(String, String)],
    ) -> Result<ConditionalDeleted> {
        check_type(res_type)?;
        let max = self.delete_limit();
        let cond = self.condition(res_type, criteria, max + 1).await?;
        for attempt in 0..=self.limits.write_retries {
            let hits = self.matches(&cond).await?;
            let plans = self.plan_deletes(res_type, &cond, &hits)?;
            if plans.is_empty() {
                return Ok(ConditionalDeleted::default());
            }
            let deleted = plans
                .iter()
                .map(|p| (p.stored.id.clone(), p.stored.version))
                .collect();
            match self
                .commit_writes(plans.into_iter().map(|p| p.write).collect())
                .await
            {
                Ok(()) => return Ok(ConditionalDeleted { deleted }),
                Err(RepoError::Store(StoreError::Conflict { .. })) => backoff(attempt).await,
                Err(e) => return Err(e),
            }
        }
        Err(gave_up(res_type, &cond, self.limits.write_retries))
    }

    /// The deletions of the matches of a conditional delete; a 412 when there are more
    /// than the server deletes at once.
    pub(crate) fn plan_deletes(
        &self,
        res_type: &str,
        cond: &Condition,
        hits: &[Hit],
    ) -> Result<Vec<Plan>> {
        let max = self.delete_limit();
        if hits.len() > max as usize {
            return Err(if max == 1 {
                RepoError::MultipleMatches(format!(
                    "conditional delete: the criteria {res_type}?{} match more than one resource, and this server deletes only one at a time (EMBER_MAX_CONDITIONAL_DELETE); nothing was deleted",
                    cond.canonical
                ))
            } else {
                RepoError::TooManyMatches(format!(
                    "conditional delete: the criteria {res_type}?{} match more than {max} resources, the most this server deletes at once (EMBER_MAX_CONDITIONAL_DELETE); nothing was deleted",
                    cond.canonical
                ))
            });
        }
        let mut plans = Vec::new();
        for hit in hits {
            if let Some(plan) = plan_delete(res_type, &hit.id, Some(&current_of(hit)))? {
                plans.push(plan);
            }
        }
        Ok(plans)
    }
}

fn gave_up(res_type: &str, cond: &Condition, retries: u32) -> RepoError {
    RepoError::Conflict(format!(
        "the resources matching {res_type}?{} are being changed by many writers at once; gave up after {} attempts",
        cond.canonical,
        retries + 1
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn parses_criteria_in_every_spelling() {
        let want = pairs(&[("identifier", "http://x|1")]);
        assert_eq!(parse_condition("identifier=http://x|1"), want);
        assert_eq!(parse_condition("?identifier=http://x|1"), want);
        assert_eq!(
            parse_condition("Patient?identifier=http%3A%2F%2Fx%7C1"),
            want
        );
        assert!(parse_condition("").is_empty());
    }

    fn cx() -> Cx<'static> {
        static PARAMS: std::sync::LazyLock<crate::registry::Snapshot> =
            std::sync::LazyLock::new(Default::default);
        static TERMS: std::sync::LazyLock<crate::terminology::terms::Terms> =
            std::sync::LazyLock::new(Default::default);
        Cx {
            params: &PARAMS,
            terms: &TERMS,
            max_codes: 1000,
        }
    }

    #[test]
    fn criteria_are_strict_and_canonical() {
        let a = condition(
            "Patient",
            &pairs(&[("name", "x"), ("identifier", "s|1"), ("_format", "json")]),
            2,
            &cx(),
        )
        .unwrap();
        let b = condition(
            "Patient",
            &pairs(&[("identifier", "s|1"), ("name", "x")]),
            2,
            &cx(),
        )
        .unwrap();
        assert_eq!(a.canonical, "identifier=s%7C1&name=x");
        assert_eq!(a.lock, b.lock);
        let c = condition("Observation", &pairs(&[("identifier", "s|1")]), 2, &cx()).unwrap();
        let d = condition("Patient", &pairs(&[("identifier", "s|1")]), 2, &cx()).unwrap();
        assert_ne!(c.lock, d.lock);
        for bad in [
            pairs(&[]),
            pairs(&[("_format", "json")]),
            pairs(&[("nonsense", "1")]),
            pairs(&[("identifier", "s|1"), ("_count", "1")]),
            pairs(&[("identifier", "s|1"), ("_sort", "name")]),
            pairs(&[("identifier", "s|1"), ("_include", "Patient:organization")]),
            pairs(&[("name:bogus", "x")]),
        ] {
            assert!(
                matches!(
                    condition("Patient", &bad, 2, &cx()),
                    Err(RepoError::Invalid(_))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            condition("Nope", &pairs(&[("identifier", "s|1")]), 2, &cx()),
            Err(RepoError::UnknownType(_))
        ));
    }
}
