//! Patient timelines: the index entries that let a search pinned to one patient read
//! about as many rows as its page needs, however long the patient's history.
//!
//! A document in a patient's compartment has an entry under its type's timeline key
//! ([`any_key`]) and one per coded value of its type's `code` parameter, each carrying
//! the document's latest date (of its type's [`date_param`]) and last-updated time
//! ([`ember_store::Timeline`]). [`path`] recognizes the searches the entries serve:
//! a filter pins one patient, and either a `code=system|code` pins the code or the
//! sort is `-date` or `-_lastUpdated`. The store then reads the entries in sort order
//! and checks every filter on each, so "the latest 50 SpO2 readings of this patient"
//! reads about 50 entries whether the patient has a hundred readings or fifty thousand.
//!
//! The entries are an access path only: the search's own filters decide what matches,
//! so a document in the compartment through another parameter (`performer`) never
//! passes a `subject` search, and a search without a path finds the same documents.
//!
//! Documents written by an earlier release have no entries; the store lists them
//! ([`ember_store::Maintenance::stale_timeline`]) and ignores the path until the
//! background work ([`crate::Repo::refresh_timeline`]) has put them in.

use ember_fhir::definitions::{self, SearchParamType};
use ember_store::{
    Col, Cond, Filter, IndexRows, Op, Rows, Sort, SortKey, Table, Timeline, TimelineEntry,
    TimelinePath, Val, key,
};

/// The compartment whose members have timelines.
const COMPARTMENT: &str = "Patient";

/// The date parameter that orders a type's timeline: `date` where the type has one,
/// else the one that says when the record was made.
pub(crate) fn date_param(res_type: &str) -> &'static str {
    const OTHERS: &[(&str, &str)] = &[
        ("Condition", "recorded-date"),
        ("Media", "created"),
        ("MedicationAdministration", "effective-time"),
        ("MedicationRequest", "authoredon"),
        ("MedicationStatement", "effective"),
        ("QuestionnaireResponse", "authored"),
        ("ServiceRequest", "authored"),
        ("Specimen", "collected"),
    ];
    OTHERS
        .iter()
        .find(|(t, _)| *t == res_type)
        .map_or("date", |(_, p)| p)
}

/// The key of the entries of `res_type` without a code.
pub(crate) fn any_key(res_type: &str) -> i64 {
    key(res_type, "*")
}

fn code_key(res_type: &str) -> Option<i64> {
    definitions::search_param(res_type, "code")
        .filter(|d| d.kind == SearchParamType::Token)
        .map(|_| key(res_type, "code"))
}

fn date_key(res_type: &str) -> i64 {
    key(res_type, date_param(res_type))
}

fn updated_key(res_type: &str) -> i64 {
    key(res_type, "_lastUpdated")
}

/// The compartment key of `Patient/id`.
fn patient_key(id: &str) -> i64 {
    key(COMPARTMENT, id)
}

/// The parameters that put a `res_type` in a patient's compartment.
fn linking_params(res_type: &str) -> &'static [&'static str] {
    definitions::compartment(COMPARTMENT)
        .and_then(|c| c.params(res_type))
        .unwrap_or(&[])
}

/// The timeline entries of a document of `res_type` with index rows `rows`.
pub(crate) fn entries(res_type: &str, rows: &IndexRows) -> Timeline {
    let mut timeline = Timeline {
        date_key: date_key(res_type),
        updated_key: updated_key(res_type),
        entries: Vec::new(),
    };
    let linking: Vec<i64> = linking_params(res_type)
        .iter()
        .map(|p| key(res_type, p))
        .collect();
    let mut patients: Vec<i64> = rows
        .references
        .iter()
        .filter(|r| linking.contains(&r.slot.p) && r.target_type.as_deref() == Some(COMPARTMENT))
        .filter_map(|r| r.target_id.as_deref().map(patient_key))
        .collect();
    patients.sort_unstable();
    patients.dedup();
    let code = code_key(res_type);
    let codings: Vec<(&String, &String)> = rows
        .tokens
        .iter()
        .filter(|t| Some(t.slot.p) == code)
        .filter_map(|t| t.system.as_ref().zip(t.code.as_ref()))
        .collect();
    for cmp in patients {
        timeline.entries.push(TimelineEntry {
            cmp,
            p: any_key(res_type),
            system: String::new(),
            code: String::new(),
        });
        for (system, c) in &codings {
            timeline.entries.push(TimelineEntry {
                cmp,
                p: code.unwrap_or_default(),
                system: (*system).clone(),
                code: (*c).clone(),
            });
        }
    }
    timeline
}

/// The timeline path of a search of `types` with `filters` and `sort`, when one
/// serves it better than the filters' own rows: a filter pins one patient, and the
/// code is pinned too or the sort reads the entries in order. The code filter, and a
/// compartment filter, are implied by the entries read (see [`entries`]): the store
/// need not check them again.
pub(crate) fn path(types: &[String], filters: &[Filter], sort: &[Sort]) -> Option<TimelinePath> {
    let [res_type] = types else { return None };
    let mut implied = Vec::new();
    let (patient, exactly) = filters
        .iter()
        .enumerate()
        .find_map(|(i, f)| pinned_patient(res_type, f).map(|p| (p, i)))
        .map(|(p, i)| (p, (is_compartment(res_type, &filters[i])).then_some(i)))?;
    implied.extend(exactly);
    let code = code_key(res_type);
    let coding = code.and_then(|k| {
        filters
            .iter()
            .enumerate()
            .find_map(|(i, f)| pinned_coding(k, f).map(|c| (c, i)))
    });
    implied.extend(coding.as_ref().map(|(_, i)| *i));
    let coding = coding.map(|(c, _)| c);
    let (date_key, updated_key) = (date_key(res_type), updated_key(res_type));
    let in_order = sort.first().is_some_and(|s| {
        s.desc
            && matches!(&s.key, SortKey::Rows { table: Table::Date, keys, .. }
                if keys.as_slice() == [date_key] || keys.as_slice() == [updated_key])
    });
    if coding.is_none() && !in_order {
        return None;
    }
    let at_least = filters
        .iter()
        .filter_map(|f| match f {
            Filter::Has(rows) if rows.table == Table::Date && rows.keys == [date_key] => {
                all_lower_bound(&rows.conds)
            }
            _ => None,
        })
        .max();
    let (p, (system, code)) = match (coding, code) {
        (Some(coding), Some(k)) => (k, coding),
        _ => (any_key(res_type), Default::default()),
    };
    Some(TimelinePath {
        cmp: patient_key(&patient),
        p,
        system,
        code,
        at_least,
        date_key,
        updated_key,
        implied,
    })
}

/// Whether a (pinning) filter is exactly membership of the compartment, through every
/// linking parameter: the entries of that compartment meet it already.
fn is_compartment(res_type: &str, f: &Filter) -> bool {
    let Filter::Has(rows) = f else { return false };
    let mut keys: Vec<i64> = linking_params(res_type)
        .iter()
        .map(|p| key(res_type, p))
        .collect();
    let mut have = rows.keys.clone();
    keys.sort_unstable();
    have.sort_unstable();
    keys == have
}

/// The patient a filter pins: a reference (or compartment) filter on parameters that
/// put a document in the patient's compartment, to exactly one `Patient/id`.
fn pinned_patient(res_type: &str, f: &Filter) -> Option<String> {
    let Filter::Has(rows) = f else { return None };
    if rows.table != Table::Reference || rows.keys.is_empty() {
        return None;
    }
    let linked = linked_params(res_type);
    let params: Vec<&str> = rows
        .keys
        .iter()
        .map(|k| linked.iter().find(|(_, pk)| pk == k).map(|(p, _)| *p))
        .collect::<Option<_>>()?;
    let eqs = equalities(&rows.conds)?;
    let id = match eqs.as_slice() {
        [(Col::TargetId, id)] => {
            // Without a type, only parameters whose values are all patients pin one.
            params
                .iter()
                .all(|p| patients_only(res_type, p))
                .then_some(id)?
        }
        [(Col::TargetId, id), (Col::TargetType, t)]
        | [(Col::TargetType, t), (Col::TargetId, id)]
            if *t == COMPARTMENT =>
        {
            id
        }
        _ => return None,
    };
    Some((*id).to_owned())
}

/// Whether every value of reference parameter `code` of `res_type` is a patient: it
/// targets patients only, or its expression keeps only references to patients.
fn patients_only(res_type: &str, code: &str) -> bool {
    let Some(def) = definitions::search_param(res_type, code) else {
        return false;
    };
    def.targets == [COMPARTMENT] || {
        let parts = expression_parts(res_type, code);
        !parts.is_empty() && parts.iter().all(|p| p.ends_with(PATIENTS_ONLY))
    }
}

/// The end of a path that keeps only references to patients.
const PATIENTS_ONLY: &str = ".where(resolve() is Patient)";

/// The reference parameters of `res_type` whose every value puts the document in the
/// compartment of the patient it names, with their keys: the linking parameters and
/// those whose expression is a part of theirs (`Observation.patient` is
/// `Observation.subject.where(resolve() is Patient)`).
fn linked_params(res_type: &str) -> Vec<(&'static str, i64)> {
    let linking = linking_params(res_type);
    let linking_paths: Vec<String> = linking.iter().flat_map(|p| paths(res_type, p)).collect();
    definitions::search_params(res_type)
        .iter()
        .filter(|d| d.kind == SearchParamType::Reference)
        .filter(|d| {
            linking.contains(&d.code) || {
                let own = paths(res_type, d.code);
                !own.is_empty() && own.iter().all(|p| linking_paths.contains(p))
            }
        })
        .map(|d| (d.code, key(res_type, d.code)))
        .collect()
}

/// The paths of `res_type` in the expression of its parameter `code`, without a
/// trailing `.where(resolve() is Patient)`.
fn paths(res_type: &str, code: &str) -> Vec<String> {
    expression_parts(res_type, code)
        .into_iter()
        .map(|part| part.strip_suffix(PATIENTS_ONLY).unwrap_or(part).to_owned())
        .collect()
}

/// The parts of the expression of parameter `code` that apply to `res_type` (a shared
/// parameter's expression is a union over its types).
fn expression_parts(res_type: &str, code: &str) -> Vec<&'static str> {
    let Some(expression) = definitions::search_param(res_type, code).and_then(|d| d.expression)
    else {
        return Vec::new();
    };
    let prefix = format!("{res_type}.");
    expression
        .split('|')
        .map(|part| {
            let part = part.trim();
            part.strip_prefix('(')
                .and_then(|p| p.strip_suffix(')'))
                .unwrap_or(part)
        })
        .filter(|part| part.starts_with(&prefix))
        .collect()
}

/// The coded value a filter pins under the code key `code`: `code=system|code`.
fn pinned_coding(code: i64, f: &Filter) -> Option<(String, String)> {
    let Filter::Has(Rows { table, keys, conds }) = f else {
        return None;
    };
    if *table != Table::Token || keys.as_slice() != [code] {
        return None;
    }
    match equalities(conds)?.as_slice() {
        [(Col::System, s), (Col::Code, c)] | [(Col::Code, c), (Col::System, s)] => {
            Some(((*s).to_owned(), (*c).to_owned()))
        }
        _ => None,
    }
}

/// The `column = text` comparisons that make up `conds` (all of them must hold), or
/// `None` when the conditions are anything else. A choice of one is no choice.
fn equalities(conds: &[Cond]) -> Option<Vec<(Col, &str)>> {
    fn walk<'c>(c: &'c Cond, out: &mut Vec<(Col, &'c str)>) -> bool {
        match c {
            Cond::Cmp(col, Op::Eq, Val::Text(v)) => {
                out.push((*col, v));
                true
            }
            Cond::All(cs) => cs.iter().all(|c| walk(c, out)),
            Cond::Any(cs) if cs.len() == 1 => walk(&cs[0], out),
            _ => false,
        }
    }
    let mut out = Vec::new();
    conds.iter().all(|c| walk(c, &mut out)).then_some(out)
}

/// A lower bound of the latest end (`hi`) of any date row that meets all of `conds`.
fn all_lower_bound(conds: &[Cond]) -> Option<i64> {
    conds.iter().filter_map(lower_bound).max()
}

/// A value that the `hi` of every row meeting `c` is at least (rows are `[lo, hi)`
/// with `lo <= hi`), when `c` implies one.
fn lower_bound(c: &Cond) -> Option<i64> {
    match c {
        Cond::Cmp(Col::Hi | Col::Lo, Op::Gt | Op::Ge | Op::Eq, Val::Int(v)) => Some(*v),
        Cond::All(cs) => all_lower_bound(cs),
        Cond::Any(cs) if !cs.is_empty() => cs.iter().map(lower_bound).min().flatten(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Val {
        Val::Text(s.to_owned())
    }

    #[test]
    fn linked_parameters_include_subsets_of_the_linking_ones() {
        let linked: Vec<&str> = linked_params("Observation").iter().map(|p| p.0).collect();
        for p in ["subject", "performer", "patient"] {
            assert!(linked.contains(&p), "{p} in {linked:?}");
        }
        for p in ["focus", "encounter", "based-on", "device"] {
            assert!(!linked.contains(&p), "{p} in {linked:?}");
        }
        assert!(linked_params("Practitioner").is_empty());
    }

    #[test]
    fn date_parameters_exist() {
        for (t, _) in definitions::compartment(COMPARTMENT).unwrap().resources {
            let p = date_param(t);
            if p != "date" {
                assert!(
                    definitions::search_param(t, p)
                        .is_some_and(|d| d.kind == SearchParamType::Date),
                    "{t}.{p}"
                );
            }
        }
    }

    #[test]
    fn lower_bounds_of_date_conditions() {
        let c = |col, op, v| Cond::Cmp(col, op, Val::Int(v));
        assert_eq!(lower_bound(&c(Col::Hi, Op::Gt, 5)), Some(5));
        assert_eq!(lower_bound(&c(Col::Lo, Op::Lt, 5)), None);
        let ge = Cond::Any(vec![
            c(Col::Hi, Op::Gt, 9),
            Cond::All(vec![c(Col::Lo, Op::Ge, 3), c(Col::Hi, Op::Le, 9)]),
        ]);
        assert_eq!(lower_bound(&ge), Some(3));
        assert_eq!(
            lower_bound(&Cond::Any(vec![
                c(Col::Hi, Op::Gt, 9),
                c(Col::Lo, Op::Lt, 1)
            ])),
            None
        );
        assert_eq!(all_lower_bound(&[ge, c(Col::Lo, Op::Ge, 7)]), Some(7));
    }

    #[test]
    fn equalities_see_through_single_choices_only() {
        let eq = |col, v: &str| Cond::Cmp(col, Op::Eq, text(v));
        let one = vec![Cond::Any(vec![Cond::All(vec![
            eq(Col::TargetType, "Patient"),
            eq(Col::TargetId, "p1"),
        ])])];
        assert_eq!(
            equalities(&one),
            Some(vec![(Col::TargetType, "Patient"), (Col::TargetId, "p1")])
        );
        let two = vec![Cond::Any(vec![
            eq(Col::TargetId, "a"),
            eq(Col::TargetId, "b"),
        ])];
        assert_eq!(equalities(&two), None);
    }
}
