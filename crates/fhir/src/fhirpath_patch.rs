//! FHIRPath Patch (R4 `fhirpatch.html`): a `Parameters` resource whose repeating
//! `operation` parameters add, insert, delete, replace or move elements of a resource,
//! the elements being selected by FHIRPath expressions.
//!
//! ```
//! use ember_fhir::fhirpath_patch::apply_fhirpath_patch;
//! use serde_json::json;
//! let mut patient = json!({"resourceType": "Patient", "birthDate": "1920-01-01"});
//! let patch = json!({"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
//!     {"name": "type", "valueCode": "replace"},
//!     {"name": "path", "valueString": "Patient.birthDate"},
//!     {"name": "value", "valueDate": "1930-01-01"}]}]});
//! apply_fhirpath_patch(&mut patient, &patch).unwrap();
//! assert_eq!(patient["birthDate"], "1930-01-01");
//! ```
//!
//! Errors ([`PatchError`], shared with JSON Patch):
//! - `Invalid` (HTTP 400): the document is malformed, whatever the resource — not a
//!   `Parameters`, a parameter other than `operation`, a missing, repeated or unknown
//!   part, an unknown `type`, a path that does not parse, a negative `index`, a
//!   `value` without content or of an unknown type.
//! - `NotApplicable` (HTTP 422): the patch cannot be applied to this resource — the
//!   path selects nothing (add, insert into a list that cannot be found, replace,
//!   move) or more than one element where one is needed (add, replace, delete), an
//!   index out of range, a value of the wrong type for the element, an element the
//!   type does not have, `add` of a non-repeating element that already has a value,
//!   a path that selects computed values or fails to evaluate.
//!
//! The operations are applied in order to a copy; the resource is replaced by the
//! copy only when all succeed.
//!
//! Semantics, where the specification leaves room:
//! - Paths select nodes of the resource; each node's JSON position is found by
//!   pointer identity (the evaluator borrows the resource), so no change to the
//!   engine is needed.
//! - `add`: the path must select exactly one element; `name` is the FHIRPath name
//!   (`deceased`, the value's type picking `deceasedBoolean`) or the JSON name of a
//!   choice (`deceasedBoolean`). Repeating elements are appended to; a non-repeating
//!   one must not already have a value (for a choice: in any type). Adding to a
//!   primitive (`Patient.birthDate`, name `extension`) goes into its `_birthDate`.
//! - `insert` / `move`: the path must select every item of one list (in any order),
//!   and `index`/`source`/`destination` are positions in it. When the path selects
//!   nothing and is a plain navigation (`Patient.contact[0].telecom`), the list is
//!   created under the element its prefix selects (only `index` 0 then fits).
//! - `replace` keeps the element's place (and its choice name changes with the type
//!   of the new value: `valueString` → `valueQuantity`). The whole element is
//!   replaced, a primitive's `_x` (id, extensions) too: a `_valueX` part supplies new ones.
//! - `delete` of nothing is a no-op; containers left empty are removed (FHIR JSON
//!   has no empty objects or arrays).
//! - In lists of primitives the `_x` array is kept aligned on insert, delete, move and
//!   replace, and removed when all its items are null.
//! - `value` is a `value[x]`, a `resource`, or nested `part`s building a complex or
//!   backbone value (each part named by element, recursively). Types are checked
//!   against the R4 definitions: the value's type must be one of the element's types
//!   (or derive from it, or be derived from by it: `code` into `string`, `Quantity`
//!   into `SimpleQuantity`); a primitive is accepted into a non-choice primitive of
//!   the same JSON kind (a `valueString` for `Narrative.div`, which is `xhtml`).
//!   Primitive contents (date formats, …) are not validated here.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::definitions::{self, ElementDef, TypeKind};
use crate::fhirpath::{Env, Expression, Node};
pub use crate::patch::PatchError;

/// Applies a FHIRPath Patch (`parameters`, a `Parameters` resource) to `resource`.
/// On failure `resource` is unchanged.
pub fn apply_fhirpath_patch(resource: &mut Value, parameters: &Value) -> Result<(), PatchError> {
    let operations = parse_parameters(parameters)?;
    let mut doc = resource.clone();
    for (i, op) in operations.iter().enumerate() {
        apply(&mut doc, op).map_err(|e| {
            let context = format!(
                "operation {} ({} at '{}')",
                i + 1,
                op.kind.code(),
                op.path.source()
            );
            match e {
                PatchError::Invalid(m) => PatchError::Invalid(format!("{context}: {m}")),
                PatchError::NotApplicable(m) => {
                    PatchError::NotApplicable(format!("{context}: {m}"))
                }
            }
        })?;
    }
    *resource = doc;
    Ok(())
}

// ------------------------------------------------------------------ the document

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Add,
    Insert,
    Delete,
    Replace,
    Move,
}

impl Kind {
    fn code(self) -> &'static str {
        match self {
            Kind::Add => "add",
            Kind::Insert => "insert",
            Kind::Delete => "delete",
            Kind::Replace => "replace",
            Kind::Move => "move",
        }
    }
}

/// The `value` of an operation (or of a nested part).
#[derive(Debug)]
enum PatchValue {
    /// A `value[x]`: the type code from the suffix, the JSON value (None when only a
    /// `_valueX` is given) and its `_valueX`.
    Typed {
        ty: &'static str,
        json: Option<Value>,
        ext: Option<Value>,
    },
    /// A `resource`.
    Resource(Value),
    /// Nested `part`s: element name and value, in order.
    Parts(Vec<(String, PatchValue)>),
}

#[derive(Debug)]
struct Operation {
    kind: Kind,
    path: Expression,
    name: Option<String>,
    value: Option<PatchValue>,
    index: Option<usize>,
    source: Option<usize>,
    destination: Option<usize>,
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, PatchError> {
    Err(PatchError::Invalid(msg.into()))
}

fn not_applicable<T>(msg: impl Into<String>) -> Result<T, PatchError> {
    Err(PatchError::NotApplicable(msg.into()))
}

fn parse_parameters(parameters: &Value) -> Result<Vec<Operation>, PatchError> {
    let Some(obj) = parameters.as_object() else {
        return invalid("a FHIRPath Patch is a Parameters resource (a JSON object)");
    };
    if obj.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return invalid("a FHIRPath Patch is a Parameters resource");
    }
    let params = match obj.get("parameter") {
        None => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return invalid("Parameters.parameter must be an array"),
    };
    params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            parse_operation(p).map_err(|e| match e {
                PatchError::Invalid(m) => PatchError::Invalid(format!("parameter {}: {m}", i + 1)),
                other => other,
            })
        })
        .collect()
}

/// The `value[x]` member of a parameter or part: `(type suffix, value)`.
fn value_x(obj: &Map<String, Value>) -> Result<Option<(&str, &Value)>, PatchError> {
    let mut found = None;
    for (k, v) in obj {
        if let Some(suffix) = k.strip_prefix("value")
            && suffix.starts_with(|c: char| c.is_ascii_uppercase())
        {
            if found.is_some() {
                return invalid("more than one value[x]");
            }
            found = Some((suffix, v));
        }
    }
    Ok(found)
}

fn part_name(part: &Value) -> Result<&str, PatchError> {
    match part.get("name").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => Ok(n),
        _ => invalid("a part has no name"),
    }
}

fn parse_operation(param: &Value) -> Result<Operation, PatchError> {
    let Some(obj) = param.as_object() else {
        return invalid("a parameter must be an object");
    };
    match obj.get("name").and_then(Value::as_str) {
        Some("operation") => {}
        Some(other) => return invalid(format!("unexpected parameter '{other}'")),
        None => return invalid("a parameter has no name"),
    }
    let parts = match obj.get("part") {
        Some(Value::Array(a)) => a.as_slice(),
        None => &[],
        Some(_) => return invalid("operation.part must be an array"),
    };
    let mut by_name: HashMap<&str, &Value> = HashMap::new();
    for part in parts {
        let name = part_name(part)?;
        if !matches!(
            name,
            "type" | "path" | "name" | "value" | "index" | "source" | "destination"
        ) {
            return invalid(format!("unknown operation part '{name}'"));
        }
        if by_name.insert(name, part).is_some() {
            return invalid(format!("the part '{name}' is repeated"));
        }
    }
    let string_part = |name: &str| -> Result<Option<String>, PatchError> {
        let Some(part) = by_name.get(name) else {
            return Ok(None);
        };
        match part.as_object().map(value_x).transpose()?.flatten() {
            Some((_, Value::String(s))) => Ok(Some(s.clone())),
            _ => invalid(format!("the part '{name}' must have a string value")),
        }
    };
    let index_part = |name: &str| -> Result<Option<usize>, PatchError> {
        let Some(part) = by_name.get(name) else {
            return Ok(None);
        };
        match part.as_object().map(value_x).transpose()?.flatten() {
            Some(("Integer" | "UnsignedInt" | "PositiveInt", Value::Number(n))) => {
                match n.as_u64().and_then(|n| usize::try_from(n).ok()) {
                    Some(i) => Ok(Some(i)),
                    None => invalid(format!("the part '{name}' must be a non-negative integer")),
                }
            }
            _ => invalid(format!("the part '{name}' must have a valueInteger")),
        }
    };

    let kind = match string_part("type")?.as_deref() {
        Some("add") => Kind::Add,
        Some("insert") => Kind::Insert,
        Some("delete") => Kind::Delete,
        Some("replace") => Kind::Replace,
        Some("move") => Kind::Move,
        Some(other) => return invalid(format!("unknown operation type '{other}'")),
        None => return invalid("the operation has no type"),
    };
    let Some(path) = string_part("path")? else {
        return invalid(format!("the {} operation has no path", kind.code()));
    };
    let path = Expression::parse(&path)
        .map_err(|e| PatchError::Invalid(format!("the path '{path}' does not parse: {e}")))?;
    let name = string_part("name")?;
    let value = by_name.get("value").map(|p| parse_value(p)).transpose()?;
    let index = index_part("index")?;
    let source = index_part("source")?;
    let destination = index_part("destination")?;

    let required: &[(&str, bool)] = match kind {
        Kind::Add => &[("name", name.is_some()), ("value", value.is_some())],
        Kind::Insert => &[("value", value.is_some()), ("index", index.is_some())],
        Kind::Delete => &[],
        Kind::Replace => &[("value", value.is_some())],
        Kind::Move => &[
            ("source", source.is_some()),
            ("destination", destination.is_some()),
        ],
    };
    if let Some((missing, _)) = required.iter().find(|(_, present)| !present) {
        return invalid(format!(
            "the {} operation needs a '{missing}' part",
            kind.code()
        ));
    }
    if name.as_deref().is_some_and(str::is_empty) {
        return invalid("the name part is empty");
    }
    Ok(Operation {
        kind,
        path,
        name,
        value,
        index,
        source,
        destination,
    })
}

/// The FHIR type code of a `value[x]` suffix: `Date` → `date`, `HumanName` → `HumanName`.
fn type_from_suffix(suffix: &str) -> Option<&'static str> {
    let mut chars = suffix.chars();
    let first = chars.next()?;
    let lowered = format!("{}{}", first.to_ascii_lowercase(), chars.as_str());
    if let Some(t) = definitions::type_def(&lowered)
        && t.kind == TypeKind::Primitive
    {
        return Some(t.name);
    }
    definitions::type_def(suffix)
        .filter(|t| t.kind == TypeKind::Complex)
        .map(|t| t.name)
}

fn parse_value(part: &Value) -> Result<PatchValue, PatchError> {
    let Some(obj) = part.as_object() else {
        return invalid("a part must be an object");
    };
    let typed = value_x(obj)?;
    let ext_key = obj.keys().find(|k| {
        k.strip_prefix("_value")
            .is_some_and(|s| s.starts_with(|c: char| c.is_ascii_uppercase()))
    });
    let resource = obj.get("resource");
    let parts = obj.get("part");
    let given = usize::from(typed.is_some() || ext_key.is_some())
        + usize::from(resource.is_some())
        + usize::from(parts.is_some());
    let name = obj.get("name").and_then(Value::as_str).unwrap_or("?");
    if given != 1 {
        return invalid(format!(
            "the part '{name}' needs exactly one of value[x], resource or part"
        ));
    }
    if let Some(r) = resource {
        return match r.get("resourceType").and_then(Value::as_str) {
            Some(rt) if crate::is_resource_type(rt) => Ok(PatchValue::Resource(r.clone())),
            _ => invalid(format!("the part '{name}' has a resource of no known type")),
        };
    }
    if let Some(parts) = parts {
        let Some(parts) = parts.as_array().filter(|a| !a.is_empty()) else {
            return invalid(format!("the part '{name}' has an empty part list"));
        };
        let children = parts
            .iter()
            .map(|p| Ok((part_name(p)?.to_owned(), parse_value(p)?)))
            .collect::<Result<_, PatchError>>()?;
        return Ok(PatchValue::Parts(children));
    }
    let suffix = match (typed, ext_key) {
        (Some((s, _)), Some(k)) if k[6..] != *s => {
            return invalid(format!("the part '{name}' has value{s} and {k}"));
        }
        (Some((s, _)), _) => s,
        (None, Some(k)) => &k[6..],
        (None, None) => return invalid(format!("the part '{name}' has no value")),
    };
    let Some(ty) = type_from_suffix(suffix) else {
        return invalid(format!("value{suffix}: unknown type"));
    };
    let json = typed.map(|(_, v)| v.clone());
    let ext = ext_key.map(|k| obj[k.as_str()].clone());
    if is_primitive(ty) {
        if json
            .as_ref()
            .is_some_and(|v| matches!(v, Value::Object(_) | Value::Array(_) | Value::Null))
        {
            return invalid(format!("value{suffix} must be a JSON primitive"));
        }
        if ext.as_ref().is_some_and(|e| !e.is_object()) {
            return invalid(format!("_value{suffix} must be an object"));
        }
    } else if ext.is_some() || !json.as_ref().is_some_and(Value::is_object) {
        return invalid(format!("value{suffix} must be a JSON object"));
    }
    Ok(PatchValue::Typed { ty, json, ext })
}

// ------------------------------------------------------------------ locations

/// One step of a JSON position.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Where a selected element is: the member `key` (its JSON name, without `_`) of the
/// object at `parent`, item `index` when the member is a list.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Target {
    parent: Vec<Seg>,
    key: String,
    index: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Loc {
    /// The resource itself.
    Root,
    At(Target),
}

impl Target {
    /// The position of the value itself.
    fn segs(&self) -> Vec<Seg> {
        let mut s = self.parent.clone();
        s.push(Seg::Key(self.key.clone()));
        if let Some(i) = self.index {
            s.push(Seg::Index(i));
        }
        s
    }
}

/// The positions of every JSON value of a document, by address.
struct Positions(HashMap<*const Value, Vec<Seg>>);

impl Positions {
    fn new(doc: &Value) -> Self {
        fn walk(v: &Value, segs: &mut Vec<Seg>, out: &mut HashMap<*const Value, Vec<Seg>>) {
            out.insert(v as *const Value, segs.clone());
            match v {
                Value::Object(m) => {
                    for (k, c) in m {
                        segs.push(Seg::Key(k.clone()));
                        walk(c, segs, out);
                        segs.pop();
                    }
                }
                Value::Array(a) => {
                    for (i, c) in a.iter().enumerate() {
                        segs.push(Seg::Index(i));
                        walk(c, segs, out);
                        segs.pop();
                    }
                }
                _ => {}
            }
        }
        let mut out = HashMap::new();
        walk(doc, &mut Vec::new(), &mut out);
        Positions(out)
    }

    /// Where `node` is, when it is an element of the document.
    fn locate(&self, node: &Node<'_>) -> Option<Loc> {
        let el = node.as_element()?;
        let (segs, via_ext) = match (el.json(), el.extension_json()) {
            (Some(v), _) => (self.0.get(&(v as *const Value))?, false),
            (None, Some(e)) => (self.0.get(&(e as *const Value))?, true),
            (None, None) => return None,
        };
        let (parent, key, index) = match segs.as_slice() {
            [] => return (!via_ext).then_some(Loc::Root),
            [parent @ .., Seg::Key(k), Seg::Index(i)] => (parent, k, Some(*i)),
            [parent @ .., Seg::Key(k)] => (parent, k, None),
            _ => return None,
        };
        let key = if via_ext { key.strip_prefix('_')? } else { key };
        Some(Loc::At(Target {
            parent: parent.to_vec(),
            key: key.to_owned(),
            index,
        }))
    }
}

/// The distinct elements `path` selects in `doc`.
fn select(doc: &Value, path: &Expression) -> Result<Vec<Loc>, PatchError> {
    let env = Env::new();
    let nodes = path
        .evaluate(doc, &env)
        .map_err(|e| PatchError::NotApplicable(format!("the path fails to evaluate: {e}")))?;
    if nodes.is_empty() {
        return Ok(Vec::new());
    }
    let positions = Positions::new(doc);
    let mut out = Vec::new();
    for n in &nodes {
        let Some(loc) = positions.locate(n) else {
            return not_applicable(format!(
                "the path selects '{n}', which is not an element of the resource"
            ));
        };
        if !out.contains(&loc) {
            out.push(loc);
        }
    }
    Ok(out)
}

fn exactly_one(locs: Vec<Loc>, path: &Expression, doing: &str) -> Result<Loc, PatchError> {
    let n = locs.len();
    let mut locs = locs.into_iter();
    match (locs.next(), n) {
        (None, _) => not_applicable(format!(
            "no content found at {} when {doing}",
            path.source()
        )),
        (Some(loc), 1) => Ok(loc),
        _ => not_applicable(format!(
            "the path selects {n} elements; {doing} needs exactly one"
        )),
    }
}

fn get<'v>(mut v: &'v Value, segs: &[Seg]) -> Option<&'v Value> {
    for s in segs {
        v = match s {
            Seg::Key(k) => v.as_object()?.get(k)?,
            Seg::Index(i) => v.as_array()?.get(*i)?,
        };
    }
    Some(v)
}

fn get_mut<'v>(mut v: &'v mut Value, segs: &[Seg]) -> Option<&'v mut Value> {
    for s in segs {
        v = match s {
            Seg::Key(k) => v.as_object_mut()?.get_mut(k)?,
            Seg::Index(i) => v.as_array_mut()?.get_mut(*i)?,
        };
    }
    Some(v)
}

fn object_at<'v>(
    doc: &'v mut Value,
    segs: &[Seg],
) -> Result<&'v mut Map<String, Value>, PatchError> {
    match get_mut(doc, segs).and_then(Value::as_object_mut) {
        Some(m) => Ok(m),
        None => not_applicable("the selected element's parent is not an object"),
    }
}

/// The resource type of a JSON resource, as spelled in the definitions.
fn resource_type_of(v: &Value) -> Option<&'static str> {
    let rt = v.get("resourceType")?.as_str()?;
    definitions::type_def(rt)
        .filter(|t| t.kind == TypeKind::Resource)
        .map(|t| t.name)
}

/// Where the definitions list the children of the object at `segs` (a type name or
/// backbone path; `""` when unknown).
fn def_parent_at(doc: &Value, segs: &[Seg]) -> &'static str {
    let mut cur = resource_type_of(doc).unwrap_or("");
    let mut v = Some(doc);
    for s in segs {
        match s {
            Seg::Index(i) => v = v.and_then(|v| v.get(*i)),
            Seg::Key(k) => {
                v = v.and_then(|v| v.get(k.as_str()));
                cur = if k.starts_with('_') {
                    "Element"
                } else if cur.is_empty() {
                    ""
                } else {
                    match definitions::member(cur, k) {
                        Some((def, ty)) => definitions::child_parent(def, ty),
                        None => "",
                    }
                };
            }
        }
        if let Some(rt) = v.and_then(resource_type_of) {
            cur = rt;
        }
    }
    cur
}

// ------------------------------------------------------------------ types

fn is_primitive(ty: &str) -> bool {
    ty.starts_with("System.")
        || definitions::type_def(ty).is_some_and(|t| t.kind == TypeKind::Primitive)
}

/// Inline backbone types and `Resource`: no `value[x]` can fill them.
fn is_structural(ty: &str) -> bool {
    matches!(
        ty,
        "BackboneElement" | "Element" | "Resource" | "DomainResource"
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum JsonKind {
    Bool,
    Number,
    String,
}

fn json_kind(ty: &str) -> JsonKind {
    match ty {
        "boolean" | "System.Boolean" => JsonKind::Bool,
        "integer" | "positiveInt" | "unsignedInt" | "decimal" | "integer64" | "System.Integer"
        | "System.Decimal" => JsonKind::Number,
        _ => JsonKind::String,
    }
}

fn kind_of(v: &Value) -> Option<JsonKind> {
    match v {
        Value::Bool(_) => Some(JsonKind::Bool),
        Value::Number(_) => Some(JsonKind::Number),
        Value::String(_) => Some(JsonKind::String),
        _ => None,
    }
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// The element `name` (FHIRPath name, or the JSON name of a choice) of `parent`, with
/// the type its name fixes (a choice's JSON name). `Ok(None)` when the parent is not
/// known to the definitions.
fn resolve_element(
    parent: &'static str,
    name: &str,
) -> Result<Option<(&'static ElementDef, Option<&'static str>)>, PatchError> {
    if parent.is_empty() || definitions::children(parent).is_empty() {
        return Ok(None);
    }
    if let Some(def) = definitions::child(parent, name) {
        return Ok(Some((def, None)));
    }
    match definitions::member(parent, name) {
        Some((def, ty)) if def.is_choice() => Ok(Some((def, Some(ty)))),
        _ => not_applicable(format!("{parent} has no element '{name}'")),
    }
}

/// The type of `def` that `value` fills.
fn choose_type(
    def: &'static ElementDef,
    value: &PatchValue,
    fixed: Option<&'static str>,
) -> Result<&'static str, PatchError> {
    let types = def.types;
    let chosen = match value {
        PatchValue::Parts(_) => match fixed.or(match types {
            [t] => Some(*t),
            _ => None,
        }) {
            Some(t) if !is_primitive(t) && !matches!(t, "Resource" | "DomainResource") => Some(t),
            _ => None,
        },
        PatchValue::Resource(r) => {
            let rt = resource_type_of(r).unwrap_or("");
            types.iter().copied().find(|t| definitions::is_a(rt, t))
        }
        PatchValue::Typed { ty, json, .. } => {
            let candidates = types.iter().copied().filter(|t| !is_structural(t));
            let exact = candidates.clone().find(|t| t == ty);
            let related = || {
                candidates
                    .clone()
                    .find(|t| definitions::is_a(ty, t) || definitions::is_a(t, ty))
            };
            let same_kind = || match types {
                [t] if !def.is_choice() && is_primitive(t) && is_primitive(ty) => {
                    let fits = json
                        .as_ref()
                        .and_then(kind_of)
                        .is_none_or(|k| k == json_kind(t));
                    fits.then_some(*t)
                }
                _ => None,
            };
            exact.or_else(related).or_else(same_kind)
        }
    };
    let what = match value {
        PatchValue::Typed { ty, .. } => format!("a {ty}"),
        PatchValue::Resource(r) => format!("a {} resource", resource_type_of(r).unwrap_or("?")),
        PatchValue::Parts(_) => "a part-based value".to_owned(),
    };
    let Some(t) = chosen else {
        return not_applicable(format!(
            "{what} cannot be the value of {} (types {})",
            def.path,
            types.join(", ")
        ));
    };
    if let Some(f) = fixed
        && f != t
    {
        return not_applicable(format!(
            "{what} cannot be the value of {}{}",
            def.name,
            upper_first(f)
        ));
    }
    if let PatchValue::Typed { json: Some(j), .. } = value
        && is_primitive(t)
        && kind_of(j) != Some(json_kind(t))
    {
        return not_applicable(format!("{what} has the wrong JSON form for {}", def.path));
    }
    Ok(t)
}

/// The JSON of `value` (and, for primitives, of its `_x`), nested parts built as
/// children of `parent` (a type name or backbone path).
fn build(
    value: &PatchValue,
    parent: &'static str,
) -> Result<(Option<Value>, Option<Value>), PatchError> {
    Ok(match value {
        PatchValue::Typed { json, ext, .. } => (json.clone(), ext.clone()),
        PatchValue::Resource(r) => (Some(r.clone()), None),
        PatchValue::Parts(parts) => {
            let mut obj = Map::new();
            for (name, v) in parts {
                add_member(&mut obj, parent, name, v)?;
            }
            (Some(Value::Object(obj)), None)
        }
    })
}

/// Adds `value` as the element `name` of `obj`, whose children the definitions list
/// under `parent`.
fn add_member(
    obj: &mut Map<String, Value>,
    parent: &'static str,
    name: &str,
    value: &PatchValue,
) -> Result<(), PatchError> {
    match resolve_element(parent, name)? {
        Some((def, fixed)) => {
            let ty = choose_type(def, value, fixed)?;
            let key = if def.is_choice() {
                format!("{}{}", def.name, upper_first(ty))
            } else {
                def.name.to_owned()
            };
            let (json, ext) = build(value, definitions::child_parent(def, ty))?;
            if def.is_array() {
                return with_list(obj, &key, |items, exts| {
                    items.push(json.unwrap_or(Value::Null));
                    exts.push(ext.unwrap_or(Value::Null));
                    Ok(())
                });
            }
            let taken = obj.keys().find(|k| {
                let k = k.strip_prefix('_').unwrap_or(k);
                k == key
                    || (def.is_choice()
                        && k.strip_prefix(def.name)
                            .is_some_and(|s| s.starts_with(|c: char| c.is_ascii_uppercase())))
            });
            if let Some(k) = taken {
                return not_applicable(format!(
                    "'{}' does not repeat and already has a value ({k})",
                    def.name
                ));
            }
            set_member(obj, &key, &key, json, ext);
            Ok(())
        }
        None => {
            // Not in the definitions: the name as given, a list if it already is one.
            let (json, ext) = build(value, "")?;
            match obj.get(name) {
                Some(Value::Array(_)) => with_list(obj, name, |items, exts| {
                    items.push(json.unwrap_or(Value::Null));
                    exts.push(ext.unwrap_or(Value::Null));
                    Ok(())
                }),
                Some(_) => not_applicable(format!("'{name}' already has a value")),
                None => {
                    set_member(obj, name, name, json, ext);
                    Ok(())
                }
            }
        }
    }
}

// ------------------------------------------------------------------ editing

/// Replaces the member `old` (and `_old`) of `obj` by `new` (and `_new`), in place;
/// appended when `old` is absent.
fn set_member(
    obj: &mut Map<String, Value>,
    old: &str,
    new: &str,
    json: Option<Value>,
    ext: Option<Value>,
) {
    let old_ext = format!("_{old}");
    let mut out = Map::new();
    let mut put = Some((json, ext));
    let place = |out: &mut Map<String, Value>, put: &mut Option<(Option<Value>, Option<Value>)>| {
        if let Some((json, ext)) = put.take() {
            if let Some(j) = json {
                out.insert(new.to_owned(), j);
            }
            if let Some(e) = ext {
                out.insert(format!("_{new}"), e);
            }
        }
    };
    for (k, v) in std::mem::take(obj) {
        if k == old || k == old_ext {
            place(&mut out, &mut put);
        } else {
            out.insert(k, v);
        }
    }
    place(&mut out, &mut put);
    *obj = out;
}

/// Runs `f` over the list `key` of `obj` and its `_key` (padded to the same length),
/// then stores them back (removing `_key` when all null, and both when empty).
fn with_list<R>(
    obj: &mut Map<String, Value>,
    key: &str,
    f: impl FnOnce(&mut Vec<Value>, &mut Vec<Value>) -> Result<R, PatchError>,
) -> Result<R, PatchError> {
    let ext_key = format!("_{key}");
    let mut take = |k: &str| match obj.get_mut(k) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => Ok(std::mem::take(a)),
        Some(_) => not_applicable(format!("'{key}' is not a list")),
    };
    let mut items = take(key)?;
    let mut exts = take(&ext_key)?;
    let n = items.len().max(exts.len());
    items.resize(n, Value::Null);
    exts.resize(n, Value::Null);
    let result = f(&mut items, &mut exts);
    let any_ext = exts.iter().any(|e| !e.is_null());
    let any_item = any_ext || items.iter().any(|v| !v.is_null());
    store(obj, key, any_item.then_some(items));
    store(obj, &ext_key, any_ext.then_some(exts));
    result
}

fn store(obj: &mut Map<String, Value>, key: &str, list: Option<Vec<Value>>) {
    match list {
        Some(l) => match obj.get_mut(key) {
            Some(slot) => *slot = Value::Array(l),
            None => {
                obj.insert(key.to_owned(), Value::Array(l));
            }
        },
        None => {
            obj.shift_remove(key);
        }
    }
}

/// The list holding `t`, and how many items it has.
fn list_len(obj: &Map<String, Value>, key: &str) -> (usize, usize) {
    let items = obj.get(key).and_then(Value::as_array);
    let exts = obj.get(&format!("_{key}")).and_then(Value::as_array);
    let n = items.map_or(0, Vec::len).max(exts.map_or(0, Vec::len));
    let present = (0..n)
        .filter(|&i| {
            let v = items.and_then(|a| a.get(i)).is_some_and(|v| !v.is_null());
            let e = exts.and_then(|a| a.get(i)).is_some_and(|e| !e.is_null());
            v || e
        })
        .count();
    (n, present)
}

/// Removes empty objects and lists from `segs` (an object) upwards; never the root.
fn prune(doc: &mut Value, mut segs: Vec<Seg>) {
    while !segs.is_empty() {
        let empty = match get(doc, &segs) {
            Some(Value::Object(m)) => m.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            _ => false,
        };
        if !empty {
            return;
        }
        match segs.pop() {
            Some(Seg::Key(k)) => {
                if let Some(Value::Object(m)) = get_mut(doc, &segs) {
                    m.shift_remove(&k);
                }
            }
            Some(Seg::Index(i)) => {
                let Some(Seg::Key(k)) = segs.pop() else {
                    return;
                };
                let Some(Value::Object(m)) = get_mut(doc, &segs) else {
                    return;
                };
                if let Some(base) = k.strip_prefix('_') {
                    // An emptied `_x` of a list of primitives: a null placeholder.
                    let base = base.to_owned();
                    let _ = with_list(m, &base, |_, exts| {
                        if let Some(e) = exts.get_mut(i) {
                            *e = Value::Null;
                        }
                        Ok(())
                    });
                } else {
                    let _ = with_list(m, &k, |items, exts| {
                        if i < items.len() {
                            items.remove(i);
                            exts.remove(i);
                        }
                        Ok(())
                    });
                }
            }
            None => return,
        }
    }
}

// ------------------------------------------------------------------ operations

fn apply(doc: &mut Value, op: &Operation) -> Result<(), PatchError> {
    match op.kind {
        Kind::Add => add(doc, op),
        Kind::Insert => insert(doc, op),
        Kind::Delete => delete(doc, op),
        Kind::Replace => replace(doc, op),
        Kind::Move => move_item(doc, op),
    }
}

fn add(doc: &mut Value, op: &Operation) -> Result<(), PatchError> {
    let (Some(name), Some(value)) = (&op.name, &op.value) else {
        return invalid("add needs a name and a value");
    };
    let loc = exactly_one(select(doc, &op.path)?, &op.path, "adding")?;
    // The object to add to: the element, or the `_x` of a primitive.
    let (segs, parent) = match loc {
        Loc::Root => (Vec::new(), def_parent_at(doc, &[])),
        Loc::At(t) => {
            let segs = t.segs();
            if get(doc, &segs).is_some_and(Value::is_object) {
                let parent = def_parent_at(doc, &segs);
                (segs, parent)
            } else {
                let obj = object_at(doc, &t.parent)?;
                let ext_key = format!("_{}", t.key);
                let mut segs = t.parent.clone();
                segs.push(Seg::Key(ext_key.clone()));
                match t.index {
                    None => {
                        if !obj.get(&ext_key).is_some_and(Value::is_object) {
                            obj.insert(ext_key, Value::Object(Map::new()));
                        }
                    }
                    Some(i) => {
                        with_list(obj, &t.key, |_, exts| {
                            if !exts[i].is_object() {
                                exts[i] = Value::Object(Map::new());
                            }
                            Ok(())
                        })?;
                        segs.push(Seg::Index(i));
                    }
                }
                (segs, "Element")
            }
        }
    };
    let obj = object_at(doc, &segs)?;
    add_member(obj, parent, name, value)
}

/// The one list (parent object and key) whose items are all of `locs`, and its length.
fn whole_list(doc: &Value, locs: &[Loc]) -> Result<(Vec<Seg>, String, usize), PatchError> {
    let mut list: Option<(&[Seg], &str)> = None;
    for loc in locs {
        let Loc::At(Target {
            parent,
            key,
            index: Some(_),
        }) = loc
        else {
            return not_applicable("the path does not select the items of a list");
        };
        match list {
            None => list = Some((parent, key)),
            Some((p, k)) if p == parent.as_slice() && k == key => {}
            Some(_) => return not_applicable("the path selects items of more than one list"),
        }
    }
    let Some((parent, key)) = list else {
        return not_applicable("the path selects nothing");
    };
    let Some(obj) = get(doc, parent).and_then(Value::as_object) else {
        return not_applicable("the list's parent is not an object");
    };
    let (len, present) = list_len(obj, key);
    if present != locs.len() {
        return not_applicable(format!(
            "the path selects {} of the {present} items of '{key}': it must select the whole list",
            locs.len()
        ));
    }
    Ok((parent.to_vec(), key.to_owned(), len))
}

/// For an insert whose path selects nothing: the list named by the path's last step
/// under the single element its prefix selects, when the path is a plain navigation
/// (`Patient.contact[0].telecom`).
fn absent_list(doc: &Value, path: &Expression) -> Result<(Vec<Seg>, String), PatchError> {
    let src = path.source().trim();
    let no_list = || not_applicable(format!("no content found at {src} when inserting"));
    let plain = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'))
    };
    let Some((prefix, name)) = src.rsplit_once('.') else {
        return no_list();
    };
    if !plain(prefix)
        || name.is_empty()
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return no_list();
    }
    let Ok(prefix_expr) = Expression::parse(prefix) else {
        return no_list();
    };
    let locs = select(doc, &prefix_expr)?;
    let segs = match exactly_one(locs, path, "inserting")? {
        Loc::Root => Vec::new(),
        Loc::At(t) => t.segs(),
    };
    if !get(doc, &segs).is_some_and(Value::is_object) {
        return no_list();
    }
    Ok((segs, name.to_owned()))
}

/// The definition of the list `key` under the object at `segs`, checking that `value`
/// fits it. None when the definitions do not know the parent.
fn list_item(
    doc: &Value,
    segs: &[Seg],
    key: &str,
    value: &PatchValue,
) -> Result<&'static str, PatchError> {
    let parent = def_parent_at(doc, segs);
    match resolve_element(parent, key)? {
        Some((def, fixed)) => {
            if !def.is_array() {
                return not_applicable(format!("{} is not a list", def.path));
            }
            let ty = choose_type(def, value, fixed)?;
            if def.name != key {
                return not_applicable(format!("'{key}' is not a list"));
            }
            Ok(definitions::child_parent(def, ty))
        }
        None => Ok(""),
    }
}

fn insert(doc: &mut Value, op: &Operation) -> Result<(), PatchError> {
    let (Some(value), Some(index)) = (&op.value, op.index) else {
        return invalid("insert needs a value and an index");
    };
    let locs = select(doc, &op.path)?;
    let (segs, key, len) = if locs.is_empty() {
        let (segs, key) = absent_list(doc, &op.path)?;
        let len = get(doc, &segs)
            .and_then(Value::as_object)
            .map_or(0, |o| list_len(o, &key).0);
        (segs, key, len)
    } else {
        whole_list(doc, &locs)?
    };
    let child_parent = list_item(doc, &segs, &key, value)?;
    if index > len {
        return not_applicable(format!(
            "index {index} is beyond the end of '{key}' ({len} items)"
        ));
    }
    let (json, ext) = build(value, child_parent)?;
    with_list(object_at(doc, &segs)?, &key, |items, exts| {
        items.insert(index, json.unwrap_or(Value::Null));
        exts.insert(index, ext.unwrap_or(Value::Null));
        Ok(())
    })
}

fn move_item(doc: &mut Value, op: &Operation) -> Result<(), PatchError> {
    let (Some(source), Some(destination)) = (op.source, op.destination) else {
        return invalid("move needs a source and a destination");
    };
    let locs = select(doc, &op.path)?;
    if locs.is_empty() {
        return not_applicable(format!(
            "no content found at {} when moving",
            op.path.source()
        ));
    }
    let (segs, key, len) = whole_list(doc, &locs)?;
    for (what, i) in [("source", source), ("destination", destination)] {
        if i >= len {
            return not_applicable(format!(
                "{what} {i} is beyond the end of '{key}' ({len} items)"
            ));
        }
    }
    with_list(object_at(doc, &segs)?, &key, |items, exts| {
        let item = items.remove(source);
        items.insert(destination, item);
        let ext = exts.remove(source);
        exts.insert(destination, ext);
        Ok(())
    })
}

fn replace(doc: &mut Value, op: &Operation) -> Result<(), PatchError> {
    let Some(value) = &op.value else {
        return invalid("replace needs a value");
    };
    let Loc::At(t) = exactly_one(select(doc, &op.path)?, &op.path, "replacing")? else {
        return not_applicable("the resource itself cannot be replaced");
    };
    let parent = def_parent_at(doc, &t.parent);
    let (new_key, child_parent) = match resolve_element(parent, &t.key)? {
        Some((def, _)) => {
            // A choice may change type: `valueString` → `valueQuantity`.
            let ty = choose_type(def, value, None)?;
            let key = if def.is_choice() {
                format!("{}{}", def.name, upper_first(ty))
            } else {
                t.key.clone()
            };
            (key, definitions::child_parent(def, ty))
        }
        None => (t.key.clone(), ""),
    };
    let (json, ext) = build(value, child_parent)?;
    let obj = object_at(doc, &t.parent)?;
    match t.index {
        None => set_member(obj, &t.key, &new_key, json, ext),
        Some(i) => {
            if new_key != t.key {
                return not_applicable(format!("'{}' is a list of another type", t.key));
            }
            with_list(obj, &t.key, |items, exts| {
                items[i] = json.unwrap_or(Value::Null);
                exts[i] = ext.unwrap_or(Value::Null);
                Ok(())
            })?;
        }
    }
    Ok(())
}

fn delete(doc: &mut Value, op: &Operation) -> Result<(), PatchError> {
    let locs = select(doc, &op.path)?;
    let t = match locs.as_slice() {
        [] => return Ok(()),
        [Loc::Root] => return not_applicable("the resource itself cannot be deleted"),
        [Loc::At(t)] => t.clone(),
        more => {
            return not_applicable(format!(
                "the path selects {} elements; only one can be deleted",
                more.len()
            ));
        }
    };
    let obj = object_at(doc, &t.parent)?;
    match t.index {
        None => {
            obj.shift_remove(&t.key);
            obj.shift_remove(&format!("_{}", t.key));
        }
        Some(i) => with_list(obj, &t.key, |items, exts| {
            items.remove(i);
            exts.remove(i);
            Ok(())
        })?,
    }
    prune(doc, t.parent);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(parts: Value) -> Value {
        json!({"resourceType": "Parameters", "parameter": [{"name": "operation", "part": parts}]})
    }

    #[test]
    fn locates_primitives_with_and_without_values() {
        let doc = json!({"resourceType": "Patient",
            "name": [{"given": [null, "b"], "_given": [{"id": "x"}, null]}]});
        let path = Expression::parse("Patient.name.given").unwrap();
        let locs = select(&doc, &path).unwrap();
        let keys: Vec<_> = locs
            .iter()
            .map(|l| match l {
                Loc::At(t) => (t.key.clone(), t.index),
                Loc::Root => ("".into(), None),
            })
            .collect();
        assert_eq!(keys, [("given".into(), Some(0)), ("given".into(), Some(1))]);
    }

    #[test]
    fn def_parents() {
        let doc = json!({"resourceType": "Patient", "contact": [{"name": {"family": "x"}}],
            "contained": [{"resourceType": "Observation", "valueQuantity": {"value": 1}}]});
        let k = |s: &str| Seg::Key(s.into());
        assert_eq!(def_parent_at(&doc, &[]), "Patient");
        assert_eq!(
            def_parent_at(&doc, &[k("contact"), Seg::Index(0)]),
            "Patient.contact"
        );
        assert_eq!(
            def_parent_at(&doc, &[k("contact"), Seg::Index(0), k("name")]),
            "HumanName"
        );
        assert_eq!(
            def_parent_at(&doc, &[k("contained"), Seg::Index(0)]),
            "Observation"
        );
        assert_eq!(
            def_parent_at(&doc, &[k("contained"), Seg::Index(0), k("valueQuantity")]),
            "Quantity"
        );
    }

    #[test]
    fn move_keeps_extensions_aligned() {
        let mut doc = json!({"resourceType": "Patient",
            "name": [{"given": ["a", "b", "c"], "_given": [null, null, {"id": "c"}]}]});
        let patch = op(json!([
            {"name": "type", "valueCode": "move"},
            {"name": "path", "valueString": "Patient.name[0].given"},
            {"name": "source", "valueInteger": 2},
            {"name": "destination", "valueInteger": 0}]));
        apply_fhirpath_patch(&mut doc, &patch).unwrap();
        assert_eq!(
            doc["name"][0],
            json!({"given": ["c", "a", "b"], "_given": [{"id": "c"}, null, null]})
        );
    }
}
