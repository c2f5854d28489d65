//! Search-parameter index entries of a resource: what the search tables store.
//!
//! [`extract`] evaluates every SearchParameter of the resource's type
//! ([`definitions::search_params`]) that has a FHIRPath expression and turns the resulting
//! nodes into typed [`IndexValue`]s, by parameter type and node type:
//!
//! | param | nodes | values |
//! | --- | --- | --- |
//! | string | HumanName (family, given, prefix, suffix, text), Address (line, city, district, state, postalCode, country, text), string-like primitives | [`IndexValue::String`]: original and [`normalize`]d |
//! | token | Coding; CodeableConcept (each coding, and `text` as a text-only token unless a coding's display is the same text, normalized); Identifier (system, value, `type.text` as display); ContactPoint (system, value); boolean (`true`/`false`); code, id, string, uri… (code only: no system) | [`IndexValue::Token`] |
//! | reference | Reference (`reference` parsed by [`parse_reference`], `type`, `identifier`); canonical/uri (parsed by [`parse_canonical`]); a resource (`Bundle.entry[0].resource`: its type, id and versionId) | [`IndexValue::Reference`] |
//! | date | date, dateTime, instant (the range of their precision, [`instant::parse_range`]); Period (`[start.low, end.high)`); Timing (one range over every `event` and `repeat.boundsPeriod`) | [`IndexValue::Date`] |
//! | number | integer, decimal… | [`IndexValue::Number`]: text and [`number_range`] |
//! | quantity | Quantity and its profiles (Age, Duration, SimpleQuantity…); Money (system `urn:iso:std:iso:4217`, code = currency); Range (its low and high, as two values) | [`IndexValue::Quantity`], with [`canonical_quantity`] for UCUM |
//! | uri | uri, url, canonical, oid, uuid | [`IndexValue::Uri`] |
//! | composite | each node of the composite's expression: the cartesian product of its components' values (each component expression evaluated from that node) | [`IndexValue::Composite`] |
//! | special | not evaluated (counted in [`Extraction::skipped`]) | |
//!
//! Values are deduplicated and sorted per parameter. Primitives with only an extension
//! (`_birthDate`), display-only references and empty Periods give no value.
//!
//! Expressions are compiled once per resource type, on first use (a `Send + Sync` static).
//! Multi-base expressions (`clinical-patient`: `AllergyIntolerance.patient | CarePlan.subject…`)
//! are narrowed to the union terms of the type being indexed before compiling; the
//! others would select nothing.
//!
//! An expression that fails to parse or evaluate, or a value that is not what its type
//! says (an invalid date), does not stop the other parameters: it is reported in
//! [`Extraction::problems`] and that parameter gives no (or fewer) values. Nodes of a type
//! the parameter type cannot index at all are listed in [`Extraction::ignored`].
//! An expression that stops at an `Extension` indexes the extension's `value[x]`.
//!
//! The functions the search side needs to treat query values the same way are public:
//! [`normalize`], [`parse_reference`], [`parse_canonical`], [`number_range`],
//! [`canonical_quantity`].
//!
//! [`definitions::search_params`]: crate::definitions::search_params
//! [`instant::parse_range`]: crate::instant::parse_range

mod convert;
mod normalize;
mod plan;
mod ucum;

use std::fmt;

use serde_json::Value;

use crate::definitions::SearchParamType;
use crate::fhirpath::{Env, Node};

pub use convert::{ReferenceParts, number_range, parse_canonical, parse_reference};
pub use normalize::normalize;
pub use ucum::canonical_quantity;

/// One value of one search parameter of a resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IndexEntry {
    /// The parameter's code (`name`, `birthdate`, `_id`).
    pub code: &'static str,
    /// The SearchParameter's canonical url (unique; the code is unique per type only).
    pub url: &'static str,
    pub value: IndexValue,
}

/// A typed index value. Dates are microseconds since the Unix epoch (UTC); decimals are
/// kept as exact decimal text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IndexValue {
    /// A string, and its [`normalize`]d form for case- and accent-insensitive matching
    /// (`:exact` compares `original`, the default prefix match `normalized`).
    String {
        original: String,
        normalized: String,
    },
    /// A code with its system, and the display (Coding.display, Identifier.type.text) that
    /// `:text` searches. `text_only` marks a CodeableConcept's `text` (or an Identifier's
    /// `type.text` without system and value): then only `display` is set. A concept's
    /// `text` that one of its codings has as display (normalized) gives no value.
    Token {
        system: Option<String>,
        code: Option<String>,
        display: Option<String>,
        text_only: bool,
    },
    /// A reference:
    /// - `Type/id[/_history/v]`: `res_type`, `id`, `version`;
    /// - an absolute URL or canonical: `url` (without `/_history/v` or `|version`, which
    ///   go to `version`), and `res_type`/`id` when it ends in `Type/id`;
    /// - `#local` (a contained resource): `url` = `#local`, `res_type` = the contained
    ///   resource's type, no id;
    /// - any other relative string: `url` as written.
    ///
    /// `res_type` falls back to `Reference.type`. `identifier` is the logical reference
    /// (`Reference.identifier`: system, value) that `:identifier` searches.
    Reference {
        res_type: Option<String>,
        id: Option<String>,
        version: Option<String>,
        url: Option<String>,
        identifier: Option<(Option<String>, String)>,
    },
    /// The half-open range `[low, high)` a date, Period or Timing covers; None is open.
    Date { low: Option<i64>, high: Option<i64> },
    /// A number as written, and the half-open range its precision implies
    /// ([`number_range`]: `100` → `[99.5, 100.5)`).
    Number {
        value: String,
        low: String,
        high: String,
    },
    /// A quantity as written, and, for UCUM quantities whose unit the engine knows, the
    /// value in canonical base units with the canonical unit code
    /// ([`canonical_quantity`]: `120 mm[Hg]` → `("15998640", "g.m-1.s-2")`).
    Quantity {
        value: String,
        system: Option<String>,
        code: Option<String>,
        unit: Option<String>,
        canonical: Option<(String, String)>,
    },
    /// A uri, url or canonical, as written.
    Uri(String),
    /// An Identifier's type (one coding of `type`) with its value, for `:of-type`;
    /// extracted beside the identifier's own [`IndexValue::Token`].
    IdentifierType {
        system: String,
        code: String,
        value: String,
    },
    /// One value per component, in the order of the SearchParameter's components.
    Composite(Vec<IndexValue>),
}

impl IndexValue {
    /// `"string"`, `"token"`, `"reference"`, `"date"`, `"number"`, `"quantity"`, `"uri"`
    /// or `"composite"`.
    pub fn kind(&self) -> &'static str {
        match self {
            IndexValue::String { .. } => "string",
            IndexValue::Token { .. } | IndexValue::IdentifierType { .. } => "token",
            IndexValue::Reference { .. } => "reference",
            IndexValue::Date { .. } => "date",
            IndexValue::Number { .. } => "number",
            IndexValue::Quantity { .. } => "quantity",
            IndexValue::Uri(_) => "uri",
            IndexValue::Composite(_) => "composite",
        }
    }
}

/// Something that went wrong with one parameter; the others were extracted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: &'static str,
    pub url: &'static str,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.url, self.message)
    }
}

/// Nodes of one type that a parameter could not index (see [`Extraction::ignored`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub code: &'static str,
    pub url: &'static str,
    /// The FHIR type (`string`, `Attachment`) or System type of the nodes.
    pub node_type: &'static str,
    /// The type they could not be indexed as: the parameter's, or for a composite the
    /// component's.
    pub as_type: SearchParamType,
    pub count: usize,
}

/// The index entries of a resource.
#[derive(Debug, Clone, Default)]
pub struct Extraction {
    /// Grouped by parameter (in code order); within a parameter sorted and deduplicated.
    pub entries: Vec<IndexEntry>,
    /// Expression errors, and values that are not what their type says (an invalid
    /// date): the parameter lost these values.
    pub problems: Vec<Problem>,
    /// Nodes of a type the parameter's type cannot index, which R4 expressions select
    /// from choice elements (`Immunization.occurrence` as a string that is not a date,
    /// `Consent.source` as an Attachment for a reference, SampledData for a quantity, a
    /// Reference for a token in `Group.characteristic.value`): by design, not errors.
    /// One per parameter and node type.
    pub ignored: Vec<Ignored>,
    /// Parameters whose expression applied: evaluated, or known to select nothing from
    /// this resource (it has none of the elements the expression starts from).
    pub evaluated: usize,
    /// Parameters not evaluated: `special` ones and those without an expression
    /// (`_text`, `_content`, `_list`, `_query`…).
    pub skipped: usize,
}

/// Why a JSON value cannot be indexed at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error("not a resource: no resourceType")]
    NoResourceType,
    #[error("unknown resource type {0:?}")]
    UnknownResourceType(String),
}

/// The index entries of every search parameter of `resource`'s type.
///
/// ```
/// use ember_fhir::index::{extract, IndexValue};
/// let patient = serde_json::json!({"resourceType": "Patient", "gender": "female"});
/// let x = extract(&patient).unwrap();
/// assert!(x.problems.is_empty());
/// let gender: Vec<_> = x.entries.iter().filter(|e| e.code == "gender").collect();
/// assert_eq!(gender[0].value, IndexValue::Token {
///     system: None, code: Some("female".into()), display: None, text_only: false,
/// });
/// ```
pub fn extract(resource: &Value) -> Result<Extraction, IndexError> {
    extract_where(resource, |_| true)
}

/// [`extract`] for the parameters whose code `wanted` accepts; the others are not
/// evaluated (and count as [`Extraction::skipped`]).
pub fn extract_where(
    resource: &Value,
    wanted: impl Fn(&str) -> bool,
) -> Result<Extraction, IndexError> {
    let resource_type = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .ok_or(IndexError::NoResourceType)?;
    let plan = plan::plan(resource_type)
        .ok_or_else(|| IndexError::UnknownResourceType(resource_type.to_string()))?;
    let env = Env::new().with_var("resource", vec![Node::resource(resource)]);
    let mut out = Extraction {
        skipped: plan.skipped,
        ..Extraction::default()
    };
    let mut values = Vec::new();
    let mut ignored: Vec<(&'static str, SearchParamType)> = Vec::new();
    for param in &plan.params {
        let def = param.def;
        if !wanted(def.code) {
            out.skipped += 1;
            continue;
        }
        out.evaluated += 1;
        // Nothing to select from: no values, and nothing to evaluate.
        if param
            .requires
            .iter()
            .any(|group| !crate::fhirpath::has_any_element(resource, group))
        {
            continue;
        }
        let problems = &mut out.problems;
        let mut problem = |message: String| {
            problems.push(Problem {
                code: def.code,
                url: def.url,
                message,
            })
        };
        let nodes = match &param.expr {
            Ok(e) => e.evaluate(resource, &env),
            Err(message) => {
                problem(message.clone());
                continue;
            }
        };
        let nodes = match nodes {
            Ok(nodes) => nodes,
            Err(e) => {
                problem(format!("evaluation failed: {e}"));
                continue;
            }
        };
        values.clear();
        if def.kind == SearchParamType::Composite {
            composite(
                param,
                &nodes,
                resource,
                &env,
                &mut values,
                &mut ignored,
                &mut problem,
            );
        } else {
            for node in &nodes {
                match convert::convert(def.kind, node, resource, &mut values) {
                    Ok(true) => {}
                    Ok(false) => ignored.push((convert::type_label(node), def.kind)),
                    Err(message) => problem(message),
                }
            }
        }
        ignored.sort_unstable_by_key(|(t, k)| (*t, *k as u8));
        for group in ignored.chunk_by(|a, b| a == b) {
            out.ignored.push(Ignored {
                code: def.code,
                url: def.url,
                node_type: group[0].0,
                as_type: group[0].1,
                count: group.len(),
            });
        }
        ignored.clear();
        values.sort_unstable();
        values.dedup();
        out.entries.extend(values.drain(..).map(|value| IndexEntry {
            code: def.code,
            url: def.url,
            value,
        }));
    }
    Ok(out)
}

/// A search parameter defined at run time (a `SearchParameter` resource) for one
/// resource type: its expression narrowed to that type and compiled once. Composite and
/// special parameters are not supported.
#[derive(Debug)]
pub struct AdHocParam {
    code: String,
    kind: SearchParamType,
    source: String,
    expr: crate::fhirpath::Expression,
}

impl AdHocParam {
    /// Compiles `expression` for documents of `resource_type`; an error when the type
    /// cannot be indexed at run time or the expression does not parse.
    pub fn new(
        resource_type: &str,
        code: &str,
        kind: SearchParamType,
        expression: &str,
    ) -> Result<Self, String> {
        if matches!(kind, SearchParamType::Composite | SearchParamType::Special) {
            return Err(format!(
                "{kind:?} search parameters cannot be defined at run time"
            ));
        }
        let source = plan::narrow(expression, resource_type);
        let expr = crate::fhirpath::Expression::parse(&source)
            .map_err(|e| format!("{expression:?} does not parse: {e}"))?;
        Ok(Self {
            code: code.to_owned(),
            kind,
            source: expression.to_owned(),
            expr,
        })
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn kind(&self) -> SearchParamType {
        self.kind
    }

    /// The expression as defined (before narrowing).
    pub fn expression(&self) -> &str {
        &self.source
    }
}

/// The index values of one run-time parameter of `resource`, sorted and deduplicated.
/// Nodes its type cannot index are skipped; an evaluation error or an invalid value is
/// the error (values converted before it are lost).
///
/// ```
/// use ember_fhir::definitions::SearchParamType;
/// use ember_fhir::index::{AdHocParam, IndexValue, extract_adhoc};
/// let p = AdHocParam::new("Patient", "eye", SearchParamType::Token,
///     "Patient.extension.where(url='http://x/eye').value").unwrap();
/// let patient = serde_json::json!({"resourceType": "Patient",
///     "extension": [{"url": "http://x/eye", "valueCode": "blue"}]});
/// let values = extract_adhoc(&patient, &p).unwrap();
/// assert_eq!(values, [IndexValue::Token {
///     system: None, code: Some("blue".into()), display: None, text_only: false,
/// }]);
/// ```
pub fn extract_adhoc(resource: &Value, param: &AdHocParam) -> Result<Vec<IndexValue>, String> {
    let env = Env::new().with_var("resource", vec![Node::resource(resource)]);
    let nodes = param
        .expr
        .evaluate(resource, &env)
        .map_err(|e| format!("evaluation failed: {e}"))?;
    let mut values = Vec::new();
    for node in &nodes {
        convert::convert(param.kind, node, resource, &mut values)?;
    }
    values.sort_unstable();
    values.dedup();
    Ok(values)
}

/// The largest number of combinations a composite indexes per node.
const MAX_COMBINATIONS: usize = 1024;

fn composite<'a>(
    param: &plan::Param,
    roots: &[Node<'a>],
    resource: &'a Value,
    env: &Env<'a>,
    out: &mut Vec<IndexValue>,
    ignored: &mut Vec<(&'static str, SearchParamType)>,
    problem: &mut impl FnMut(String),
) {
    'roots: for root in roots {
        let mut combos: Vec<Vec<IndexValue>> = vec![Vec::new()];
        for (kind, expr) in &param.components {
            let expr = match expr {
                Ok(e) => e,
                Err(message) => {
                    problem(message.clone());
                    return;
                }
            };
            let nodes = match expr.evaluate_node(root.clone(), env) {
                Ok(nodes) => nodes,
                Err(e) => {
                    problem(format!("component {:?}: {e}", expr.source()));
                    return;
                }
            };
            let mut values = Vec::new();
            for node in &nodes {
                match convert::convert(*kind, node, resource, &mut values) {
                    Ok(true) => {}
                    Ok(false) => ignored.push((convert::type_label(node), *kind)),
                    Err(message) => problem(format!("component {:?}: {message}", expr.source())),
                }
            }
            if values.is_empty() {
                continue 'roots;
            }
            if combos.len() * values.len() > MAX_COMBINATIONS {
                problem(format!(
                    "more than {MAX_COMBINATIONS} combinations; the node is not indexed"
                ));
                continue 'roots;
            }
            combos = combos
                .iter()
                .flat_map(|prefix| {
                    values.iter().map(move |v| {
                        let mut c = prefix.clone();
                        c.push(v.clone());
                        c
                    })
                })
                .collect();
        }
        out.extend(combos.into_iter().map(IndexValue::Composite));
    }
}

/// Whether `resource` meets every criterion of a query, judged in memory; `None` when a
/// criterion is not a plain token parameter of its type (only those are judged here).
/// A token value is `system|code`, `code`, `|code` (no system) or `system|`, and a
/// comma separates alternatives.
pub fn matches_tokens(resource: &Value, criteria: &[(String, String)]) -> Option<bool> {
    let res_type = resource.get("resourceType")?.as_str()?;
    for (name, _) in criteria {
        let def = crate::definitions::search_param(res_type, name)?;
        if def.kind != SearchParamType::Token {
            return None;
        }
    }
    let extraction = extract(resource).ok()?;
    let one = |name: &str, wanted: &str| {
        let (want_system, want_code) = match wanted.split_once('|') {
            Some((s, c)) => (Some(s), c),
            None => (None, wanted),
        };
        extraction.entries.iter().any(|e| {
            e.code == name
                && match &e.value {
                    IndexValue::Token { system, code, .. } => {
                        let system_ok = match want_system {
                            None => true,
                            Some("") => system.is_none(),
                            Some(s) => system.as_deref() == Some(s),
                        };
                        system_ok && (want_code.is_empty() || code.as_deref() == Some(want_code))
                    }
                    _ => false,
                }
        })
    };
    Some(
        criteria
            .iter()
            .all(|(name, value)| value.split(',').any(|wanted| one(name, wanted))),
    )
}

/// Whether `resource` is in the compartment of `compartment/id` (a `Patient/p1`): it is
/// that resource, or one of its compartment-linking parameters references it. `None`
/// when its type has no place in that compartment.
pub fn in_compartment(resource: &Value, compartment: &str, id: &str) -> Option<bool> {
    let res_type = resource.get("resourceType")?.as_str()?;
    let params = crate::definitions::compartment(compartment)?.params(res_type)?;
    let own = params.contains(&"{def}") || res_type == compartment;
    if own && resource.get("id").and_then(Value::as_str) == Some(id) {
        return Some(true);
    }
    let Ok(extraction) = extract(resource) else {
        return Some(false);
    };
    Some(extraction.entries.iter().any(|e| {
        params.contains(&e.code)
            && matches!(&e.value, IndexValue::Reference { res_type: Some(t), id: Some(i), .. }
                if t == compartment && i == id)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values<'x>(x: &'x Extraction, code: &str) -> Vec<&'x IndexValue> {
        x.entries
            .iter()
            .filter(|e| e.code == code)
            .map(|e| &e.value)
            .collect()
    }

    #[test]
    fn token_criteria_in_memory() {
        let patient = json!({"resourceType": "Patient", "gender": "female",
            "identifier": [{"system": "urn:cpr", "value": "0101"}]});
        let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect()
        };
        assert_eq!(
            matches_tokens(&patient, &q(&[("identifier", "urn:cpr|0101")])),
            Some(true)
        );
        assert_eq!(
            matches_tokens(&patient, &q(&[("identifier", "0101")])),
            Some(true)
        );
        assert_eq!(
            matches_tokens(&patient, &q(&[("identifier", "urn:x|0101")])),
            Some(false)
        );
        assert_eq!(
            matches_tokens(&patient, &q(&[("identifier", "|0101")])),
            Some(false)
        );
        assert_eq!(
            matches_tokens(
                &patient,
                &q(&[("gender", "male,female"), ("identifier", "urn:cpr|")])
            ),
            Some(true)
        );
        assert_eq!(matches_tokens(&patient, &q(&[("name", "x")])), None);
        assert_eq!(matches_tokens(&patient, &q(&[("nonsense", "x")])), None);
    }

    #[test]
    fn compartment_membership() {
        let obs = json!({"resourceType": "Observation", "status": "final",
            "code": {"text": "x"}, "subject": {"reference": "Patient/p1"}});
        assert_eq!(in_compartment(&obs, "Patient", "p1"), Some(true));
        assert_eq!(in_compartment(&obs, "Patient", "p2"), Some(false));
        let patient = json!({"resourceType": "Patient", "id": "p1"});
        assert_eq!(in_compartment(&patient, "Patient", "p1"), Some(true));
        assert_eq!(in_compartment(&patient, "Patient", "p2"), Some(false));
        let medication = json!({"resourceType": "Medication"});
        assert_eq!(in_compartment(&medication, "Patient", "p1"), None);
    }

    #[test]
    fn rejects_non_resources() {
        assert_eq!(
            extract(&json!({"id": "x"})).unwrap_err(),
            IndexError::NoResourceType
        );
        assert_eq!(
            extract(&json!({"resourceType": "Nope"})).unwrap_err(),
            IndexError::UnknownResourceType("Nope".into())
        );
    }

    #[test]
    fn counts_evaluated_and_skipped_params() {
        let x = extract(&json!({"resourceType": "Patient", "id": "p"})).unwrap();
        let all = crate::definitions::search_params("Patient").len();
        assert_eq!(x.evaluated + x.skipped, all);
        // _text, _content, _list, _query, ... have no expression.
        assert!(x.skipped >= 3, "{}", x.skipped);
        assert!(x.problems.is_empty(), "{:?}", x.problems);
        assert_eq!(
            values(&x, "_id"),
            [&IndexValue::Token {
                system: None,
                code: Some("p".into()),
                display: None,
                text_only: false
            }]
        );
    }

    #[test]
    fn values_are_deduplicated_per_param() {
        let patient = json!({"resourceType": "Patient", "name": [
            {"family": "Hansen", "given": ["Ole"]}, {"family": "HANSEN", "given": ["Ole"]}
        ]});
        let x = extract(&patient).unwrap();
        let given = values(&x, "given");
        assert_eq!(given.len(), 1);
        assert_eq!(values(&x, "family").len(), 2);
    }

    #[test]
    fn local_references_name_the_contained_type() {
        let obs = json!({"resourceType": "Observation", "status": "final",
            "code": {"text": "x"},
            "contained": [{"resourceType": "Patient", "id": "p1"}],
            "subject": {"reference": "#p1"}});
        let x = extract(&obs).unwrap();
        assert_eq!(
            values(&x, "subject"),
            [&IndexValue::Reference {
                res_type: Some("Patient".into()),
                id: None,
                version: None,
                url: Some("#p1".into()),
                identifier: None
            }]
        );
        // `patient` is `subject.where(resolve() is Patient)`: the contained Patient counts.
        assert_eq!(values(&x, "patient").len(), 1);
    }

    #[test]
    fn expression_errors_do_not_stop_other_params() {
        // Month 13 is not a date: a problem for `birthdate` only.
        let patient = json!({"resourceType": "Patient", "birthDate": "1974-13", "gender": "male"});
        let x = extract(&patient).unwrap();
        assert_eq!(x.problems.len(), 1, "{:?}", x.problems);
        assert_eq!(x.problems[0].code, "birthdate");
        assert_eq!(values(&x, "gender").len(), 1);
    }

    #[test]
    fn ad_hoc_parameters() {
        let p = AdHocParam::new(
            "Patient",
            "eye-colour",
            SearchParamType::Token,
            "Patient.extension.where(url='http://example.org/eye-colour').value | Person.name",
        )
        .unwrap();
        let patient = json!({"resourceType": "Patient", "extension": [
            {"url": "http://example.org/eye-colour", "valueCodeableConcept": {"coding": [{"system": "urn:c", "code": "blue"}]}},
            {"url": "http://example.org/other", "valueCode": "x"}]});
        let v = extract_adhoc(&patient, &p).unwrap();
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(matches!(&v[0], IndexValue::Token { code: Some(c), .. } if c == "blue"));
        assert!(
            extract_adhoc(&json!({"resourceType": "Patient"}), &p)
                .unwrap()
                .is_empty()
        );
        assert!(AdHocParam::new("Patient", "x", SearchParamType::Composite, "Patient.id").is_err());
        assert!(AdHocParam::new("Patient", "x", SearchParamType::Token, "Patient.(").is_err());
        let d =
            AdHocParam::new("Patient", "b", SearchParamType::Date, "Patient.birthDate").unwrap();
        let bad = json!({"resourceType": "Patient", "birthDate": "1974-13"});
        assert!(extract_adhoc(&bad, &d).is_err());
    }

    #[test]
    fn narrowed_and_full_expressions_agree() {
        use crate::fhirpath::Expression;
        let obs = json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "1-8"}]},
            "subject": {"reference": "Patient/1"}, "encounter": {"reference": "Encounter/e"},
            "effectiveDateTime": "2020-01-01", "identifier": [{"value": "i"}]});
        let env = Env::new();
        for def in crate::definitions::search_params("Observation") {
            let Some(src) = def.expression else { continue };
            if def.kind == SearchParamType::Special {
                continue;
            }
            let full = Expression::parse(src)
                .unwrap()
                .evaluate(&obs, &env)
                .unwrap();
            let narrowed = Expression::parse(&plan::narrow(src, "Observation"))
                .unwrap()
                .evaluate(&obs, &env)
                .unwrap();
            let text = |v: &[Node<'_>]| v.iter().map(|n| n.to_json()).collect::<Vec<_>>();
            assert_eq!(text(&full), text(&narrowed), "{}", def.code);
        }
    }
}
