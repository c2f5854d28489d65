//! The compiled search parameters of each resource type, built lazily once per type.

use std::sync::OnceLock;

use crate::definitions::{self, SearchParamDef, SearchParamType};
use crate::fhirpath::Expression;

/// A search parameter ready to evaluate.
pub(super) struct Param {
    pub def: &'static SearchParamDef,
    /// The expression narrowed to the resource type; the error text when it does not parse.
    pub expr: Result<Expression, String>,
    /// Groups of top-level elements the parameter needs one of each
    /// ([`Expression::root_elements`]): on a resource that lacks every element of a
    /// group it has no values, so it is not evaluated. The group of `expr`; for a
    /// composite of the resource itself (`Observation`), one per component.
    pub requires: Vec<Vec<String>>,
    /// Composite components: the component parameter's type and the expression
    /// (relative to each node of `expr`).
    pub components: Vec<(SearchParamType, Result<Expression, String>)>,
}

/// The parameters of one resource type.
pub(super) struct Plan {
    pub params: Vec<Param>,
    /// Parameters not evaluated: `special` ones and those without an expression.
    pub skipped: usize,
}

/// The plan of `resource_type`; None for anything but a concrete resource type.
pub(super) fn plan(resource_type: &str) -> Option<&'static Plan> {
    static PLANS: OnceLock<Box<[OnceLock<Plan>]>> = OnceLock::new();
    let types = crate::resource_types();
    let i = types.binary_search(&resource_type).ok()?;
    let plans = PLANS.get_or_init(|| types.iter().map(|_| OnceLock::new()).collect());
    Some(plans[i].get_or_init(|| build(types[i])))
}

fn compile(src: &str) -> Result<Expression, String> {
    Expression::parse(src).map_err(|e| format!("{src:?} does not parse: {e}"))
}

fn build(resource_type: &'static str) -> Plan {
    let mut params = Vec::new();
    let mut skipped = 0;
    for def in definitions::search_params(resource_type) {
        let Some(src) = def
            .expression
            .filter(|_| def.kind != SearchParamType::Special)
        else {
            skipped += 1;
            continue;
        };
        let source = narrow(src, resource_type);
        let expr = compile(&source);
        let components: Vec<(SearchParamType, Result<Expression, String>)> = def
            .components
            .iter()
            .map(|(url, e)| match component_definition(def, url, e) {
                Some(c) => (c.kind, compile(e)),
                None => (
                    SearchParamType::Special,
                    Err(format!("unknown component definition {url}")),
                ),
            })
            .collect();
        let requires = if source == resource_type {
            // Each component is evaluated on the resource, and one without values
            // leaves the composite without any.
            components
                .iter()
                .filter_map(|(_, c)| c.as_ref().ok().and_then(Expression::root_elements))
                .collect()
        } else {
            expr.as_ref()
                .ok()
                .and_then(Expression::root_elements)
                .into_iter()
                .collect()
        };
        params.push(Param {
            def,
            expr,
            requires,
            components,
        });
    }
    Plan { params, skipped }
}

/// Whether a union term of `def`'s expression ends in the path `expr` (`Observation.code`
/// for `code`).
fn selects(def: &SearchParamDef, expr: &str) -> bool {
    let suffix = format!(".{expr}");
    def.expression.is_some_and(|src| {
        union_terms(src)
            .unwrap_or_else(|| vec![src])
            .iter()
            .any(|t| t.trim_end_matches(')').ends_with(&suffix))
    })
}

/// The definition of the component `(url, expr)` of `composite`: the listed one, unless
/// its expression does not select `expr` but exactly one other component's does. R4
/// 4.0.1 swaps the definitions of DocumentReference-relationship's components (`code` is
/// given the reference param `relatesto`, `target` the token param `relation`).
fn component_definition(
    composite: &SearchParamDef,
    url: &str,
    expr: &str,
) -> Option<&'static SearchParamDef> {
    let listed = definitions::search_param_by_url(url)?;
    if selects(listed, expr) {
        return Some(listed);
    }
    let mut others = composite
        .components
        .iter()
        .filter(|(u, _)| *u != url)
        .filter_map(|(u, _)| definitions::search_param_by_url(u))
        .filter(|d| selects(d, expr));
    match (others.next(), others.next()) {
        (Some(d), None) => Some(d),
        _ => Some(listed),
    }
}

/// The top-level terms of a union (`a | (b as X) | c.where(d = 'x|y')`), or None when the
/// expression has other top-level operators.
pub(super) fn union_terms(src: &str) -> Option<Vec<&str>> {
    let mut terms = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None::<u8>, 0);
    let bytes = src.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == b'\\' {
                i += 1;
            } else if b == q {
                quote = None;
            }
        } else {
            match b {
                b'\'' | b'`' | b'"' => quote = Some(b),
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth -= 1,
                b'|' if depth == 0 => {
                    terms.push(src[start..i].trim());
                    start = i + 1;
                }
                b'=' | b'<' | b'>' | b'!' | b'~' | b'&' | b'+' | b'-' | b'*' | b'/'
                    if depth == 0 =>
                {
                    return None;
                }
                b' ' if depth == 0 => {
                    let word = src[i + 1..].split([' ', '(']).next().unwrap_or("");
                    if matches!(
                        word,
                        "and" | "or" | "xor" | "implies" | "in" | "contains" | "div" | "mod"
                    ) {
                        return None;
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    terms.push(src[start..].trim());
    Some(terms)
}

/// The expression with the union terms that start from another resource type left out
/// (`AllergyIntolerance.patient | CarePlan.subject…` on a CarePlan). Such terms select
/// nothing on this type; multi-base parameters (`clinical-patient`) have up to 30 of them.
/// The expression is unchanged when nothing is left out or it is not a plain union.
pub(super) fn narrow(src: &str, resource_type: &str) -> String {
    let Some(terms) = union_terms(src) else {
        return src.to_string();
    };
    let kept: Vec<&str> = terms
        .iter()
        .copied()
        .filter(|t| {
            let head = t.trim_start_matches(|c: char| c == '(' || c.is_whitespace());
            let ident = head
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("");
            ident == resource_type || !crate::is_resource_type(ident)
        })
        .collect();
    if kept.len() == terms.len() {
        src.to_string()
    } else {
        kept.join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unions_split_at_top_level_only() {
        assert_eq!(
            union_terms("A.b | (A.c as Quantity) | A.d.where(e = 'x|y')"),
            Some(vec!["A.b", "(A.c as Quantity)", "A.d.where(e = 'x|y')"])
        );
        assert_eq!(union_terms("A.b"), Some(vec!["A.b"]));
        assert_eq!(union_terms("A.b | A.c = 'x'"), None);
        assert_eq!(union_terms("A.b and A.c"), None);
    }

    #[test]
    fn narrows_multi_base_expressions() {
        let patient = definitions::search_param("Observation", "patient").unwrap();
        let src = patient.expression.unwrap();
        assert!(src.contains("CarePlan.subject"));
        assert_eq!(
            narrow(src, "Observation"),
            "Observation.subject.where(resolve() is Patient)"
        );
        assert_eq!(narrow("Resource.id", "Patient"), "Resource.id");
        assert_eq!(
            narrow("(Patient.a as X) | (Group.b as Y)", "Patient"),
            "(Patient.a as X)"
        );
    }

    #[test]
    fn narrowing_only_drops_terms_of_other_types() {
        for ty in crate::resource_types() {
            for def in definitions::search_params(ty) {
                let Some(src) = def.expression else { continue };
                let narrowed = narrow(src, ty);
                let Some(all) = union_terms(src) else {
                    assert_eq!(narrowed, src);
                    continue;
                };
                let kept = union_terms(&narrowed).unwrap();
                assert!(
                    !narrowed.is_empty(),
                    "{ty} {}: nothing left of {src}",
                    def.code
                );
                for t in &all {
                    let head = t.trim_start_matches('(');
                    let other = crate::resource_types()
                        .iter()
                        .any(|o| o != ty && head.starts_with(&format!("{o}.")));
                    assert_eq!(kept.contains(t), !other, "{ty} {}: {t}", def.code);
                }
            }
        }
    }

    #[test]
    fn swapped_component_definitions_are_corrected() {
        let rel = definitions::search_param("DocumentReference", "relationship").unwrap();
        let kinds: Vec<_> = rel
            .components
            .iter()
            .map(|(u, e)| component_definition(rel, u, e).unwrap().kind)
            .collect();
        assert_eq!(kinds, [SearchParamType::Token, SearchParamType::Reference]);
        // Every other composite keeps its listed definitions.
        for def in definitions::all_search_params() {
            for (url, e) in def.components {
                let chosen = component_definition(def, url, e).unwrap();
                if def.code != "relationship" || !def.url.contains("DocumentReference") {
                    assert_eq!(chosen.url, *url, "{} {e}", def.url);
                }
            }
        }
    }

    #[test]
    fn plans_are_built_once() {
        let a = plan("Patient").unwrap() as *const Plan;
        let b = plan("Patient").unwrap() as *const Plan;
        assert_eq!(a, b);
        assert!(plan("Nope").is_none());
        assert!(plan("DomainResource").is_none());
    }
}
