//! XML → JSON.

use quick_xml::NsReader;
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use serde_json::{Map, Number, Value};

use super::write::{checked_div, is_xml_char};
use super::{FHIR_NS, JsonKind, Shape, XHTML_NS, XmlError, is_number, shape};
use crate::definitions::{self, ElementDef};

/// Reads a FHIR XML resource as FHIR JSON, nesting at most `max_depth` levels (as JSON).
/// Refuses a DOCTYPE (no entity is ever expanded), CDATA and text outside `Narrative.div`,
/// elements and attributes the definitions do not know, and values of the wrong form;
/// each error names the element and the line and column.
pub fn from_xml(bytes: &[u8], max_depth: usize) -> Result<Value, XmlError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| XmlError::new(format!("the XML is not UTF-8: {e}"), ""))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parser = Parser {
        reader: NsReader::from_str(text),
        input: text,
        max_depth,
    };
    let root = match parser.next("")? {
        Node::Start(el) => el,
        _ => return Err(parser.error("the document has no root element", "")),
    };
    let resource = parser.resource(root, "", 1)?;
    match parser.next("")? {
        Node::Eof => {}
        _ => return Err(parser.error("there is content after the resource", "")),
    }
    if crate::json::depth(&resource) > max_depth {
        return Err(XmlError::new(
            format!("the resource nests deeper than {max_depth} levels"),
            "",
        ));
    }
    Ok(resource)
}

struct Parser<'i> {
    reader: NsReader<&'i [u8]>,
    input: &'i str,
    max_depth: usize,
}

/// The namespace of an element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ns {
    Fhir,
    Xhtml,
    Other,
}

/// The attributes FHIR defines (others in no namespace are refused).
#[derive(Default)]
struct Attrs {
    value: Option<String>,
    id: Option<String>,
    url: Option<String>,
}

/// A start tag, read.
struct Element<'i> {
    start: BytesStart<'i>,
    empty: bool,
    ns: Ns,
    attrs: Attrs,
    /// The byte offset just after the start tag.
    end_of_tag: usize,
}

impl Element<'_> {
    fn name(&self) -> String {
        String::from_utf8_lossy(self.start.local_name().as_ref()).into_owned()
    }
}

enum Node<'i> {
    Start(Element<'i>),
    End,
    Eof,
}

/// The values of one JSON member, gathered as its elements come.
struct Slot {
    key: String,
    def: &'static ElementDef,
    values: Vec<Value>,
    companions: Vec<Value>,
}

impl<'i> Parser<'i> {
    /// The next start tag, end tag or the end, skipping comments, processing instructions
    /// and whitespace.
    fn next(&mut self, path: &str) -> Result<Node<'i>, XmlError> {
        loop {
            let (ns, event) = match self.reader.read_resolved_event() {
                Ok((ResolveResult::Bound(Namespace(ns)), event)) => {
                    let ns = if ns == FHIR_NS.as_bytes() {
                        Ns::Fhir
                    } else if ns == XHTML_NS.as_bytes() {
                        Ns::Xhtml
                    } else {
                        Ns::Other
                    };
                    (ns, event)
                }
                Ok((_, event)) => (Ns::Other, event),
                Err(e) => {
                    let mut error = XmlError::new(format!("malformed XML: {e}"), path);
                    error.line = Some(self.line(self.reader.error_position() as usize));
                    return Err(error);
                }
            };
            match event {
                Event::Start(start) => return self.start(start, false, ns, path),
                Event::Empty(start) => return self.start(start, true, ns, path),
                Event::End(_) => return Ok(Node::End),
                Event::Eof => return Ok(Node::Eof),
                Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => {}
                Event::Text(_) | Event::GeneralRef(_) | Event::CData(_) => {
                    return Err(self.error(
                        "text is not allowed here (FHIR XML has values in attributes)",
                        path,
                    ));
                }
                Event::DocType(_) => {
                    return Err(self.error("a DOCTYPE is not allowed", path));
                }
                Event::Decl(decl) => {
                    if let Some(Ok(encoding)) = decl.encoding() {
                        if !encoding.eq_ignore_ascii_case(b"utf-8") {
                            return Err(self.error("the XML must be encoded in UTF-8", path));
                        }
                    }
                }
                Event::Comment(_) | Event::PI(_) => {}
            }
        }
    }

    /// A start tag; the attributes of FHIR elements are read (XHTML keeps its own).
    fn start(
        &self,
        start: BytesStart<'i>,
        empty: bool,
        ns: Ns,
        path: &str,
    ) -> Result<Node<'i>, XmlError> {
        let attrs = if ns == Ns::Fhir {
            self.attributes(&start, path)?
        } else {
            Attrs::default()
        };
        Ok(Node::Start(Element {
            start,
            empty,
            ns,
            attrs,
            end_of_tag: self.reader.buffer_position() as usize,
        }))
    }

    /// `value`, `id` and `url`; namespace declarations and attributes of other namespaces
    /// (`xsi:schemaLocation`) are passed over, any other attribute is refused.
    fn attributes(&self, start: &BytesStart<'_>, path: &str) -> Result<Attrs, XmlError> {
        let mut attrs = Attrs::default();
        for attr in start.attributes() {
            let attr = attr.map_err(|e| self.error(format!("malformed attribute: {e}"), path))?;
            if attr.key.as_namespace_binding().is_some() {
                continue;
            }
            let (ns, local) = self.reader.resolver().resolve_attribute(attr.key);
            match ns {
                ResolveResult::Unbound => {}
                ResolveResult::Bound(_) => continue,
                ResolveResult::Unknown(prefix) => {
                    return Err(self.error(
                        format!(
                            "the prefix {:?} is not declared",
                            String::from_utf8_lossy(&prefix)
                        ),
                        path,
                    ));
                }
            }
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| self.error(format!("malformed attribute value: {e}"), path))?
                .into_owned();
            if let Some(c) = value.chars().find(|c| !is_xml_char(*c)) {
                return Err(self.error(
                    format!("U+{:04X} is not allowed in XML", u32::from(c)),
                    path,
                ));
            }
            match local.as_ref() {
                b"value" => attrs.value = Some(value),
                b"id" => attrs.id = Some(value),
                b"url" => attrs.url = Some(value),
                other => {
                    return Err(self.error(
                        format!("unknown attribute {:?}", String::from_utf8_lossy(other)),
                        path,
                    ));
                }
            }
        }
        Ok(attrs)
    }

    /// A resource element (`<Patient>`) as a JSON object.
    fn resource(&mut self, el: Element<'i>, path: &str, depth: usize) -> Result<Value, XmlError> {
        let name = el.name();
        let ty = definitions::type_def(&name)
            .filter(|_| el.ns == Ns::Fhir && crate::is_resource_type(&name))
            .map(|t| t.name)
            .ok_or_else(|| {
                if el.ns == Ns::Fhir {
                    self.error(format!("unknown resource type {name:?}"), path)
                } else {
                    self.error(format!("<{name}> is not in the namespace {FHIR_NS}"), path)
                }
            })?;
        if el.attrs.value.is_some() || el.attrs.id.is_some() || el.attrs.url.is_some() {
            return Err(self.error("a resource element has no attributes", path));
        }
        let path = if path.is_empty() { ty } else { path };
        let mut obj = Map::new();
        obj.insert("resourceType".into(), Value::String(ty.into()));
        if !el.empty {
            self.children(ty, &mut obj, path, depth + 1)?;
        }
        Ok(Value::Object(obj))
    }

    /// The child elements of a value of `parent`, up to its end tag, into `obj`.
    fn children(
        &mut self,
        parent: &'static str,
        obj: &mut Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Result<(), XmlError> {
        if depth > self.max_depth {
            return Err(self.error(
                format!("the XML nests deeper than {} levels", self.max_depth),
                path,
            ));
        }
        let mut slots: Vec<Slot> = Vec::new();
        loop {
            match self.next(path)? {
                Node::End => break,
                Node::Eof => return Err(self.error("the document ends inside an element", path)),
                Node::Start(el) => self.child(parent, el, &mut slots, path, depth)?,
            }
        }
        for slot in slots {
            let array = slot.def.is_array();
            let mut put = |key: String, values: Vec<Value>| {
                if values.iter().any(|v| !v.is_null()) {
                    let value = if array {
                        Value::Array(values)
                    } else {
                        values.into_iter().next().unwrap_or_default()
                    };
                    obj.insert(key, value);
                }
            };
            let companion = format!("_{}", slot.key);
            put(slot.key, slot.values);
            put(companion, slot.companions);
        }
        Ok(())
    }

    /// One child element of a value of `parent`, added to its slot.
    fn child(
        &mut self,
        parent: &'static str,
        el: Element<'i>,
        slots: &mut Vec<Slot>,
        path: &str,
        depth: usize,
    ) -> Result<(), XmlError> {
        let name = el.name();
        let Some((def, ty)) = definitions::member(parent, &name) else {
            return Err(self.error(
                format!("unknown element <{name}>"),
                &format!("{path}.{name}"),
            ));
        };
        let shape = shape(parent, def, ty);
        let i = match slots.iter().position(|s| s.key == name) {
            Some(i) => i,
            None => {
                if let Some(other) = slots.iter().find(|s| std::ptr::eq(s.def, def)) {
                    return Err(self.error(
                        format!("<{name}> and <{}> are values of one element", other.key),
                        &format!("{path}.{name}"),
                    ));
                }
                slots.push(Slot {
                    key: name.clone(),
                    def,
                    values: Vec::new(),
                    companions: Vec::new(),
                });
                slots.len() - 1
            }
        };
        let count = slots[i].values.len();
        if count > 0 && !def.is_array() {
            return Err(self.error(
                format!("<{name}> repeats; {} has at most one", def.path),
                &format!("{path}.{name}"),
            ));
        }
        let path = if def.is_array() {
            format!("{path}.{name}[{count}]")
        } else {
            format!("{path}.{name}")
        };
        let expected_ns = if matches!(shape, Shape::Xhtml) {
            Ns::Xhtml
        } else {
            Ns::Fhir
        };
        if el.ns != expected_ns {
            let ns = if expected_ns == Ns::Xhtml {
                XHTML_NS
            } else {
                FHIR_NS
            };
            return Err(self.error(format!("<{name}> is not in the namespace {ns}"), &path));
        }
        let (value, companion) = match shape {
            Shape::Attribute => {
                return Err(self.error(
                    format!("{name} is an attribute here, not an element"),
                    &path,
                ));
            }
            Shape::Primitive(kind) => self.primitive(el, kind, &path, depth)?,
            Shape::Xhtml => (Value::String(self.xhtml(&el, &path)?), Value::Null),
            Shape::Resource => (self.wrapped_resource(el, &path, depth)?, Value::Null),
            Shape::Complex(parent) => {
                let mut obj = Map::new();
                if el.attrs.value.is_some() {
                    return Err(self.error(
                        "a value attribute on an element that is not a primitive",
                        &path,
                    ));
                }
                if let Some(id) = el.attrs.id {
                    obj.insert("id".into(), Value::String(id));
                }
                if let Some(url) = el.attrs.url {
                    if parent != "Extension" {
                        return Err(self.error("unknown attribute \"url\"", &path));
                    }
                    obj.insert("url".into(), Value::String(url));
                }
                if !el.empty {
                    self.children(parent, &mut obj, &path, depth + 1)?;
                }
                (Value::Object(obj), Value::Null)
            }
        };
        let slot = &mut slots[i];
        slot.values.push(value);
        slot.companions.push(companion);
        Ok(())
    }

    /// A primitive: its value, and its companion (`id`, extensions) or null.
    fn primitive(
        &mut self,
        el: Element<'i>,
        kind: JsonKind,
        path: &str,
        depth: usize,
    ) -> Result<(Value, Value), XmlError> {
        if el.attrs.url.is_some() {
            return Err(self.error("unknown attribute \"url\"", path));
        }
        let value = match el.attrs.value {
            None => Value::Null,
            Some(text) => self.value(kind, text, path)?,
        };
        let mut companion = Map::new();
        if let Some(id) = el.attrs.id {
            companion.insert("id".into(), Value::String(id));
        }
        if !el.empty {
            let mut extensions = Vec::new();
            loop {
                match self.next(path)? {
                    Node::End => break,
                    Node::Eof => {
                        return Err(self.error("the document ends inside an element", path));
                    }
                    Node::Start(child) => {
                        let ext_path = format!("{path}.extension[{}]", extensions.len());
                        if child.name() != "extension" || child.ns != Ns::Fhir {
                            return Err(self.error(
                                format!(
                                    "<{}> in a primitive element (only <extension> may be)",
                                    child.name()
                                ),
                                &ext_path,
                            ));
                        }
                        let mut ext = Map::new();
                        if let Some(id) = child.attrs.id {
                            ext.insert("id".into(), Value::String(id));
                        }
                        if let Some(url) = child.attrs.url {
                            ext.insert("url".into(), Value::String(url));
                        }
                        if child.attrs.value.is_some() {
                            return Err(
                                self.error("an extension has no value attribute", &ext_path)
                            );
                        }
                        if !child.empty {
                            self.children("Extension", &mut ext, &ext_path, depth + 1)?;
                        }
                        extensions.push(Value::Object(ext));
                    }
                }
            }
            if !extensions.is_empty() {
                companion.insert("extension".into(), Value::Array(extensions));
            }
        }
        if value.is_null() && companion.is_empty() {
            return Err(self.error(
                "a primitive element has neither a value nor an extension",
                path,
            ));
        }
        let companion = if companion.is_empty() {
            Value::Null
        } else {
            Value::Object(companion)
        };
        Ok((value, companion))
    }

    /// A primitive's `value` attribute as its JSON value.
    fn value(&self, kind: JsonKind, text: String, path: &str) -> Result<Value, XmlError> {
        match kind {
            JsonKind::String => Ok(Value::String(text)),
            JsonKind::Bool => match text.as_str() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(self.error(format!("{text:?} is not a boolean"), path)),
            },
            JsonKind::Decimal | JsonKind::Integer => {
                let integer = kind == JsonKind::Integer;
                let number = is_number(&text, integer)
                    .then(|| serde_json::from_str::<Number>(&text).ok())
                    .flatten()
                    .ok_or_else(|| {
                        let what = if integer { "an integer" } else { "a decimal" };
                        self.error(format!("{text:?} is not {what}"), path)
                    })?;
                Ok(Value::Number(number))
            }
        }
    }

    /// The XHTML of `Narrative.div`, verbatim from the document.
    fn xhtml(&mut self, el: &Element<'i>, path: &str) -> Result<String, XmlError> {
        let input = self.input;
        let start = input[..el.end_of_tag].rfind('<').unwrap_or(0);
        let end = if el.empty {
            el.end_of_tag
        } else {
            self.reader.read_to_end(el.start.name()).map_err(|e| {
                let mut error = XmlError::new(format!("malformed XHTML: {e}"), path);
                error.line = Some(self.line(self.reader.error_position() as usize));
                error
            })?;
            self.reader.buffer_position() as usize
        };
        let raw = &input[start..end];
        checked_div(raw, path)
            .map(|div| div.into_owned())
            .map_err(|mut e| {
                e.line = Some(self.line(start));
                e
            })
    }

    /// `<resource><Patient>…</Patient></resource>`: the one resource inside.
    fn wrapped_resource(
        &mut self,
        el: Element<'i>,
        path: &str,
        depth: usize,
    ) -> Result<Value, XmlError> {
        if el.attrs.value.is_some() || el.attrs.id.is_some() || el.attrs.url.is_some() {
            return Err(self.error("an element that holds a resource has no attributes", path));
        }
        if el.empty {
            return Err(self.error("the element holds no resource", path));
        }
        let inner = match self.next(path)? {
            Node::Start(inner) => inner,
            _ => return Err(self.error("the element holds no resource", path)),
        };
        let resource = self.resource(inner, path, depth + 1)?;
        match self.next(path)? {
            Node::End => Ok(resource),
            _ => Err(self.error("the element holds more than one resource", path)),
        }
    }

    /// An error at the reader's position.
    fn error(&self, message: impl Into<String>, path: &str) -> XmlError {
        let mut error = XmlError::new(message, path);
        error.line = Some(self.line(self.reader.buffer_position() as usize));
        error
    }

    /// The 1-based line and column of a byte offset.
    fn line(&self, offset: usize) -> (usize, usize) {
        let before = &self.input.as_bytes()[..offset.min(self.input.len())];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |p| p + 1);
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        (line, column)
    }
}
