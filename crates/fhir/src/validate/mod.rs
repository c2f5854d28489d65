//! Structural validation of FHIR R4 JSON resources against the base definitions.
//!
//! [`validate`] walks a resource once, looking every member up in
//! [`crate::definitions`], and reports:
//!
//! 1. **Unknown elements**: members that are not elements of their parent. Choice members
//!    (`valueQuantity`), primitive extension members (`_birthDate`), `resourceType` at
//!    resource roots are known; `fhir_comments` is ignored everywhere.
//! 2. **JSON shape and primitive formats**: booleans are JSON booleans; integer,
//!    positiveInt and unsignedInt are JSON integers within their (32-bit) range; decimal is
//!    a JSON number; every other primitive is a non-empty JSON string in the lexical space of
//!    its type (id, date, dateTime, instant, time, uri/url/canonical, code, oid, uuid,
//!    base64Binary). Complex values are JSON objects. Repeating elements are JSON arrays and
//!    single ones are not. `{}`, `[]` and `""` are errors (FHIR has no empty elements);
//!    `null` only appears in a primitive array whose `_name` array has an extension object
//!    at the same index. `_name` is an object (or, for a repeating element, an array of
//!    objects and nulls as long as the value array) with `id` and `extension` only.
//! 3. **Cardinality**: `min` (missing required elements) and `max`.
//! 4. **Choice elements** with more than one value (`valueQuantity` and `valueString`).
//! 5. **Required bindings** whose value set expands from the package
//!    ([`definitions::value_set_codes`]): a `code` must be one of the codes; in a `Coding`,
//!    a code whose system is one of the value set's systems must be one of its codes, and a
//!    Coding bound by itself must be from the value set; a `CodeableConcept` with codings
//!    must have at least one from the value set (and none with a wrong code in a system of
//!    the value set). A text-only CodeableConcept passes: R4 wants a code, but a concept
//!    that only has text is the documented way to say that no code fits, and the reference
//!    validator only warns about it.
//!
//! Resources in `contained`, `Bundle.entry.resource`, `Parameters.parameter.resource` (any
//! element of type Resource) are validated as their own type, under the path of the element.
//!
//! Issues carry FHIRPath-like locations: `Patient.name[0].given[1]`,
//! `Observation.valueQuantity.value` (choice members keep their JSON name),
//! `Bundle.entry[0].resource.status`; extensions of a primitive are located on the
//! primitive (`Patient.birthDate.extension[0].url`).
//!
//! In [`Mode::Lenient`], unknown elements and binding violations are warnings (the data is
//! understandable, just not what the base specification allows); JSON shape, formats,
//! cardinality and choice errors stay errors, because Ember could not store or search such
//! data faithfully. [`Mode::Off`] does not look at the resource.
//!
//! The walk allocates nothing per element: the location is a stack of borrowed segments,
//! rendered only when an issue is reported.

mod formats;

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::definitions::{self, ElementDef, TypeKind};
use crate::outcome::{Issue, IssueType, OperationOutcome, Severity};

use formats::JsonKind;

/// How strictly resources are validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every violation is an error.
    Strict,
    /// Unknown elements and required-binding violations are warnings.
    Lenient,
    /// No validation.
    Off,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Strict => "strict",
            Mode::Lenient => "lenient",
            Mode::Off => "off",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validation mode that is not `strict`, `lenient` or `off`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown validation mode {0:?} (expected strict, lenient or off)")]
pub struct UnknownMode(pub String);

impl FromStr for Mode {
    type Err = UnknownMode;

    /// `strict`, `lenient` or `off`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Mode::Strict, Mode::Lenient, Mode::Off]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownMode(s.to_owned()))
    }
}

/// Validates `resource` (a JSON resource of any type) against the R4 base definitions.
/// The outcome is empty when nothing is wrong. [`Mode::Off`] checks only what no
/// store can hold: control characters in strings and element names.
pub fn validate(resource: &Value, mode: Mode) -> OperationOutcome {
    let mut v = Validator {
        mode,
        path: Vec::new(),
        issues: Vec::new(),
        key: String::new(),
    };
    if mode == Mode::Off {
        if let Some(t) = resource.get("resourceType").and_then(Value::as_str) {
            v.path.push(Seg::Name(t));
        }
        v.text_only(resource);
    } else {
        v.resource(resource);
    }
    OperationOutcome { issues: v.issues }
}

/// Whether `outcome` has an issue of severity error or fatal: the resource must be
/// rejected (422 Unprocessable Entity).
pub fn has_errors(outcome: &OperationOutcome) -> bool {
    outcome
        .issues
        .iter()
        .any(|i| matches!(i.severity, Severity::Error | Severity::Fatal))
}

fn control_message(what: &str, c: char) -> String {
    format!(
        "a {what} must not contain control characters (found U+{:04X}); only tab, CR and \
         LF are allowed",
        u32::from(c)
    )
}

/// Which rule an issue breaks: decides its severity in lenient mode.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rule {
    Unknown,
    Binding,
    Other,
}

#[derive(Clone, Copy)]
enum Seg<'a> {
    Name(&'a str),
    Index(usize),
}

/// What kind of JSON object is walked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Resource,
    Complex,
    /// The `_name` object of a primitive: `id` and `extension` only.
    PrimitiveExt,
}

struct Validator<'a> {
    mode: Mode,
    path: Vec<Seg<'a>>,
    issues: Vec<Issue>,
    /// Scratch for `_name` look-ups.
    key: String,
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The primitive type of values of `ty`, mapping the FHIRPath system types of the
/// snapshots (`Resource.id`, `Extension.url`, `Element.id`) to FHIR types; None for
/// complex types and resources.
fn primitive_type(ty: &'static str, def: &ElementDef, kind: Kind) -> Option<&'static str> {
    if let Some(system) = ty.strip_prefix("System.") {
        return Some(match system {
            "String" if kind == Kind::Resource && def.name == "id" => "id",
            "String" if def.path == "Extension.url" => "uri",
            "Boolean" => "boolean",
            "Integer" => "integer",
            "Decimal" => "decimal",
            "Date" => "date",
            "DateTime" => "dateTime",
            "Time" => "time",
            _ => "string",
        });
    }
    definitions::type_def(ty)
        .is_some_and(|t| t.kind == TypeKind::Primitive)
        .then_some(ty)
}

/// The index of `def` in `elements` (it is one of them).
fn index_of(elements: &[ElementDef], def: &ElementDef) -> usize {
    (std::ptr::from_ref(def).addr() - elements.as_ptr().addr()) / size_of::<ElementDef>()
}

/// Whether any system of the (sorted) value set codes has `code`.
fn vs_has_code(codes: &[(&str, &str)], code: &str) -> bool {
    let mut rest = codes;
    while let Some((system, _)) = rest.first() {
        let end = rest.partition_point(|(s, _)| s == system);
        if rest[..end]
            .binary_search_by(|(_, c)| (*c).cmp(code))
            .is_ok()
        {
            return true;
        }
        rest = &rest[end..];
    }
    false
}

fn vs_has_system(codes: &[(&str, &str)], system: &str) -> bool {
    codes.binary_search_by(|(s, _)| (*s).cmp(system)).is_ok()
}

/// How a Coding relates to a value set.
enum CodingMatch<'v> {
    InValueSet,
    /// The system is one of the value set's, the code is not in it.
    WrongCode(&'v str, &'v str),
    /// Another system, or no system or code.
    Outside,
    /// The system or code is malformed (reported as such): not judged against the binding.
    Malformed,
}

fn coding_match<'v>(coding: &'v Map<String, Value>, codes: &[(&str, &str)]) -> CodingMatch<'v> {
    let well_formed = |name: &str, ty: &str| match coding.get(name) {
        None => Some(None),
        Some(Value::String(s)) if !s.is_empty() && formats::check(ty, s).is_ok() => {
            Some(Some(s.as_str()))
        }
        Some(_) => None,
    };
    let (Some(system), Some(code)) = (well_formed("system", "uri"), well_formed("code", "code"))
    else {
        return CodingMatch::Malformed;
    };
    match (system, code) {
        (Some(system), Some(code)) if vs_has_system(codes, system) => {
            if codes.binary_search(&(system, code)).is_ok() {
                CodingMatch::InValueSet
            } else {
                CodingMatch::WrongCode(system, code)
            }
        }
        _ => CodingMatch::Outside,
    }
}

impl<'a> Validator<'a> {
    fn location(&self) -> String {
        let mut out = String::new();
        for seg in &self.path {
            match seg {
                Seg::Name(name) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                }
                Seg::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
        out
    }

    fn report(&mut self, rule: Rule, code: IssueType, diagnostics: String) {
        let severity = match (self.mode, rule) {
            (Mode::Lenient, Rule::Unknown | Rule::Binding) => Severity::Warning,
            _ => Severity::Error,
        };
        let location = self.location();
        self.issues.push(Issue {
            severity,
            code,
            diagnostics: if location.is_empty() {
                diagnostics
            } else {
                format!("{location}: {diagnostics}")
            },
            expression: if location.is_empty() {
                Vec::new()
            } else {
                vec![location]
            },
        });
    }

    /// Reports at the current location plus `seg`.
    fn report_at(&mut self, seg: Seg<'a>, rule: Rule, code: IssueType, diagnostics: String) {
        self.path.push(seg);
        self.report(rule, code, diagnostics);
        self.path.pop();
    }

    /// An element that is not in the definitions (a warning in lenient mode) must
    /// still hold nothing that cannot be stored: its name and content are checked for
    /// control characters.
    fn unknown_text(&mut self, key: &'a str, value: &'a Value) {
        if let Some(c) = crate::control_char(key) {
            // Reported where the name stands: the name itself is not a location.
            self.report(
                Rule::Other,
                IssueType::Structure,
                control_message("name", c),
            );
        } else {
            self.path.push(Seg::Name(key));
            self.text_only(value);
            self.path.pop();
        }
    }

    /// Control characters anywhere in `value`, in strings and in names (all that
    /// [`Mode::Off`] checks).
    fn text_only(&mut self, value: &'a Value) {
        match value {
            Value::String(s) => {
                if let Some(c) = crate::control_char(s) {
                    self.report(Rule::Other, IssueType::Value, control_message("string", c));
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.path.push(Seg::Index(i));
                    self.text_only(item);
                    self.path.pop();
                }
            }
            Value::Object(obj) => {
                for (name, item) in obj {
                    if let Some(c) = crate::control_char(name) {
                        self.report(
                            Rule::Other,
                            IssueType::Structure,
                            control_message("name", c),
                        );
                    } else {
                        self.path.push(Seg::Name(name));
                        self.text_only(item);
                        self.path.pop();
                    }
                }
            }
            _ => {}
        }
    }

    /// A resource, at the root or as the value of an element of type Resource.
    fn resource(&mut self, value: &'a Value) {
        let Value::Object(obj) = value else {
            let found = json_type(value);
            self.report(
                Rule::Other,
                IssueType::Structure,
                format!("a resource must be a JSON object, found {found}"),
            );
            return;
        };
        let resource_type = match obj.get("resourceType") {
            Some(Value::String(t)) => t.as_str(),
            Some(other) => {
                let found = json_type(other);
                self.report_at(
                    Seg::Name("resourceType"),
                    Rule::Other,
                    IssueType::Structure,
                    format!("resourceType must be a string, found {found}"),
                );
                return;
            }
            None => {
                self.report(
                    Rule::Other,
                    IssueType::Required,
                    "the resource has no resourceType".into(),
                );
                return;
            }
        };
        let Some(def) = definitions::type_def(resource_type)
            .filter(|t| t.kind == TypeKind::Resource && !t.is_abstract)
        else {
            self.report_at(
                Seg::Name("resourceType"),
                Rule::Other,
                IssueType::Structure,
                format!("unknown resource type {resource_type:?}"),
            );
            return;
        };
        let root = self.path.is_empty();
        if root {
            self.path.push(Seg::Name(def.name));
        }
        self.object(obj, def.name, Kind::Resource);
        if root {
            self.path.pop();
        }
    }

    /// The members of an object whose elements are the children of `parent` (a type name
    /// or a backbone element path).
    fn object(&mut self, obj: &'a Map<String, Value>, parent: &'static str, kind: Kind) {
        if obj.is_empty() {
            self.report(
                Rule::Other,
                IssueType::Structure,
                "empty objects are not allowed: an element must have a value or children".into(),
            );
            return;
        }
        let elements = definitions::children(parent);
        // Elements seen, by index in `elements` (at most 54 per parent in R4).
        let mut present: u128 = 0;
        for (position, (key, value)) in obj.iter().enumerate() {
            match key.as_str() {
                "fhir_comments" => continue,
                "resourceType" if kind == Kind::Resource => continue,
                _ => {}
            }
            let (name, is_ext) = match key.strip_prefix('_') {
                Some(name) => (name, true),
                None => (key.as_str(), false),
            };
            let found = if kind == Kind::PrimitiveExt && name == "value" {
                None
            } else {
                definitions::member(parent, name)
            };
            let Some((def, ty)) = found else {
                self.report_at(
                    Seg::Name(key),
                    Rule::Unknown,
                    IssueType::Structure,
                    format!("unknown element {key:?}: it is not an element of {parent}"),
                );
                self.unknown_text(key, value);
                continue;
            };
            let index = index_of(elements, def);
            if index < 128 {
                present |= 1 << index;
            }
            if def.is_choice() {
                self.check_choice(obj, position, name, def, parent);
            }
            let primitive = primitive_type(ty, def, kind);
            if is_ext {
                match primitive {
                    Some(ty) => self.primitive_ext(obj, name, value, def, ty),
                    None => {
                        self.report_at(
                            Seg::Name(key),
                            Rule::Unknown,
                            IssueType::Structure,
                            format!(
                                "{key:?} is not allowed: {name} is of type {ty}, and only \
                                 primitive elements have a '_' member"
                            ),
                        );
                        self.unknown_text(key, value);
                    }
                }
            } else {
                self.member(obj, name, value, def, ty, primitive);
            }
        }
        for (index, def) in elements.iter().enumerate() {
            if def.min > 0
                && index < 128
                && present & (1 << index) == 0
                && !(kind == Kind::PrimitiveExt && def.name == "value")
            {
                let min = def.min;
                self.report_at(
                    Seg::Name(def.name),
                    Rule::Other,
                    IssueType::Required,
                    format!("missing required element (min {min})"),
                );
            }
        }
    }

    /// Reports `name` (the member at `position`) when an earlier member of `obj` is another
    /// type of the same choice element.
    fn check_choice(
        &mut self,
        obj: &'a Map<String, Value>,
        position: usize,
        name: &'a str,
        def: &'static ElementDef,
        parent: &'static str,
    ) {
        let earlier = obj.keys().take(position).find_map(|key| {
            let other = key.strip_prefix('_').unwrap_or(key);
            (other != name
                && other.starts_with(def.name)
                && definitions::member(parent, other).is_some_and(|(d, _)| std::ptr::eq(d, def)))
            .then_some(other)
        });
        if let Some(other) = earlier {
            let element = def.path.rsplit('.').next().unwrap_or(def.path);
            self.report_at(
                Seg::Name(name),
                Rule::Other,
                IssueType::Structure,
                format!("{element} has more than one value: {other} and {name}"),
            );
        }
    }

    /// A member that is an element: checks arrays against the cardinality, then each value.
    fn member(
        &mut self,
        obj: &'a Map<String, Value>,
        name: &'a str,
        value: &'a Value,
        def: &'static ElementDef,
        ty: &'static str,
        primitive: Option<&'static str>,
    ) {
        self.path.push(Seg::Name(name));
        if def.max == Some(0) {
            self.report(
                Rule::Other,
                IssueType::Structure,
                format!("{} is not allowed here (max 0)", def.path),
            );
        } else if def.is_array() {
            match value {
                Value::Array(items) if items.is_empty() => self.report(
                    Rule::Other,
                    IssueType::Structure,
                    "empty arrays are not allowed: leave the element out".into(),
                ),
                Value::Array(items) => {
                    if let Some(max) = def.max {
                        if items.len() > max as usize {
                            let len = items.len();
                            self.report(
                                Rule::Other,
                                IssueType::Structure,
                                format!("{len} values, at most {max} allowed"),
                            );
                        }
                    }
                    // The `_name` array, looked up only when there are nulls.
                    let mut ext: Option<Option<&'a Vec<Value>>> = None;
                    for (i, item) in items.iter().enumerate() {
                        self.path.push(Seg::Index(i));
                        if item.is_null() {
                            let ext = *ext.get_or_insert_with(|| {
                                self.key.clear();
                                self.key.push('_');
                                self.key.push_str(name);
                                obj.get(self.key.as_str()).and_then(Value::as_array)
                            });
                            let has_ext = primitive.is_some()
                                && ext.and_then(|e| e.get(i)).is_some_and(Value::is_object);
                            if !has_ext {
                                self.report(
                                    Rule::Other,
                                    IssueType::Structure,
                                    format!(
                                        "null is only allowed in a primitive array, where \
                                         _{name} has extensions at the same index"
                                    ),
                                );
                            }
                        } else {
                            self.value(item, def, ty, primitive);
                        }
                        self.path.pop();
                    }
                }
                _ => {
                    let found = json_type(value);
                    let max = def.max.map_or("*".to_owned(), |m| m.to_string());
                    self.report(
                        Rule::Other,
                        IssueType::Structure,
                        format!("must be a JSON array (max {max}), found {found}"),
                    );
                }
            }
        } else {
            match value {
                Value::Array(_) => self.report(
                    Rule::Other,
                    IssueType::Structure,
                    "must be a single value, not an array (max 1)".into(),
                ),
                Value::Null => self.report(
                    Rule::Other,
                    IssueType::Structure,
                    "null is not allowed: leave the element out".into(),
                ),
                _ => self.value(value, def, ty, primitive),
            }
        }
        self.path.pop();
    }

    /// A `_name` member: the id and extensions of primitive `name`.
    fn primitive_ext(
        &mut self,
        obj: &'a Map<String, Value>,
        name: &'a str,
        value: &'a Value,
        def: &'static ElementDef,
        ty: &'static str,
    ) {
        self.path.push(Seg::Name(name));
        match value {
            Value::Object(ext) if !def.is_array() => self.object(ext, ty, Kind::PrimitiveExt),
            Value::Array(items) if def.is_array() => {
                let values = obj.get(name);
                if items.is_empty() {
                    self.report(
                        Rule::Other,
                        IssueType::Structure,
                        "empty arrays are not allowed: leave the element out".into(),
                    );
                }
                if let Some(Value::Array(values)) = values {
                    if values.len() != items.len() {
                        let (n, m) = (items.len(), values.len());
                        self.report(
                            Rule::Other,
                            IssueType::Structure,
                            format!("_{name} has {n} items but {name} has {m}: they must align"),
                        );
                    }
                }
                for (i, item) in items.iter().enumerate() {
                    self.path.push(Seg::Index(i));
                    match item {
                        Value::Object(ext) => self.object(ext, ty, Kind::PrimitiveExt),
                        Value::Null => {
                            // With a value array, a null facing a null (or nothing) is
                            // reported on the value side (or as misaligned).
                            if !matches!(values, Some(Value::Array(_))) {
                                self.report(
                                    Rule::Other,
                                    IssueType::Structure,
                                    format!(
                                        "null in _{name} is only allowed where {name} has a value"
                                    ),
                                );
                            }
                        }
                        other => {
                            let found = json_type(other);
                            self.report(
                                Rule::Other,
                                IssueType::Structure,
                                format!(
                                    "the items of _{name} must be objects or null, found {found}"
                                ),
                            );
                        }
                    }
                    self.path.pop();
                }
            }
            _ => {
                let found = json_type(value);
                let expected = if def.is_array() {
                    "an array of objects and nulls aligned with the values"
                } else {
                    "an object with id and extension"
                };
                self.report(
                    Rule::Other,
                    IssueType::Structure,
                    format!("_{name} must be {expected}, found {found}"),
                );
            }
        }
        self.path.pop();
    }

    /// One non-null value of element `def`, typed `ty`.
    fn value(
        &mut self,
        value: &'a Value,
        def: &'static ElementDef,
        ty: &'static str,
        primitive: Option<&'static str>,
    ) {
        if let Some(primitive) = primitive {
            self.primitive(value, def, primitive);
            return;
        }
        if ty == "Resource" || crate::is_resource_type(ty) {
            self.resource(value);
            return;
        }
        match value {
            Value::Object(obj) => {
                self.object(obj, definitions::child_parent(def, ty), Kind::Complex);
                if let Some(url) = def.required_binding {
                    self.complex_binding(obj, ty, url);
                }
            }
            other => {
                let found = json_type(other);
                self.report(
                    Rule::Other,
                    IssueType::Structure,
                    format!("a {ty} must be a JSON object, found {found}"),
                );
            }
        }
    }

    fn primitive(&mut self, value: &'a Value, def: &'static ElementDef, ty: &'static str) {
        let expected = match (formats::json_kind(ty), value) {
            (JsonKind::Bool, Value::Bool(_)) | (JsonKind::Decimal, Value::Number(_)) => return,
            (JsonKind::Integer { min }, Value::Number(n)) => {
                if !n
                    .as_i64()
                    .is_some_and(|n| (min..=i64::from(i32::MAX)).contains(&n))
                {
                    self.report(
                        Rule::Other,
                        IssueType::Value,
                        format!(
                            "{n} is not a valid {ty}: expected a whole number from {min} to \
                             2147483647"
                        ),
                    );
                }
                return;
            }
            (JsonKind::String, Value::String(s)) => {
                if s.is_empty() {
                    self.report(
                        Rule::Other,
                        IssueType::Value,
                        format!("empty strings are not allowed ({ty}): leave the element out"),
                    );
                } else if let Some(c) = crate::control_char(s) {
                    self.report(Rule::Other, IssueType::Value, control_message(ty, c));
                } else if let Err(form) = formats::check(ty, s) {
                    self.report(
                        Rule::Other,
                        IssueType::Value,
                        format!("{s:?} is not a valid {ty}: expected {form}"),
                    );
                } else if ty == "code" {
                    self.code_binding(s, def);
                }
                return;
            }
            (JsonKind::Bool, _) => "a JSON boolean",
            (JsonKind::Integer { .. } | JsonKind::Decimal, _) => "a JSON number",
            (JsonKind::String, _) => "a JSON string",
        };
        let found = json_type(value);
        self.report(
            Rule::Other,
            IssueType::Structure,
            format!("a {ty} must be {expected}, found {found}"),
        );
    }

    fn code_binding(&mut self, code: &str, def: &'static ElementDef) {
        let Some(url) = def.required_binding else {
            return;
        };
        let Some(codes) = definitions::value_set_codes(url) else {
            return;
        };
        if !vs_has_code(codes, code) {
            self.report(
                Rule::Binding,
                IssueType::Value,
                format!("{code:?} is not a code of the required value set {url}"),
            );
        }
    }

    /// Required bindings on Coding and CodeableConcept values.
    fn complex_binding(&mut self, obj: &'a Map<String, Value>, ty: &'static str, url: &str) {
        let Some(codes) = definitions::value_set_codes(url) else {
            return;
        };
        if definitions::is_a(ty, "Coding") {
            match coding_match(obj, codes) {
                CodingMatch::InValueSet | CodingMatch::Malformed => {}
                CodingMatch::WrongCode(system, code) => self.report(
                    Rule::Binding,
                    IssueType::Value,
                    format!("{code:?} is not a code of {system} in the required value set {url}"),
                ),
                CodingMatch::Outside => self.report(
                    Rule::Binding,
                    IssueType::Value,
                    format!("the coding is not from the required value set {url}"),
                ),
            }
        } else if definitions::is_a(ty, "CodeableConcept") {
            let Some(Value::Array(codings)) = obj.get("coding") else {
                // Text only (or a shape error reported already).
                return;
            };
            // Whether a coding is in the value set, or was reported (wrong code, malformed).
            let mut any_in = false;
            let mut any_wrong = false;
            for (i, coding) in codings.iter().enumerate() {
                let Value::Object(coding) = coding else {
                    continue;
                };
                match coding_match(coding, codes) {
                    CodingMatch::InValueSet => any_in = true,
                    CodingMatch::WrongCode(system, code) => {
                        any_wrong = true;
                        self.path.push(Seg::Name("coding"));
                        self.report_at(
                            Seg::Index(i),
                            Rule::Binding,
                            IssueType::Value,
                            format!(
                                "{code:?} is not a code of {system} in the required value set \
                                 {url}"
                            ),
                        );
                        self.path.pop();
                    }
                    CodingMatch::Malformed => any_wrong = true,
                    CodingMatch::Outside => {}
                }
            }
            if !any_in && !any_wrong && !codings.is_empty() {
                self.report(
                    Rule::Binding,
                    IssueType::Value,
                    format!("no coding is from the required value set {url}"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_errors_in_every_mode() {
        let resource = serde_json::json!({
            "resourceType": "Patient",
            "name": [{"family": "a\u{0}b", "given": ["ok\tfine"]}],
            "extension": [{"url": "http://e.org/x", "valueString": "\u{1b}"}],
            "x\u{1}": 1
        });
        for mode in [Mode::Strict, Mode::Lenient, Mode::Off] {
            let outcome = validate(&resource, mode);
            let locations: Vec<&str> = outcome
                .issues
                .iter()
                .filter(|i| i.diagnostics.contains("control characters"))
                .map(|i| i.expression[0].as_str())
                .collect();
            // The bad name is reported where it stands, in every mode.
            let expected = [
                "Patient.name[0].family",
                "Patient.extension[0].valueString",
                "Patient",
            ];
            assert_eq!(locations, expected, "{mode}");
            assert!(has_errors(&outcome), "{mode}");
        }
        // Unknown elements are warnings in lenient mode, but what they hold is checked.
        for unknown in [
            serde_json::json!({"resourceType": "Patient", "\u{0}": "x"}),
            serde_json::json!({"resourceType": "Patient", "foo": "a\u{1}"}),
            serde_json::json!({"resourceType": "Patient", "name": [{"family": "ok", "bogus": ["\u{7}"]}]}),
            serde_json::json!({"resourceType": "Patient", "_active": {"x": "\u{2}"}}),
        ] {
            for mode in [Mode::Strict, Mode::Lenient, Mode::Off] {
                assert!(has_errors(&validate(&unknown, mode)), "{mode}: {unknown}");
            }
        }
        let clean = serde_json::json!({"resourceType": "Patient", "name": [{"text": "a\tb\r\n"}]});
        assert!(validate(&clean, Mode::Off).issues.is_empty());
    }

    #[test]
    fn modes_parse() {
        assert_eq!("strict".parse(), Ok(Mode::Strict));
        assert_eq!("Lenient".parse(), Ok(Mode::Lenient));
        assert_eq!("off".parse(), Ok(Mode::Off));
        assert!("on".parse::<Mode>().is_err());
        assert_eq!(Mode::Lenient.to_string(), "lenient");
    }

    #[test]
    fn value_set_lookups() {
        let codes = [("a", "x"), ("a", "y"), ("b", "z")];
        assert!(vs_has_code(&codes, "z") && vs_has_code(&codes, "x"));
        assert!(!vs_has_code(&codes, "w"));
        assert!(vs_has_system(&codes, "b") && !vs_has_system(&codes, "c"));
    }
}
