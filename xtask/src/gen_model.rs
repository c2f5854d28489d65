//! Emitters of the model tables behind `ember_fhir::definitions`: types, elements, search
//! parameters, compartments and required-binding value sets (see [`crate::model`]).
//!
//! The tables are flat `static` arrays of plain structs (one entry per line) with sorted keys
//! for binary search. The arrays carry `#[rustfmt::skip]` so that rustfmt leaves the one-line
//! entries alone; everything else is emitted exactly as rustfmt formats it.
//!
//! Compile time: a `&[..]` literal inside a large static is an unsizing coercion of a promoted
//! constant, and type-checking thousands of them dominates the crate's build (~6 s for the
//! elements table). The element and search-parameter tables therefore refer to interned
//! slice constants ([`Pool`]) instead, which type-check in a fraction of that.

use std::collections::HashMap;
use std::fmt::Write as _;

use anyhow::{Result, bail};

use crate::defs::Defs;
use crate::gen_defs::HEADER;
use crate::model::{self, Model};

fn lit(s: &str) -> String {
    format!("{s:?}")
}

fn opt_lit(s: Option<&str>) -> String {
    s.map_or_else(|| "None".to_string(), |s| format!("Some({s:?})"))
}

fn str_list<S: AsRef<str>>(items: &[S]) -> String {
    let items: Vec<String> = items.iter().map(|s| lit(s.as_ref())).collect();
    format!("&[{}]", items.join(", "))
}

/// Slice literals interned as named constants, numbered in order of first use.
struct Pool {
    prefix: &'static str,
    ty: &'static str,
    literals: Vec<String>,
    index: HashMap<String, usize>,
}

impl Pool {
    fn new(prefix: &'static str, ty: &'static str) -> Pool {
        Pool {
            prefix,
            ty,
            literals: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// The name of the constant holding `literal` (a `&[..]` expression).
    fn name(&mut self, literal: String) -> String {
        let next = self.literals.len();
        let i = *self.index.entry(literal.clone()).or_insert(next);
        if i == next {
            self.literals.push(literal);
        }
        format!("{}{i}", self.prefix)
    }

    fn strs<S: AsRef<str>>(&mut self, items: &[S]) -> String {
        self.name(str_list(items))
    }

    fn emit(&self, out: &mut String) {
        if self.literals.is_empty() {
            return;
        }
        out.push('\n');
        for (i, literal) in self.literals.iter().enumerate() {
            writeln!(
                out,
                "#[rustfmt::skip] const {}{i}: {} = {literal};",
                self.prefix, self.ty
            )
            .unwrap();
        }
    }
}

fn opt_display<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "None".to_string(), |v| format!("Some({v})"))
}

/// Starts a generated file: header, doc, `use` line.
fn start(doc: &str, uses: &str) -> String {
    let mut out = String::from(HEADER);
    for line in doc.lines() {
        writeln!(out, "//! {line}").unwrap();
    }
    writeln!(out, "\nuse crate::definitions::{uses};").unwrap();
    out
}

/// Opens a `#[rustfmt::skip]` static array.
fn open_array(out: &mut String, doc: &str, name: &str, ty: &str, len: usize) {
    out.push('\n');
    for line in doc.lines() {
        writeln!(out, "/// {line}").unwrap();
    }
    writeln!(
        out,
        "#[rustfmt::skip]\npub static {name}: [{ty}; {len}] = ["
    )
    .unwrap();
}

pub fn emit_types(defs: &Defs) -> Result<String> {
    let model = model::build_model(defs)?;
    let mut out = start(
        "The FHIR R4 types: primitive, complex and resource types, the abstract roots, and the\n\
         named data-type constraints (SimpleQuantity, MoneyQuantity).",
        "{TypeDef, TypeKind}",
    );
    open_array(
        &mut out,
        "Sorted by name (byte order).",
        "TYPES",
        "TypeDef",
        model.types.len(),
    );
    for t in &model.types {
        writeln!(
            out,
            "    TypeDef {{ name: {}, kind: TypeKind::{}, base: {}, is_abstract: {} }},",
            lit(&t.name),
            t.kind.rust(),
            opt_lit(t.base.as_deref()),
            t.is_abstract
        )
        .unwrap();
    }
    out.push_str("];\n");
    Ok(out)
}

pub fn emit_elements(defs: &Defs) -> Result<String> {
    let model = model::build_model(defs)?;
    emit_elements_of(&model)
}

fn emit_elements_of(model: &Model) -> Result<String> {
    let ranges = model.parent_ranges();
    if u32::try_from(model.elements.len()).is_err() {
        bail!("too many elements");
    }
    let mut out = start(
        "The elements of every type and inline backbone element, from the snapshots (roots\n\
         excluded).",
        "ElementDef",
    );
    open_array(
        &mut out,
        "Grouped by parent (see [`PARENTS`]), each group in definition order.",
        "ELEMENTS",
        "ElementDef",
        model.elements.len(),
    );
    let mut lists = Pool::new("L", "&[&str]");
    for e in &model.elements {
        writeln!(
            out,
            "    ElementDef {{ path: {}, name: {}, types: {}, targets: {}, min: {}, max: {}, content_ref: {}, required_binding: {}, summary: {} }},",
            lit(&e.path),
            lit(&e.name),
            lists.strs(&e.types),
            lists.strs(&e.targets),
            e.min,
            opt_display(e.max),
            opt_lit(e.content_ref.as_deref()),
            opt_lit(e.required_binding.as_deref()),
            e.summary,
        )
        .unwrap();
    }
    out.push_str("];\n");
    open_array(
        &mut out,
        "`(parent, start, count)`: the elements of a type name or backbone path are\n\
         `ELEMENTS[start..start + count]`. Sorted by parent (byte order).",
        "PARENTS",
        "(&str, u32, u32)",
        ranges.len(),
    );
    for (parent, start, count) in ranges {
        writeln!(out, "    ({}, {start}, {count}),", lit(parent)).unwrap();
    }
    out.push_str("];\n");
    lists.emit(&mut out);
    Ok(out)
}

pub fn emit_search_params(defs: &Defs) -> Result<String> {
    let model = model::build_model(defs)?;
    let params = model::search_params(defs)?;
    let index = model::search_index(&model, &params)?;
    if u16::try_from(params.len()).is_err() {
        bail!("too many search parameters");
    }
    let mut out = start(
        "Every SearchParameter of the package, and the parameters of each resource type.",
        "{SearchParamDef, SearchParamType}",
    );
    open_array(
        &mut out,
        "Sorted by url.",
        "SEARCH_PARAMS",
        "SearchParamDef",
        params.len(),
    );
    let mut lists = Pool::new("L", "&[&str]");
    let mut component_lists = Pool::new("C", "&[(&str, &str)]");
    for p in &params {
        let components: Vec<String> = p
            .components
            .iter()
            .map(|(d, e)| format!("({}, {})", lit(d), lit(e)))
            .collect();
        writeln!(
            out,
            "    SearchParamDef {{ code: {}, url: {}, base: {}, kind: SearchParamType::{}, expression: {}, targets: {}, comparators: {}, modifiers: {}, multiple_or: {}, multiple_and: {}, components: {} }},",
            lit(&p.code),
            lit(&p.url),
            lists.strs(&p.base),
            p.kind,
            opt_lit(p.expression.as_deref()),
            lists.strs(&p.targets),
            lists.strs(&p.comparators),
            lists.strs(&p.modifiers),
            opt_display(p.multiple_or),
            opt_display(p.multiple_and),
            component_lists.name(format!("&[{}]", components.join(", "))),
        )
        .unwrap();
    }
    out.push_str("];\n");
    open_array(
        &mut out,
        "`(resource type, indexes into SEARCH_PARAMS)`: the parameters that apply to the type,\n\
         including those based on its ancestors (Resource, DomainResource), sorted by code.\n\
         Spec examples (`SearchParameter/example*`) are left out. Sorted by type.",
        "BY_RESOURCE",
        "(&str, &[u16])",
        index.len(),
    );
    for (ty, indexes) in &index {
        let indexes: Vec<String> = indexes.iter().map(usize::to_string).collect();
        writeln!(out, "    ({}, &[{}]),", lit(ty), indexes.join(", ")).unwrap();
    }
    out.push_str("];\n");
    lists.emit(&mut out);
    component_lists.emit(&mut out);
    Ok(out)
}

pub fn emit_compartments(defs: &Defs) -> Result<String> {
    let compartments = model::compartments(defs)?;
    let mut out = start(
        "The compartments (CompartmentDefinitions of the package but the spec example).",
        "CompartmentDef",
    );
    open_array(
        &mut out,
        "Sorted by code; each lists the resource types in the compartment (sorted) with the\n\
         search parameters that link them to it.",
        "COMPARTMENTS",
        "CompartmentDef",
        compartments.len(),
    );
    for (code, resources) in &compartments {
        writeln!(
            out,
            "    CompartmentDef {{ code: {}, resources: &[",
            lit(code)
        )
        .unwrap();
        for (ty, params) in resources {
            writeln!(out, "        ({}, {}),", lit(ty), str_list(params)).unwrap();
        }
        out.push_str("    ] },\n");
    }
    out.push_str("];\n");
    Ok(out)
}

pub fn emit_value_sets(defs: &Defs) -> Result<String> {
    let model = model::build_model(defs)?;
    let value_sets = model::value_sets(defs, &model)?;
    let mut out = String::from(HEADER);
    writeln!(
        out,
        "//! The codes of the required-binding value sets that expand from the package alone\n\
         //! (whole code systems or listed concepts, no filters; at most {} codes).",
        model::MAX_VALUE_SET_CODES
    )
    .unwrap();
    open_array(
        &mut out,
        "`(ValueSet canonical, sorted (system, code) pairs)`, sorted by canonical.",
        "VALUE_SETS",
        "(&str, &[(&str, &str)])",
        value_sets.len(),
    );
    for (url, codes) in &value_sets {
        writeln!(out, "    ({}, &[", lit(url)).unwrap();
        for (system, code) in codes {
            writeln!(out, "        ({}, {}),", lit(system), lit(code)).unwrap();
        }
        out.push_str("    ]),\n");
    }
    out.push_str("];\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen_defs::{self, EMITTERS};
    use crate::model::fixture;

    #[test]
    fn pool_interns_literals_in_order_of_first_use() {
        let mut pool = Pool::new("L", "&[&str]");
        assert_eq!(pool.strs::<&str>(&[]), "L0");
        assert_eq!(pool.strs(&["a", "b"]), "L1");
        assert_eq!(pool.strs::<&str>(&[]), "L0");
        assert_eq!(pool.strs(&["a\"b"]), "L2");
        let mut out = String::new();
        pool.emit(&mut out);
        assert_eq!(
            out,
            "\n#[rustfmt::skip] const L0: &[&str] = &[];\n\
             #[rustfmt::skip] const L1: &[&str] = &[\"a\", \"b\"];\n\
             #[rustfmt::skip] const L2: &[&str] = &[\"a\\\"b\"];\n"
        );
    }

    #[test]
    fn emits_types_file() {
        let text = emit_types(&fixture::defs()).unwrap();
        let expected_start = "\
// @generated by `cargo xtask gen-defs` from hl7.fhir.r4.examples@4.0.1. Do not edit.
//! The FHIR R4 types: primitive, complex and resource types, the abstract roots, and the
//! named data-type constraints (SimpleQuantity, MoneyQuantity).

use crate::definitions::{TypeDef, TypeKind};

/// Sorted by name (byte order).
#[rustfmt::skip]
pub static TYPES: [TypeDef; 11] = [
    TypeDef { name: \"Age\", kind: TypeKind::Complex, base: Some(\"Quantity\"), is_abstract: false },
";
        assert!(text.starts_with(expected_start), "{text}");
        assert!(text.contains(
            "    TypeDef { name: \"Element\", kind: TypeKind::Complex, base: None, is_abstract: true },\n"
        ));
        assert!(text.ends_with(
            "    TypeDef { name: \"string\", kind: TypeKind::Primitive, base: Some(\"Element\"), is_abstract: false },\n];\n"
        ));
    }

    #[test]
    fn emits_elements_with_interned_lists() {
        let text = emit_elements(&fixture::defs()).unwrap();
        assert!(
            text.contains("pub static ELEMENTS: [ElementDef; 34] = [\n"),
            "{text}"
        );
        assert!(text.contains(
            "    ElementDef { path: \"Patient.deceased[x]\", name: \"deceased\", types: L5, targets: L1, min: 0, max: Some(1), content_ref: None, required_binding: None, summary: true },\n"
        ), "{text}");
        assert!(
            text.contains("#[rustfmt::skip] const L5: &[&str] = &[\"boolean\", \"dateTime\"];\n")
        );
        assert!(text.contains(
            "    ElementDef { path: \"Questionnaire.item.item\", name: \"item\", types: L6, targets: L1, min: 0, max: None, content_ref: Some(\"Questionnaire.item\"), required_binding: None, summary: false },\n"
        ), "{text}");
        assert!(text.contains("pub static PARENTS: [(&str, u32, u32); 13] = [\n"));
        assert!(
            text.contains("    (\"Patient.contact\", 16, 2),\n"),
            "{text}"
        );
        // No slice literal left in the table itself.
        let table = &text
            [text.find("pub static ELEMENTS").unwrap()..text.find("pub static PARENTS").unwrap()];
        assert!(!table.contains("&["), "{table}");
    }

    #[test]
    fn emits_search_params_compartments_and_value_sets() {
        let defs = fixture::defs();
        let text = emit_search_params(&defs).unwrap();
        assert!(text.contains("pub static SEARCH_PARAMS: [SearchParamDef; 10] = [\n"));
        assert!(text.contains(
            "kind: SearchParamType::Composite, expression: Some(\"Patient\"), targets: L1, comparators: L1, modifiers: L1, multiple_or: Some(false), multiple_and: None, components: C1 },\n"
        ), "{text}");
        assert!(text.contains("const C1: &[(&str, &str)] = &[(\"http://hl7.org/fhir/SearchParameter/Patient-gender\", \"gender\"), (\"http://hl7.org/fhir/SearchParameter/Patient-active\", \"active\")];\n"), "{text}");
        assert!(text.contains("    (\"Bundle\", &[6, 7]),\n"), "{text}");

        let text = emit_compartments(&defs).unwrap();
        assert!(text.ends_with(
            "pub static COMPARTMENTS: [CompartmentDef; 1] = [\n    CompartmentDef { code: \"Patient\", resources: &[\n        (\"Bundle\", &[\"composition\", \"message\"]),\n        (\"Patient\", &[\"link\"]),\n    ] },\n];\n"
        ), "{text}");

        let text = emit_value_sets(&defs).unwrap();
        assert!(text.contains(
            "    (\"http://hl7.org/fhir/ValueSet/units-of-time\", &[\n        (\"http://unitsofmeasure.org\", \"min\"),\n        (\"http://unitsofmeasure.org\", \"s\"),\n    ]),\n"
        ), "{text}");
    }

    /// Every generated file is deterministic, and the model tables are left unchanged by
    /// rustfmt (skipped when rustfmt is not installed).
    #[test]
    fn outputs_are_deterministic_and_rustfmt_stable() {
        let defs = fixture::defs();
        let outputs = gen_defs::generate(&defs).unwrap();
        let again = gen_defs::generate(&defs).unwrap();
        assert_eq!(outputs.len(), EMITTERS.len());
        for (a, b) in outputs.iter().zip(&again) {
            assert_eq!(a.contents, b.contents, "{}", a.path);
        }
        let dir = std::env::temp_dir().join(format!("xtask-gen-model-fmt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files: Vec<std::path::PathBuf> = outputs
            .iter()
            .filter(|out| !out.path.ends_with("/resource_types.rs"))
            .map(|out| {
                let file = dir.join(out.path.rsplit('/').next().unwrap());
                std::fs::write(&file, &out.contents).unwrap();
                file
            })
            .collect();
        let status = std::process::Command::new("rustfmt")
            .args(["--edition", "2024", "--check"])
            .args(&files)
            .status();
        let _ = std::fs::remove_dir_all(&dir);
        match status {
            Ok(status) => assert!(status.success(), "rustfmt --check failed"),
            Err(err) => eprintln!("rustfmt not available ({err}); skipping the format check"),
        }
    }
}
