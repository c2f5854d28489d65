//! The computable part of the FHIR R4 definitions, extracted from the loaded package into
//! plain Rust values (no narrative, no descriptions). The `gen_model` emitters turn these
//! into the static tables of `ember_fhir::definitions`.
//!
//! Every collection here is built in a deterministic order, and every surprise in the
//! package (an unknown base type, a slice in a base definition, a duplicate search code…)
//! is an error rather than silently dropped data.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::defs::Defs;

/// Prefix of the FHIRPath system type codes (`http://hl7.org/fhirpath/System.String`).
const SYSTEM_TYPE_PREFIX: &str = "http://hl7.org/fhirpath/";
/// Canonical prefix of the core StructureDefinitions.
const SD_PREFIX: &str = "http://hl7.org/fhir/StructureDefinition/";
/// Required-binding value sets with more codes than this are not emitted.
pub const MAX_VALUE_SET_CODES: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Primitive,
    Complex,
    Resource,
}

impl Kind {
    pub fn rust(self) -> &'static str {
        match self {
            Kind::Primitive => "Primitive",
            Kind::Complex => "Complex",
            Kind::Resource => "Resource",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeInfo {
    pub name: String,
    pub kind: Kind,
    pub base: Option<String>,
    pub is_abstract: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementInfo {
    /// The lookup key of the element's parent: a type name or a backbone element's path.
    pub parent: String,
    pub path: String,
    pub name: String,
    pub types: Vec<String>,
    pub targets: Vec<String>,
    pub min: u32,
    pub max: Option<u32>,
    pub content_ref: Option<String>,
    pub required_binding: Option<String>,
    /// `isSummary: true` (absent means false).
    pub summary: bool,
}

/// The types and elements of the model.
#[derive(Debug)]
pub struct Model {
    /// Sorted by name.
    pub types: Vec<TypeInfo>,
    /// Grouped by parent (parents in byte order), each group in definition order.
    pub elements: Vec<ElementInfo>,
}

impl Model {
    /// `(parent, first index, count)` of each group of [`Model::elements`], sorted by parent.
    pub fn parent_ranges(&self) -> Vec<(&str, usize, usize)> {
        let mut out: Vec<(&str, usize, usize)> = Vec::new();
        for (i, e) in self.elements.iter().enumerate() {
            match out.last_mut() {
                Some((parent, _, count)) if *parent == e.parent => *count += 1,
                _ => out.push((&e.parent, i, 1)),
            }
        }
        out
    }

    /// Whether `ty` is `base` or derives from it.
    pub fn is_a(&self, ty: &str, base: &str) -> bool {
        let mut current = Some(ty);
        // The chain is acyclic (checked when the model is built); the bound is a backstop.
        for _ in 0..=self.types.len() {
            match current {
                Some(name) if name == base => return true,
                Some(name) => current = self.type_info(name).and_then(|t| t.base.as_deref()),
                None => return false,
            }
        }
        false
    }

    pub fn type_info(&self, name: &str) -> Option<&TypeInfo> {
        self.types
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.types[i])
    }

    /// The ValueSet canonicals of every required binding, sorted.
    pub fn required_value_sets(&self) -> BTreeSet<&str> {
        self.elements
            .iter()
            .filter_map(|e| e.required_binding.as_deref())
            .collect()
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn req_str<'a>(v: &'a Value, key: &str, what: &dyn Fn() -> String) -> Result<&'a str> {
    str_field(v, key).with_context(|| format!("{} has no `{key}`", what()))
}

fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn is_type_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic()) && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Whether a StructureDefinition defines a type of the model, and under which name.
///
/// Included: primitive types, complex types and resources defined by specialization, the
/// abstract roots (Element and Resource have no derivation), and the named data-type
/// constraints (`SimpleQuantity`, `MoneyQuantity`: kind complex-type, derivation
/// constraint, a constrained type that is not Extension, and a canonical whose last
/// segment is a type name starting with an uppercase letter). Excluded: resource profiles,
/// extension definitions, other data-type profiles (`elementdefinition-de`) and logical models.
fn model_type_name(sd: &Value) -> Option<String> {
    let kind = str_field(sd, "kind")?;
    let ty = str_field(sd, "type")?;
    let derivation = str_field(sd, "derivation");
    match (kind, derivation) {
        ("primitive-type" | "complex-type" | "resource", Some("specialization") | None) => {
            Some(ty.to_string())
        }
        ("complex-type", Some("constraint")) if ty != "Extension" => {
            let id = str_field(sd, "url")?.strip_prefix(SD_PREFIX)?;
            (is_type_name(id) && id.starts_with(|c: char| c.is_ascii_uppercase()))
                .then(|| id.to_string())
        }
        _ => None,
    }
}

/// Extracts the types and their elements.
pub fn build_model(defs: &Defs) -> Result<Model> {
    // Canonical URL -> type name, for every StructureDefinition (profiles map to the type
    // they constrain), to resolve base definitions and reference targets.
    let mut url_type: HashMap<&str, &str> = HashMap::new();
    for sd in defs.structure_definitions() {
        if let (Some(url), Some(ty)) = (str_field(sd, "url"), str_field(sd, "type")) {
            url_type.insert(url, ty);
        }
    }

    // name -> (StructureDefinition, kind)
    let mut selected: BTreeMap<String, (&Value, Kind)> = BTreeMap::new();
    for sd in defs.structure_definitions() {
        let Some(name) = model_type_name(sd) else {
            continue;
        };
        if !is_type_name(&name) {
            bail!("unexpected type name {name:?}");
        }
        let kind = match str_field(sd, "kind") {
            Some("primitive-type") => Kind::Primitive,
            Some("complex-type") => Kind::Complex,
            _ => Kind::Resource,
        };
        if selected.insert(name.clone(), (sd, kind)).is_some() {
            bail!("type {name} is defined twice");
        }
    }
    // The model's own canonicals take precedence (a constraint's canonical names the
    // constraint, not the type it constrains).
    let mut url_name: HashMap<&str, &str> = HashMap::new();
    for (name, (sd, _)) in &selected {
        if let Some(url) = str_field(sd, "url") {
            url_name.insert(url, name);
        }
    }

    let mut types = Vec::new();
    for (name, (sd, kind)) in &selected {
        let base = match str_field(sd, "baseDefinition") {
            None => None,
            Some(url) => Some(
                url_name
                    .get(url)
                    .with_context(|| format!("{name}: base {url} is not a type of the model"))?
                    .to_string(),
            ),
        };
        types.push(TypeInfo {
            name: name.clone(),
            kind: *kind,
            base,
            is_abstract: sd.get("abstract").and_then(Value::as_bool) == Some(true),
        });
    }
    if types.is_empty() {
        bail!("the package defines no types");
    }

    let mut groups: BTreeMap<String, Vec<ElementInfo>> = BTreeMap::new();
    for (name, (sd, _)) in &selected {
        for e in type_elements(name, sd, &url_type)
            .with_context(|| format!("StructureDefinition {name}"))?
        {
            groups.entry(e.parent.clone()).or_default().push(e);
        }
    }
    let model = Model {
        types,
        elements: groups.into_values().flatten().collect(),
    };
    for t in &model.types {
        let mut seen = BTreeSet::new();
        let mut current = Some(t.name.as_str());
        while let Some(name) = current {
            if !seen.insert(name) {
                bail!("{}: cyclic base chain", t.name);
            }
            current = model.type_info(name).and_then(|t| t.base.as_deref());
        }
    }
    Ok(model)
}

/// The snapshot elements of the type `name` (root excluded), in definition order.
fn type_elements(
    name: &str,
    sd: &Value,
    url_type: &HashMap<&str, &str>,
) -> Result<Vec<ElementInfo>> {
    let snapshot = sd
        .get("snapshot")
        .and_then(|s| s.get("element"))
        .and_then(Value::as_array)
        .context("no snapshot")?;
    let (root, rest) = snapshot.split_first().context("empty snapshot")?;
    let root_path = req_str(root, "path", &|| "the root element".into())?;
    if root_path.contains('.') {
        bail!("root element path {root_path:?} has a dot");
    }
    let by_path: HashMap<&str, &Value> = snapshot
        .iter()
        .filter_map(|e| Some((str_field(e, "path")?, e)))
        .collect();

    let mut out = Vec::with_capacity(rest.len());
    for e in rest {
        let path = req_str(e, "path", &|| "an element".into())?;
        let what = || format!("element {path}");
        if e.get("sliceName").is_some() || str_field(e, "id").is_some_and(|id| id.contains(':')) {
            bail!("{}: slices are not supported in type definitions", what());
        }
        let (parent_path, last) = path
            .rsplit_once('.')
            .with_context(|| format!("{}: path has no parent", what()))?;
        // Constraint types keep the snapshot's paths (`Quantity.value` in SimpleQuantity) but
        // are keyed under their own name.
        let parent = match parent_path.split_once('.') {
            _ if parent_path == root_path => name.to_string(),
            Some((head, tail)) if head == root_path => format!("{name}.{tail}"),
            _ => bail!("{}: not under {root_path}", what()),
        };
        let elem_name = last.strip_suffix("[x]").unwrap_or(last);
        if !is_type_name(elem_name) {
            bail!("{}: unexpected element name", what());
        }

        let content_ref = match str_field(e, "contentReference") {
            None => None,
            Some(r) => Some(
                r.strip_prefix('#')
                    .with_context(|| format!("{}: contentReference {r:?} is not local", what()))?
                    .to_string(),
            ),
        };
        // Elements defined by a content reference have no type of their own: take the
        // referenced element's (BackboneElement or Element).
        let typed = match &content_ref {
            Some(r) => *by_path
                .get(r.as_str())
                .with_context(|| format!("{}: contentReference #{r} not found", what()))?,
            None => e,
        };
        let mut types: Vec<String> = Vec::new();
        let mut targets: Vec<String> = Vec::new();
        for t in array(typed, "type") {
            let code = req_str(t, "code", &|| format!("a type of {path}"))?;
            let code = match code.strip_prefix(SYSTEM_TYPE_PREFIX) {
                Some(system) if system.starts_with("System.") => system,
                Some(_) => bail!("{}: unexpected type code {code}", what()),
                None if is_type_name(code) => code,
                None => bail!("{}: unexpected type code {code}", what()),
            };
            if !types.iter().any(|c| c == code) {
                types.push(code.to_string());
            }
            for profile in array(t, "targetProfile") {
                let url = profile
                    .as_str()
                    .with_context(|| format!("{}: targetProfile is not a string", what()))?;
                let target = url_type
                    .get(url)
                    .copied()
                    .or_else(|| url.rsplit('/').next())
                    .unwrap_or(url);
                if !targets.iter().any(|t| t == target) {
                    targets.push(target.to_string());
                }
            }
        }
        if types.is_empty() {
            bail!("{}: no type", what());
        }
        let is_choice = last.ends_with("[x]");
        if !is_choice && types.len() != 1 {
            bail!("{}: {} types but not a choice element", what(), types.len());
        }

        let min = e
            .get("min")
            .and_then(Value::as_u64)
            .and_then(|m| u32::try_from(m).ok())
            .with_context(|| format!("{}: bad `min`", what()))?;
        let max = match req_str(e, "max", &what)? {
            "*" => None,
            m => Some(
                m.parse::<u32>()
                    .with_context(|| format!("{}: bad `max` {m:?}", what()))?,
            ),
        };
        let required_binding = e
            .get("binding")
            .filter(|b| str_field(b, "strength") == Some("required"))
            .and_then(|b| str_field(b, "valueSet"))
            .map(|vs| vs.split('|').next().unwrap_or(vs).to_string());
        let summary = match e.get("isSummary") {
            None => false,
            Some(v) => v
                .as_bool()
                .with_context(|| format!("{}: `isSummary` is not a boolean", what()))?,
        };

        out.push(ElementInfo {
            parent,
            path: path.to_string(),
            name: elem_name.to_string(),
            types,
            targets,
            min,
            max,
            content_ref,
            required_binding,
            summary,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Value sets

/// `(ValueSet canonical, sorted (system, code) pairs)`.
pub type ValueSetCodes = (String, Vec<(String, String)>);

/// `(ValueSet canonical, sorted (system, code) pairs)` for every required binding of the
/// model whose ValueSet can be expanded from the package alone: each `compose.include`
/// (and `exclude`) is either a list of concepts or a whole CodeSystem present in the package
/// with `content: complete`, with no filters and no imported value sets; and the expansion
/// has at most [`MAX_VALUE_SET_CODES`] codes. Concepts marked `notSelectable` or `abstract`
/// are left out of whole-system expansions (they are not valid codes in data). Sorted by url.
pub fn value_sets(defs: &Defs, model: &Model) -> Result<Vec<ValueSetCodes>> {
    value_sets_limited(defs, model, MAX_VALUE_SET_CODES)
}

pub fn value_sets_limited(
    defs: &Defs,
    model: &Model,
    max_codes: usize,
) -> Result<Vec<ValueSetCodes>> {
    let value_sets = by_url(defs, "ValueSet")?;
    let code_systems = by_url(defs, "CodeSystem")?;
    let mut out = Vec::new();
    for url in model.required_value_sets() {
        let Some(vs) = value_sets.get(url) else {
            continue;
        };
        let Some(codes) = expand(vs, &code_systems).with_context(|| format!("ValueSet {url}"))?
        else {
            continue;
        };
        if codes.len() <= max_codes {
            out.push((url.to_string(), codes.into_iter().collect()));
        }
    }
    Ok(out)
}

fn by_url<'a>(defs: &'a Defs, ty: &str) -> Result<BTreeMap<&'a str, &'a Value>> {
    let mut out = BTreeMap::new();
    for r in defs.resources(ty) {
        let url = req_str(r, "url", &|| format!("{ty} {}", r["id"]))?;
        if out.insert(url, r).is_some() {
            bail!("{ty} {url} is defined twice");
        }
    }
    Ok(out)
}

/// The codes of `vs`, or None when it cannot be expanded from the package alone.
fn expand(
    vs: &Value,
    code_systems: &BTreeMap<&str, &Value>,
) -> Result<Option<BTreeSet<(String, String)>>> {
    let Some(compose) = vs.get("compose") else {
        return Ok(None);
    };
    let mut codes = BTreeSet::new();
    for include in array(compose, "include") {
        let Some(part) = expand_part(include, code_systems)? else {
            return Ok(None);
        };
        codes.extend(part);
    }
    for exclude in array(compose, "exclude") {
        let Some(part) = expand_part(exclude, code_systems)? else {
            return Ok(None);
        };
        for c in part {
            codes.remove(&c);
        }
    }
    Ok(Some(codes))
}

fn expand_part(
    part: &Value,
    code_systems: &BTreeMap<&str, &Value>,
) -> Result<Option<BTreeSet<(String, String)>>> {
    if !array(part, "filter").is_empty() || !array(part, "valueSet").is_empty() {
        return Ok(None);
    }
    let Some(system) = str_field(part, "system") else {
        return Ok(None);
    };
    let listed = array(part, "concept");
    let mut codes = BTreeSet::new();
    if !listed.is_empty() {
        for c in listed {
            let code = req_str(c, "code", &|| format!("a concept of {system}"))?;
            codes.insert((system.to_string(), code.to_string()));
        }
        return Ok(Some(codes));
    }
    let Some(cs) = code_systems.get(system) else {
        return Ok(None);
    };
    if str_field(cs, "content") != Some("complete") {
        return Ok(None);
    }
    let mut stack: Vec<&Value> = array(cs, "concept").iter().rev().collect();
    while let Some(c) = stack.pop() {
        stack.extend(array(c, "concept").iter().rev());
        let not_selectable = array(c, "property").iter().any(|p| {
            matches!(str_field(p, "code"), Some("notSelectable" | "abstract"))
                && p.get("valueBoolean").and_then(Value::as_bool) == Some(true)
        });
        if !not_selectable {
            let code = req_str(c, "code", &|| format!("a concept of {system}"))?;
            codes.insert((system.to_string(), code.to_string()));
        }
    }
    Ok(Some(codes))
}

// ---------------------------------------------------------------------------------------
// Search parameters

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchParamInfo {
    pub id: String,
    pub code: String,
    pub url: String,
    pub base: Vec<String>,
    /// The Rust variant name of `SearchParamType`.
    pub kind: &'static str,
    pub expression: Option<String>,
    pub targets: Vec<String>,
    pub comparators: Vec<String>,
    pub modifiers: Vec<String>,
    pub multiple_or: Option<bool>,
    pub multiple_and: Option<bool>,
    pub components: Vec<(String, String)>,
}

impl SearchParamInfo {
    /// Spec examples (`SearchParameter/example`, `example-*`) redefine core codes
    /// (`Resource._id`, `Condition.subject`); they stay in the full list but are not
    /// indexed by resource type.
    pub fn is_example(&self) -> bool {
        self.id == "example" || self.id.starts_with("example-")
    }
}

fn strings(v: &Value, key: &str, what: &dyn Fn() -> String) -> Result<Vec<String>> {
    array(v, key)
        .iter()
        .map(|s| {
            s.as_str()
                .map(str::to_string)
                .with_context(|| format!("{}: `{key}` holds a non-string", what()))
        })
        .collect()
}

/// Every SearchParameter of the package, sorted by url (urls are unique).
pub fn search_params(defs: &Defs) -> Result<Vec<SearchParamInfo>> {
    let mut out = Vec::new();
    for sp in defs.resources("SearchParameter") {
        let id = req_str(sp, "id", &|| "a SearchParameter".into())?;
        let what = || format!("SearchParameter {id}");
        let kind = match req_str(sp, "type", &what)? {
            "number" => "Number",
            "date" => "Date",
            "string" => "String",
            "token" => "Token",
            "reference" => "Reference",
            "composite" => "Composite",
            "quantity" => "Quantity",
            "uri" => "Uri",
            "special" => "Special",
            other => bail!("{}: unknown type {other:?}", what()),
        };
        let mut components = Vec::new();
        for c in array(sp, "component") {
            components.push((
                req_str(c, "definition", &|| format!("a component of {}", what()))?.to_string(),
                req_str(c, "expression", &|| format!("a component of {}", what()))?.to_string(),
            ));
        }
        out.push(SearchParamInfo {
            id: id.to_string(),
            code: req_str(sp, "code", &what)?.to_string(),
            url: req_str(sp, "url", &what)?.to_string(),
            base: strings(sp, "base", &what)?,
            kind,
            expression: str_field(sp, "expression").map(str::to_string),
            targets: strings(sp, "target", &what)?,
            comparators: strings(sp, "comparator", &what)?,
            modifiers: strings(sp, "modifier", &what)?,
            multiple_or: sp.get("multipleOr").and_then(Value::as_bool),
            multiple_and: sp.get("multipleAnd").and_then(Value::as_bool),
            components,
        });
    }
    out.sort_by(|a, b| a.url.cmp(&b.url));
    if let Some(w) = out.windows(2).find(|w| w[0].url == w[1].url) {
        bail!("SearchParameter {} is defined twice", w[0].url);
    }
    Ok(out)
}

/// For every resource type of the model (abstract ones included), the indexes into
/// `params` of the parameters that apply to it (based on it or on an ancestor such as
/// Resource or DomainResource; spec examples left out), sorted by code. Sorted by type.
pub fn search_index(
    model: &Model,
    params: &[SearchParamInfo],
) -> Result<Vec<(String, Vec<usize>)>> {
    for p in params {
        for b in &p.base {
            if model.type_info(b).map(|t| t.kind) != Some(Kind::Resource) {
                bail!("SearchParameter {}: base {b} is not a resource type", p.id);
            }
        }
    }
    let mut out = Vec::new();
    for t in model.types.iter().filter(|t| t.kind == Kind::Resource) {
        let mut indexes: Vec<usize> = params
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.is_example() && p.base.iter().any(|b| model.is_a(&t.name, b)))
            .map(|(i, _)| i)
            .collect();
        indexes.sort_by(|a, b| params[*a].code.cmp(&params[*b].code));
        if let Some(w) = indexes
            .windows(2)
            .find(|w| params[w[0]].code == params[w[1]].code)
        {
            bail!(
                "{}: search code {} is defined by both {} and {}",
                t.name,
                params[w[0]].code,
                params[w[0]].url,
                params[w[1]].url
            );
        }
        out.push((t.name.clone(), indexes));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Compartments

/// `(code, [(resource type, params)])`.
pub type Compartment = (String, Vec<(String, Vec<String>)>);

/// `(code, [(resource type, params)])` of every CompartmentDefinition but the spec example,
/// sorted by code; only the resource types with at least one param (the others are not in
/// the compartment), sorted by type.
pub fn compartments(defs: &Defs) -> Result<Vec<Compartment>> {
    let mut out: BTreeMap<String, Vec<(String, Vec<String>)>> = BTreeMap::new();
    for cd in defs.resources("CompartmentDefinition") {
        let id = req_str(cd, "id", &|| "a CompartmentDefinition".into())?;
        if id == "example" || id.starts_with("example-") {
            continue;
        }
        let what = || format!("CompartmentDefinition {id}");
        let code = req_str(cd, "code", &what)?;
        let mut resources = Vec::new();
        for r in array(cd, "resource") {
            let ty = req_str(r, "code", &what)?;
            let params = strings(r, "param", &what)?;
            if !params.is_empty() {
                resources.push((ty.to_string(), params));
            }
        }
        resources.sort();
        if let Some(w) = resources.windows(2).find(|w| w[0].0 == w[1].0) {
            bail!("{}: {} is listed twice", what(), w[0].0);
        }
        if out.insert(code.to_string(), resources).is_some() {
            bail!("compartment {code} is defined twice");
        }
    }
    Ok(out.into_iter().collect())
}

/// A small synthetic package that exercises every table (and every exclusion rule).
#[cfg(test)]
pub mod fixture {
    use serde_json::{Value, json};

    use crate::defs::{Defs, testing};

    const SD: &str = "http://hl7.org/fhir/StructureDefinition/";

    pub fn el(path: &str, types: &[&str], min: u32, max: &str) -> Value {
        let types: Vec<Value> = types.iter().map(|t| json!({ "code": t })).collect();
        let mut e = json!({ "id": path, "path": path, "min": min, "max": max });
        if !types.is_empty() {
            e["type"] = Value::Array(types);
        }
        e
    }

    fn with(mut e: Value, key: &str, value: Value) -> Value {
        e[key] = value;
        e
    }

    fn reference(path: &str, targets: &[&str]) -> Value {
        let profiles: Vec<String> = targets.iter().map(|t| format!("{SD}{t}")).collect();
        with(
            el(path, &[], 0, "*"),
            "type",
            json!([{ "code": "Reference", "targetProfile": profiles }]),
        )
    }

    fn summary(e: Value) -> Value {
        with(e, "isSummary", json!(true))
    }

    fn required(e: Value, vs: &str) -> Value {
        with(
            e,
            "binding",
            json!({ "strength": "required", "valueSet": vs }),
        )
    }

    /// A StructureDefinition with the given snapshot (its root element is added).
    pub fn sd(
        id: &str,
        ty: &str,
        kind: &str,
        derivation: Option<&str>,
        base: Option<&str>,
        is_abstract: bool,
        elements: Vec<Value>,
    ) -> Value {
        let mut snapshot = vec![el(ty, &[], 0, "*")];
        snapshot.extend(elements);
        let mut sd = json!({
            "resourceType": "StructureDefinition", "id": id, "url": format!("{SD}{id}"),
            "type": ty, "kind": kind, "abstract": is_abstract,
            "snapshot": { "element": snapshot },
        });
        if let Some(d) = derivation {
            sd["derivation"] = json!(d);
        }
        if let Some(b) = base {
            sd["baseDefinition"] = json!(format!("{SD}{b}"));
        }
        sd
    }

    const SYS_STRING: &str = "http://hl7.org/fhirpath/System.String";
    const SPEC: Option<&str> = Some("specialization");

    pub fn structure_definitions() -> Vec<Value> {
        let resource = |t: &str| {
            vec![
                el(&format!("{t}.id"), &[SYS_STRING], 0, "1"),
                el(&format!("{t}.meta"), &["Meta"], 0, "1"),
            ]
        };
        let mut patient = resource("Patient");
        patient.extend([
            summary(required(
                el("Patient.gender", &["code"], 0, "1"),
                "http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1",
            )),
            summary(el("Patient.deceased[x]", &["boolean", "dateTime"], 0, "1")),
            with(
                el("Patient.contact", &["BackboneElement"], 0, "*"),
                "isSummary",
                json!(false),
            ),
            el("Patient.contact.id", &[SYS_STRING], 0, "1"),
            el("Patient.contact.name", &["HumanName"], 0, "1"),
            reference(
                "Patient.generalPractitioner",
                &["Organization", "Practitioner"],
            ),
            el("Patient.active", &["boolean"], 0, "1"),
        ]);
        let mut questionnaire = resource("Questionnaire");
        questionnaire.extend([
            el("Questionnaire.item", &["BackboneElement"], 0, "*"),
            required(
                el("Questionnaire.item.type", &["code"], 1, "1"),
                "http://hl7.org/fhir/ValueSet/item-type",
            ),
            with(
                el("Questionnaire.item.item", &[], 0, "*"),
                "contentReference",
                json!("#Questionnaire.item"),
            ),
        ]);
        let mut bundle = resource("Bundle");
        bundle.push(required(
            el("Bundle.type", &["code"], 1, "1"),
            "http://hl7.org/fhir/ValueSet/bundle-type",
        ));
        let quantity = |t: &str, comparator_max: &str| {
            vec![
                el(&format!("{t}.value"), &["decimal"], 0, "1"),
                required(
                    el(&format!("{t}.comparator"), &["code"], 0, comparator_max),
                    "http://hl7.org/fhir/ValueSet/quantity-comparator",
                ),
                required(
                    el(&format!("{t}.unit"), &["code"], 0, "1"),
                    "http://hl7.org/fhir/ValueSet/units-of-time",
                ),
            ]
        };
        vec![
            sd(
                "Element",
                "Element",
                "complex-type",
                None,
                None,
                true,
                vec![el("Element.id", &[SYS_STRING], 0, "1")],
            ),
            sd(
                "string",
                "string",
                "primitive-type",
                SPEC,
                Some("Element"),
                false,
                vec![
                    el("string.id", &[SYS_STRING], 0, "1"),
                    el("string.value", &[SYS_STRING], 0, "1"),
                ],
            ),
            sd(
                "code",
                "code",
                "primitive-type",
                SPEC,
                Some("string"),
                false,
                vec![el("code.value", &[SYS_STRING], 0, "1")],
            ),
            sd(
                "Quantity",
                "Quantity",
                "complex-type",
                SPEC,
                Some("Element"),
                false,
                quantity("Quantity", "1"),
            ),
            sd(
                "Age",
                "Age",
                "complex-type",
                SPEC,
                Some("Quantity"),
                false,
                quantity("Age", "1"),
            ),
            // A named data-type constraint: a type, keyed under its own name.
            sd(
                "SimpleQuantity",
                "Quantity",
                "complex-type",
                Some("constraint"),
                Some("Quantity"),
                false,
                quantity("Quantity", "0"),
            ),
            // Not types: a data-type profile, an extension, a resource profile, a logical model.
            sd(
                "quantity-profile",
                "Quantity",
                "complex-type",
                Some("constraint"),
                Some("Quantity"),
                false,
                vec![],
            ),
            sd(
                "patient-nickname",
                "Extension",
                "complex-type",
                Some("constraint"),
                Some("Element"),
                false,
                vec![],
            ),
            sd(
                "vitalsigns",
                "Patient",
                "resource",
                Some("constraint"),
                Some("Patient"),
                false,
                vec![],
            ),
            sd(
                "Definition",
                "Definition",
                "logical",
                None,
                None,
                false,
                vec![],
            ),
            sd(
                "Resource",
                "Resource",
                "resource",
                None,
                None,
                true,
                resource("Resource"),
            ),
            sd(
                "DomainResource",
                "DomainResource",
                "resource",
                SPEC,
                Some("Resource"),
                true,
                resource("DomainResource"),
            ),
            sd(
                "Patient",
                "Patient",
                "resource",
                SPEC,
                Some("DomainResource"),
                false,
                patient,
            ),
            sd(
                "Questionnaire",
                "Questionnaire",
                "resource",
                SPEC,
                Some("DomainResource"),
                false,
                questionnaire,
            ),
            sd(
                "Bundle",
                "Bundle",
                "resource",
                SPEC,
                Some("Resource"),
                false,
                bundle,
            ),
        ]
    }

    fn search_param(
        id: &str,
        code: &str,
        base: &[&str],
        ty: &str,
        expression: Option<&str>,
    ) -> Value {
        let mut sp = json!({
            "resourceType": "SearchParameter", "id": id,
            "url": format!("http://hl7.org/fhir/SearchParameter/{id}"),
            "code": code, "base": base, "type": ty, "description": "not emitted",
        });
        if let Some(e) = expression {
            sp["expression"] = json!(e);
        }
        sp
    }

    pub fn search_params() -> Vec<Value> {
        let mut gp = search_param(
            "Patient-general-practitioner",
            "general-practitioner",
            &["Patient"],
            "reference",
            Some("Patient.generalPractitioner"),
        );
        gp["target"] = json!(["Organization", "Practitioner"]);
        let mut composite = search_param(
            "Patient-gender-active",
            "gender-active",
            &["Patient"],
            "composite",
            Some("Patient"),
        );
        composite["multipleOr"] = json!(false);
        composite["component"] = json!([
            { "definition": "http://hl7.org/fhir/SearchParameter/Patient-gender", "expression": "gender" },
            { "definition": "http://hl7.org/fhir/SearchParameter/Patient-active", "expression": "active" },
        ]);
        let mut birthdate = search_param(
            "Patient-birthdate",
            "birthdate",
            &["Patient"],
            "date",
            Some("Patient.birthDate"),
        );
        birthdate["comparator"] = json!(["eq", "lt"]);
        birthdate["modifier"] = json!(["missing"]);
        vec![
            search_param(
                "Resource-id",
                "_id",
                &["Resource"],
                "token",
                Some("Resource.id"),
            ),
            search_param(
                "DomainResource-text",
                "_text",
                &["DomainResource"],
                "string",
                None,
            ),
            search_param(
                "Patient-gender",
                "gender",
                &["Patient"],
                "token",
                Some("Patient.gender"),
            ),
            search_param(
                "Patient-active",
                "active",
                &["Patient"],
                "token",
                Some("Patient.active"),
            ),
            search_param(
                "clinical-type",
                "type",
                &["Bundle", "Questionnaire"],
                "token",
                Some("Bundle.type | Questionnaire.item.type"),
            ),
            search_param("example", "_id", &["Resource"], "token", Some("id")),
            search_param("vs-author", "author", &[], "string", None),
            gp,
            composite,
            birthdate,
        ]
    }

    pub fn compartments() -> Vec<Value> {
        let cd = |id: &str, code: &str, resources: Value| json!({ "resourceType": "CompartmentDefinition", "id": id, "code": code, "resource": resources });
        vec![
            cd(
                "patient",
                "Patient",
                json!([
                    { "code": "Questionnaire" },
                    { "code": "Patient", "param": ["link"] },
                    { "code": "Bundle", "param": ["composition", "message"] },
                ]),
            ),
            cd(
                "example",
                "Patient",
                json!([{ "code": "Patient", "param": ["x"] }]),
            ),
        ]
    }

    pub fn terminology() -> Vec<Value> {
        let vs = |id: &str, compose: Value| {
            json!({
                "resourceType": "ValueSet", "id": id, "compose": compose,
                "url": format!("http://hl7.org/fhir/ValueSet/{id}"),
            })
        };
        let cs = |id: &str, content: &str, concepts: Value| {
            json!({
                "resourceType": "CodeSystem", "id": id, "content": content, "concept": concepts,
                "url": format!("http://hl7.org/fhir/{id}"),
            })
        };
        let not_selectable = json!([{ "code": "notSelectable", "valueBoolean": true }]);
        vec![
            vs(
                "administrative-gender",
                json!({ "include": [{ "system": "http://hl7.org/fhir/administrative-gender" }] }),
            ),
            cs(
                "administrative-gender",
                "complete",
                json!([
                    { "code": "male" }, { "code": "female" }, { "code": "other" }, { "code": "unknown" },
                ]),
            ),
            vs(
                "item-type",
                json!({ "include": [{ "system": "http://hl7.org/fhir/item-type" }] }),
            ),
            cs(
                "item-type",
                "complete",
                json!([
                    { "code": "group" },
                    { "code": "question", "property": not_selectable, "concept": [
                        { "code": "boolean" }, { "code": "decimal", "concept": [{ "code": "integer" }] },
                    ] },
                ]),
            ),
            // A filter: not expandable here.
            vs(
                "bundle-type",
                json!({ "include": [{
                "system": "http://hl7.org/fhir/bundle-type",
                "filter": [{ "property": "concept", "op": "is-a", "value": "x" }],
            }] }),
            ),
            cs("bundle-type", "complete", json!([{ "code": "document" }])),
            // Listed concepts (UCUM is not in the package) and an exclude.
            vs(
                "units-of-time",
                json!({
                    "include": [{ "system": "http://unitsofmeasure.org", "concept": [
                        { "code": "s" }, { "code": "min" }, { "code": "h" },
                    ] }],
                    "exclude": [{ "system": "http://unitsofmeasure.org", "concept": [{ "code": "h" }] }],
                }),
            ),
            // A whole code system that is only a fragment in the package.
            vs(
                "quantity-comparator",
                json!({ "include": [{ "system": "http://hl7.org/fhir/quantity-comparator" }] }),
            ),
            cs("quantity-comparator", "fragment", json!([{ "code": "<" }])),
        ]
    }

    pub fn members(extra: &[(String, Value)]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let groups = [
            ("StructureDefinition", structure_definitions()),
            ("SearchParameter", search_params()),
            ("CompartmentDefinition", compartments()),
            (
                "ValueSet",
                terminology()
                    .into_iter()
                    .filter(|r| r["resourceType"] == "ValueSet")
                    .collect(),
            ),
            (
                "CodeSystem",
                terminology()
                    .into_iter()
                    .filter(|r| r["resourceType"] == "CodeSystem")
                    .collect(),
            ),
        ];
        for (ty, resources) in groups {
            for r in resources {
                out.push((
                    format!("package/{ty}-{}.json", r["id"].as_str().unwrap()),
                    r.to_string(),
                ));
            }
        }
        for (name, r) in extra {
            out.push((format!("package/{name}.json"), r.to_string()));
        }
        out
    }

    pub fn defs_with(extra: &[(String, Value)]) -> Defs {
        let members = members(extra);
        let members: Vec<(&str, &str)> = members
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        Defs::from_tgz(&testing::tgz(&members)).unwrap()
    }

    pub fn defs() -> Defs {
        defs_with(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn element<'a>(model: &'a Model, path: &str) -> &'a ElementInfo {
        model.elements.iter().find(|e| e.path == path).unwrap()
    }

    fn sd_member(sd: Value) -> (String, Value) {
        (
            format!("StructureDefinition-{}", sd["id"].as_str().unwrap()),
            sd,
        )
    }

    #[test]
    fn selects_types_and_resolves_bases() {
        let model = build_model(&fixture::defs()).unwrap();
        let types: Vec<(&str, Kind, Option<&str>, bool)> = model
            .types
            .iter()
            .map(|t| (t.name.as_str(), t.kind, t.base.as_deref(), t.is_abstract))
            .collect();
        use Kind::*;
        assert_eq!(
            types,
            [
                ("Age", Complex, Some("Quantity"), false),
                ("Bundle", Resource, Some("Resource"), false),
                ("DomainResource", Resource, Some("Resource"), true),
                ("Element", Complex, None, true),
                ("Patient", Resource, Some("DomainResource"), false),
                ("Quantity", Complex, Some("Element"), false),
                ("Questionnaire", Resource, Some("DomainResource"), false),
                ("Resource", Resource, None, true),
                ("SimpleQuantity", Complex, Some("Quantity"), false),
                ("code", Primitive, Some("string"), false),
                ("string", Primitive, Some("Element"), false),
            ]
        );
        assert!(model.is_a("Patient", "Resource"));
        assert!(model.is_a("code", "Element"));
        assert!(model.is_a("SimpleQuantity", "Quantity"));
        assert!(!model.is_a("Bundle", "DomainResource"));
        assert!(!model.is_a("Element", "Resource"));
        assert!(!model.is_a("Nope", "Resource"));
    }

    #[test]
    fn groups_elements_by_parent_in_definition_order() {
        let model = build_model(&fixture::defs()).unwrap();
        let ranges: Vec<(&str, usize, usize)> = model.parent_ranges();
        let counts: Vec<(&str, usize)> = ranges.iter().map(|(p, _, n)| (*p, *n)).collect();
        assert_eq!(
            counts,
            [
                ("Age", 3),
                ("Bundle", 3),
                ("DomainResource", 2),
                ("Element", 1),
                ("Patient", 7),
                ("Patient.contact", 2),
                ("Quantity", 3),
                ("Questionnaire", 3),
                ("Questionnaire.item", 2),
                ("Resource", 2),
                ("SimpleQuantity", 3),
                ("code", 1),
                ("string", 2),
            ]
        );
        let (_, start, count) = ranges.iter().find(|(p, _, _)| *p == "Patient").unwrap();
        let patient: Vec<&str> = model.elements[*start..start + count]
            .iter()
            .map(|e| e.path.as_str())
            .collect();
        assert_eq!(
            patient,
            [
                "Patient.id",
                "Patient.meta",
                "Patient.gender",
                "Patient.deceased[x]",
                "Patient.contact",
                "Patient.generalPractitioner",
                "Patient.active",
            ]
        );
    }

    #[test]
    fn element_details() {
        let model = build_model(&fixture::defs()).unwrap();
        let deceased = element(&model, "Patient.deceased[x]");
        assert_eq!(deceased.name, "deceased");
        assert!(deceased.summary);
        // `isSummary: false` and an absent flag are both false.
        assert!(!element(&model, "Patient.contact").summary);
        assert!(!element(&model, "Patient.active").summary);
        assert_eq!(deceased.types, ["boolean", "dateTime"]);
        assert_eq!((deceased.min, deceased.max), (0, Some(1)));
        let id = element(&model, "Patient.id");
        assert_eq!(id.types, ["System.String"]);
        let gp = element(&model, "Patient.generalPractitioner");
        assert_eq!(gp.targets, ["Organization", "Practitioner"]);
        assert_eq!(gp.max, None);
        let gender = element(&model, "Patient.gender");
        // The version is dropped from the canonical.
        assert_eq!(
            gender.required_binding.as_deref(),
            Some("http://hl7.org/fhir/ValueSet/administrative-gender")
        );
        let item = element(&model, "Questionnaire.item.item");
        assert_eq!(item.parent, "Questionnaire.item");
        assert_eq!(item.content_ref.as_deref(), Some("Questionnaire.item"));
        assert_eq!(item.types, ["BackboneElement"]);
        let name = element(&model, "Patient.contact.name");
        assert_eq!(
            (name.parent.as_str(), name.name.as_str()),
            ("Patient.contact", "name")
        );
        // A constraint keeps the snapshot's paths, keyed under its own name.
        let comparator = model
            .elements
            .iter()
            .find(|e| e.parent == "SimpleQuantity" && e.name == "comparator")
            .unwrap();
        assert_eq!(
            (comparator.path.as_str(), comparator.max),
            ("Quantity.comparator", Some(0))
        );
    }

    #[test]
    fn rejects_surprises() {
        let slice = fixture::sd(
            "Money",
            "Money",
            "complex-type",
            Some("specialization"),
            Some("Element"),
            false,
            vec![
                json!({ "id": "Money.value:x", "path": "Money.value", "sliceName": "x", "min": 0, "max": "1", "type": [{ "code": "decimal" }] }),
            ],
        );
        let err = build_model(&fixture::defs_with(&[sd_member(slice)])).unwrap_err();
        assert!(
            format!("{err:#}").contains("slices are not supported"),
            "{err:#}"
        );

        let unknown_base = fixture::sd(
            "Money",
            "Money",
            "complex-type",
            Some("specialization"),
            Some("Nope"),
            false,
            vec![],
        );
        let err = build_model(&fixture::defs_with(&[sd_member(unknown_base)])).unwrap_err();
        assert!(
            format!("{err:#}").contains("base http://hl7.org/fhir/StructureDefinition/Nope"),
            "{err:#}"
        );

        let two_types = fixture::sd(
            "Money",
            "Money",
            "complex-type",
            Some("specialization"),
            Some("Element"),
            false,
            vec![fixture::el("Money.value", &["decimal", "string"], 0, "1")],
        );
        let err = build_model(&fixture::defs_with(&[sd_member(two_types)])).unwrap_err();
        assert!(
            format!("{err:#}").contains("2 types but not a choice element"),
            "{err:#}"
        );

        let bad_summary = fixture::sd(
            "Money",
            "Money",
            "complex-type",
            Some("specialization"),
            Some("Element"),
            false,
            vec![
                json!({ "id": "Money.value", "path": "Money.value", "min": 0, "max": "1", "type": [{ "code": "decimal" }], "isSummary": "yes" }),
            ],
        );
        let err = build_model(&fixture::defs_with(&[sd_member(bad_summary)])).unwrap_err();
        assert!(
            format!("{err:#}").contains("`isSummary` is not a boolean"),
            "{err:#}"
        );

        let bad_ref = fixture::sd(
            "Money",
            "Money",
            "complex-type",
            Some("specialization"),
            Some("Element"),
            false,
            vec![
                json!({ "id": "Money.x", "path": "Money.x", "min": 0, "max": "1", "contentReference": "#Money.nope" }),
            ],
        );
        let err = build_model(&fixture::defs_with(&[sd_member(bad_ref)])).unwrap_err();
        assert!(
            format!("{err:#}").contains("contentReference #Money.nope not found"),
            "{err:#}"
        );
    }

    #[test]
    fn expands_value_sets_from_the_package() {
        let defs = fixture::defs();
        let model = build_model(&defs).unwrap();
        let value_sets = value_sets(&defs, &model).unwrap();
        let pairs = |codes: &[(String, String)]| -> Vec<String> {
            codes
                .iter()
                .map(|(s, c)| format!("{}#{c}", s.rsplit('/').next().unwrap()))
                .collect()
        };
        let summary: Vec<(&str, Vec<String>)> = value_sets
            .iter()
            .map(|(url, codes)| (url.rsplit('/').next().unwrap(), pairs(codes)))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "administrative-gender",
                    vec![
                        "administrative-gender#female".to_string(),
                        "administrative-gender#male".into(),
                        "administrative-gender#other".into(),
                        "administrative-gender#unknown".into(),
                    ]
                ),
                // Nested concepts are included, the not-selectable `question` is not.
                (
                    "item-type",
                    vec![
                        "item-type#boolean".into(),
                        "item-type#decimal".into(),
                        "item-type#group".into(),
                        "item-type#integer".into(),
                    ]
                ),
                // Listed concepts minus the excluded one. bundle-type (filter) and
                // quantity-comparator (fragment code system) are not expandable.
                (
                    "units-of-time",
                    vec![
                        "unitsofmeasure.org#min".into(),
                        "unitsofmeasure.org#s".into()
                    ]
                ),
            ]
        );
        let limited = value_sets_limited(&defs, &model, 3).unwrap();
        let urls: Vec<&str> = limited
            .iter()
            .map(|(u, _)| u.rsplit('/').next().unwrap())
            .collect();
        assert_eq!(urls, ["units-of-time"]);
    }

    #[test]
    fn indexes_search_params_by_resource_type() {
        let defs = fixture::defs();
        let model = build_model(&defs).unwrap();
        let params = search_params(&defs).unwrap();
        assert_eq!(params.len(), 10);
        assert!(params.windows(2).all(|w| w[0].url < w[1].url));
        let composite = params.iter().find(|p| p.code == "gender-active").unwrap();
        assert_eq!(composite.kind, "Composite");
        assert_eq!(composite.multiple_or, Some(false));
        assert_eq!(composite.components[1].1, "active");
        let birthdate = params.iter().find(|p| p.code == "birthdate").unwrap();
        assert_eq!(
            (birthdate.comparators.len(), birthdate.modifiers.len()),
            (2, 1)
        );
        assert_eq!(
            params
                .iter()
                .find(|p| p.code == "author")
                .unwrap()
                .base
                .len(),
            0
        );

        let index = search_index(&model, &params).unwrap();
        let codes = |ty: &str| -> Vec<&str> {
            let (_, ix) = index.iter().find(|(t, _)| t == ty).unwrap();
            ix.iter().map(|&i| params[i].code.as_str()).collect()
        };
        let types: Vec<&str> = index.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            types,
            [
                "Bundle",
                "DomainResource",
                "Patient",
                "Questionnaire",
                "Resource"
            ]
        );
        // The `example` _id is left out; Bundle is no DomainResource, so it has no _text.
        assert_eq!(codes("Bundle"), ["_id", "type"]);
        assert_eq!(
            codes("Patient"),
            [
                "_id",
                "_text",
                "active",
                "birthdate",
                "gender",
                "gender-active",
                "general-practitioner"
            ]
        );
        assert_eq!(codes("Resource"), ["_id"]);
        assert_eq!(codes("Questionnaire"), ["_id", "_text", "type"]);
    }

    #[test]
    fn rejects_duplicate_search_codes() {
        let mut sp = fixture::search_params().remove(2);
        sp["id"] = json!("Patient-gender2");
        sp["url"] = json!("http://hl7.org/fhir/SearchParameter/Patient-gender2");
        let defs = fixture::defs_with(&[("SearchParameter-Patient-gender2".into(), sp)]);
        let model = build_model(&defs).unwrap();
        let params = search_params(&defs).unwrap();
        let err = search_index(&model, &params).unwrap_err().to_string();
        assert!(
            err.contains("Patient: search code gender is defined by both"),
            "{err}"
        );
    }

    #[test]
    fn reads_compartments() {
        let compartments = compartments(&fixture::defs()).unwrap();
        assert_eq!(
            compartments,
            [(
                "Patient".to_string(),
                vec![
                    (
                        "Bundle".to_string(),
                        vec!["composition".to_string(), "message".into()]
                    ),
                    ("Patient".into(), vec!["link".into()]),
                ]
            )]
        );
    }
}
