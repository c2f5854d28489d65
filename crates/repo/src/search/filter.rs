//! One search parameter (`name[:modifier][.chain]=value[,value]`) as a store [`Filter`].

use std::sync::Arc;

use ember_fhir::definitions::{self, SearchParamDef, SearchParamType};
use ember_store::{Col, Cond, Filter, Op, Rows, Table, TextKind, Val, key};

use super::values::{self, ValueError, split_escaped};
use crate::indexer::{
    canonical_key, component_key, identifier_key, of_type_key, stored_names, words,
};
use crate::registry::{RuntimeParam, Snapshot};
use crate::terminology::terms::Terms;

/// What parsing a parameter needs besides the parameter: the run-time parameters and
/// the code sets of the terminology modifiers, resolved beforehand.
#[derive(Clone, Copy)]
pub(crate) struct Cx<'a> {
    pub params: &'a Snapshot,
    pub terms: &'a Terms,
    /// Most codes one terminology modifier may stand for.
    pub max_codes: usize,
}

/// Why a parameter gives no filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    /// Unknown or unsupported: ignored under lenient handling, 400 under strict.
    Unsupported(String),
    /// A malformed value: always 400.
    Invalid(String),
}

impl From<ValueError> for Problem {
    fn from(e: ValueError) -> Self {
        Problem::Invalid(e)
    }
}

type Result<T> = std::result::Result<T, Problem>;

/// A search parameter: built in, or defined at run time by a stored SearchParameter.
#[derive(Debug, Clone)]
pub(crate) enum Param {
    Builtin(&'static SearchParamDef),
    Runtime(Arc<RuntimeParam>),
}

impl Param {
    pub fn code(&self) -> &str {
        match self {
            Param::Builtin(d) => d.code,
            Param::Runtime(p) => p.code(),
        }
    }

    pub fn kind(&self) -> SearchParamType {
        match self {
            Param::Builtin(d) => d.kind,
            Param::Runtime(p) => p.kind(),
        }
    }

    /// The resource types a reference parameter may point to (any when empty).
    pub fn targets(&self) -> Vec<&str> {
        match self {
            Param::Builtin(d) => d.targets.to_vec(),
            Param::Runtime(p) => p.targets.iter().map(String::as_str).collect(),
        }
    }

    /// The built-in definition (composites are built in only).
    fn builtin(&self) -> Option<&'static SearchParamDef> {
        match self {
            Param::Builtin(d) => Some(d),
            Param::Runtime(_) => None,
        }
    }
}

/// The search parameter `code` of `res_type`: a built-in one, or one defined at run time
/// in `params` ([`crate::registry`]).
pub(crate) fn param(res_type: &str, code: &str, params: &Snapshot) -> Option<Param> {
    definitions::search_param(res_type, code)
        .map(Param::Builtin)
        .or_else(|| params.get(res_type, code).cloned().map(Param::Runtime))
}

/// The index table of a parameter type, when it has one.
pub(crate) fn table(kind: SearchParamType) -> Option<Table> {
    Some(match kind {
        SearchParamType::String => Table::String,
        SearchParamType::Token => Table::Token,
        SearchParamType::Date => Table::Date,
        SearchParamType::Number => Table::Number,
        SearchParamType::Quantity => Table::Quantity,
        SearchParamType::Reference => Table::Reference,
        SearchParamType::Uri => Table::Uri,
        SearchParamType::Composite | SearchParamType::Special => return None,
    })
}

/// The filter of `name=value` on documents of any of `types` (several for a
/// system-level search).
pub(crate) fn filter(types: &[String], name: &str, value: &str, cx: &Cx) -> Result<Filter> {
    if let [ty] = types {
        return filter_for(ty, name, value, cx);
    }
    let mut any = Vec::new();
    let mut last = None;
    for ty in types {
        match filter_for(ty, name, value, cx) {
            Ok(f) => any.push(f),
            Err(p @ Problem::Invalid(_)) => return Err(p),
            Err(p) => last = Some(p),
        }
    }
    match (any.len(), last) {
        (0, Some(p)) => Err(p),
        (1, _) => Ok(any.pop().expect("one filter")),
        _ => Ok(Filter::Any(any)),
    }
}

fn unsupported(msg: String) -> Problem {
    Problem::Unsupported(msg)
}

/// The filter of `name=value` on documents of `ty`.
pub(crate) fn filter_for(ty: &str, name: &str, value: &str, cx: &Cx) -> Result<Filter> {
    let params = cx.params;
    if let Some(rest) = name.strip_prefix("_has:") {
        return reverse_chain(ty, rest, value, cx);
    }
    if let Some((head, rest)) = name.split_once('.') {
        return chain(ty, head, rest, value, cx);
    }
    let (code, modifier) = match name.split_once(':') {
        Some((c, m)) => (c, Some(m)),
        None => (name, None),
    };
    let values = split_escaped(value, ',');
    match code {
        "_id" => {
            let ids = Filter::Id(values.iter().map(|v| values::unescape(v)).collect());
            return match modifier {
                None => Ok(ids),
                Some("not") => Ok(Filter::Not(Box::new(ids))),
                Some(m) => Err(unsupported(format!("_id:{m} is not supported"))),
            };
        }
        "_text" | "_content" if modifier.is_none() => {
            let kind = if code == "_text" {
                TextKind::Narrative
            } else {
                TextKind::Content
            };
            let any = values
                .iter()
                .map(|v| match words(&values::unescape(v)) {
                    w if w.is_empty() => Err(Problem::Invalid(format!(
                        "{code}: {v:?} has no words to search for"
                    ))),
                    words => Ok(Filter::Text { kind, words }),
                })
                .collect::<Result<Vec<_>>>()?;
            return Ok(Filter::Any(any));
        }
        "_list" if modifier.is_none() => {
            // A List holds the document when one of its `item` references points at it.
            let lists = Filter::Id(values.iter().map(|v| values::unescape(v)).collect());
            return Ok(Filter::Reverse {
                refs: Rows {
                    table: Table::Reference,
                    keys: vec![key("List", "item")],
                    conds: vec![],
                },
                filters: vec![lists],
            });
        }
        _ => {}
    }
    let def = param(ty, code, params)
        .ok_or_else(|| unsupported(format!("{ty} has no search parameter {code:?}")))?;
    if modifier == Some("missing") {
        return missing(ty, &def, value);
    }
    let rows = |table, conds: Vec<Cond>| Rows {
        table,
        keys: keys_of(ty, def.code()),
        conds,
    };
    let has = |table, conds| Filter::Has(rows(table, conds));
    let bad_modifier = || {
        unsupported(format!(
            "the modifier :{} is not supported on {ty}.{code}",
            modifier.unwrap_or_default()
        ))
    };
    let any = |conds: Vec<Cond>| vec![Cond::Any(conds)];
    match def.kind() {
        SearchParamType::String => match modifier {
            None | Some("exact" | "contains") => Ok(has(
                Table::String,
                any(values.iter().map(|v| values::string(v, modifier)).collect()),
            )),
            _ => Err(bad_modifier()),
        },
        SearchParamType::Token => {
            let codes = || any(values.iter().map(|v| values::token(v)).collect());
            match modifier {
                None => Ok(has(Table::Token, codes())),
                Some("not") => Ok(Filter::Not(Box::new(has(Table::Token, codes())))),
                Some("text") => Ok(has(
                    Table::Token,
                    any(values.iter().map(|v| values::token_text(v)).collect()),
                )),
                Some("of-type") => Ok(Filter::Has(Rows {
                    table: Table::Token,
                    keys: names(ty, def.code(), of_type_key),
                    conds: any(values
                        .iter()
                        .map(|v| values::of_type(v))
                        .collect::<Result<_>>()?),
                })),
                Some(m @ ("in" | "not-in" | "below" | "above")) => {
                    let f = has(Table::Token, vec![code_set(m, &values, cx)?]);
                    Ok(if m == "not-in" {
                        Filter::Not(Box::new(f))
                    } else {
                        f
                    })
                }
                _ => Err(bad_modifier()),
            }
        }
        SearchParamType::Reference => match modifier {
            None => Ok(has(
                Table::Reference,
                any(values.iter().map(|v| values::reference(v, None)).collect()),
            )),
            Some("identifier") => Ok(Filter::Has(Rows {
                table: Table::Token,
                keys: names(ty, def.code(), identifier_key),
                conds: any(values.iter().map(|v| values::token(v)).collect()),
            })),
            Some(t) if ember_fhir::is_resource_type(t) => Ok(has(
                Table::Reference,
                any(values
                    .iter()
                    .map(|v| values::reference(v, Some(t)))
                    .collect()),
            )),
            _ => Err(bad_modifier()),
        },
        SearchParamType::Uri => match modifier {
            None | Some("below" | "above") => Ok(has(
                Table::Uri,
                any(values.iter().map(|v| values::uri(v, modifier)).collect()),
            )),
            _ => Err(bad_modifier()),
        },
        SearchParamType::Date | SearchParamType::Number => {
            if modifier.is_some() {
                return Err(bad_modifier());
            }
            let parse = match def.kind() {
                SearchParamType::Date => values::date,
                _ => values::number,
            };
            let conds = values
                .iter()
                .map(|v| parse(v).map_err(|e| Problem::Invalid(format!("{name}: {e}"))))
                .collect::<Result<Vec<_>>>()?;
            Ok(has(
                table(def.kind()).expect("ordered types have tables"),
                any(conds),
            ))
        }
        SearchParamType::Quantity => {
            if modifier.is_some() {
                return Err(bad_modifier());
            }
            let rows = values
                .iter()
                .map(|v| {
                    values::quantity(v)
                        .map(|q| quantity_rows(ty, &stored_names(ty, def.code()), q))
                        .map_err(|e| Problem::Invalid(format!("{name}: {e}")))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Filter::Any(rows.into_iter().map(Filter::Has).collect()))
        }
        SearchParamType::Composite => {
            if modifier.is_some() {
                return Err(bad_modifier());
            }
            let Some(def) = def.builtin() else {
                return Err(bad_modifier());
            };
            let composites = values
                .iter()
                .map(|v| composite(ty, def, v))
                .collect::<Result<Vec<_>>>()?;
            Ok(Filter::Any(composites))
        }
        SearchParamType::Special => Err(unsupported(format!(
            "the special search parameter {ty}.{code} is not supported"
        ))),
    }
}

/// `:missing=true|false`: the document has no (or some) value for the parameter.
fn missing(ty: &str, def: &Param, value: &str) -> Result<Filter> {
    let code = def.code();
    let (table, keys) = match (def.kind(), def.builtin()) {
        (SearchParamType::Composite, Some(builtin)) => {
            let first = component_def(builtin, 0)?;
            (
                table(first.kind),
                names(ty, code, |t, n| component_key(t, n, 0)),
            )
        }
        (kind, _) => (table(kind), keys_of(ty, code)),
    };
    let table =
        table.ok_or_else(|| unsupported(format!("{ty}.{code}:missing is not supported")))?;
    let mut has = Filter::Has(Rows {
        table,
        keys,
        conds: vec![],
    });
    if def.kind() == SearchParamType::Reference {
        // A reference by identifier alone is a value too.
        has = Filter::Any(vec![
            has,
            Filter::Has(Rows {
                table: Table::Token,
                keys: names(ty, code, identifier_key),
                conds: vec![],
            }),
        ]);
    }
    match value {
        "true" => Ok(Filter::Not(Box::new(has))),
        "false" => Ok(has),
        _ => Err(Problem::Invalid(format!(
            "{code}:missing takes true or false, not {value:?}"
        ))),
    }
}

fn component_def(def: &SearchParamDef, i: usize) -> Result<&'static SearchParamDef> {
    def.components
        .get(i)
        .and_then(|(url, _)| definitions::search_param_by_url(url))
        .ok_or_else(|| unsupported(format!("the composite {} has no component {i}", def.code)))
}

/// One composite value: `component$component…`, each compared with its own type.
fn composite(ty: &str, def: &SearchParamDef, value: &str) -> Result<Filter> {
    let parts = split_escaped(value, '$');
    if parts.len() != def.components.len() {
        return Err(Problem::Invalid(format!(
            "{}: {value:?} needs {} components separated by $",
            def.code,
            def.components.len()
        )));
    }
    let mut rows = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let component = component_def(def, i)?;
        let cond = match component.kind {
            SearchParamType::Token => values::token(part),
            SearchParamType::String => values::string(part, None),
            SearchParamType::Reference => values::reference(part, None),
            SearchParamType::Uri => values::uri(part, None),
            SearchParamType::Date => values::date(part)?,
            SearchParamType::Number => values::number(part)?,
            SearchParamType::Quantity => {
                let names: Vec<String> = stored_names(ty, def.code)
                    .iter()
                    .map(|n| format!("{n}#{i}"))
                    .collect();
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                rows.push(quantity_rows(ty, &names, values::quantity(part)?));
                continue;
            }
            _ => return Err(unsupported(format!("{}: unsupported component", def.code))),
        };
        rows.push(Rows {
            table: table(component.kind).expect("component types have tables"),
            keys: names(ty, def.code, |t, n| component_key(t, n, i)),
            conds: vec![cond],
        });
    }
    Ok(Filter::Composite(rows))
}

/// The index keys of parameter `code` of `ty` (several for a union parameter).
pub(crate) fn keys_of(ty: &str, code: &str) -> Vec<i64> {
    names(ty, code, key)
}

/// `to_key` applied to each name the values of `code` are stored under.
fn names(ty: &str, code: &str, to_key: impl Fn(&str, &str) -> i64) -> Vec<i64> {
    stored_names(ty, code)
        .into_iter()
        .map(|n| to_key(ty, n))
        .collect()
}

/// The quantity rows of indexes `names` (codes or `code#i`) a quantity search
/// compares: the canonical copies too when it is in canonical units.
fn quantity_rows(ty: &str, names: &[&str], q: values::QuantityCond) -> Rows {
    let mut keys: Vec<i64> = names.iter().map(|n| key(ty, n)).collect();
    if q.canonical {
        keys.extend(names.iter().map(|n| canonical_key(ty, n)));
    }
    Rows {
        table: Table::Quantity,
        keys,
        conds: vec![q.cond],
    }
}

/// The codes `:modifier=values` stands for (`:in`, `:not-in`: value sets; `:below`,
/// `:above`: `system|code` in a stored CodeSystem's hierarchy), as one condition that
/// compares each system once with the list of its codes. Sets come from `cx.terms`; a
/// search parsed without them (a token's scope criteria) finds the R4 value sets only.
fn code_set(modifier: &str, values: &[String], cx: &Cx) -> Result<Cond> {
    let mut by_system: Vec<(String, Vec<Val>)> = Vec::new();
    let mut n = 0;
    for raw in values {
        let resolved;
        let codes: &[(String, String)] = match cx.terms.get(modifier, raw) {
            Some(Ok(set)) => set,
            Some(Err(why)) => return Err(Problem::Invalid(format!(":{modifier}: {why}"))),
            None if matches!(modifier, "in" | "not-in") => {
                let url = values::unescape(raw);
                resolved = definitions::value_set_codes(&url)
                    .ok_or_else(|| {
                        Problem::Invalid(format!(
                            ":{modifier}: the ValueSet {url:?} is not known to this server"
                        ))
                    })?
                    .iter()
                    .map(|(s, c)| ((*s).to_owned(), (*c).to_owned()))
                    .collect::<Vec<_>>();
                &resolved
            }
            None => {
                return Err(Problem::Unsupported(format!(
                    ":{modifier} is not supported here"
                )));
            }
        };
        n += codes.len();
        for (system, code) in codes {
            let code = Val::Text(code.clone());
            match by_system.iter_mut().find(|(s, _)| s == system) {
                Some((_, list)) => list.push(code),
                None => by_system.push((system.clone(), vec![code])),
            }
        }
    }
    if n > cx.max_codes {
        return Err(Problem::Invalid(format!(
            ":{modifier} stands for {n} codes; a search takes at most {}",
            cx.max_codes
        )));
    }
    Ok(Cond::Any(
        by_system
            .into_iter()
            .map(|(system, mut codes)| {
                // A code without a system (an element of type `code`, whose system is
                // its binding's) matches by its code.
                let system = Cond::Any(vec![
                    Cond::Cmp(Col::System, Op::Eq, Val::Text(system)),
                    Cond::IsNull(Col::System),
                ]);
                let code = match codes.len() {
                    1 => Cond::Cmp(Col::Code, Op::Eq, codes.remove(0)),
                    _ => Cond::In(Col::Code, codes),
                };
                Cond::All(vec![system, code])
            })
            .collect(),
    ))
}

/// `reference[:Type].rest=value`: a referenced document matches `rest=value`.
fn chain(ty: &str, head: &str, rest: &str, value: &str, cx: &Cx) -> Result<Filter> {
    let params = cx.params;
    let (code, modifier) = match head.split_once(':') {
        Some((c, m)) => (c, Some(m)),
        None => (head, None),
    };
    let def = param(ty, code, params)
        .ok_or_else(|| unsupported(format!("{ty} has no search parameter {code:?}")))?;
    if def.kind() != SearchParamType::Reference {
        return Err(unsupported(format!(
            "{ty}.{code} is not a reference and cannot be chained"
        )));
    }
    let targets: Vec<&str> = match modifier {
        Some(t) if ember_fhir::is_resource_type(t) => vec![t],
        Some(m) => return Err(unsupported(format!("{ty}.{code}:{m} cannot be chained"))),
        None => def.targets(),
    };
    let mut chains = Vec::new();
    for target in targets {
        match filter_for(target, rest, value, cx) {
            Ok(f) => chains.push(Filter::Chain {
                refs: Rows {
                    table: Table::Reference,
                    keys: vec![key(ty, def.code())],
                    conds: vec![],
                },
                target_type: target.to_owned(),
                filters: vec![f],
            }),
            Err(p @ Problem::Invalid(_)) => return Err(p),
            Err(_) => {}
        }
    }
    if chains.is_empty() {
        return Err(unsupported(format!(
            "no target of {ty}.{code} has a search parameter for {rest:?}"
        )));
    }
    Ok(Filter::Any(chains))
}

/// `_has:Type:reference:rest=value`: a document of `Type` that references this one
/// through `reference` matches `rest=value`.
fn reverse_chain(ty: &str, spec: &str, value: &str, cx: &Cx) -> Result<Filter> {
    let params = cx.params;
    let mut parts = spec.splitn(3, ':');
    let (Some(source), Some(code), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Problem::Invalid(format!(
            "_has:{spec} must be _has:Type:reference:parameter"
        )));
    };
    if !ember_fhir::is_resource_type(source) {
        return Err(Problem::Invalid(format!(
            "_has: {source:?} is not a resource type"
        )));
    }
    let def = param(source, code, params)
        .filter(|d| d.kind() == SearchParamType::Reference)
        .ok_or_else(|| unsupported(format!("{source} has no reference parameter {code:?}")))?;
    let targets = def.targets();
    if !targets.is_empty() && !targets.contains(&ty) {
        return Err(Problem::Invalid(format!(
            "{source}.{code} cannot refer to a {ty}"
        )));
    }
    let inner = filter_for(source, rest, value, cx)?;
    Ok(Filter::Reverse {
        refs: Rows {
            table: Table::Reference,
            keys: vec![key(source, def.code())],
            conds: vec![],
        },
        filters: vec![inner],
    })
}
