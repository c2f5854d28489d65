//! `$everything` (`Patient/[id]/$everything`, `Patient/$everything`, and the same on
//! any compartment type): a search of every type of the compartment for the documents
//! that link to the compartment's resource through the compartment definition's
//! parameters, with the resources those reference included, the compartment's own
//! resource first on the first page, `_since` and `_type` applied, and keyset paging as
//! any search.

use ember_fhir::{definitions, instant};
use ember_store::{Col, Cond, Filter, Hit, Op, Rows, Table, Val, key};

use super::filter::{self, Problem};
use super::{Include, Request};
use crate::{Repo, RepoError, Result, check_id, check_type};

/// Sets up `req` for the `$everything` of `compartment` (one resource, or all of them):
/// its types (`_type` within the compartment), the filter that links them, and the
/// includes.
pub(super) fn scope(
    req: &mut Request,
    compartment: &str,
    id: Option<&str>,
    pairs: &[(String, String)],
) -> Result<()> {
    check_type(compartment)?;
    if let Some(id) = id {
        check_id(id)?;
    }
    let def = definitions::compartment(compartment).ok_or_else(|| {
        RepoError::Invalid(format!(
            "$everything: {compartment} is not a compartment type"
        ))
    })?;
    let members: Vec<&str> = ember_fhir::resource_types()
        .iter()
        .copied()
        .filter(|t| def.params(t).is_some() || *t == compartment)
        .collect();
    match pairs.iter().find(|(n, _)| n == "_type") {
        Some((_, wanted)) => {
            for t in wanted.split(',') {
                if !members.contains(&t) {
                    return Err(RepoError::Invalid(format!(
                        "_type: {t:?} is not a type of the {compartment} compartment"
                    )));
                }
                req.types.push(t.to_owned());
            }
            req.accepted.push(("_type".into(), wanted.clone()));
        }
        None => req.types = members.iter().map(|t| (*t).to_owned()).collect(),
    }
    let refs = links(compartment, id, &req.types);
    match id {
        Some(id) => {
            req.filters.push(refs);
            req.everything = Some((compartment.to_owned(), Some(id.to_owned())));
        }
        None => {
            // Every document linked to one of the compartment's resources, and those
            // resources themselves (each has a `_lastUpdated` row of its type).
            let own = Filter::Has(Rows {
                table: Table::Date,
                keys: vec![key(compartment, "_lastUpdated")],
                conds: Vec::new(),
            });
            let own = req.types.iter().any(|t| t == compartment).then_some(own);
            req.filters
                .push(Filter::Any(own.into_iter().chain([refs]).collect()));
            req.everything = Some((compartment.to_owned(), None));
        }
    }
    // What the documents reference (practitioners, organizations, medications).
    req.includes.push(Include {
        source: None,
        param: None,
        target: None,
        iterate: false,
    });
    Ok(())
}

/// The reference rows of every linking parameter of `types` to the compartment's
/// resource `id` (or to any resource of the compartment type).
pub(super) fn links(compartment: &str, id: Option<&str>, types: &[String]) -> Filter {
    let ids = id.map(|id| vec![id.to_owned()]);
    links_to(compartment, ids.as_deref(), types)
}

/// [`links`] to any of `ids` (to any resource of the compartment type when `None`).
pub(crate) fn links_to(compartment: &str, ids: Option<&[String]>, types: &[String]) -> Filter {
    let def = definitions::compartment(compartment);
    let keys: Vec<i64> = types
        .iter()
        .flat_map(|t| {
            let codes = def.and_then(|d| d.params(t)).unwrap_or_default();
            codes
                .iter()
                .filter(|c| **c != "{def}")
                .map(move |c| key(t, c))
        })
        .collect();
    let mut target = vec![Cond::Cmp(
        Col::TargetType,
        Op::Eq,
        Val::Text(compartment.to_owned()),
    )];
    match ids {
        None => {}
        Some([id]) => target.push(Cond::Cmp(Col::TargetId, Op::Eq, Val::Text(id.clone()))),
        Some(ids) => target.push(Cond::In(
            Col::TargetId,
            ids.iter().map(|i| Val::Text(i.clone())).collect(),
        )),
    }
    Filter::Has(Rows {
        table: Table::Reference,
        keys,
        conds: vec![Cond::All(target)],
    })
}

/// One query parameter of `$everything`: `Ok(true)` when it is one, applied.
pub(super) fn param(
    req: &mut Request,
    name: &str,
    value: &str,
    cx: &super::Cx,
) -> std::result::Result<bool, Problem> {
    match name {
        "_since" => {
            if instant::parse_range(value).is_none() {
                return Err(Problem::Invalid(format!(
                    "_since: {value:?} is not an instant"
                )));
            }
            let f = filter::filter(&req.types, "_lastUpdated", &format!("ge{value}"), cx)?;
            req.filters.push(f);
            req.since = instant::parse_range(value).map(|(from, _)| from);
            Ok(true)
        }
        _ => Err(Problem::Unsupported(format!(
            "{name} is not a parameter of $everything (_since, _type, _count)"
        ))),
    }
}

impl Repo {
    /// The compartment's own resource, first on the first page of its `$everything`
    /// (when its type is asked for and it changed since `_since`); a 404 when there is
    /// none, a 403 when the caller may not read it.
    pub(super) async fn everything_own(&self, req: &Request) -> Result<Option<Hit>> {
        let Some((compartment, Some(id))) = &req.everything else {
            return Ok(None);
        };
        if req.cursor.is_some() {
            return Ok(None);
        }
        let target = (compartment.clone(), id.clone());
        let Some(hit) = self.store.fetch(std::slice::from_ref(&target)).await?.pop() else {
            // None live: the read says why (404 or 410).
            self.read(compartment, id).await?;
            return Ok(None);
        };
        crate::access::check_read(compartment, id, &hit.body)?;
        let wanted = req.types.iter().any(|t| t == compartment)
            && req.since.is_none_or(|since| hit.last_updated >= since);
        Ok(wanted.then_some(hit))
    }
}
