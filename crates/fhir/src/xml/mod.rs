//! FHIR XML ⇄ FHIR JSON, driven by the generated definitions.
//!
//! [`to_xml`] writes a JSON resource as R4 XML: the root element named by `resourceType` in
//! the namespace `http://hl7.org/fhir`, elements in the order of the definitions (a choice
//! element at its `[x]` position), primitives as `<name value="…"/>` with the `id` and
//! `extension` of their `_name` companion, the `id` of elements and `Extension.url` as
//! attributes, resources inside `contained`, `Bundle.entry.resource` and the like wrapped
//! in an element named by their type, and `Narrative.div` as the XHTML it holds.
//!
//! [`from_xml`] reads such XML back: the definitions tell which elements repeat and which
//! primitives are JSON booleans or numbers. Decimals keep their exact text. A DOCTYPE, an
//! unknown element or attribute, text where FHIR has none and malformed XML are refused
//! with the location of the problem.

mod read;
mod write;

pub use read::from_xml;
pub use write::to_xml;

use crate::definitions::{self, ElementDef, TypeKind};

/// The FHIR namespace.
pub const FHIR_NS: &str = "http://hl7.org/fhir";
/// The namespace of `Narrative.div`.
pub const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";

/// Why a document cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}{}", at(.path, .line))]
pub struct XmlError {
    pub message: String,
    /// The FHIRPath of the element concerned (`Patient.name[0].given[1]`), when known.
    pub path: Option<String>,
    /// The 1-based line and column in the XML read, when reading.
    pub line: Option<(usize, usize)>,
}

fn at(path: &Option<String>, line: &Option<(usize, usize)>) -> String {
    let mut s = String::new();
    if let Some(p) = path {
        s.push_str(" at ");
        s.push_str(p);
    }
    if let Some((l, c)) = line {
        s.push_str(&format!(" (line {l}, column {c})"));
    }
    s
}

impl XmlError {
    fn new(message: impl Into<String>, path: &str) -> Self {
        XmlError {
            message: message.into(),
            path: (!path.is_empty()).then(|| path.to_owned()),
            line: None,
        }
    }
}

/// How a JSON primitive of a FHIR primitive type is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonKind {
    Bool,
    Decimal,
    /// `integer` and its profiles (`positiveInt`, `unsignedInt`).
    Integer,
    String,
}

/// How an element's value appears in XML.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// An attribute of its parent: the `id` of an element, `Extension.url`.
    Attribute,
    /// `<name value="…"/>` with the `id` and extensions of the `_name` companion.
    Primitive(JsonKind),
    /// `Narrative.div`: XHTML carried as text in JSON.
    Xhtml,
    /// A resource wrapped in an element named by its type.
    Resource,
    /// Nested elements; the parent whose children they are.
    Complex(&'static str),
}

/// The shape of a value of `def` typed `type_code` under `parent`.
fn shape(parent: &str, def: &'static ElementDef, type_code: &'static str) -> Shape {
    if type_code.starts_with("System.") {
        // `Resource.id` is an element of its own; every other System-typed element
        // (`Element.id`, `Extension.url`) is an attribute.
        return if is_resource(parent) {
            Shape::Primitive(JsonKind::String)
        } else {
            Shape::Attribute
        };
    }
    if type_code == "xhtml" {
        return Shape::Xhtml;
    }
    match definitions::type_def(type_code).map(|t| t.kind) {
        Some(TypeKind::Primitive) => Shape::Primitive(if type_code == "boolean" {
            JsonKind::Bool
        } else if type_code == "decimal" {
            JsonKind::Decimal
        } else if definitions::is_a(type_code, "integer") {
            JsonKind::Integer
        } else {
            JsonKind::String
        }),
        Some(TypeKind::Resource) => Shape::Resource,
        _ => Shape::Complex(definitions::child_parent(def, type_code)),
    }
}

/// Whether `parent` names a resource type (abstract ones included).
fn is_resource(parent: &str) -> bool {
    definitions::type_def(parent).is_some_and(|t| t.kind == TypeKind::Resource)
}

/// Whether `s` is a JSON number as FHIR writes decimals (`-?(0|[1-9][0-9]*)(\.[0-9]+)?
/// ([eE][+-]?[0-9]+)?`); with `integer`, without fraction or exponent.
fn is_number(s: &str, integer: bool) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let start = i;
    let n = digits(&mut i);
    if n == 0 || (n > 1 && b[start] == b'0') {
        return false;
    }
    if integer {
        return i == b.len();
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests;
