//! A StructureDefinition's `snapshot.element` compiled for validation: the elements
//! as a tree (children grouped by name, each group with its slices) and the invariants
//! parsed once.

use serde_json::Value;

use crate::fhirpath::Expression;
use crate::outcome::Severity;

/// Why a StructureDefinition cannot be used for validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// Ember validates against snapshots; a differential alone is not expanded.
    #[error(
        "the StructureDefinition {0} has no snapshot: Ember validates against snapshot.element only"
    )]
    NoSnapshot(String),
    /// The snapshot is not usable (no root element, an element without a path).
    #[error("the StructureDefinition {url} cannot be used: {why}")]
    Malformed { url: String, why: String },
}

/// The strength of a binding that is checked (`preferred` and `example` are not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strength {
    Required,
    Extensible,
}

impl Strength {
    pub fn as_str(self) -> &'static str {
        match self {
            Strength::Required => "required",
            Strength::Extensible => "extensible",
        }
    }
}

/// `ElementDefinition.binding` when it is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub strength: Strength,
    /// The canonical URL of the value set (`url` or `url|version`).
    pub value_set: String,
}

/// One `ElementDefinition.type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeRef {
    /// The type code (`Quantity`, `Reference`, `string`); the FHIRPath system types of
    /// `id` elements (`http://hl7.org/fhirpath/System.String`) are kept as given.
    pub code: String,
    pub profiles: Vec<String>,
    pub target_profiles: Vec<String>,
}

/// One `ElementDefinition.constraint` with an expression.
#[derive(Debug, Clone)]
pub struct Constraint {
    pub key: String,
    pub severity: Severity,
    pub human: String,
    /// The parsed expression, or why it does not parse.
    pub expression: Result<Expression, String>,
}

/// `slicing.discriminator.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscriminatorKind {
    Value,
    Pattern,
    Exists,
    Type,
    Profile,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discriminator {
    pub kind: DiscriminatorKind,
    pub path: String,
}

/// `ElementDefinition.slicing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slicing {
    pub discriminators: Vec<Discriminator>,
    pub ordered: bool,
    /// `rules` is `closed`: an item that matches no slice is an error.
    pub closed: bool,
}

/// One element of the snapshot.
#[derive(Debug, Clone)]
pub struct ElementDef {
    pub id: String,
    pub path: String,
    /// The last segment of the id without its slice name (`value[x]`, `component`).
    pub name: String,
    pub slice_name: Option<String>,
    pub min: u64,
    /// `None` for `*`.
    pub max: Option<u64>,
    pub types: Vec<TypeRef>,
    pub fixed: Option<Value>,
    pub pattern: Option<Value>,
    pub binding: Option<Binding>,
    pub constraints: Vec<Constraint>,
    pub slicing: Option<Slicing>,
}

impl ElementDef {
    /// Whether this is a choice element (`value[x]`).
    pub fn is_choice(&self) -> bool {
        self.name.ends_with("[x]")
    }

    /// The JSON name, or the prefix of the JSON names of a choice element.
    pub fn base_name(&self) -> &str {
        self.name.strip_suffix("[x]").unwrap_or(&self.name)
    }
}

/// The children of one element with one name: the element itself and its slices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub base: usize,
    pub slices: Vec<usize>,
}

/// A compiled StructureDefinition.
#[derive(Debug, Clone)]
pub struct Profile {
    pub url: String,
    pub version: Option<String>,
    /// `StructureDefinition.type`: the resource or data type constrained.
    pub type_name: String,
    pub elements: Vec<ElementDef>,
    /// The groups of children of each element, by element index.
    pub children: Vec<Vec<Group>>,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn texts(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The value of the first member `prefix…` of `e` (`fixedCode`, `patternCodeableConcept`).
fn choice_value(e: &serde_json::Map<String, Value>, prefix: &str) -> Option<Value> {
    e.iter()
        .find(|(k, _)| {
            k.len() > prefix.len()
                && k.starts_with(prefix)
                && k.as_bytes()[prefix.len()].is_ascii_uppercase()
        })
        .map(|(_, v)| v.clone())
}

fn constraint(c: &Value) -> Option<Constraint> {
    let expression = c.get("expression").and_then(Value::as_str)?;
    Some(Constraint {
        key: text(c, "key").unwrap_or_default(),
        severity: match c.get("severity").and_then(Value::as_str) {
            Some("warning") => Severity::Warning,
            _ => Severity::Error,
        },
        human: text(c, "human").unwrap_or_default(),
        expression: Expression::parse(expression).map_err(|e| e.to_string()),
    })
}

fn slicing(s: &Value) -> Slicing {
    let discriminators = s
        .get("discriminator")
        .and_then(Value::as_array)
        .map(|ds| {
            ds.iter()
                .filter_map(|d| {
                    let kind = match d.get("type").and_then(Value::as_str)? {
                        "value" => DiscriminatorKind::Value,
                        "pattern" => DiscriminatorKind::Pattern,
                        "exists" => DiscriminatorKind::Exists,
                        "type" => DiscriminatorKind::Type,
                        "profile" => DiscriminatorKind::Profile,
                        _ => return None,
                    };
                    Some(Discriminator {
                        kind,
                        path: text(d, "path")?,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Slicing {
        discriminators,
        ordered: s.get("ordered").and_then(Value::as_bool).unwrap_or(false),
        closed: s.get("rules").and_then(Value::as_str) == Some("closed"),
    }
}

fn element(e: &Value) -> Option<ElementDef> {
    let obj = e.as_object()?;
    let path = text(e, "path")?;
    let slice_name = text(e, "sliceName");
    let id = text(e, "id").unwrap_or_else(|| match &slice_name {
        Some(s) => format!("{path}:{s}"),
        None => path.clone(),
    });
    let last = id.rsplit('.').next().unwrap_or(&id);
    let name = last.split(':').next().unwrap_or(last).to_owned();
    let types = e
        .get("type")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .filter_map(|t| {
                    Some(TypeRef {
                        code: text(t, "code")?,
                        profiles: texts(t, "profile"),
                        target_profiles: texts(t, "targetProfile"),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let binding = e.get("binding").and_then(|b| {
        let strength = match b.get("strength").and_then(Value::as_str)? {
            "required" => Strength::Required,
            "extensible" => Strength::Extensible,
            _ => return None,
        };
        Some(Binding {
            strength,
            value_set: text(b, "valueSet")?,
        })
    });
    Some(ElementDef {
        min: e.get("min").and_then(Value::as_u64).unwrap_or(0),
        max: match e.get("max").and_then(Value::as_str) {
            Some("*") | None => None,
            Some(m) => m.parse().ok(),
        },
        types,
        fixed: choice_value(obj, "fixed"),
        pattern: choice_value(obj, "pattern"),
        binding,
        constraints: e
            .get("constraint")
            .and_then(Value::as_array)
            .map(|cs| cs.iter().filter_map(constraint).collect())
            .unwrap_or_default(),
        slicing: e.get("slicing").map(slicing),
        id,
        path,
        name,
        slice_name,
    })
}

impl Profile {
    /// Compiles a StructureDefinition from its `snapshot.element`.
    pub fn compile(sd: &Value) -> Result<Profile, ProfileError> {
        let url = text(sd, "url").unwrap_or_else(|| "(without url)".to_owned());
        let malformed = |why: &str| ProfileError::Malformed {
            url: url.clone(),
            why: why.to_owned(),
        };
        let Some(snapshot) = sd
            .pointer("/snapshot/element")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
        else {
            return Err(ProfileError::NoSnapshot(url));
        };
        let elements: Vec<ElementDef> = snapshot
            .iter()
            .map(|e| element(e).ok_or_else(|| malformed("an element has no path")))
            .collect::<Result<_, _>>()?;
        if elements[0].id.contains('.') {
            return Err(malformed("the first element is not the root"));
        }
        let type_name = text(sd, "type").unwrap_or_else(|| elements[0].path.clone());
        let mut children: Vec<Vec<Group>> = vec![Vec::new(); elements.len()];
        let index: std::collections::HashMap<&str, usize> = elements
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id.as_str(), i))
            .collect();
        for (i, e) in elements.iter().enumerate().skip(1) {
            let Some((parent_id, _)) = e.id.rsplit_once('.') else {
                continue;
            };
            let Some(&parent) = index.get(parent_id) else {
                continue;
            };
            let groups = &mut children[parent];
            let is_slice =
                e.slice_name.is_some() || e.id.rsplit('.').next().is_some_and(|s| s.contains(':'));
            match groups.iter_mut().find(|g| elements[g.base].name == e.name) {
                Some(g) if is_slice => g.slices.push(i),
                None if !is_slice => groups.push(Group {
                    base: i,
                    slices: Vec::new(),
                }),
                // A second base element of one name, or a slice without its base.
                _ => {}
            }
        }
        Ok(Profile {
            url,
            version: text(sd, "version"),
            type_name,
            elements,
            children,
        })
    }

    /// The canonical URLs of the profiles this one refers to through `type.profile` and
    /// `type.targetProfile`.
    pub fn referenced(&self) -> impl Iterator<Item = &str> {
        self.elements
            .iter()
            .flat_map(|e| &e.types)
            .flat_map(|t| t.profiles.iter().chain(&t.target_profiles))
            .map(String::as_str)
    }
}
