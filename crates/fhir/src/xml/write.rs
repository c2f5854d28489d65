//! JSON → XML.

use quick_xml::events::Event;
use serde_json::{Map, Value};

use super::{FHIR_NS, JsonKind, Shape, XHTML_NS, XmlError, is_resource, shape};
use crate::definitions::{self, ElementDef};

/// Writes a JSON resource as FHIR XML (indented on `pretty`). Fails, naming the element,
/// on content the definitions do not know or that XML cannot carry as it is (an unknown
/// element, a value of the wrong JSON type, a character XML forbids, an empty array),
/// so that reading the XML back always gives the same JSON.
pub fn to_xml(resource: &Value, pretty: bool) -> Result<String, XmlError> {
    let obj = resource
        .as_object()
        .ok_or_else(|| XmlError::new("a resource must be a JSON object", ""))?;
    let mut writer = Writer {
        out: String::with_capacity(1024),
        pretty,
        depth: 0,
    };
    writer
        .out
        .push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    writer.resource(obj, "", true)?;
    if pretty {
        writer.out.push('\n');
    }
    Ok(writer.out)
}

struct Writer {
    out: String,
    pretty: bool,
    depth: usize,
}

/// One JSON member with its `_name` companion, resolved against the definitions.
struct Entry<'v> {
    /// The position of its element among the parent's definitions.
    index: usize,
    key: &'v str,
    def: &'static ElementDef,
    shape: Shape,
    value: Option<&'v Value>,
    companion: Option<&'v Value>,
}

impl Writer {
    /// A resource: its type's element, with the FHIR namespace on the root.
    fn resource(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        root: bool,
    ) -> Result<(), XmlError> {
        let ty = match obj.get("resourceType") {
            Some(Value::String(t)) => definitions::type_def(t)
                .filter(|_| crate::is_resource_type(t))
                .map(|d| d.name)
                .ok_or_else(|| XmlError::new(format!("unknown resource type {t:?}"), path))?,
            _ => return Err(XmlError::new("the resource has no resourceType", path)),
        };
        let path = if path.is_empty() { ty } else { path };
        self.object(ty, ty, obj, path, root)
    }

    /// `<tag attributes>children</tag>` for a complex value or a resource of `parent`.
    fn object(
        &mut self,
        tag: &str,
        parent: &'static str,
        obj: &Map<String, Value>,
        path: &str,
        xmlns: bool,
    ) -> Result<(), XmlError> {
        let entries = entries(parent, obj, path)?;
        self.indent();
        self.out.push('<');
        self.out.push_str(tag);
        if xmlns {
            self.attribute("xmlns", FHIR_NS, path)?;
        }
        let mut children = false;
        for e in &entries {
            if let Shape::Attribute = e.shape {
                let child = format!("{path}.{}", e.key);
                if e.companion.is_some() {
                    return Err(XmlError::new(
                        format!(
                            "_{} cannot be written: {} is an XML attribute",
                            e.key, e.key
                        ),
                        &child,
                    ));
                }
                let Some(Value::String(s)) = e.value else {
                    return Err(XmlError::new("must be a string", &child));
                };
                self.attribute(e.key, s, &child)?;
            } else {
                children = true;
            }
        }
        if !children {
            self.out.push_str("/>");
            return Ok(());
        }
        self.out.push('>');
        self.depth += 1;
        for e in &entries {
            if !matches!(e.shape, Shape::Attribute) {
                self.element(e, path)?;
            }
        }
        self.depth -= 1;
        self.close(tag);
        Ok(())
    }

    /// Every occurrence of one member: once, or once per array item.
    fn element(&mut self, e: &Entry<'_>, path: &str) -> Result<(), XmlError> {
        let path = format!("{path}.{}", e.key);
        if !e.def.is_array() {
            if matches!(e.value, Some(Value::Array(_)))
                || matches!(e.companion, Some(Value::Array(_)))
            {
                return Err(XmlError::new("must not be an array", &path));
            }
            return self.one(e.key, e.shape, e.value, e.companion, &path);
        }
        let values = array(e.value, e.key, &path)?;
        let companions = array(e.companion, &format!("_{}", e.key), &path)?;
        let n = match (values, companions) {
            (Some(v), Some(c)) if v.len() != c.len() => {
                return Err(XmlError::new(
                    format!("{0} and _{0} differ in length", e.key),
                    &path,
                ));
            }
            (Some(v), _) => v.len(),
            (None, Some(c)) => c.len(),
            (None, None) => 0,
        };
        // XML has no element for an item that is null in both arrays, nor a way to say
        // that every item of one array is null: refuse what would not read back the same.
        for (items, name) in [
            (values, e.key.to_owned()),
            (companions, format!("_{}", e.key)),
        ] {
            if items.is_some_and(|a| a.iter().all(Value::is_null)) {
                return Err(XmlError::new(format!("{name} holds only nulls"), &path));
            }
        }
        for i in 0..n {
            let value = values.and_then(|a| a.get(i)).filter(|v| !v.is_null());
            let companion = companions.and_then(|a| a.get(i)).filter(|v| !v.is_null());
            self.one(e.key, e.shape, value, companion, &format!("{path}[{i}]"))?;
        }
        Ok(())
    }

    /// One occurrence of an element.
    fn one(
        &mut self,
        tag: &str,
        shape: Shape,
        value: Option<&Value>,
        companion: Option<&Value>,
        path: &str,
    ) -> Result<(), XmlError> {
        if companion.is_some() && !matches!(shape, Shape::Primitive(_)) {
            return Err(XmlError::new(
                format!("_{tag} is only allowed on primitive elements"),
                path,
            ));
        }
        match shape {
            Shape::Primitive(kind) => self.primitive(tag, kind, value, companion, path),
            Shape::Xhtml => {
                let Some(Value::String(div)) = value else {
                    return Err(XmlError::new("must be a string of XHTML", path));
                };
                let div = checked_div(div, path)?;
                self.indent();
                self.out.push_str(&div);
                Ok(())
            }
            Shape::Resource => {
                let Some(Value::Object(obj)) = value else {
                    return Err(XmlError::new("must be a resource", path));
                };
                self.indent();
                self.out.push('<');
                self.out.push_str(tag);
                self.out.push('>');
                self.depth += 1;
                self.resource(obj, path, false)?;
                self.depth -= 1;
                self.close(tag);
                Ok(())
            }
            Shape::Complex(parent) => {
                let Some(Value::Object(obj)) = value else {
                    return Err(XmlError::new("must be an object", path));
                };
                self.object(tag, parent, obj, path, false)
            }
            Shape::Attribute => Err(XmlError::new("must be an attribute", path)),
        }
    }

    /// `<tag id="…" value="…">extensions</tag>`.
    fn primitive(
        &mut self,
        tag: &str,
        kind: JsonKind,
        value: Option<&Value>,
        companion: Option<&Value>,
        path: &str,
    ) -> Result<(), XmlError> {
        let (id, extensions) = match companion {
            None => (None, None),
            Some(Value::Object(c)) if c.is_empty() => {
                return Err(XmlError::new(format!("_{tag} is empty"), path));
            }
            Some(Value::Object(c)) => {
                if let Some(k) = c.keys().find(|k| *k != "id" && *k != "extension") {
                    return Err(XmlError::new(
                        format!("_{tag} may hold id and extension only, not {k:?}"),
                        path,
                    ));
                }
                let id = match c.get("id") {
                    None => None,
                    Some(Value::String(s)) => Some(s.as_str()),
                    Some(_) => {
                        return Err(XmlError::new(format!("_{tag}.id must be a string"), path));
                    }
                };
                let extensions = match c.get("extension") {
                    None => None,
                    Some(Value::Array(a)) if !a.is_empty() => Some(a),
                    Some(_) => {
                        return Err(XmlError::new(
                            format!("_{tag}.extension must be a non-empty array"),
                            path,
                        ));
                    }
                };
                (id, extensions)
            }
            Some(_) => return Err(XmlError::new(format!("_{tag} must be an object"), path)),
        };
        if value.is_none() && id.is_none() && extensions.is_none() {
            return Err(XmlError::new("has neither a value nor an extension", path));
        }
        self.indent();
        self.out.push('<');
        self.out.push_str(tag);
        if let Some(id) = id {
            self.attribute("id", id, path)?;
        }
        if let Some(value) = value {
            match (kind, value) {
                (JsonKind::Bool, Value::Bool(b)) => self.out.push_str(if *b {
                    r#" value="true""#
                } else {
                    r#" value="false""#
                }),
                (JsonKind::Decimal | JsonKind::Integer, Value::Number(n)) => {
                    let text = n.to_string();
                    if kind == JsonKind::Integer && !super::is_number(&text, true) {
                        return Err(XmlError::new(format!("{text} is not an integer"), path));
                    }
                    self.out.push_str(r#" value=""#);
                    self.out.push_str(&text);
                    self.out.push('"');
                }
                (JsonKind::String, Value::String(s)) => self.attribute("value", s, path)?,
                _ => {
                    let expected = match kind {
                        JsonKind::Bool => "a boolean",
                        JsonKind::Decimal | JsonKind::Integer => "a number",
                        JsonKind::String => "a string",
                    };
                    return Err(XmlError::new(format!("must be {expected}"), path));
                }
            }
        }
        let Some(extensions) = extensions else {
            self.out.push_str("/>");
            return Ok(());
        };
        self.out.push('>');
        self.depth += 1;
        for (i, ext) in extensions.iter().enumerate() {
            let Value::Object(ext) = ext else {
                return Err(XmlError::new("an extension must be an object", path));
            };
            self.object(
                "extension",
                "Extension",
                ext,
                &format!("{path}.extension[{i}]"),
                false,
            )?;
        }
        self.depth -= 1;
        self.close(tag);
        Ok(())
    }

    /// ` name="value"`, escaped so that an XML reader gives `value` back exactly.
    fn attribute(&mut self, name: &str, value: &str, path: &str) -> Result<(), XmlError> {
        self.out.push(' ');
        self.out.push_str(name);
        self.out.push_str("=\"");
        for c in value.chars() {
            match c {
                '&' => self.out.push_str("&amp;"),
                '<' => self.out.push_str("&lt;"),
                '>' => self.out.push_str("&gt;"),
                '"' => self.out.push_str("&quot;"),
                // Literal whitespace in an attribute is normalized to spaces by readers.
                '\t' => self.out.push_str("&#9;"),
                '\n' => self.out.push_str("&#10;"),
                '\r' => self.out.push_str("&#13;"),
                c if !is_xml_char(c) => {
                    return Err(XmlError::new(
                        format!("U+{:04X} cannot be written in XML", u32::from(c)),
                        path,
                    ));
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
        Ok(())
    }

    fn close(&mut self, tag: &str) {
        self.indent();
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
    }

    fn indent(&mut self) {
        if self.pretty {
            self.out.push('\n');
            for _ in 0..self.depth {
                self.out.push_str("  ");
            }
        }
    }
}

/// The items of an array member; an empty array or a non-array is refused.
fn array<'v>(
    value: Option<&'v Value>,
    name: &str,
    path: &str,
) -> Result<Option<&'v Vec<Value>>, XmlError> {
    match value {
        None => Ok(None),
        Some(Value::Array(a)) if !a.is_empty() => Ok(Some(a)),
        Some(Value::Array(_)) => Err(XmlError::new(format!("{name} is an empty array"), path)),
        Some(_) => Err(XmlError::new(format!("{name} must be an array"), path)),
    }
}

/// The members of `obj` under `parent`, in the order of the definitions.
fn entries<'v>(
    parent: &'static str,
    obj: &'v Map<String, Value>,
    path: &str,
) -> Result<Vec<Entry<'v>>, XmlError> {
    let defs = definitions::children(parent);
    let resource = is_resource(parent);
    let mut entries = Vec::with_capacity(obj.len());
    for (key, value) in obj {
        if resource && key == "resourceType" {
            continue;
        }
        let (name, value, companion) = match key.strip_prefix('_') {
            Some(base) if obj.contains_key(base) => continue,
            Some(base) => (base, None, Some(value)),
            None => (key.as_str(), Some(value), obj.get(&format!("_{key}"))),
        };
        let Some((def, ty)) = definitions::member(parent, name) else {
            return Err(XmlError::new(
                format!("unknown element {name:?}"),
                &format!("{path}.{name}"),
            ));
        };
        let index = defs
            .iter()
            .position(|d| std::ptr::eq(d, def))
            .unwrap_or(usize::MAX);
        entries.push(Entry {
            index,
            key: name,
            def,
            shape: shape(parent, def, ty),
            value,
            companion,
        });
    }
    entries.sort_by_key(|e| e.index);
    if let Some(w) = entries
        .windows(2)
        .find(|w| w[0].index == w[1].index && !w[0].def.is_array())
    {
        return Err(XmlError::new(
            format!("{} and {} are values of one element", w[0].key, w[1].key),
            &format!("{path}.{}", w[1].key),
        ));
    }
    Ok(entries)
}

/// Whether XML 1.0 allows `c` in a document.
pub(super) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// `div` checked as one well-formed XHTML `div` element with nothing around it, using only
/// XML's own entities; the XHTML namespace is declared on it when it is not.
pub(super) fn checked_div<'d>(
    div: &'d str,
    path: &str,
) -> Result<std::borrow::Cow<'d, str>, XmlError> {
    let bad = |why: String| {
        XmlError::new(
            format!("the narrative is not well-formed XHTML: {why}"),
            path,
        )
    };
    if let Some(c) = div.chars().find(|c| !is_xml_char(*c)) {
        return Err(bad(format!("U+{:04X} is not allowed", u32::from(c))));
    }
    let mut reader = quick_xml::Reader::from_str(div);
    let mut depth = 0usize;
    let mut declared = None;
    loop {
        let event = reader.read_event().map_err(|e| bad(e.to_string()))?;
        match &event {
            Event::Start(e) | Event::Empty(e) if depth == 0 => {
                if e.name().as_ref() != b"div" {
                    return Err(bad("it must be one <div> element".into()));
                }
                for attr in e.attributes() {
                    let attr = attr.map_err(|e| bad(e.to_string()))?;
                    if attr.key.as_ref() == b"xmlns" {
                        let value = attr
                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .map_err(|e| bad(e.to_string()))?;
                        declared = Some(value.into_owned());
                    }
                }
                if matches!(event, Event::Empty(_)) {
                    break;
                }
                depth = 1;
            }
            Event::Start(_) => depth += 1,
            Event::End(_) => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Event::GeneralRef(r) if depth > 0 => {
                if !r.is_char_ref() && !matches!(&**r, b"lt" | b"gt" | b"amp" | b"apos" | b"quot") {
                    return Err(bad(format!(
                        "&{}; is not an XML entity (use a character reference)",
                        String::from_utf8_lossy(r)
                    )));
                }
                r.resolve_char_ref().map_err(|e| bad(e.to_string()))?;
            }
            Event::Text(_)
            | Event::CData(_)
            | Event::Comment(_)
            | Event::PI(_)
            | Event::Empty(_)
                if depth > 0 => {}
            Event::Eof => return Err(bad("the <div> is not closed".into())),
            _ => return Err(bad("it must be one <div> element".into())),
        }
    }
    if reader.buffer_position() as usize != div.len() {
        return Err(bad("there is content after the </div>".into()));
    }
    match declared.as_deref() {
        Some(XHTML_NS) => Ok(div.into()),
        Some(other) => Err(bad(format!(
            "the namespace of the div is {other:?}, not {XHTML_NS:?}"
        ))),
        None => Ok(format!("<div xmlns=\"{XHTML_NS}\"{}", &div[4..]).into()),
    }
}
