//! FHIR search: the query string parsed into store filters, run, and answered as a
//! `searchset` Bundle with includes and paging links.
//!
//! - [`values`]: one value of one parameter type as row conditions (prefixes, precision);
//! - [`filter`]: one parameter (modifiers, chains, `_has`) as a store filter;
//! - this module: the control parameters (`_count`, `_sort`, `_include`…), the
//!   cursor, and the Bundle.

pub(crate) mod everything;
pub(crate) mod filter;
pub(crate) mod matcher;
pub(crate) mod values;

use std::collections::HashSet;

use base64::Engine;
use ember_fhir::definitions::{self, SearchParamType};
use ember_store::{
    Col, Cond, Cursor, Filter, Hit, Op, Rows, SearchQuery, Sort, SortKey, Table, Val, key,
};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::registry::Snapshot;
use crate::terminology::terms::Terms;
use crate::{Repo, RepoError, Result, check_id, check_type};
pub(crate) use filter::Cx;
pub(crate) use filter::Problem;

/// What a search covers.
#[derive(Debug, Clone, Copy)]
pub enum SearchScope<'a> {
    /// `GET [base]/[type]?…`
    Type(&'a str),
    /// `GET [base]?_type=…&…`: every type when `_type` is absent.
    System,
    /// `GET [base]/[compartment]/[id]/[type]?…`
    Compartment {
        compartment: &'a str,
        id: &'a str,
        res_type: &'a str,
    },
    /// `GET [base]/[compartment]/[id]/$everything` (one resource's compartment) or
    /// `GET [base]/[compartment]/$everything` (every one's).
    Everything {
        compartment: &'a str,
        id: Option<&'a str>,
    },
}

/// How unknown or unsupported parameters are treated (`Prefer: handling=…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Handling {
    /// Ignore them and report them in an OperationOutcome entry.
    #[default]
    Lenient,
    /// Reject the search with 400.
    Strict,
}

/// The paging cursor's parameter name. Its value is opaque to clients.
pub(crate) const CURSOR: &str = "_cursor";

/// Most rounds of `:iterate` includes.
const MAX_INCLUDE_ROUNDS: usize = 4;

/// `_summary` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Summary {
    True,
    Text,
    Data,
    Count,
}

/// `_include` or `_revinclude`: `Source:param[:Target]` or `*`.
#[derive(Debug, Clone)]
struct Include {
    source: Option<String>,
    param: Option<String>,
    target: Option<String>,
    iterate: bool,
}

/// A parsed search request.
struct Request {
    types: Vec<String>,
    filters: Vec<Filter>,
    sort: Vec<Sort>,
    count: u32,
    total: bool,
    /// `_total=estimate`: the planner's estimate where the store has one.
    estimate: bool,
    /// `_total=none`: no total, even one known for free.
    no_total: bool,
    summary: Option<Summary>,
    elements: Vec<String>,
    includes: Vec<Include>,
    revincludes: Vec<Include>,
    cursor: Option<Cursor>,
    /// The accepted parameters, for the links.
    accepted: Vec<(String, String)>,
    /// Parameters ignored under lenient handling, with the reason.
    ignored: Vec<String>,
    /// `$everything` of this compartment type (and resource).
    everything: Option<(String, Option<String>)>,
    /// `$everything`'s `_since`.
    since: Option<ember_store::Micros>,
}

impl Repo {
    /// Runs a search and returns the `searchset` Bundle as JSON text. `base` is the
    /// server's FHIR base URL and `endpoint` the absolute URL searched (without
    /// query), for links.
    pub async fn search(
        &self,
        scope: SearchScope<'_>,
        pairs: &[(String, String)],
        handling: Handling,
        base: &str,
        endpoint: &str,
    ) -> Result<String> {
        let terms = self.resolve_terms(pairs).await?;
        let (req, query) = self.request(scope, pairs, handling, base, &terms)?;
        let own = self.everything_own(&req).await?;
        let total = if req.total || req.summary == Some(Summary::Count) || req.count == 0 {
            let estimated = match req.estimate && req.summary != Some(Summary::Count) {
                true => self.store.estimate(&query).await?,
                false => None,
            };
            let n = match estimated {
                Some(n) => n,
                None => self.store.count(&query).await?,
            };
            Some(n + u64::from(own.is_some()))
        } else {
            None
        };
        let mut page = if req.summary == Some(Summary::Count) || req.count == 0 {
            ember_store::Hits::default()
        } else {
            self.store.search(&query).await?
        };
        if let (Some(hit), false) = (own, req.summary == Some(Summary::Count) || req.count == 0) {
            page.hits.insert(0, hit);
        }
        // The first page holds every match: its length is the total, at no cost.
        let total = total.or_else(|| {
            (req.cursor.is_none() && !page.more && !req.no_total).then_some(page.hits.len() as u64)
        });
        let included = self.includes(&req, &page.hits).await?;
        let bundle = bundle(&req, &page, &included, total, base, endpoint);
        // Writing JSON values and already valid JSON text to a String cannot fail.
        Ok(serde_json::to_string(&bundle).unwrap_or_default())
    }

    /// The matches of a search of `res_type` under strict handling, as JSON values, for
    /// components that read through the repository: the first page only (`_count`
    /// sets its size), no includes.
    pub async fn find(&self, res_type: &str, pairs: &[(String, String)]) -> Result<Vec<Value>> {
        let query = self.strict_query(res_type, pairs).await?;
        let page = self.store.search(&query).await?;
        page.hits.iter().map(parse_hit).collect()
    }

    /// Every match of a search of `res_type` under strict handling, page by page
    /// (`_count` sets the page size; see [`Pages::next`]), so a component can go
    /// through all of them in bounded memory.
    pub async fn pages(&self, res_type: &str, pairs: &[(String, String)]) -> Result<Pages> {
        let query = self.strict_query(res_type, pairs).await?;
        Ok(Pages {
            repo: self.clone(),
            query,
            done: false,
        })
    }

    /// The store query of a search of `res_type` under strict handling, with `extra`
    /// filters, for components of this crate that page through the store themselves.
    pub(crate) async fn raw_query(
        &self,
        res_type: &str,
        pairs: &[(String, String)],
        extra: Vec<Filter>,
    ) -> Result<SearchQuery> {
        let mut query = self.strict_query(res_type, pairs).await?;
        query.filters.extend(extra);
        Ok(query)
    }

    /// How many resources of `res_type` a search matches, under strict handling.
    pub async fn count_matches(&self, res_type: &str, pairs: &[(String, String)]) -> Result<u64> {
        let query = self.strict_query(res_type, pairs).await?;
        Ok(self.store.count(&query).await?)
    }

    /// How the store runs a search (see [`ember_store::Store::explain`]): the
    /// backend's plan of the statement that would fetch its page.
    pub async fn explain_search(
        &self,
        scope: SearchScope<'_>,
        pairs: &[(String, String)],
        handling: Handling,
        base: &str,
    ) -> Result<String> {
        let terms = self.resolve_terms(pairs).await?;
        let (_, query) = self.request(scope, pairs, handling, base, &terms)?;
        Ok(self.store.explain(&query).await?)
    }

    /// Checks that a search can run (its parameters parse) without running it.
    pub(crate) async fn check_search(
        &self,
        scope: SearchScope<'_>,
        pairs: &[(String, String)],
        handling: Handling,
        base: &str,
    ) -> Result<()> {
        let terms = self.resolve_terms(pairs).await?;
        self.request(scope, pairs, handling, base, &terms).map(drop)
    }

    /// Applies the caller's grants to a search: each type must be searchable, and is
    /// narrowed to the caller's compartment and criteria. Several types narrowed
    /// differently cannot share one query, so such a search is refused.
    fn narrow(&self, req: &mut Request, access: &dyn crate::access::Access) -> Result<()> {
        let params = self.params.snapshot();
        let terms = Terms::default();
        let params = self.cx(&params, &terms);
        let mut narrowed = Vec::new();
        let all_types = req.types.len() == ember_fhir::resource_types().len();
        let mut searchable = Vec::new();
        for t in &req.types {
            match access.reach(t, crate::access::Need::Search) {
                // A search of every type covers the types the caller may search.
                crate::access::Reach::None(_) if all_types => {}
                crate::access::Reach::None(reason) => return Err(RepoError::Forbidden(reason)),
                _ => searchable.push(t.clone()),
            }
        }
        req.types = searchable;
        let mut confined = None;
        for t in &req.types {
            let narrowing = access.narrowing(t);
            let mut all = Vec::new();
            if let Some((compartment, id)) = &narrowing.compartment {
                if let Some((c, pinned)) = &req.everything {
                    if c == compartment {
                        // `$everything` of that compartment: confined to the caller's
                        // own resource by one filter over all its types.
                        if pinned.as_ref() != Some(id) {
                            confined = Some((c.clone(), id.clone()));
                        }
                        narrowed.push(criteria_filters(t, &narrowing, &params)?);
                        continue;
                    }
                }
                // A type outside the compartment is not patient data.
                if definitions::compartment(compartment)
                    .and_then(|c| c.params(t))
                    .is_some()
                {
                    all.push(compartment_filter(compartment, id, t)?);
                }
            }
            all.extend(criteria_filters(t, &narrowing, &params)?);
            narrowed.push(all);
        }
        if let Some((c, id)) = confined {
            req.filters
                .push(everything::links(&c, Some(&id), &req.types));
            // At the type level the caller's own resource comes first, as in its own
            // `$everything`; another resource's is read, and refused, as it is.
            if let Some((_, pinned @ None)) = &mut req.everything {
                *pinned = Some(id);
            }
        }
        if req.types.is_empty() {
            return Err(RepoError::Forbidden(
                "the token allows searching none of these types".into(),
            ));
        }
        if narrowed.windows(2).any(|w| w[0] != w[1]) {
            return Err(RepoError::Forbidden(
                "the token narrows these types differently; search them one type at a time".into(),
            ));
        }
        req.filters.extend(narrowed.swap_remove(0));
        Ok(())
    }

    /// The store query of a type search under strict handling (no base URL).
    async fn strict_query(
        &self,
        res_type: &str,
        pairs: &[(String, String)],
    ) -> Result<SearchQuery> {
        let terms = self.resolve_terms(pairs).await?;
        self.strict_query_with(res_type, pairs, &terms)
    }

    /// [`Repo::strict_query`] with its code sets resolved already.
    pub(crate) fn strict_query_with(
        &self,
        res_type: &str,
        pairs: &[(String, String)],
        terms: &Terms,
    ) -> Result<SearchQuery> {
        let scope = SearchScope::Type(res_type);
        let (_, query) = self.request(scope, pairs, Handling::Strict, "", terms)?;
        Ok(query)
    }

    /// The parsing context of a search over `params` with the code sets `terms`.
    pub(crate) fn cx<'a>(&self, params: &'a Snapshot, terms: &'a Terms) -> Cx<'a> {
        Cx {
            params,
            terms,
            max_codes: self.limits().max_search_codes,
        }
    }

    /// The parsed request and the store query of a search.
    fn request(
        &self,
        scope: SearchScope<'_>,
        pairs: &[(String, String)],
        handling: Handling,
        base: &str,
        terms: &Terms,
    ) -> Result<(Request, SearchQuery)> {
        crate::check_controls(pairs)?;
        // References to this server's own base URL are local references.
        let own = format!("{base}/");
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(n, v)| match base {
                "" => (n.clone(), v.clone()),
                _ => (n.clone(), v.replace(&own, "")),
            })
            .collect();
        let mut req = self.parse(scope, &pairs, handling, terms)?;
        if let Some(access) = crate::access::current() {
            self.narrow(&mut req, access.as_ref())?;
        }
        let query = SearchQuery {
            types: req.types.clone(),
            filters: req.filters.clone(),
            sort: req.sort.clone(),
            cursor: req.cursor.clone(),
            limit: req.count,
            timeline: crate::timeline::path(&req.types, &req.filters, &req.sort),
        };
        Ok((req, query))
    }

    fn parse(
        &self,
        scope: SearchScope<'_>,
        pairs: &[(String, String)],
        handling: Handling,
        terms: &Terms,
    ) -> Result<Request> {
        let params = self.params.snapshot();
        let cx = self.cx(&params, terms);
        let limits = self.limits();
        let mut req = Request {
            types: Vec::new(),
            filters: Vec::new(),
            sort: Vec::new(),
            count: limits.default_count,
            total: false,
            estimate: false,
            no_total: false,
            summary: None,
            elements: Vec::new(),
            includes: Vec::new(),
            revincludes: Vec::new(),
            cursor: None,
            accepted: Vec::new(),
            ignored: Vec::new(),
            everything: None,
            since: None,
        };
        match scope {
            SearchScope::Type(t) => {
                check_type(t)?;
                req.types.push(t.to_owned());
            }
            SearchScope::System => match pairs.iter().find(|(n, _)| n == "_type") {
                Some((_, v)) => {
                    for t in v.split(',') {
                        check_type(t).map_err(|_| {
                            RepoError::Invalid(format!("_type: {t:?} is not a resource type"))
                        })?;
                        req.types.push(t.to_owned());
                    }
                    req.accepted.push(("_type".into(), v.clone()));
                }
                None => {
                    req.types = ember_fhir::resource_types()
                        .iter()
                        .map(|t| (*t).to_owned())
                        .collect();
                }
            },
            SearchScope::Compartment {
                compartment,
                id,
                res_type,
            } => {
                check_type(compartment)?;
                check_type(res_type)?;
                check_id(id)?;
                req.types.push(res_type.to_owned());
                req.filters
                    .push(compartment_filter(compartment, id, res_type)?);
            }
            SearchScope::Everything { compartment, id } => {
                everything::scope(&mut req, compartment, id, pairs)?;
            }
        }
        let strict = handling == Handling::Strict;
        for (name, value) in pairs {
            let own = matches!(
                name.as_str(),
                "_count" | "_format" | "_pretty" | "_type" | CURSOR
            );
            let outcome = match req.everything {
                Some(_) if !own => everything::param(&mut req, name, value, &cx),
                _ => self.parse_pair(&mut req, name, value, &cx),
            };
            match outcome {
                Ok(true) => req.accepted.push((name.clone(), value.clone())),
                Ok(false) => {}
                Err(Problem::Invalid(msg)) => return Err(RepoError::Invalid(msg)),
                Err(Problem::Unsupported(msg)) if strict => return Err(RepoError::Invalid(msg)),
                Err(Problem::Unsupported(msg)) => req.ignored.push(format!("{name}: {msg}")),
            }
        }
        Ok(req)
    }

    /// Applies one query parameter; `Ok(false)` for those that are not part of the
    /// search itself (the cursor, formatting).
    fn parse_pair(
        &self,
        req: &mut Request,
        name: &str,
        value: &str,
        cx: &Cx,
    ) -> Result<bool, Problem> {
        let params = cx.params;
        let invalid = |m: String| Problem::Invalid(m);
        match name {
            "_format" | "_pretty" | "_type" | CURSOR => {
                if name == CURSOR {
                    req.cursor = Some(decode_cursor(value, 0)?);
                }
                Ok(false)
            }
            "_count" => {
                let n: u32 = value
                    .parse()
                    .map_err(|_| invalid(format!("_count: {value:?} is not a whole number")))?;
                req.count = n.min(self.limits().max_count);
                Ok(true)
            }
            "_total" => {
                req.no_total = value == "none";
                req.estimate = value == "estimate";
                req.total = match value {
                    "none" => false,
                    "estimate" | "accurate" => true,
                    _ => {
                        return Err(invalid(format!(
                            "_total: {value:?} is not none, estimate or accurate"
                        )));
                    }
                };
                Ok(true)
            }
            "_summary" => {
                req.summary = match value {
                    "true" => Some(Summary::True),
                    "text" => Some(Summary::Text),
                    "data" => Some(Summary::Data),
                    "count" => Some(Summary::Count),
                    "false" => None,
                    _ => {
                        return Err(invalid(format!(
                            "_summary: {value:?} is not true, text, data, count or false"
                        )));
                    }
                };
                Ok(true)
            }
            "_elements" => {
                req.elements = value.split(',').map(|e| e.trim().to_owned()).collect();
                Ok(true)
            }
            "_sort" => {
                req.sort = value
                    .split(',')
                    .map(|k| sort_key(&req.types, k, params))
                    .collect::<Result<_, _>>()?;
                Ok(true)
            }
            _ if name.starts_with("_sort:") => Err(Problem::Unsupported(format!(
                "{name}: _sort takes no modifier; a descending key has a minus (_sort=-date)"
            ))),
            _ if name == "_include" || name.starts_with("_include:") => {
                req.includes.push(include(name, value, &req.types, params)?);
                Ok(true)
            }
            _ if name == "_revinclude" || name.starts_with("_revinclude:") => {
                req.revincludes
                    .push(include(name, value, &req.types, params)?);
                Ok(true)
            }
            _ => {
                let f = filter::filter(&req.types, name, value, cx)?;
                req.filters.push(f);
                Ok(true)
            }
        }
    }

    /// The resources `_include` and `_revinclude` add to a page, without duplicates.
    async fn includes(&self, req: &Request, page: &[Hit]) -> Result<Vec<Hit>> {
        if req.includes.is_empty() && req.revincludes.is_empty() {
            return Ok(Vec::new());
        }
        let mut seen: HashSet<(String, String)> = page
            .iter()
            .map(|h| (h.res_type.clone(), h.id.clone()))
            .collect();
        let params = self.params.snapshot();
        let mut out: Vec<Hit> = Vec::new();
        let mut frontier: Vec<Hit> = page.to_vec();
        for round in 0..MAX_INCLUDE_ROUNDS {
            let active = |i: &&Include| round == 0 || i.iterate;
            let mut found: Vec<Hit> = Vec::new();
            for inc in req.includes.iter().filter(active) {
                for (source, rids) in by_type(&frontier) {
                    let keys = reference_keys(&source, inc, &params);
                    if keys.is_empty() {
                        continue;
                    }
                    let targets: Vec<(String, String)> = self
                        .store
                        .referenced(&rids, &keys)
                        .await?
                        .into_iter()
                        .filter(|(t, _)| inc.target.as_ref().is_none_or(|want| want == t))
                        .filter(|t| !seen.contains(t))
                        .collect();
                    for hit in self.store.fetch(&targets).await? {
                        if seen.insert((hit.res_type.clone(), hit.id.clone())) {
                            found.push(hit);
                        }
                    }
                }
            }
            for inc in req.revincludes.iter().filter(active) {
                let Some(source) = inc.source.clone() else {
                    continue;
                };
                let keys = reference_keys(&source, inc, &params);
                let targets: Vec<Cond> = frontier
                    .iter()
                    .map(|h| {
                        Cond::All(vec![
                            Cond::Cmp(Col::TargetType, Op::Eq, Val::Text(h.res_type.clone())),
                            Cond::Cmp(Col::TargetId, Op::Eq, Val::Text(h.id.clone())),
                        ])
                    })
                    .collect();
                if keys.is_empty() || targets.is_empty() {
                    continue;
                }
                let query = SearchQuery {
                    types: vec![source],
                    filters: vec![Filter::Has(Rows {
                        table: Table::Reference,
                        keys,
                        conds: vec![Cond::Any(targets)],
                    })],
                    sort: vec![],
                    cursor: None,
                    timeline: None,
                    limit: self.limits().max_count,
                };
                for hit in self.store.search(&query).await?.hits {
                    if seen.insert((hit.res_type.clone(), hit.id.clone())) {
                        found.push(hit);
                    }
                }
            }
            if found.is_empty() {
                break;
            }
            // An included resource the caller could not read directly stays out, and
            // is not followed further.
            found.retain(|h| crate::access::readable(&h.res_type, &h.body));
            out.extend(found.iter().cloned());
            frontier = found;
        }
        Ok(out)
    }
}

/// The filter that keeps the resources of `res_type` in the compartment of
/// `compartment/id`.
pub(crate) fn compartment_filter(compartment: &str, id: &str, res_type: &str) -> Result<Filter> {
    let def = definitions::compartment(compartment)
        .ok_or_else(|| RepoError::Invalid(format!("{compartment} is not a compartment type")))?;
    let params = def.params(res_type).ok_or_else(|| {
        RepoError::Invalid(format!(
            "{res_type} is not in the {compartment} compartment"
        ))
    })?;
    let target = Cond::All(vec![
        Cond::Cmp(Col::TargetType, Op::Eq, Val::Text(compartment.to_owned())),
        Cond::Cmp(Col::TargetId, Op::Eq, Val::Text(id.to_owned())),
    ]);
    // One row filter over every linking parameter, so that it can drive the search.
    let keys: Vec<i64> = params
        .iter()
        .filter(|code| **code != "{def}")
        .map(|code| key(res_type, code))
        .collect();
    let mut any = Vec::new();
    // The compartment's own resource is in it (the Patient in the Patient
    // compartment), whatever its linking parameters say.
    if params.contains(&"{def}") || res_type == compartment {
        any.push(Filter::Id(vec![id.to_owned()]));
    }
    if !keys.is_empty() {
        any.push(Filter::Has(Rows {
            table: Table::Reference,
            keys,
            conds: vec![target],
        }));
    }
    Ok(match any.len() {
        1 => any.pop().expect("one filter"),
        _ => Filter::Any(any),
    })
}

/// The filter of a token's granular scope criteria for `t` (none without criteria).
fn criteria_filters(
    t: &str,
    narrowing: &crate::access::Narrowing,
    params: &Cx,
) -> Result<Vec<Filter>> {
    if narrowing.criteria.is_empty() {
        return Ok(Vec::new());
    }
    let mut any = Vec::new();
    for criteria in &narrowing.criteria {
        let filters = criteria
            .iter()
            .map(|(n, v)| filter::filter_for(t, n, v, params))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| {
                RepoError::Forbidden(format!(
                    "the token's scope criteria for {t} cannot be applied"
                ))
            })?;
        any.push(Filter::All(filters));
    }
    Ok(vec![Filter::Any(any)])
}

/// The value sets whose codes have an order of their own, listed in it: a sort on a
/// token parameter bound to one follows that order, not the alphabet's (R4 defines the
/// order in the code system; the generated tables keep codes sorted for lookups).
const ORDERED_VALUE_SETS: &[(&str, &[&str])] = &[(
    "http://hl7.org/fhir/ValueSet/request-priority",
    &["routine", "urgent", "asap", "stat"],
)];

/// The codes of parameter `code` of `ty` in their value set's order, when the
/// parameter is one element with a required binding to an ordered value set
/// (`Task?_sort=-priority` puts `stat` first, then `asap`, `urgent`, `routine`).
fn ranked_codes(ty: &str, code: &str) -> Option<&'static [&'static str]> {
    let def = ember_fhir::definitions::search_param(ty, code)?;
    let path = def
        .expression?
        .split('|')
        .map(str::trim)
        .find_map(|e| e.strip_prefix(ty)?.strip_prefix('.'))?;
    let binding = ember_fhir::definitions::child(ty, path)?.required_binding?;
    ORDERED_VALUE_SETS
        .iter()
        .find(|(url, _)| *url == binding)
        .map(|(_, codes)| *codes)
}

/// One `_sort` key: `[-]param`.
fn sort_key(types: &[String], spec: &str, params: &Snapshot) -> Result<Sort, Problem> {
    let (desc, code) = match spec.strip_prefix('-') {
        Some(c) => (true, c),
        None => (false, spec),
    };
    if code == "_id" {
        return Ok(Sort {
            key: SortKey::Id,
            desc,
        });
    }
    let mut keys = Vec::new();
    let mut kind = None;
    let mut ranks = None;
    for ty in types {
        if let Some(def) = filter::param(ty, code, params) {
            keys.extend(filter::keys_of(ty, def.code()));
            kind = Some(def.kind());
            ranks = ranks.or_else(|| ranked_codes(ty, code));
        }
    }
    if let (Some(SearchParamType::Token), Some(ranks)) = (kind, ranks) {
        return Ok(Sort {
            key: SortKey::Ranked {
                keys,
                ranks: ranks.iter().map(|c| (*c).to_owned()).collect(),
            },
            desc,
        });
    }
    let (table, asc_col, desc_col) = match kind {
        Some(SearchParamType::String) => (Table::String, Col::Norm, Col::Norm),
        Some(SearchParamType::Token) => (Table::Token, Col::Code, Col::Code),
        Some(SearchParamType::Date) => (Table::Date, Col::Lo, Col::Hi),
        Some(SearchParamType::Number) => (Table::Number, Col::V, Col::V),
        Some(SearchParamType::Quantity) => (Table::Quantity, Col::V, Col::V),
        Some(SearchParamType::Reference) => (Table::Reference, Col::TargetId, Col::TargetId),
        Some(SearchParamType::Uri) => (Table::Uri, Col::Uri, Col::Uri),
        Some(_) => {
            return Err(Problem::Invalid(format!(
                "_sort: cannot sort by the parameter {code:?}"
            )));
        }
        None => {
            return Err(Problem::Invalid(format!(
                "_sort: unknown search parameter {code:?}"
            )));
        }
    };
    Ok(Sort {
        key: SortKey::Rows {
            table,
            keys,
            asc: asc_col,
            desc: desc_col,
        },
        desc,
    })
}

/// Parses `_include[:iterate]=Source:param[:Target]` or `*`.
fn include(
    name: &str,
    value: &str,
    types: &[String],
    params: &Snapshot,
) -> Result<Include, Problem> {
    let iterate = name.ends_with(":iterate") || name.ends_with(":recurse");
    if let Some((_, m)) = name.split_once(':') {
        if !matches!(m, "iterate" | "recurse") {
            return Err(Problem::Unsupported(format!(
                "{name}: :{m} is not a modifier of {} (only :iterate)",
                name.split(':').next().unwrap_or_default()
            )));
        }
    }
    if value == "*" {
        return Ok(Include {
            source: None,
            param: None,
            target: None,
            iterate,
        });
    }
    let mut parts = value.split(':');
    let source = parts.next().unwrap_or_default();
    let param = parts.next();
    let target = parts.next();
    if !ember_fhir::is_resource_type(source) {
        return Err(Problem::Invalid(format!(
            "{name}: {source:?} is not a resource type"
        )));
    }
    if let Some(t) = target {
        if !ember_fhir::is_resource_type(t) {
            return Err(Problem::Invalid(format!(
                "{name}: {t:?} is not a resource type"
            )));
        }
    }
    let param = match param {
        None | Some("*") => None,
        Some(code) => {
            let def = filter::param(source, code, params)
                .filter(|d| d.kind() == SearchParamType::Reference)
                .ok_or_else(|| {
                    Problem::Unsupported(format!("{source} has no reference parameter {code:?}"))
                })?;
            Some(def.code().to_owned())
        }
    };
    if name.starts_with("_include") && !iterate && !types.iter().any(|t| t == source) {
        return Err(Problem::Unsupported(format!(
            "{name}={value}: the search is not on {source}"
        )));
    }
    Ok(Include {
        source: Some(source.to_owned()),
        param,
        target: target.map(str::to_owned),
        iterate,
    })
}

/// The reference index keys of `source` an include follows.
fn reference_keys(source: &str, inc: &Include, params: &Snapshot) -> Vec<i64> {
    if inc.source.as_deref().is_some_and(|s| s != source) {
        return Vec::new();
    }
    match &inc.param {
        Some(code) => vec![key(source, code)],
        // `*`: every reference parameter, run-time ones included.
        None => definitions::search_params(source)
            .into_iter()
            .filter(|d| d.kind == SearchParamType::Reference)
            .map(|d| key(source, d.code))
            .chain(
                params
                    .of_type(source)
                    .iter()
                    .filter(|p| p.kind() == SearchParamType::Reference)
                    .map(|p| key(source, p.code())),
            )
            .collect(),
    }
}

/// The internal keys of `hits`, grouped by type.
fn by_type(hits: &[Hit]) -> Vec<(String, Vec<i64>)> {
    let mut groups: Vec<(String, Vec<i64>)> = Vec::new();
    for h in hits {
        match groups.iter_mut().find(|(t, _)| *t == h.res_type) {
            Some((_, rids)) => rids.push(h.rid),
            None => groups.push((h.res_type.clone(), vec![h.rid])),
        }
    }
    groups
}

/// The opaque cursor of the position at `hit`.
fn encode_cursor(hit: &Hit, backward: bool) -> String {
    let values: Vec<Value> = hit
        .sort_values
        .iter()
        .map(|v| match v {
            Val::Text(t) => json!({"t": t}),
            Val::Int(i) => json!({"i": i}),
            Val::Float(f) => json!({"f": f}),
        })
        .collect();
    let raw = json!([hit.rid, backward, values]).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(value: &str, _sort_len: usize) -> Result<Cursor, Problem> {
    let bad = || {
        Problem::Invalid(format!(
            "{CURSOR}: {value:?} is not a cursor of this server"
        ))
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rid = v[0].as_i64().ok_or_else(bad)?;
    let backward = v[1].as_bool().ok_or_else(bad)?;
    let values = v[2]
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|x| {
            // A text key goes to the database: no control characters.
            let text = x.get("t").and_then(Value::as_str);
            if let Some(t) = text.filter(|t| ember_fhir::control_char(t).is_none()) {
                Some(Val::Text(t.to_owned()))
            } else if let Some(i) = x.get("i").and_then(Value::as_i64) {
                Some(Val::Int(i))
            } else {
                x.get("f").and_then(Value::as_f64).map(Val::Float)
            }
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(bad)?;
    Ok(Cursor {
        values,
        rid,
        backward,
    })
}

/// The pages of a search (see [`Repo::pages`]).
pub struct Pages {
    repo: Repo,
    query: SearchQuery,
    done: bool,
}

impl Pages {
    /// The next page's resources; `None` after the last page.
    pub async fn next(&mut self) -> Result<Option<Vec<Value>>> {
        if self.done {
            return Ok(None);
        }
        let page = self.repo.store.search(&self.query).await?;
        match page.hits.last() {
            Some(last) if page.more => {
                self.query.cursor = Some(Cursor {
                    values: last.sort_values.clone(),
                    rid: last.rid,
                    backward: false,
                });
            }
            _ => self.done = true,
        }
        page.hits
            .iter()
            .map(parse_hit)
            .collect::<Result<_>>()
            .map(Some)
    }
}

/// A search match as a JSON value.
fn parse_hit(h: &ember_store::Hit) -> Result<Value> {
    serde_json::from_str(&h.body).map_err(|e| {
        RepoError::Store(ember_store::StoreError::Backend(format!(
            "stored JSON of {}/{} is invalid: {e}",
            h.res_type, h.id
        )))
    })
}

/// The query string of the search with an optional cursor.
fn query_string(req: &Request, cursor: Option<&str>) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (n, v) in &req.accepted {
        s.append_pair(n, v);
    }
    if let Some(c) = cursor {
        s.append_pair(CURSOR, c);
    }
    s.finish()
}

/// A `searchset` Bundle, written out without parsing the stored resources again.
#[derive(Serialize)]
struct Searchset<'a> {
    #[serde(rename = "resourceType")]
    resource_type: &'static str,
    #[serde(rename = "type")]
    bundle_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<u64>,
    link: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    entry: Vec<Entry<'a>>,
}

#[derive(Serialize)]
struct Entry<'a> {
    #[serde(rename = "fullUrl", skip_serializing_if = "Option::is_none")]
    full_url: Option<String>,
    resource: EntryResource<'a>,
    search: SearchMode,
}

/// A resource as stored (its JSON text is copied as it is), or reshaped.
#[derive(Serialize)]
#[serde(untagged)]
enum EntryResource<'a> {
    Stored(&'a RawValue),
    Shaped(Value),
}

#[derive(Serialize)]
struct SearchMode {
    mode: &'static str,
}

fn bundle<'a>(
    req: &Request,
    page: &'a ember_store::Hits,
    included: &'a [Hit],
    total: Option<u64>,
    base: &str,
    endpoint: &str,
) -> Searchset<'a> {
    let url = |cursor: Option<&str>| {
        let q = query_string(req, cursor);
        if q.is_empty() {
            endpoint.to_owned()
        } else {
            format!("{endpoint}?{q}")
        }
    };
    let here = req.cursor.as_ref().map(|c| {
        // The self link names the page as requested.
        let hit = Hit {
            rid: c.rid,
            res_type: String::new(),
            id: String::new(),
            version: 0,
            last_updated: 0,
            body: String::new(),
            sort_values: c.values.clone(),
        };
        encode_cursor(&hit, c.backward)
    });
    let mut links = vec![json!({"relation": "self", "url": url(here.as_deref())})];
    let backward = req.cursor.as_ref().is_some_and(|c| c.backward);
    let has_next = if backward {
        req.cursor.is_some()
    } else {
        page.more
    };
    let has_previous = if backward {
        page.more
    } else {
        req.cursor.is_some()
    };
    if has_next {
        if let Some(last) = page.hits.last() {
            links.push(json!({"relation": "next", "url": url(Some(&encode_cursor(last, false)))}));
        }
    }
    if has_previous {
        if let Some(first) = page.hits.first() {
            links.push(
                json!({"relation": "previous", "url": url(Some(&encode_cursor(first, true)))}),
            );
        }
    }
    let mut entries = Vec::with_capacity(page.hits.len() + included.len() + 1);
    for hit in &page.hits {
        entries.push(entry(req, hit, "match", base));
    }
    for hit in included {
        entries.push(entry(req, hit, "include", base));
    }
    if !req.ignored.is_empty() {
        let issues: Vec<Value> = req
            .ignored
            .iter()
            .map(|m| json!({"severity": "warning", "code": "not-supported", "diagnostics": format!("ignored {m}")}))
            .collect();
        entries.push(Entry {
            full_url: None,
            resource: EntryResource::Shaped(
                json!({"resourceType": "OperationOutcome", "issue": issues}),
            ),
            search: SearchMode { mode: "outcome" },
        });
    }
    Searchset {
        resource_type: "Bundle",
        bundle_type: "searchset",
        total,
        link: links,
        entry: entries,
    }
}

fn entry<'a>(req: &Request, hit: &'a Hit, mode: &'static str, base: &str) -> Entry<'a> {
    let reshape = mode == "match" && (req.summary.is_some() || !req.elements.is_empty());
    let stored = serde_json::from_str::<&RawValue>(&hit.body).ok();
    let resource = match stored {
        Some(raw) if !reshape => EntryResource::Stored(raw),
        _ => {
            let mut resource: Value = serde_json::from_str(&hit.body)
                .unwrap_or_else(|_| json!({"resourceType": hit.res_type}));
            if reshape {
                shape(&mut resource, req.summary, &req.elements);
            }
            EntryResource::Shaped(resource)
        }
    };
    Entry {
        full_url: Some(format!("{base}/{}/{}", hit.res_type, hit.id)),
        resource,
        search: SearchMode { mode },
    }
}

/// Applies `_summary` and `_elements`, marking the result SUBSETTED.
pub(crate) fn shape(resource: &mut Value, summary: Option<Summary>, elements: &[String]) {
    let Some(obj) = resource.as_object_mut() else {
        return;
    };
    let res_type = obj
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let always = ["resourceType", "id", "meta"];
    let before = obj.len();
    match summary {
        Some(Summary::Text) => obj.retain(|k, _| {
            always.contains(&k.as_str()) || k == "text" || is_mandatory(&res_type, k)
        }),
        Some(Summary::Data) => {
            obj.remove("text");
        }
        Some(Summary::True) => {
            obj.retain(|k, _| always.contains(&k.as_str()) || is_summary(&res_type, k))
        }
        _ => {}
    }
    if !elements.is_empty() && summary.is_none() {
        obj.retain(|k, _| {
            always.contains(&k.as_str())
                || elements.iter().any(|e| {
                    e == k || definitions::member(&res_type, k).is_some_and(|(d, _)| d.name == e)
                })
                || is_mandatory(&res_type, k)
        });
    }
    if obj.len() != before || summary == Some(Summary::Data) {
        let meta = obj.entry("meta").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            let tags = meta.entry("tag").or_insert_with(|| json!([]));
            if let Some(tags) = tags.as_array_mut() {
                tags.push(json!({
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                    "code": "SUBSETTED",
                    "display": "Resource encoded in summary mode"
                }));
            }
        }
    }
}

fn is_mandatory(res_type: &str, json_name: &str) -> bool {
    definitions::member(res_type, json_name).is_some_and(|(d, _)| d.min > 0)
}

fn is_summary(res_type: &str, json_name: &str) -> bool {
    definitions::is_summary(res_type, json_name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_store::TimelinePath;

    /// The path of `Observation?query` (`_sort` as `-date`, `date` or `-_lastUpdated`).
    fn path_of(query: &str) -> Option<TimelinePath> {
        let types = vec!["Observation".to_owned()];
        let mut filters = Vec::new();
        let mut sort = Vec::new();
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap();
            if name == "_sort" {
                let (desc, code) = value
                    .strip_prefix('-')
                    .map_or((false, value), |c| (true, c));
                sort.push(Sort {
                    key: SortKey::Rows {
                        table: Table::Date,
                        keys: vec![key("Observation", code)],
                        asc: Col::Lo,
                        desc: Col::Hi,
                    },
                    desc,
                });
            } else {
                let (params, terms) = (Default::default(), Default::default());
                let cx = Cx {
                    params: &params,
                    terms: &terms,
                    max_codes: 1000,
                };
                filters.push(filter::filter(&types, name, value, &cx).unwrap());
            }
        }
        crate::timeline::path(&types, &filters, &sort)
    }

    #[test]
    fn priority_sorts_in_its_value_set_s_order() {
        assert_eq!(
            ranked_codes("Task", "priority"),
            Some(&["routine", "urgent", "asap", "stat"][..])
        );
        assert_eq!(
            ranked_codes("ServiceRequest", "priority").map(<[_]>::len),
            Some(4)
        );
        // Other tokens sort by code.
        assert_eq!(ranked_codes("Task", "status"), None);
        assert_eq!(ranked_codes("Observation", "code"), None);
    }

    #[test]
    fn paths_of_searches_pinned_to_a_patient() {
        let p1 = key("Patient", "p1");
        let code = key("Observation", "code");
        let any = crate::timeline::any_key("Observation");
        let latest =
            path_of("subject=Patient/p1&code=http://loinc.org|59408-5&_sort=-date").unwrap();
        assert_eq!((latest.cmp, latest.p), (p1, code));
        assert_eq!(
            (latest.system.as_str(), latest.code.as_str()),
            ("http://loinc.org", "59408-5")
        );
        assert_eq!(latest.date_key, key("Observation", "date"));
        assert_eq!(latest.at_least, None);
        // The code filter is met by every entry read; `subject` is not (a performer
        // is in the compartment too).
        assert_eq!(latest.implied, vec![1]);
        // A pinned code alone is enough; so is a sort the entries are ordered by.
        assert_eq!(
            path_of("patient=p1&code=http://loinc.org|1").unwrap().p,
            code
        );
        for q in [
            "subject=Patient/p1&_sort=-date",
            "subject:Patient=p1&_sort=-_lastUpdated",
            "performer=Patient/p1&_sort=-date",
            "subject=Patient/p1&code=1&_sort=-date",
        ] {
            let path = path_of(q).unwrap_or_else(|| panic!("{q}"));
            assert_eq!((path.cmp, path.p, path.code.as_str()), (p1, any, ""), "{q}");
        }
        // Nothing to gain, or no single patient.
        for q in [
            "subject=Patient/p1",
            "subject=Patient/p1&_sort=date",
            "subject=p1&_sort=-date",
            "subject=Group/g&_sort=-date",
            "subject=Patient/p1,Patient/p2&_sort=-date",
            "focus=Patient/p1&_sort=-date",
            "code=http://loinc.org|1&_sort=-date",
            "subject:missing=false&_sort=-date",
        ] {
            assert_eq!(path_of(q), None, "{q}");
        }
        // A date window bounds the entries read.
        let window =
            path_of("subject=Patient/p1&code=s|c&date=ge2024-01-01&date=lt2024-02-01").unwrap();
        assert_eq!(window.at_least, Some(1_704_067_200_000_000));
        // The compartment search pins its patient too.
        let types = vec!["Observation".to_owned()];
        let compartment = compartment_filter("Patient", "p1", "Observation").unwrap();
        let sort = Sort {
            key: SortKey::Rows {
                table: Table::Date,
                keys: vec![key("Observation", "date")],
                asc: Col::Lo,
                desc: Col::Hi,
            },
            desc: true,
        };
        let path = crate::timeline::path(&types, &[compartment], &[sort]).unwrap();
        assert_eq!((path.cmp, path.implied.as_slice()), (p1, &[0][..]));
    }
}
