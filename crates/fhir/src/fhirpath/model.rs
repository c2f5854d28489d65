//! What the evaluator needs to know about FHIR types, behind a small trait so the
//! engine can be tested (or run) with other model information. The default,
//! [`DefinitionsModel`], reads the generated R4 definitions.

use crate::definitions;

/// The kind of a named type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Primitive,
    Complex,
    Resource,
}

/// One JSON property of an element, as the model knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prop {
    /// FHIRPath name (`value` for `valueQuantity`).
    pub name: &'static str,
    /// FHIR type code of the value (`Quantity`, `string`, `BackboneElement`,
    /// `System.String`, `Resource`).
    pub ty: &'static str,
    /// Where to look up this value's own children: a type name or a backbone
    /// path (`Patient.contact`).
    pub path: &'static str,
    /// Whether the element is a choice (`value[x]`).
    pub choice: bool,
}

pub trait Model: Send + Sync {
    /// The JSON property `json_name` of an element whose children are listed under
    /// `parent` (a type name or backbone path).
    fn property(&self, parent: &str, json_name: &str) -> Option<Prop>;
    /// Whether `parent` defines an element called `name` (choices by base name).
    fn has_element(&self, parent: &str, name: &str) -> bool;
    /// The canonical (static) spelling of a known type name, and its kind.
    fn type_info(&self, name: &str) -> Option<(&'static str, Kind)>;
    /// Whether `ty` is `base` or derives from it.
    fn is_a(&self, ty: &str, base: &str) -> bool;
}

/// The model backed by the generated R4 definitions.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefinitionsModel;

pub static DEFINITIONS: DefinitionsModel = DefinitionsModel;

impl Model for DefinitionsModel {
    fn property(&self, parent: &str, json_name: &str) -> Option<Prop> {
        let (def, ty) = definitions::member(parent, json_name)?;
        // The few elements typed System.String in the definitions have a FHIR type
        // in FHIRPath: Resource.id is an id, Element.id a string, Extension.url a uri.
        let ty = match (ty, def.name) {
            ("System.String", "id") => {
                let resource = definitions::type_def(parent)
                    .is_some_and(|t| matches!(t.kind, definitions::TypeKind::Resource));
                if resource { "id" } else { "string" }
            }
            ("System.String", "url") => "uri",
            _ => ty,
        };
        Some(Prop {
            name: def.name,
            ty,
            path: definitions::child_parent(def, ty),
            choice: def.path.ends_with("[x]"),
        })
    }

    fn has_element(&self, parent: &str, name: &str) -> bool {
        definitions::children(parent).iter().any(|d| d.name == name)
    }

    fn type_info(&self, name: &str) -> Option<(&'static str, Kind)> {
        let t = definitions::type_def(name)?;
        let kind = match t.kind {
            definitions::TypeKind::Primitive => Kind::Primitive,
            definitions::TypeKind::Complex => Kind::Complex,
            definitions::TypeKind::Resource => Kind::Resource,
        };
        Some((t.name, kind))
    }

    fn is_a(&self, ty: &str, base: &str) -> bool {
        ty == base || definitions::is_a(ty, base)
    }
}

/// A model that knows nothing: navigation still works from the JSON alone
/// (choice types are recognised by their suffix), but types are not known.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoModel;

impl Model for NoModel {
    fn property(&self, _: &str, _: &str) -> Option<Prop> {
        None
    }
    fn has_element(&self, _: &str, _: &str) -> bool {
        false
    }
    fn type_info(&self, _: &str) -> Option<(&'static str, Kind)> {
        None
    }
    fn is_a(&self, ty: &str, base: &str) -> bool {
        ty == base
    }
}
