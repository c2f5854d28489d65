//! The evaluator: navigation over borrowed JSON, typing, operators. Functions are
//! in `functions.rs`.

use std::cell::{OnceCell, RefCell};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::ast::{BinOp, Expr, TypeSpec};
use super::decimal::Decimal;
use super::model::{DEFINITIONS, Kind, Model};
use super::node::{Element, Node, Str, resource_node};
use super::quantity::Quantity;
use super::temporal::{DateTime, Time};

pub(crate) type Nodes<'a> = Vec<Node<'a>>;
pub(crate) type R<T> = Result<T, EvalError>;

/// Why an evaluation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("{what} expects a single item, found {count}")]
    NotSingleton { what: String, count: usize },
    #[error("cannot apply {op} to {left} and {right}")]
    TypeMismatch {
        op: String,
        left: String,
        right: String,
    },
    #[error("{function}(): {message}")]
    InvalidArgument {
        function: &'static str,
        message: String,
    },
    #[error("unknown variable %{0}")]
    UnknownVariable(String),
    #[error("{0}")]
    Invalid(String),
}

pub(crate) fn invalid<T>(msg: impl Into<String>) -> R<T> {
    Err(EvalError::Invalid(msg.into()))
}

/// The evaluation environment: user variables, the model, the clock.
#[derive(Clone)]
pub struct Env<'e> {
    vars: HashMap<String, Vec<Node<'e>>>,
    model: &'e dyn Model,
    now: Option<DateTime>,
}

impl Default for Env<'static> {
    fn default() -> Self {
        Env::new()
    }
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .field("now", &self.now)
            .finish()
    }
}

impl Env<'static> {
    /// No variables, the R4 definitions, the system clock.
    pub fn new() -> Self {
        Env {
            vars: HashMap::new(),
            model: &DEFINITIONS,
            now: None,
        }
    }
}

impl<'e> Env<'e> {
    /// Uses another source of type information.
    pub fn with_model<'m>(self, model: &'m dyn Model) -> Env<'m>
    where
        'e: 'm,
    {
        Env {
            vars: self.vars,
            model,
            now: self.now,
        }
    }

    /// Sets `%name` (also `%resource`, `%rootResource`, `%context`, which
    /// otherwise are the evaluated resource).
    pub fn set(&mut self, name: impl Into<String>, value: Vec<Node<'e>>) {
        self.vars.insert(name.into(), value);
    }

    pub fn with_var(mut self, name: impl Into<String>, value: Vec<Node<'e>>) -> Self {
        self.set(name, value);
        self
    }

    /// Sets a `%name` string variable.
    pub fn with_string(self, name: impl Into<String>, value: &str) -> Self {
        self.with_var(name, vec![Node::String(Str::Shared(Arc::from(value)))])
    }

    /// Fixes the value of `now()`, `today()`, `timeOfDay()`.
    pub fn with_now(mut self, now: DateTime) -> Self {
        self.now = Some(now);
        self
    }

    pub fn model(&self) -> &'e dyn Model {
        self.model
    }
}

/// `$this`, `$index`, `$total` of the current (lambda) scope.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'a, 's> {
    pub this: &'s [Node<'a>],
    pub index: Option<usize>,
    pub total: Option<&'s [Node<'a>]>,
}

pub(crate) struct Ctx<'a, 'x> {
    pub env: &'x Env<'a>,
    pub model: &'x dyn Model,
    pub context: Node<'a>,
    now: OnceCell<DateTime>,
    pub defined: RefCell<Vec<(String, Nodes<'a>)>>,
    /// What the evaluation has produced so far, against [`BUDGET`].
    spent: std::cell::Cell<usize>,
}

/// The most an evaluation may produce: items of every intermediate result, and one
/// unit per 16 bytes of strings in them. Real expressions over real resources stay
/// far below; `select($this.combine($this))` repeated, which doubles its result each
/// time, stops here instead of taking seconds and gigabytes.
pub(crate) const BUDGET: usize = 2_000_000;

const SYSTEM_TYPES: &[&str] = &[
    "Any", "Boolean", "String", "Integer", "Long", "Decimal", "Date", "DateTime", "Time",
    "Quantity",
];

const PRIMITIVES: &[&str] = &[
    "base64Binary",
    "boolean",
    "canonical",
    "code",
    "date",
    "dateTime",
    "decimal",
    "id",
    "instant",
    "integer",
    "integer64",
    "markdown",
    "oid",
    "positiveInt",
    "string",
    "time",
    "unsignedInt",
    "uri",
    "url",
    "uuid",
    "xhtml",
];

const COMPLEX: &[&str] = &[
    "Address",
    "Age",
    "Annotation",
    "Attachment",
    "CodeableConcept",
    "Coding",
    "ContactPoint",
    "Count",
    "Distance",
    "Duration",
    "HumanName",
    "Identifier",
    "Money",
    "Period",
    "Quantity",
    "Range",
    "Ratio",
    "Reference",
    "SampledData",
    "Signature",
    "Timing",
];

/// A type name from a choice suffix (`Quantity`, `DateTime` → `dateTime`) when the
/// model does not know the element.
fn suffix_type(model: &dyn Model, suffix: &str) -> &'static str {
    if let Some((n, _)) = model.type_info(suffix) {
        return n;
    }
    let mut lower = String::with_capacity(suffix.len());
    let mut cs = suffix.chars();
    if let Some(c) = cs.next() {
        lower.push(c.to_ascii_lowercase());
        lower.extend(cs);
    }
    if let Some(p) = PRIMITIVES.iter().find(|p| **p == lower) {
        return p;
    }
    if let Some((n, _)) = model.type_info(&lower) {
        return n;
    }
    COMPLEX
        .iter()
        .find(|c| **c == suffix)
        .copied()
        .unwrap_or("")
}

fn is_quantity_type(ty: &str) -> bool {
    matches!(
        ty,
        "Quantity" | "Age" | "Duration" | "Distance" | "Count" | "SimpleQuantity" | "MoneyQuantity"
    )
}

/// The primitive value of an element as a System value (`None` for complex
/// elements and primitives without a value).
pub(crate) fn system_value<'a>(el: &Element<'a>, model: &dyn Model) -> Option<Node<'a>> {
    let v = el.value?;
    let ty = el.ty.strip_prefix("System.").unwrap_or(el.ty);
    let as_str = || v.as_str().map(|s| Node::String(Str::Borrowed(s)));
    match ty {
        "boolean" | "Boolean" => v.as_bool().map(Node::Boolean),
        "integer" | "positiveInt" | "unsignedInt" | "integer64" | "Integer" => match v {
            Value::Number(n) => n
                .as_i64()
                .map(Node::Integer)
                .or_else(|| Decimal::parse(n.as_str()).map(Node::Decimal)),
            Value::String(s) => s.parse().ok().map(Node::Integer),
            _ => None,
        },
        "decimal" | "Decimal" => match v {
            Value::Number(n) => Decimal::parse(n.as_str()).map(Node::Decimal),
            Value::String(s) => Decimal::parse(s).map(Node::Decimal),
            _ => None,
        },
        "date" | "Date" => {
            let s = v.as_str()?;
            DateTime::parse_date(s)
                .map(Node::Date)
                .or_else(|| DateTime::parse_datetime(s).map(Node::DateTime))
        }
        "dateTime" | "instant" | "DateTime" => {
            DateTime::parse_datetime(v.as_str()?).map(Node::DateTime)
        }
        "time" | "Time" => Time::parse(v.as_str()?).map(Node::Time),
        "string" | "code" | "id" | "uri" | "url" | "canonical" | "oid" | "uuid" | "markdown"
        | "base64Binary" | "xhtml" | "String" => as_str(),
        t if is_quantity_type(t) => quantity_of(v),
        "" => match v {
            Value::String(s) => Some(Node::String(Str::Borrowed(s))),
            Value::Bool(b) => Some(Node::Boolean(*b)),
            Value::Number(n) => {
                let s = n.as_str();
                if s.contains(['.', 'e', 'E']) {
                    Decimal::parse(s).map(Node::Decimal)
                } else {
                    s.parse()
                        .ok()
                        .map(Node::Integer)
                        .or_else(|| Decimal::parse(s).map(Node::Decimal))
                }
            }
            _ => None,
        },
        t => match model.type_info(t) {
            Some((_, Kind::Primitive)) => as_str(),
            _ => None,
        },
    }
}

fn quantity_of<'a>(v: &'a Value) -> Option<Node<'a>> {
    let m = v.as_object()?;
    let value = match m.get("value")? {
        Value::Number(n) => Decimal::parse(n.as_str())?,
        _ => return None,
    };
    let unit = m
        .get("code")
        .and_then(Value::as_str)
        .or_else(|| m.get("unit").and_then(Value::as_str))
        .unwrap_or("1");
    // A UCUM quantity; FHIR time units in the unit text map to calendar words.
    Some(Node::Quantity(Quantity::new(value, unit)))
}

impl<'a, 'x> Ctx<'a, 'x> {
    pub fn new(env: &'x Env<'a>, context: Node<'a>) -> Self {
        Ctx {
            env,
            model: env.model,
            context,
            now: OnceCell::new(),
            defined: RefCell::new(Vec::new()),
            spent: std::cell::Cell::new(0),
        }
    }

    pub fn env_var(&self, name: &str) -> Option<&Nodes<'a>> {
        self.env.vars.get(name)
    }

    pub fn now(&self) -> DateTime {
        *self
            .now
            .get_or_init(|| self.env.now.unwrap_or_else(super::temporal::now_utc))
    }

    /// A node's System value: itself when computed, the converted primitive for
    /// elements.
    pub fn sys(&self, n: &Node<'a>) -> Option<Node<'a>> {
        match n {
            Node::Element(e) => system_value(e, self.model),
            other => Some(other.clone()),
        }
    }

    // ---------------------------------------------------------------- evaluation

    /// Evaluates `e`, within the [`BUDGET`].
    pub fn eval(&self, e: &Expr, s: Scope<'a, '_>) -> R<Nodes<'a>> {
        let out = self.eval_expr(e, s)?;
        let strings: usize = out
            .iter()
            .map(|n| match n {
                Node::String(v) => v.len() / 16,
                _ => 0,
            })
            .sum();
        let spent = self.spent.get() + out.len() + strings;
        self.spent.set(spent);
        if spent > BUDGET {
            return invalid(format!(
                "the expression produces too much (more than {BUDGET} items or their size in strings)"
            ));
        }
        Ok(out)
    }

    fn eval_expr(&self, e: &Expr, s: Scope<'a, '_>) -> R<Nodes<'a>> {
        Ok(match e {
            Expr::Empty => Vec::new(),
            Expr::Boolean(b) => vec![Node::Boolean(*b)],
            Expr::String(v) => vec![Node::String(Str::Shared(v.clone()))],
            Expr::Integer(i) => vec![Node::Integer(*i)],
            Expr::Decimal(d) => vec![Node::Decimal(*d)],
            Expr::Date(d) => vec![Node::Date(*d)],
            Expr::DateTime(d) => vec![Node::DateTime(*d)],
            Expr::Time(t) => vec![Node::Time(*t)],
            Expr::Quantity(q) => vec![Node::Quantity(q.clone())],
            Expr::This => s.this.to_vec(),
            Expr::Index => s
                .index
                .map(|i| vec![Node::Integer(i as i64)])
                .unwrap_or_default(),
            Expr::Total => s.total.map(<[_]>::to_vec).unwrap_or_default(),
            Expr::Var(name) => self.var(name)?,
            Expr::Ident(name) => self.ident(s.this, name)?,
            Expr::Member(target, name) => {
                let base = self.eval(target, s)?;
                let mut out = Vec::new();
                for n in &base {
                    self.child(n, name, &mut out)?;
                }
                out
            }
            Expr::Call { target, func, args } => {
                let focus = match target {
                    Some(t) => self.eval(t, s)?,
                    None => s.this.to_vec(),
                };
                self.call(*func, focus, args, s)?
            }
            Expr::Type(t) => return invalid(format!("unexpected type name {}", t.name)),
            Expr::Indexer(target, idx) => {
                let base = self.eval(target, s)?;
                let idx = self.eval(idx, s)?;
                match self.singleton(&idx, "indexer")? {
                    None => Vec::new(),
                    Some(i) => match self.sys(i) {
                        Some(Node::Integer(i)) => {
                            if i < 0 {
                                Vec::new()
                            } else {
                                base.into_iter().nth(i as usize).into_iter().collect()
                            }
                        }
                        _ => return invalid("index must be an integer"),
                    },
                }
            }
            Expr::Neg(inner) => {
                let v = self.eval(inner, s)?;
                match self.singleton(&v, "unary -")? {
                    None => Vec::new(),
                    Some(n) => match self.sys(n) {
                        Some(Node::Integer(i)) => {
                            i.checked_neg().map(Node::Integer).into_iter().collect()
                        }
                        Some(Node::Decimal(d)) => vec![Node::Decimal(d.neg())],
                        Some(Node::Quantity(mut q)) => {
                            q.value = q.value.neg();
                            vec![Node::Quantity(q)]
                        }
                        _ => return invalid("unary minus needs a number or quantity"),
                    },
                }
            }
            Expr::Binary(op, l, r) => self.binary(*op, l, r, s)?,
            Expr::Is(inner, spec) => {
                let v = self.eval(inner, s)?;
                self.check_type(spec)?;
                match self.singleton(&v, "is")? {
                    None => Vec::new(),
                    Some(n) => vec![Node::Boolean(self.is_type(n, spec, false))],
                }
            }
            Expr::As(inner, spec) => {
                // Lenient: filters a collection (R4 search parameters rely on it).
                self.check_type(spec)?;
                let v = self.eval(inner, s)?;
                v.into_iter()
                    .filter(|n| self.is_type(n, spec, true))
                    .collect()
            }
        })
    }

    fn var(&self, name: &str) -> R<Nodes<'a>> {
        if let Some(v) = self.env.vars.get(name) {
            return Ok(v.clone());
        }
        if let Some((_, v)) = self.defined.borrow().iter().rev().find(|(n, _)| n == name) {
            return Ok(v.clone());
        }
        let s = |v: String| Ok(vec![Node::String(v.into())]);
        match name {
            "resource" | "rootResource" | "context" => Ok(vec![self.context.clone()]),
            "ucum" => s("http://unitsofmeasure.org".into()),
            "sct" => s("http://snomed.info/sct".into()),
            "loinc" => s("http://loinc.org".into()),
            "terminologies" | "server" => Ok(Vec::new()),
            _ => {
                if let Some(vs) = name.strip_prefix("vs-") {
                    s(format!("http://hl7.org/fhir/ValueSet/{vs}"))
                } else if let Some(ext) = name.strip_prefix("ext-") {
                    s(format!("http://hl7.org/fhir/StructureDefinition/{ext}"))
                } else {
                    Err(EvalError::UnknownVariable(name.to_string()))
                }
            }
        }
    }

    /// An identifier at the start of a path: a type name filters the context,
    /// anything else navigates from it.
    fn ident(&self, this: &[Node<'a>], name: &str) -> R<Nodes<'a>> {
        if super::is_type_name(name) {
            let typed: Nodes<'a> = this
                .iter()
                .filter(|n| match n {
                    Node::Element(e) if e.ty.is_empty() => {
                        e.value
                            .and_then(|v| v.get("resourceType"))
                            .and_then(Value::as_str)
                            == Some(name)
                    }
                    Node::Element(e) => self.model.is_a(e.ty, name),
                    _ => false,
                })
                .cloned()
                .collect();
            if !typed.is_empty() {
                return Ok(typed);
            }
        }
        let mut out = Vec::new();
        for n in this {
            self.child(n, name, &mut out)?;
        }
        Ok(out)
    }

    pub fn singleton<'n>(&self, v: &'n [Node<'a>], what: &str) -> R<Option<&'n Node<'a>>> {
        match v.len() {
            0 => Ok(None),
            1 => Ok(Some(&v[0])),
            count => Err(EvalError::NotSingleton {
                what: what.to_string(),
                count,
            }),
        }
    }

    /// Singleton evaluation of a collection as a Boolean.
    pub fn to_bool(&self, v: &[Node<'a>], what: &str) -> R<Option<bool>> {
        match self.singleton(v, what)? {
            None => Ok(None),
            Some(n) => Ok(Some(match self.sys(n) {
                Some(Node::Boolean(b)) => b,
                _ => true,
            })),
        }
    }

    // ---------------------------------------------------------------- navigation

    /// Appends the children called `name` (FHIRPath name: choices by base name).
    pub fn child(&self, n: &Node<'a>, name: &str, out: &mut Nodes<'a>) -> R<()> {
        match n {
            Node::Element(el) => match el.value {
                Some(Value::Object(map)) => self.child_of_object(el.path, map, name, out)?,
                _ => {
                    if let Some(Value::Object(ext)) = el.ext {
                        let path = if el.ty.is_empty() { "Element" } else { el.ty };
                        self.child_of_object(path, ext, name, out)?;
                    }
                }
            },
            Node::TypeInfo { namespace, name: n } => match name {
                "namespace" => out.push(Node::String(Str::Borrowed(namespace))),
                "name" => out.push(Node::String(Str::Borrowed(n))),
                _ => {}
            },
            Node::Quantity(q) => match name {
                "value" => out.push(Node::Decimal(q.value)),
                "unit" | "code" => out.push(Node::String(Str::Shared(q.unit.clone()))),
                _ => {}
            },
            _ => {}
        }
        Ok(())
    }

    fn child_of_object(
        &self,
        path: &str,
        map: &'a Map<String, Value>,
        name: &str,
        out: &mut Nodes<'a>,
    ) -> R<()> {
        let direct = map.get(name);
        let mut buf = [0u8; 96];
        let ext = underscored(&mut buf, name).and_then(|k| map.get(k));
        if direct.is_some() || ext.is_some() {
            let (ty, p) = match self.model.property(path, name) {
                Some(p) if p.choice && p.name != name => {
                    return invalid(format!(
                        "'{name}' is the JSON name of the choice element '{}': navigate with \
                         '{}' (and ofType() or as() to pick a type)",
                        p.name, p.name
                    ));
                }
                Some(p) => (p.ty, p.path),
                None => ("", ""),
            };
            self.push_values(direct, ext, ty, p, out);
            return Ok(());
        }
        // A choice element: `value` → `valueQuantity`.
        for (key, v) in map {
            if key.len() > name.len()
                && key.starts_with(name)
                && key.as_bytes()[name.len()].is_ascii_uppercase()
            {
                let (ty, p) = match self.model.property(path, key) {
                    Some(p) if p.name == name => (p.ty, p.path),
                    Some(_) => continue,
                    None => {
                        if self.model.has_element(path, key) {
                            continue;
                        }
                        let t = suffix_type(self.model, &key[name.len()..]);
                        (t, t)
                    }
                };
                let mut buf = [0u8; 96];
                let ext = underscored(&mut buf, key).and_then(|k| map.get(k));
                self.push_values(Some(v), ext, ty, p, out);
            }
        }
        Ok(())
    }

    fn push_values(
        &self,
        v: Option<&'a Value>,
        ext: Option<&'a Value>,
        ty: &'static str,
        path: &'static str,
        out: &mut Nodes<'a>,
    ) {
        match v {
            Some(Value::Array(items)) => {
                let exts = ext.and_then(Value::as_array);
                for (i, item) in items.iter().enumerate() {
                    let e = exts.and_then(|a| a.get(i)).filter(|e| !e.is_null());
                    let value = (!item.is_null()).then_some(item);
                    if value.is_some() || e.is_some() {
                        out.push(self.make(value, e, ty, path));
                    }
                }
            }
            Some(Value::Null) | None => match ext {
                Some(Value::Array(es)) => {
                    for e in es.iter().filter(|e| !e.is_null()) {
                        out.push(self.make(None, Some(e), ty, path));
                    }
                }
                Some(e @ Value::Object(_)) => out.push(self.make(None, Some(e), ty, path)),
                _ => {}
            },
            Some(v) => out.push(self.make(Some(v), ext.filter(|e| e.is_object()), ty, path)),
        }
    }

    fn make(
        &self,
        value: Option<&'a Value>,
        ext: Option<&'a Value>,
        ty: &'static str,
        path: &'static str,
    ) -> Node<'a> {
        // Resources inside resources carry their own type.
        if (ty.is_empty() || ty == "Resource" || ty == "DomainResource")
            && let Some(v) = value
            && v.get("resourceType").is_some()
        {
            return resource_node(v, self.model);
        }
        Node::Element(Element {
            value,
            ext,
            ty,
            path: if path.is_empty() { ty } else { path },
        })
    }

    /// All children, in document order.
    pub fn children(&self, n: &Node<'a>, out: &mut Nodes<'a>) {
        let Node::Element(el) = n else { return };
        let (map, path) = match (el.value, el.ext) {
            (Some(Value::Object(m)), _) => (m, el.path),
            (_, Some(Value::Object(m))) => (m, "Element"),
            _ => return,
        };
        for (key, v) in map {
            if key == "resourceType" {
                continue;
            }
            if let Some(base) = key.strip_prefix('_') {
                if !map.contains_key(base) {
                    let (ty, p) = self.prop_of(path, base);
                    self.push_values(None, Some(v), ty, p, out);
                }
                continue;
            }
            let (ty, p) = self.prop_of(path, key);
            let mut buf = [0u8; 96];
            let ext = underscored(&mut buf, key).and_then(|k| map.get(k));
            self.push_values(Some(v), ext, ty, p, out);
        }
    }

    fn prop_of(&self, path: &str, key: &str) -> (&'static str, &'static str) {
        match self.model.property(path, key) {
            Some(p) => (p.ty, p.path),
            None => ("", ""),
        }
    }

    // ---------------------------------------------------------------- types

    /// Whether `n` is of type `spec`. `exact` (for `as` and `ofType`) does not let a
    /// FHIR primitive match the primitive it specialises (`code` is not a `string`).
    pub fn is_type(&self, n: &Node<'a>, spec: &TypeSpec, exact: bool) -> bool {
        let ns = spec.namespace.as_deref();
        let name = &*spec.name;
        match n {
            Node::Element(e) if !e.ty.is_empty() && !e.ty.starts_with("System.") => {
                if ns == Some("System") {
                    return false;
                }
                if exact && matches!(self.model.type_info(e.ty), Some((_, Kind::Primitive))) {
                    e.ty == name
                } else {
                    self.model.is_a(e.ty, name)
                }
            }
            Node::Element(e) => {
                if ns == Some("FHIR") {
                    return false;
                }
                match self.sys(n) {
                    Some(v) if !e.ty.is_empty() => v.type_name() == name,
                    _ => false,
                }
            }
            other => ns != Some("FHIR") && other.type_name() == name,
        }
    }

    /// Rejects type names neither the model nor the System namespace knows.
    pub fn check_type(&self, spec: &TypeSpec) -> R<()> {
        let name = &*spec.name;
        let known = match spec.namespace.as_deref() {
            Some("System") => true,
            Some("FHIR") => self.model.type_info(name).is_some(),
            None => SYSTEM_TYPES.contains(&name) || self.model.type_info(name).is_some(),
            Some(_) => false,
        };
        // Without model information, FHIR names cannot be checked.
        if known || self.model.type_info("Resource").is_none() {
            Ok(())
        } else {
            invalid(format!("unknown type '{name}'"))
        }
    }

    // ---------------------------------------------------------------- equality

    /// `=` on two items: `None` when undecidable (date precision, units).
    pub fn item_eq(&self, a: &Node<'a>, b: &Node<'a>) -> Option<bool> {
        match (self.sys(a), self.sys(b)) {
            (Some(x), Some(y)) => sys_eq(&x, &y),
            (None, None) => match (a, b) {
                (Node::Element(x), Node::Element(y)) => Some(match (x.value, y.value) {
                    (Some(p), Some(q)) => json_eq(p, q),
                    _ => false,
                }),
                _ => Some(false),
            },
            _ => Some(false),
        }
    }

    pub fn item_equiv(&self, a: &Node<'a>, b: &Node<'a>) -> bool {
        match (self.sys(a), self.sys(b)) {
            (Some(x), Some(y)) => sys_equiv(&x, &y),
            (None, None) => match (a, b) {
                (Node::Element(x), Node::Element(y)) => match (x.value, y.value) {
                    (Some(p), Some(q)) => json_eq(p, q),
                    _ => false,
                },
                _ => false,
            },
            _ => false,
        }
    }

    /// Whether `v` contains an item equal to `n` (for distinct/union/in).
    pub fn contains_item(&self, v: &[Node<'a>], n: &Node<'a>) -> bool {
        v.iter().any(|m| self.item_eq(m, n) == Some(true))
    }

    pub fn distinct(&self, v: Nodes<'a>) -> Nodes<'a> {
        let mut out: Nodes<'a> = Vec::with_capacity(v.len());
        for n in v {
            if !self.contains_item(&out, &n) {
                out.push(n);
            }
        }
        out
    }

    fn coll_eq(&self, a: &[Node<'a>], b: &[Node<'a>]) -> Option<bool> {
        if a.is_empty() || b.is_empty() {
            return None;
        }
        if a.len() != b.len() {
            return Some(false);
        }
        let mut unknown = false;
        for (x, y) in a.iter().zip(b) {
            match self.item_eq(x, y) {
                Some(false) => return Some(false),
                None => unknown = true,
                Some(true) => {}
            }
        }
        if unknown { None } else { Some(true) }
    }

    fn coll_equiv(&self, a: &[Node<'a>], b: &[Node<'a>]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        let mut used = vec![false; b.len()];
        'outer: for x in a {
            for (j, y) in b.iter().enumerate() {
                if !used[j] && self.item_equiv(x, y) {
                    used[j] = true;
                    continue 'outer;
                }
            }
            return false;
        }
        true
    }

    /// `<` and friends: `None` for incomparable precision or units.
    pub fn compare(&self, a: &Node<'a>, b: &Node<'a>, op: &str) -> R<Option<Ordering>> {
        let (Some(x), Some(y)) = (self.sys(a), self.sys(b)) else {
            return Err(mismatch(op, a, b));
        };
        Ok(match (&x, &y) {
            (Node::Integer(p), Node::Integer(q)) => Some(p.cmp(q)),
            (Node::Integer(_) | Node::Decimal(_), Node::Integer(_) | Node::Decimal(_)) => {
                Some(to_dec(&x).cmp_value(&to_dec(&y)))
            }
            (Node::String(p), Node::String(q)) => Some(p.as_bytes().cmp(q.as_bytes())),
            (Node::Date(p) | Node::DateTime(p), Node::Date(q) | Node::DateTime(q)) => p.compare(q),
            (Node::Time(p), Node::Time(q)) => p.compare(q),
            (Node::Quantity(p), Node::Quantity(q)) => p.compare(q),
            (Node::Quantity(p), Node::Integer(_) | Node::Decimal(_)) if &*p.unit == "1" => {
                Some(p.value.cmp_value(&to_dec(&y)))
            }
            (Node::Integer(_) | Node::Decimal(_), Node::Quantity(q)) if &*q.unit == "1" => {
                Some(to_dec(&x).cmp_value(&q.value))
            }
            (Node::String(s), Node::Date(_) | Node::DateTime(_)) if untyped(a) => {
                match DateTime::parse_datetime(s) {
                    Some(d) => return self.compare(&Node::DateTime(d), b, op),
                    None => return Err(mismatch(op, a, b)),
                }
            }
            (Node::Date(_) | Node::DateTime(_), Node::String(s)) if untyped(b) => {
                match DateTime::parse_datetime(s) {
                    Some(d) => return self.compare(a, &Node::DateTime(d), op),
                    None => return Err(mismatch(op, a, b)),
                }
            }
            _ => return Err(mismatch(op, a, b)),
        })
    }

    // ---------------------------------------------------------------- operators

    fn binary(&self, op: BinOp, l: &Expr, r: &Expr, s: Scope<'a, '_>) -> R<Nodes<'a>> {
        // Boolean operators may short-circuit.
        match op {
            BinOp::And | BinOp::Or | BinOp::Implies | BinOp::Xor => {
                let a = self.eval(l, s)?;
                let a = self.to_bool(&a, op_name(op))?;
                let short = match (op, a) {
                    (BinOp::And, Some(false)) => Some(Some(false)),
                    (BinOp::Or, Some(true)) => Some(Some(true)),
                    (BinOp::Implies, Some(false)) => Some(Some(true)),
                    _ => None,
                };
                let res = match short {
                    Some(v) => v,
                    None => {
                        let b = self.eval(r, s)?;
                        let b = self.to_bool(&b, op_name(op))?;
                        match op {
                            BinOp::And => match (a, b) {
                                (Some(true), Some(true)) => Some(true),
                                (_, Some(false)) | (Some(false), _) => Some(false),
                                _ => None,
                            },
                            BinOp::Or => match (a, b) {
                                (_, Some(true)) | (Some(true), _) => Some(true),
                                (Some(false), Some(false)) => Some(false),
                                _ => None,
                            },
                            BinOp::Xor => match (a, b) {
                                (Some(x), Some(y)) => Some(x != y),
                                _ => None,
                            },
                            _ => match (a, b) {
                                (Some(true), b) => b,
                                (None, Some(true)) => Some(true),
                                _ => None,
                            },
                        }
                    }
                };
                return Ok(res.map(Node::Boolean).into_iter().collect());
            }
            _ => {}
        }
        let a = self.eval(l, s)?;
        let b = self.eval(r, s)?;
        let boolean = |v: Option<bool>| Ok(v.map(Node::Boolean).into_iter().collect());
        match op {
            BinOp::Union => {
                let mut out = self.distinct(a);
                for n in b {
                    if !self.contains_item(&out, &n) {
                        out.push(n);
                    }
                }
                Ok(out)
            }
            BinOp::Eq => boolean(self.coll_eq(&a, &b)),
            BinOp::Ne => boolean(self.coll_eq(&a, &b).map(|v| !v)),
            BinOp::Equiv => boolean(Some(self.coll_equiv(&a, &b))),
            BinOp::NotEquiv => boolean(Some(!self.coll_equiv(&a, &b))),
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let name = op_name(op);
                let (Some(x), Some(y)) = (self.singleton(&a, name)?, self.singleton(&b, name)?)
                else {
                    return Ok(Vec::new());
                };
                let ord = self.compare(x, y, name)?;
                boolean(ord.map(|o| match op {
                    BinOp::Lt => o == Ordering::Less,
                    BinOp::Le => o != Ordering::Greater,
                    BinOp::Gt => o == Ordering::Greater,
                    _ => o != Ordering::Less,
                }))
            }
            BinOp::In | BinOp::Contains => {
                let (item, coll) = if op == BinOp::In { (&a, &b) } else { (&b, &a) };
                match self.singleton(item, op_name(op))? {
                    None => Ok(Vec::new()),
                    Some(n) => boolean(Some(self.contains_item(coll, n))),
                }
            }
            BinOp::Concat => {
                let x = self
                    .singleton(&a, "&")?
                    .map(|n| self.string_of(n))
                    .transpose()?;
                let y = self
                    .singleton(&b, "&")?
                    .map(|n| self.string_of(n))
                    .transpose()?;
                let mut s = x.unwrap_or_default();
                s.push_str(&y.unwrap_or_default());
                Ok(vec![Node::String(s.into())])
            }
            _ => {
                let name = op_name(op);
                let (Some(x), Some(y)) = (self.singleton(&a, name)?, self.singleton(&b, name)?)
                else {
                    return Ok(Vec::new());
                };
                self.arith(op, x, y)
            }
        }
    }

    fn string_of(&self, n: &Node<'a>) -> R<String> {
        match self.sys(n) {
            Some(Node::String(s)) => Ok(s.to_string()),
            _ => invalid("& needs strings"),
        }
    }

    fn arith(&self, op: BinOp, a: &Node<'a>, b: &Node<'a>) -> R<Nodes<'a>> {
        let name = op_name(op);
        let (Some(x), Some(y)) = (self.sys(a), self.sys(b)) else {
            return Err(mismatch(name, a, b));
        };
        let one = |n: Option<Node<'a>>| Ok(n.into_iter().collect());
        match (&x, &y) {
            (Node::Integer(p), Node::Integer(q)) => {
                let (p, q) = (*p, *q);
                return one(match op {
                    BinOp::Add => p.checked_add(q).map(Node::Integer),
                    BinOp::Sub => p.checked_sub(q).map(Node::Integer),
                    BinOp::Mul => p.checked_mul(q).map(Node::Integer),
                    BinOp::Div => Decimal::from_i64(p)
                        .checked_div(&Decimal::from_i64(q))
                        .map(Node::Decimal),
                    BinOp::IntDiv => (q != 0).then(|| Node::Integer(p.wrapping_div(q))),
                    BinOp::Mod => (q != 0).then(|| Node::Integer(p.wrapping_rem(q))),
                    _ => return Err(mismatch(name, a, b)),
                });
            }
            (Node::Integer(_) | Node::Decimal(_), Node::Integer(_) | Node::Decimal(_)) => {
                let (p, q) = (to_dec(&x), to_dec(&y));
                return one(match op {
                    BinOp::Add => p.checked_add(&q).map(Node::Decimal),
                    BinOp::Sub => p.checked_sub(&q).map(Node::Decimal),
                    BinOp::Mul => p.checked_mul(&q).map(Node::Decimal),
                    BinOp::Div => p.checked_div(&q).map(Node::Decimal),
                    BinOp::IntDiv => p
                        .checked_div_int(&q)
                        .and_then(|v| i64::try_from(v).ok())
                        .map(Node::Integer),
                    BinOp::Mod => p.checked_rem(&q).map(Node::Decimal),
                    _ => return Err(mismatch(name, a, b)),
                });
            }
            (Node::String(p), Node::String(q)) if op == BinOp::Add => {
                let mut s = String::with_capacity(p.len() + q.len());
                s.push_str(p);
                s.push_str(q);
                return Ok(vec![Node::String(s.into())]);
            }
            (Node::Date(d) | Node::DateTime(d), Node::Quantity(q))
                if matches!(op, BinOp::Add | BinOp::Sub) =>
            {
                let unit = q
                    .duration_unit()
                    .ok_or_else(|| EvalError::Invalid(format!("cannot add {q} to a date")))?;
                let mut n = q.value.trunc_i128() as i64;
                if op == BinOp::Sub {
                    n = -n;
                }
                let r = d.add(n, unit);
                return one(r.map(|r| {
                    if matches!(x, Node::Date(_)) {
                        Node::Date(r)
                    } else {
                        Node::DateTime(r)
                    }
                }));
            }
            (Node::Time(t), Node::Quantity(q)) if matches!(op, BinOp::Add | BinOp::Sub) => {
                let unit = q
                    .duration_unit()
                    .ok_or_else(|| EvalError::Invalid(format!("cannot add {q} to a time")))?;
                let mut n = q.value.trunc_i128() as i64;
                if op == BinOp::Sub {
                    n = -n;
                }
                return one(t.add(n, unit).map(Node::Time));
            }
            _ => {}
        }
        // Quantities (numbers promote to unit '1').
        let qa = to_quantity(&x);
        let qb = to_quantity(&y);
        if let (Some(p), Some(q)) = (qa, qb)
            && (matches!(x, Node::Quantity(_)) || matches!(y, Node::Quantity(_)))
        {
            let r = match op {
                BinOp::Add => p.add(&q),
                BinOp::Sub => p.sub(&q),
                BinOp::Mul => p.mul(&q),
                BinOp::Div => {
                    if q.value.is_zero() {
                        return Ok(Vec::new());
                    }
                    p.div(&q)
                }
                _ => return Err(mismatch(name, a, b)),
            };
            return match r {
                Some(r) => Ok(vec![Node::Quantity(r)]),
                None if matches!(op, BinOp::Add | BinOp::Sub) => Err(mismatch(name, a, b)),
                None => Ok(Vec::new()),
            };
        }
        Err(mismatch(name, a, b))
    }
}

fn untyped(n: &Node<'_>) -> bool {
    matches!(n, Node::Element(e) if e.ty.is_empty() || e.ty == "string")
}

fn to_quantity(n: &Node<'_>) -> Option<Quantity> {
    match n {
        Node::Quantity(q) => Some(q.clone()),
        Node::Integer(i) => Some(Quantity::new(Decimal::from_i64(*i), "1")),
        Node::Decimal(d) => Some(Quantity::new(*d, "1")),
        _ => None,
    }
}

pub(crate) fn to_dec(n: &Node<'_>) -> Decimal {
    match n {
        Node::Integer(i) => Decimal::from_i64(*i),
        Node::Decimal(d) => *d,
        _ => Decimal::ZERO,
    }
}

fn mismatch(op: &str, a: &Node<'_>, b: &Node<'_>) -> EvalError {
    EvalError::TypeMismatch {
        op: op.to_string(),
        left: describe(a),
        right: describe(b),
    }
}

fn describe(n: &Node<'_>) -> String {
    let t = n.type_name();
    if t.is_empty() {
        "an untyped element".into()
    } else {
        t.to_string()
    }
}

fn op_name(op: BinOp) -> &'static str {
    match op {
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::IntDiv => "div",
        BinOp::Mod => "mod",
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Concat => "&",
        BinOp::Union => "|",
        BinOp::Lt => "<",
        BinOp::Le => "<=",
        BinOp::Gt => ">",
        BinOp::Ge => ">=",
        BinOp::Eq => "=",
        BinOp::Ne => "!=",
        BinOp::Equiv => "~",
        BinOp::NotEquiv => "!~",
        BinOp::In => "in",
        BinOp::Contains => "contains",
        BinOp::And => "and",
        BinOp::Or => "or",
        BinOp::Xor => "xor",
        BinOp::Implies => "implies",
    }
}

/// `_name` in a stack buffer (no allocation per navigation step).
fn underscored<'b>(buf: &'b mut [u8; 96], name: &str) -> Option<&'b str> {
    let n = name.len();
    if n + 1 > buf.len() {
        return None;
    }
    buf[0] = b'_';
    buf[1..=n].copy_from_slice(name.as_bytes());
    std::str::from_utf8(&buf[..=n]).ok()
}

pub(crate) fn sys_eq(x: &Node<'_>, y: &Node<'_>) -> Option<bool> {
    Some(match (x, y) {
        (Node::Boolean(p), Node::Boolean(q)) => p == q,
        (Node::Integer(p), Node::Integer(q)) => p == q,
        (Node::Integer(_) | Node::Decimal(_), Node::Integer(_) | Node::Decimal(_)) => {
            to_dec(x).cmp_value(&to_dec(y)) == Ordering::Equal
        }
        (Node::String(p), Node::String(q)) => **p == **q,
        (Node::Date(p) | Node::DateTime(p), Node::Date(q) | Node::DateTime(q)) => {
            return p.compare(q).map(|o| o == Ordering::Equal);
        }
        (Node::Time(p), Node::Time(q)) => return p.compare(q).map(|o| o == Ordering::Equal),
        (Node::Quantity(p), Node::Quantity(q)) => {
            return p.compare(q).map(|o| o == Ordering::Equal);
        }
        _ => false,
    })
}

fn normalize_ws(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

pub(crate) fn sys_equiv(x: &Node<'_>, y: &Node<'_>) -> bool {
    match (x, y) {
        (Node::String(p), Node::String(q)) => normalize_ws(p) == normalize_ws(q),
        (Node::Integer(_) | Node::Decimal(_), Node::Integer(_) | Node::Decimal(_)) => {
            to_dec(x).equivalent(&to_dec(y))
        }
        (Node::Date(p) | Node::DateTime(p), Node::Date(q) | Node::DateTime(q)) => {
            p.compare(q) == Some(Ordering::Equal)
        }
        (Node::Time(p), Node::Time(q)) => p.compare(q) == Some(Ordering::Equal),
        (Node::Quantity(p), Node::Quantity(q)) => p.equivalent(q),
        _ => sys_eq(x, y) == Some(true),
    }
}

/// Structural JSON equality with numbers compared by value.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(p), Value::Number(q)) => {
            match (Decimal::parse(p.as_str()), Decimal::parse(q.as_str())) {
                (Some(x), Some(y)) => x == y,
                _ => p == q,
            }
        }
        (Value::Array(p), Value::Array(q)) => {
            p.len() == q.len() && p.iter().zip(q).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(p), Value::Object(q)) => {
            p.len() == q.len()
                && p.iter()
                    .all(|(k, v)| q.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}
