//! `$expand`: the codes of a value set from its `compose` (`include`/`exclude` by
//! concept list, whole system, `valueSet` imports and filters over a stored
//! CodeSystem's hierarchy), or from the R4 tables; then the text filter, `activeOnly`
//! and paging of one request.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{Value, json};

use super::code_system::Hierarchy;
use super::{Concept, Expansion, MAX_DEPTH, ValueSetRef};
use crate::{Repo, RepoError, Result};

/// One `$expand` request.
#[derive(Debug, Clone)]
pub struct ExpandRequest {
    pub value_set: ValueSetRef,
    /// Only codes whose display or code contains this text (case-insensitive).
    pub filter: Option<String>,
    pub offset: usize,
    /// At most this many codes (all when `None`).
    pub count: Option<usize>,
    /// Leave inactive codes out.
    pub active_only: bool,
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

fn str_of<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

fn items<'v>(v: &'v Value, key: &str) -> impl Iterator<Item = &'v Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

/// How errors name a value set.
fn name_of(vs: &Value) -> String {
    str_of(vs, "url")
        .map(str::to_owned)
        .or_else(|| str_of(vs, "id").map(|id| format!("ValueSet/{id}")))
        .unwrap_or_else(|| "the ValueSet".to_owned())
}

fn cannot(vs: &str, why: String) -> RepoError {
    RepoError::Unprocessable(format!("cannot expand {vs}: {why}"))
}

impl Repo {
    /// `$expand`: the value set with an `expansion` (see [`ExpandRequest`]).
    pub async fn expand(&self, req: ExpandRequest) -> Result<Value> {
        let (mut vs, key) = self.value_set(&req.value_set).await?;
        let expansion = self.cached_expansion(&vs, key.as_deref(), 0).await?;
        let needle = req.filter.as_deref().map(str::to_lowercase);
        let matching: Vec<&Concept> = expansion
            .concepts
            .iter()
            .filter(|c| !(req.active_only && c.inactive))
            .filter(|c| {
                needle.as_deref().is_none_or(|n| {
                    c.code.to_lowercase().contains(n)
                        || c.display
                            .as_deref()
                            .is_some_and(|d| d.to_lowercase().contains(n))
                })
            })
            .collect();
        let contains: Vec<Value> = matching
            .iter()
            .skip(req.offset)
            .take(req.count.unwrap_or(usize::MAX))
            .map(|c| {
                let mut v = json!({"system": c.system});
                if let Some(version) = &c.version {
                    v["version"] = json!(version);
                }
                v["code"] = json!(c.code);
                if let Some(display) = &c.display {
                    v["display"] = json!(display);
                }
                if c.inactive {
                    v["inactive"] = json!(true);
                }
                v
            })
            .collect();
        let mut parameters = Vec::new();
        if let Some(f) = &req.filter {
            parameters.push(json!({"name": "filter", "valueString": f}));
        }
        if req.active_only {
            parameters.push(json!({"name": "activeOnly", "valueBoolean": true}));
        }
        if req.offset > 0 {
            parameters.push(json!({"name": "offset", "valueInteger": req.offset}));
        }
        if let Some(count) = req.count {
            parameters.push(json!({"name": "count", "valueInteger": count}));
        }
        let mut out = json!({
            "identifier": expansion.identifier,
            "timestamp": expansion.timestamp,
            "total": matching.len(),
        });
        if req.offset > 0 || req.count.is_some() {
            out["offset"] = json!(req.offset);
        }
        if !parameters.is_empty() {
            out["parameter"] = Value::Array(parameters);
        }
        if !contains.is_empty() {
            out["contains"] = Value::Array(contains);
        }
        vs["expansion"] = out;
        Ok(vs)
    }

    /// The expansion of `vs`, from the cache under `key` when it has one.
    pub(crate) async fn cached_expansion(
        &self,
        vs: &Value,
        key: Option<&str>,
        depth: usize,
    ) -> Result<Arc<Expansion>> {
        if let Some(e) = key.and_then(|k| self.terminology.expansions.get(k)) {
            return Ok(e);
        }
        let since = self.terminology.generation();
        let concepts = self.compute(vs, depth).await?;
        let expansion = Arc::new(Expansion {
            identifier: format!("urn:uuid:{}", ember_fhir::id::new_id()),
            timestamp: ember_fhir::instant::format_instant(ember_fhir::instant::now()),
            concepts,
        });
        if let Some(k) = key {
            self.terminology.keep_expansion(k, since, expansion.clone());
        }
        Ok(expansion)
    }

    /// The expansion of the value set `url` (`url|version`): stored, or of the R4
    /// tables; 404 when there is none. Without the caller's grants: for imports,
    /// searches and code validation, which hand out no ValueSet.
    pub(crate) fn expansion_of<'a>(
        &'a self,
        url: &'a str,
        depth: usize,
    ) -> Boxed<'a, Arc<Expansion>> {
        Box::pin(async move {
            if let Some(e) = self.terminology.expansions.get(url) {
                return Ok(e);
            }
            match self.canonical_resource("ValueSet", url).await? {
                Some((_, vs)) => self.cached_expansion(&vs, Some(url), depth).await,
                None => {
                    let vs = json!({"resourceType": "ValueSet", "url": url});
                    match ember_fhir::definitions::value_set_codes(url) {
                        Some(_) => self.cached_expansion(&vs, Some(url), depth).await,
                        None => Err(RepoError::NotFound(format!("the ValueSet {url}"))),
                    }
                }
            }
        })
    }

    /// The codes of `vs`: its compose; else an expansion it carries; else, for a bare
    /// canonical, the R4 tables.
    fn compute<'a>(&'a self, vs: &'a Value, depth: usize) -> Boxed<'a, Vec<Concept>> {
        Box::pin(async move {
            let name = name_of(vs);
            if depth > MAX_DEPTH {
                return Err(cannot(
                    &name,
                    format!("valueSet imports nest deeper than {MAX_DEPTH} levels (a cycle?)"),
                ));
            }
            let max = self.limits().max_expansion;
            let too_many = || {
                RepoError::Unprocessable(format!(
                    "the expansion of {name} has more than {max} codes (EMBER_MAX_EXPANSION)"
                ))
            };
            let Some(compose) = vs.get("compose") else {
                if let Some(expansion) = vs.get("expansion") {
                    let mut out = Vec::new();
                    flatten(expansion, &mut out);
                    return Ok(out);
                }
                if let Some(codes) =
                    str_of(vs, "url").and_then(ember_fhir::definitions::value_set_codes)
                {
                    if codes.len() > max {
                        return Err(too_many());
                    }
                    return Ok(codes
                        .iter()
                        .map(|(system, code)| Concept {
                            system: (*system).to_owned(),
                            version: None,
                            code: (*code).to_owned(),
                            display: None,
                            inactive: false,
                        })
                        .collect());
                }
                return Err(cannot(&name, "it has no compose".into()));
            };
            let mut seen: HashSet<(String, String)> = HashSet::new();
            let mut out = Vec::new();
            for inc in items(compose, "include") {
                for c in self.part(&name, inc, depth).await? {
                    if seen.insert((c.system.clone(), c.code.clone())) {
                        out.push(c);
                    }
                }
                if out.len() > max {
                    return Err(too_many());
                }
            }
            let mut excluded: HashSet<(String, String)> = HashSet::new();
            for exc in items(compose, "exclude") {
                for c in self.part(&name, exc, depth).await? {
                    excluded.insert((c.system, c.code));
                }
            }
            out.retain(|c| !excluded.contains(&(c.system.clone(), c.code.clone())));
            Ok(out)
        })
    }

    /// The codes of one `include` or `exclude`: its system part, intersected with each
    /// imported value set.
    async fn part(&self, name: &str, inc: &Value, depth: usize) -> Result<Vec<Concept>> {
        let mut set: Option<Vec<Concept>> = match str_of(inc, "system") {
            Some(system) => Some(self.system_part(name, system, inc).await?),
            None => None,
        };
        for url in items(inc, "valueSet").filter_map(Value::as_str) {
            let imported = self
                .expansion_of(url, depth + 1)
                .await
                .map_err(|e| match e {
                    RepoError::NotFound(_) => {
                        cannot(name, format!("the imported ValueSet {url} is not known"))
                    }
                    other => other,
                })?;
            set = Some(match set {
                None => imported.concepts.clone(),
                Some(mine) => {
                    let theirs: HashSet<(&str, &str)> = imported
                        .concepts
                        .iter()
                        .map(|c| (c.system.as_str(), c.code.as_str()))
                        .collect();
                    mine.into_iter()
                        .filter(|c| theirs.contains(&(c.system.as_str(), c.code.as_str())))
                        .collect()
                }
            });
        }
        set.ok_or_else(|| {
            cannot(
                name,
                "an include or exclude has neither system nor valueSet".into(),
            )
        })
    }

    /// The codes an include takes from `system`: its concept list, its filters, or all
    /// of it.
    async fn system_part(&self, name: &str, system: &str, inc: &Value) -> Result<Vec<Concept>> {
        let version = str_of(inc, "version");
        let canonical = match version {
            Some(v) => format!("{system}|{v}"),
            None => system.to_owned(),
        };
        let hierarchy = self.hierarchy(&canonical).await?;
        let concept = |h: Option<&Hierarchy>, code: &str, display: Option<&str>| {
            let node = h.and_then(|h| h.get(code)).map(|(_, n)| n);
            Concept {
                system: system.to_owned(),
                version: version
                    .map(str::to_owned)
                    .or_else(|| h.and_then(|h| h.version.clone())),
                code: code.to_owned(),
                display: display
                    .map(str::to_owned)
                    .or_else(|| node.and_then(|n| n.display.clone())),
                inactive: node.is_some_and(|n| n.inactive),
            }
        };
        let listed: Vec<&Value> = items(inc, "concept").collect();
        let filters: Vec<&Value> = items(inc, "filter").collect();
        if !listed.is_empty() {
            if !filters.is_empty() {
                return Err(cannot(
                    name,
                    format!("an include of {system} has both concepts and filters"),
                ));
            }
            let complete = hierarchy.as_deref().filter(|h| h.content == "complete");
            return listed
                .iter()
                .filter_map(|c| str_of(c, "code").map(|code| (code, str_of(c, "display"))))
                .map(|(code, display)| match complete {
                    Some(h) if h.get(code).is_none() => Err(cannot(
                        name,
                        format!("{code:?} is not a code of the CodeSystem {system}"),
                    )),
                    _ => Ok(concept(hierarchy.as_deref(), code, display)),
                })
                .collect();
        }
        let h = hierarchy
            .as_deref()
            .filter(|h| h.content == "complete")
            .ok_or_else(|| {
                cannot(
                    name,
                    format!(
                        "the code system {canonical} is not held by this server (a CodeSystem with content complete)"
                    ),
                )
            })?;
        let mut chosen: Vec<bool> = vec![true; h.nodes.len()];
        for f in filters {
            let keep = filter_codes(h, f).map_err(|why| cannot(name, why))?;
            for (i, c) in chosen.iter_mut().enumerate() {
                *c = *c && keep[i];
            }
        }
        Ok(h.nodes
            .iter()
            .zip(chosen)
            .filter(|(_, c)| *c)
            .map(|(n, _)| concept(Some(h), &n.code, None))
            .collect())
    }
}

/// The concepts of `h` that a `compose.include.filter` keeps, by index.
fn filter_codes(h: &Hierarchy, f: &Value) -> std::result::Result<Vec<bool>, String> {
    let (property, op, value) = (
        str_of(f, "property").unwrap_or_default(),
        str_of(f, "op").unwrap_or_default(),
        str_of(f, "value").unwrap_or_default(),
    );
    let mut keep = vec![false; h.nodes.len()];
    let node = |code: &str| {
        h.get(code)
            .map(|(i, _)| i)
            .ok_or_else(|| format!("{code:?} is not a code of the CodeSystem {}", h.url))
    };
    match (property, op) {
        ("concept" | "code", "is-a" | "descendent-of" | "is-not-a" | "generalizes") => {
            let i = node(value)?;
            let related = match op {
                "generalizes" => h.ancestors(i),
                _ => h.descendants(i),
            };
            for j in related {
                keep[j] = true;
            }
            keep[i] = op != "descendent-of";
            if op == "is-not-a" {
                keep.iter_mut().for_each(|k| *k = !*k);
            }
        }
        ("concept" | "code", "=") => keep[node(value)?] = true,
        ("concept" | "code", "in") => {
            for code in value.split(',') {
                keep[node(code.trim())?] = true;
            }
        }
        (p, "=") => {
            for (i, n) in h.nodes.iter().enumerate() {
                keep[i] = n.properties.iter().any(|prop| {
                    str_of(prop, "code") == Some(p) && property_text(prop).as_deref() == Some(value)
                });
            }
        }
        _ => {
            return Err(format!(
                "the filter {property} {op} {value:?} is not supported (is-a, descendent-of, is-not-a, generalizes, =, in on concept; = on a property)"
            ));
        }
    }
    Ok(keep)
}

/// A concept property's value as text, for `=` filters.
fn property_text(prop: &Value) -> Option<String> {
    let obj = prop.as_object()?;
    obj.iter()
        .find(|(k, _)| k.starts_with("value"))
        .map(|(_, v)| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
}

/// The codes of a stored `expansion` (nested `contains` included).
fn flatten(node: &Value, out: &mut Vec<Concept>) {
    for c in items(node, "contains") {
        if let (Some(system), Some(code)) = (str_of(c, "system"), str_of(c, "code")) {
            out.push(Concept {
                system: system.to_owned(),
                version: str_of(c, "version").map(str::to_owned),
                code: code.to_owned(),
                display: str_of(c, "display").map(str::to_owned),
                inactive: c.get("inactive") == Some(&Value::Bool(true)),
            });
        }
        flatten(c, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hierarchy() -> Hierarchy {
        // a > b > c, a > d; e on its own, with a property.
        Hierarchy::of(
            &json!({"url": "http://x", "content": "complete", "concept": [
                {"code": "a", "concept": [{"code": "b", "concept": [{"code": "c"}]}, {"code": "d"}]},
                {"code": "e", "property": [{"code": "kind", "valueCode": "odd"}]},
            ]}),
        )
    }

    fn kept(h: &Hierarchy, property: &str, op: &str, value: &str) -> Vec<String> {
        let f = json!({"property": property, "op": op, "value": value});
        let keep = filter_codes(h, &f).unwrap();
        h.nodes
            .iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|(n, _)| n.code.clone())
            .collect()
    }

    #[test]
    fn hierarchy_filters() {
        let h = hierarchy();
        assert_eq!(kept(&h, "concept", "is-a", "b"), ["b", "c"]);
        assert_eq!(kept(&h, "concept", "descendent-of", "a"), ["b", "c", "d"]);
        assert_eq!(kept(&h, "concept", "is-not-a", "b"), ["a", "d", "e"]);
        assert_eq!(kept(&h, "concept", "generalizes", "c"), ["a", "b", "c"]);
        assert_eq!(kept(&h, "concept", "=", "d"), ["d"]);
        assert_eq!(kept(&h, "concept", "in", "e, a"), ["a", "e"]);
        assert_eq!(kept(&h, "kind", "=", "odd"), ["e"]);
        let unknown = json!({"property": "concept", "op": "is-a", "value": "z"});
        assert!(filter_codes(&h, &unknown).unwrap_err().contains("\"z\""));
        let regex = json!({"property": "concept", "op": "regex", "value": "a"});
        assert!(
            filter_codes(&h, &regex)
                .unwrap_err()
                .contains("not supported")
        );
    }
}
