//! The items of a FHIRPath collection: borrowed JSON elements carrying their FHIR
//! type, or values computed by the evaluator (System types).

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde_json::Value;

use super::decimal::Decimal;
use super::model::Model;
use super::quantity::Quantity;
use super::temporal::{DateTime, Time};

/// A string borrowed from the resource or shared by the evaluator.
#[derive(Clone, Debug)]
pub enum Str<'a> {
    Borrowed(&'a str),
    Shared(Arc<str>),
}

impl Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            Str::Borrowed(s) => s,
            Str::Shared(s) => s,
        }
    }
}

impl From<String> for Str<'_> {
    fn from(s: String) -> Self {
        Str::Shared(Arc::from(s))
    }
}

/// A JSON element of the resource and its FHIR type.
#[derive(Clone, Copy, Debug)]
pub struct Element<'a> {
    /// The JSON value; `None` for a primitive known only by its `_name` sibling.
    pub(crate) value: Option<&'a Value>,
    /// The `_name` sibling of a primitive (id and extensions).
    pub(crate) ext: Option<&'a Value>,
    /// FHIR type code (`HumanName`, `string`, `Patient`, `BackboneElement`,
    /// `System.String`), or `""` when unknown.
    pub(crate) ty: &'static str,
    /// Where the model lists this element's children (type name or backbone path).
    pub(crate) path: &'static str,
}

impl<'a> Element<'a> {
    pub fn json(&self) -> Option<&'a Value> {
        self.value
    }
    pub fn extension_json(&self) -> Option<&'a Value> {
        self.ext
    }
    pub fn type_name(&self) -> &'static str {
        self.ty
    }
}

/// One item of a collection.
#[derive(Clone, Debug)]
pub enum Node<'a> {
    /// A part of the resource, with its FHIR type.
    Element(Element<'a>),
    Boolean(bool),
    Integer(i64),
    Decimal(Decimal),
    String(Str<'a>),
    Date(DateTime),
    DateTime(DateTime),
    Time(Time),
    Quantity(Quantity),
    /// The result of `type()`: `namespace` is `FHIR` or `System`.
    TypeInfo {
        namespace: &'static str,
        name: &'static str,
    },
}

impl<'a> Node<'a> {
    /// A whole resource (its type taken from `resourceType`).
    pub fn resource(json: &'a Value) -> Node<'a> {
        resource_node(json, &super::model::DEFINITIONS)
    }

    /// The borrowed JSON of an element node.
    pub fn as_json(&self) -> Option<&'a Value> {
        match self {
            Node::Element(e) => e.value,
            _ => None,
        }
    }

    pub fn as_element(&self) -> Option<&Element<'a>> {
        match self {
            Node::Element(e) => Some(e),
            _ => None,
        }
    }

    /// The FHIR type code of an element (`""` when unknown), or the System type name
    /// (`Boolean`, `String`, `Integer`, `Decimal`, `Date`, `DateTime`, `Time`,
    /// `Quantity`) of a computed value.
    pub fn type_name(&self) -> &'static str {
        match self {
            Node::Element(e) => e.ty.strip_prefix("System.").unwrap_or(e.ty),
            Node::Boolean(_) => "Boolean",
            Node::Integer(_) => "Integer",
            Node::Decimal(_) => "Decimal",
            Node::String(_) => "String",
            Node::Date(_) => "Date",
            Node::DateTime(_) => "DateTime",
            Node::Time(_) => "Time",
            Node::Quantity(_) => "Quantity",
            Node::TypeInfo { .. } => "TypeInfo",
        }
    }

    /// `FHIR` for elements of a known FHIR type, else `System`.
    pub fn namespace(&self) -> &'static str {
        match self {
            Node::Element(e) if !e.ty.is_empty() && !e.ty.starts_with("System.") => "FHIR",
            _ => "System",
        }
    }

    /// The string of a String value or a string-like primitive element.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::String(s) => Some(s),
            Node::Element(e) => e.value.and_then(Value::as_str),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Node::Boolean(b) => Some(*b),
            Node::Element(e) => e.value.and_then(Value::as_bool),
            _ => None,
        }
    }

    /// An owned JSON rendering: elements as they are, computed values as FHIR JSON
    /// primitives (Quantity as a Quantity object).
    pub fn to_json(&self) -> Value {
        match self {
            Node::Element(e) => e.value.cloned().unwrap_or(Value::Null),
            Node::Boolean(b) => Value::Bool(*b),
            Node::Integer(i) => Value::from(*i),
            Node::Decimal(d) => serde_json::from_str(&d.to_string()).unwrap_or(Value::Null),
            Node::String(s) => Value::String(s.to_string()),
            Node::Date(_) | Node::DateTime(_) | Node::Time(_) | Node::TypeInfo { .. } => {
                Value::String(self.to_string())
            }
            Node::Quantity(q) => {
                let mut m = serde_json::Map::new();
                m.insert(
                    "value".into(),
                    serde_json::from_str(&q.value.to_string()).unwrap_or(Value::Null),
                );
                m.insert("unit".into(), Value::String(q.unit.to_string()));
                if !q.is_calendar() {
                    m.insert(
                        "system".into(),
                        Value::String("http://unitsofmeasure.org".into()),
                    );
                    m.insert("code".into(), Value::String(q.unit.to_string()));
                }
                Value::Object(m)
            }
        }
    }
}

/// The FHIRPath string form of computed values; elements print their primitive
/// value, or compact JSON when complex.
impl fmt::Display for Node<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Element(e) => match e.value {
                Some(Value::String(s)) => f.write_str(s),
                Some(Value::Number(n)) => f.write_str(n.as_str()),
                Some(Value::Bool(b)) => write!(f, "{b}"),
                Some(v) => write!(f, "{v}"),
                None => Ok(()),
            },
            Node::Boolean(b) => write!(f, "{b}"),
            Node::Integer(i) => write!(f, "{i}"),
            Node::Decimal(d) => write!(f, "{d}"),
            Node::String(s) => f.write_str(s),
            Node::Date(d) | Node::DateTime(d) => d.write(f, false),
            Node::Time(t) => write!(f, "{t}"),
            Node::Quantity(q) => write!(f, "{q}"),
            Node::TypeInfo { namespace, name } => write!(f, "{namespace}.{name}"),
        }
    }
}

/// The node for a whole resource.
pub(crate) fn resource_node<'a>(json: &'a Value, model: &dyn Model) -> Node<'a> {
    let ty = json
        .get("resourceType")
        .and_then(Value::as_str)
        .and_then(|rt| model.type_info(rt))
        .map(|(n, _)| n)
        .unwrap_or("");
    Node::Element(Element {
        value: Some(json),
        ext: None,
        ty,
        path: ty,
    })
}
