//! Judging one document against a search's filters in memory, from the index rows its
//! version would be stored with: the same answer the store's SQL gives, without a
//! query. It serves components that test many searches against each written document
//! (Subscription criteria), where a query per search and document would cost a round
//! trip each.
//!
//! Only filters that look at the document's own rows are judged. A chain, a reverse
//! chain or a full-text filter needs other documents or the database's text search,
//! so the answer is then "cannot tell" (`None`) and the caller runs the search.
//!
//! Row conditions follow SQL's three-valued logic, as the statements the store
//! compiles do: a comparison with a missing (NULL) column is unknown, `NOT` of unknown
//! is unknown, and a row qualifies only when its conditions are true. Text compares
//! by code point, as the index columns do (`COLLATE "C"` on PostgreSQL, `BINARY` on
//! SQLite).

use std::cmp::Ordering;

use crate::index::{IndexRows, Slot};
use crate::query::{Col, Cond, Filter, Op, Rows, Table, Val};

/// Whether the document `id` with index rows `rows` meets every filter; `None` when a
/// filter needs the database (see the module docs).
pub fn judge(filters: &[Filter], id: &str, rows: &IndexRows) -> Option<bool> {
    all(filters, id, rows)
}

fn all(filters: &[Filter], id: &str, rows: &IndexRows) -> Option<bool> {
    // A false filter decides, even when another cannot be judged.
    let mut unknown = false;
    for f in filters {
        match filter(f, id, rows) {
            Some(false) => return Some(false),
            Some(true) => {}
            None => unknown = true,
        }
    }
    (!unknown).then_some(true)
}

fn any(filters: &[Filter], id: &str, rows: &IndexRows) -> Option<bool> {
    let mut unknown = false;
    for f in filters {
        match filter(f, id, rows) {
            Some(true) => return Some(true),
            Some(false) => {}
            None => unknown = true,
        }
    }
    (!unknown).then_some(false)
}

fn filter(f: &Filter, id: &str, rows: &IndexRows) -> Option<bool> {
    match f {
        Filter::Has(r) => Some(row_slots(r, rows).next().is_some()),
        Filter::Composite(parts) => Some(composite(parts, rows)),
        Filter::Id(ids) => Some(ids.iter().any(|i| i == id)),
        Filter::All(fs) => all(fs, id, rows),
        Filter::Any(fs) => any(fs, id, rows),
        Filter::Not(f) => filter(f, id, rows).map(|b| !b),
        Filter::Chain { .. } | Filter::Reverse { .. } | Filter::Text { .. } => None,
    }
}

/// Whether one composite value (rows sharing a `grp`) has a matching row in every part.
fn composite(parts: &[Rows], rows: &IndexRows) -> bool {
    let Some((first, rest)) = parts.split_first() else {
        return false;
    };
    row_slots(first, rows).any(|slot| {
        rest.iter()
            .all(|part| row_slots(part, rows).any(|s| s.grp == slot.grp))
    })
}

/// The slots of the rows in `r`'s table, under one of its keys, meeting its conditions.
fn row_slots<'a>(r: &'a Rows, rows: &'a IndexRows) -> Box<dyn Iterator<Item = Slot> + 'a> {
    match r.table {
        Table::String => pick(
            r,
            &rows.strings,
            |x| x.slot,
            |x, c| match c {
                Col::Norm => Cell::Text(&x.norm),
                Col::Exact => Cell::Text(&x.exact),
                _ => Cell::Absent,
            },
        ),
        Table::Token => pick(
            r,
            &rows.tokens,
            |x| x.slot,
            |x, c| match c {
                Col::System => opt(&x.system),
                Col::Code => opt(&x.code),
                Col::Text => opt(&x.text),
                _ => Cell::Absent,
            },
        ),
        Table::Date => pick(
            r,
            &rows.dates,
            |x| x.slot,
            |x, c| match c {
                Col::Lo => Cell::Int(x.lo),
                Col::Hi => Cell::Int(x.hi),
                _ => Cell::Absent,
            },
        ),
        Table::Number => pick(
            r,
            &rows.numbers,
            |x| x.slot,
            |x, c| match c {
                Col::V => Cell::Float(x.v),
                _ => Cell::Absent,
            },
        ),
        Table::Quantity => pick(
            r,
            &rows.quantities,
            |x| x.slot,
            |x, c| match c {
                Col::System => opt(&x.system),
                Col::Code => opt(&x.code),
                Col::V => Cell::Float(x.v),
                _ => Cell::Absent,
            },
        ),
        Table::Reference => pick(
            r,
            &rows.references,
            |x| x.slot,
            |x, c| match c {
                Col::TargetType => opt(&x.target_type),
                Col::TargetId => opt(&x.target_id),
                Col::Url => opt(&x.url),
                _ => Cell::Absent,
            },
        ),
        Table::Uri => pick(
            r,
            &rows.uris,
            |x| x.slot,
            |x, c| match c {
                Col::Uri => Cell::Text(&x.uri),
                _ => Cell::Absent,
            },
        ),
    }
}

/// The slots of the `items` (rows of `r`'s table) that `r` selects; `column` reads a
/// row's columns.
fn pick<'a, T>(
    r: &'a Rows,
    items: &'a [T],
    slot: fn(&T) -> Slot,
    column: for<'x> fn(&'x T, Col) -> Cell<'x>,
) -> Box<dyn Iterator<Item = Slot> + 'a> {
    Box::new(items.iter().filter_map(move |item| {
        let s = slot(item);
        let ok = r.keys.contains(&s.p)
            && r.conds
                .iter()
                .all(|c| cond(c, &|col| column(item, col)) == Tri::True);
        ok.then_some(s)
    }))
}

fn opt(v: &Option<String>) -> Cell<'_> {
    v.as_deref().map_or(Cell::Null, Cell::Text)
}

/// A column's value in one row.
#[derive(Debug, Clone, Copy)]
enum Cell<'a> {
    Text(&'a str),
    Int(i64),
    Float(f64),
    Null,
    /// The table has no such column: the store's SQL would not run, so no row meets it.
    Absent,
}

/// SQL's truth values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tri {
    True,
    False,
    Unknown,
}

impl Tri {
    fn of(b: bool) -> Self {
        if b { Tri::True } else { Tri::False }
    }

    fn not(self) -> Self {
        match self {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Unknown => Tri::Unknown,
        }
    }
}

fn cond<'a>(c: &Cond, column: &dyn Fn(Col) -> Cell<'a>) -> Tri {
    match c {
        Cond::Cmp(col, op, v) => compare(column(*col), v).map_or(Tri::Unknown, |o| {
            Tri::of(match op {
                Op::Eq => o == Ordering::Equal,
                Op::Ne => o != Ordering::Equal,
                Op::Lt => o == Ordering::Less,
                Op::Le => o != Ordering::Greater,
                Op::Gt => o == Ordering::Greater,
                Op::Ge => o != Ordering::Less,
            })
        }),
        Cond::IsNull(col) => match column(*col) {
            Cell::Null => Tri::True,
            Cell::Absent => Tri::Unknown,
            _ => Tri::False,
        },
        Cond::Prefix(col, s) => text_test(column(*col), |t| t.starts_with(s.as_str())),
        Cond::Contains(col, s) => text_test(column(*col), |t| t.contains(s.as_str())),
        Cond::PrefixOf(col, s) => text_test(column(*col), |t| s.starts_with(t)),
        Cond::In(col, vals) => {
            // `x IN (a, b)` is `x = a OR x = b`.
            let cell = column(*col);
            let mut result = Tri::False;
            for v in vals {
                match compare(cell, v) {
                    Some(Ordering::Equal) => return Tri::True,
                    Some(_) => {}
                    None => result = Tri::Unknown,
                }
            }
            result
        }
        Cond::All(cs) => {
            let mut result = Tri::True;
            for c in cs {
                match cond(c, column) {
                    Tri::False => return Tri::False,
                    Tri::Unknown => result = Tri::Unknown,
                    Tri::True => {}
                }
            }
            result
        }
        Cond::Any(cs) => {
            let mut result = Tri::False;
            for c in cs {
                match cond(c, column) {
                    Tri::True => return Tri::True,
                    Tri::Unknown => result = Tri::Unknown,
                    Tri::False => {}
                }
            }
            result
        }
        Cond::Not(c) => cond(c, column).not(),
    }
}

/// How a column's value compares with `v`; `None` (unknown) for NULL, for a missing
/// column, and for values of different kinds.
fn compare(cell: Cell<'_>, v: &Val) -> Option<Ordering> {
    match (cell, v) {
        (Cell::Text(a), Val::Text(b)) => Some(a.cmp(b.as_str())),
        (Cell::Int(a), Val::Int(b)) => Some(a.cmp(b)),
        (Cell::Float(a), Val::Float(b)) => a.partial_cmp(b),
        (Cell::Float(a), Val::Int(b)) => a.partial_cmp(&(*b as f64)),
        (Cell::Int(a), Val::Float(b)) => (a as f64).partial_cmp(b),
        _ => None,
    }
}

fn text_test(cell: Cell<'_>, test: impl Fn(&str) -> bool) -> Tri {
    match cell {
        Cell::Text(t) => Tri::of(test(t)),
        _ => Tri::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{DateRow, QuantityRow, ReferenceRow, TokenRow};

    const CODE: i64 = 1;
    const SUBJECT: i64 = 2;
    const DATE: i64 = 3;
    const VALUE: i64 = 4;

    fn slot(p: i64, grp: i32) -> Slot {
        Slot { p, grp }
    }

    fn text(s: &str) -> Val {
        Val::Text(s.to_owned())
    }

    fn doc() -> IndexRows {
        IndexRows {
            tokens: vec![
                TokenRow {
                    slot: slot(CODE, 1),
                    system: Some("http://loinc.org".into()),
                    code: Some("8480-6".into()),
                    text: None,
                },
                TokenRow {
                    slot: slot(CODE, 2),
                    system: None,
                    code: Some("8462-4".into()),
                    text: Some("diastolic".into()),
                },
            ],
            quantities: vec![
                QuantityRow {
                    slot: slot(VALUE, 1),
                    system: Some("http://unitsofmeasure.org".into()),
                    code: Some("mm[Hg]".into()),
                    v: 150.0,
                },
                QuantityRow {
                    slot: slot(VALUE, 2),
                    system: Some("http://unitsofmeasure.org".into()),
                    code: Some("mm[Hg]".into()),
                    v: 95.0,
                },
            ],
            references: vec![ReferenceRow {
                slot: slot(SUBJECT, 0),
                target_type: Some("Patient".into()),
                target_id: Some("p1".into()),
                url: None,
            }],
            dates: vec![DateRow {
                slot: slot(DATE, 0),
                lo: 100,
                hi: 200,
            }],
            ..IndexRows::default()
        }
    }

    fn has(table: Table, key: i64, conds: Vec<Cond>) -> Filter {
        Filter::Has(Rows {
            table,
            keys: vec![key],
            conds,
        })
    }

    fn code(c: &str) -> Filter {
        has(
            Table::Token,
            CODE,
            vec![Cond::Cmp(Col::Code, Op::Eq, text(c))],
        )
    }

    #[test]
    fn rows_under_the_key_meeting_every_condition() {
        let d = doc();
        assert_eq!(judge(&[code("8480-6")], "o1", &d), Some(true));
        assert_eq!(judge(&[code("0000-0")], "o1", &d), Some(false));
        let subject = has(
            Table::Reference,
            SUBJECT,
            vec![
                Cond::Cmp(Col::TargetType, Op::Eq, text("Patient")),
                Cond::Cmp(Col::TargetId, Op::Eq, text("p1")),
            ],
        );
        assert_eq!(
            judge(&[code("8480-6"), subject.clone()], "o1", &d),
            Some(true)
        );
        // The right value under another key is no match.
        let wrong_key = has(
            Table::Token,
            SUBJECT,
            vec![Cond::Cmp(Col::Code, Op::Eq, text("8480-6"))],
        );
        assert_eq!(judge(&[wrong_key], "o1", &d), Some(false));
        // No filters: every document.
        assert_eq!(judge(&[], "o1", &d), Some(true));
        assert_eq!(
            judge(&[Filter::Id(vec!["o2".into()])], "o1", &d),
            Some(false)
        );
        assert_eq!(
            judge(&[Filter::Id(vec!["o2".into(), "o1".into()])], "o1", &d),
            Some(true)
        );
    }

    #[test]
    fn null_columns_follow_sql() {
        let d = doc();
        // The diastolic row has no system: `system = x` and `NOT (system = x)` are both
        // unknown there, so neither matches through that row.
        let no_system = has(
            Table::Token,
            CODE,
            vec![
                Cond::Cmp(Col::Code, Op::Eq, text("8462-4")),
                Cond::Not(Box::new(Cond::Cmp(
                    Col::System,
                    Op::Eq,
                    text("http://loinc.org"),
                ))),
            ],
        );
        assert_eq!(judge(&[no_system], "o1", &d), Some(false));
        let is_null = has(
            Table::Token,
            CODE,
            vec![
                Cond::Cmp(Col::Code, Op::Eq, text("8462-4")),
                Cond::IsNull(Col::System),
            ],
        );
        assert_eq!(judge(&[is_null], "o1", &d), Some(true));
        // `x IN (a, NULL-compared)`: a true member decides.
        let in_list = has(
            Table::Token,
            CODE,
            vec![Cond::In(Col::Code, vec![text("zzz"), text("8462-4")])],
        );
        assert_eq!(judge(&[in_list], "o1", &d), Some(true));
        let text_cond = has(
            Table::Token,
            CODE,
            vec![Cond::Contains(Col::Text, "asto".into())],
        );
        assert_eq!(judge(&[text_cond], "o1", &d), Some(true));
        let prefix = has(
            Table::Token,
            CODE,
            vec![Cond::Prefix(Col::Text, "sys".into())],
        );
        assert_eq!(judge(&[prefix], "o1", &d), Some(false));
    }

    #[test]
    fn ranges_and_numbers_compare_by_value() {
        let d = doc();
        let overlaps = has(
            Table::Date,
            DATE,
            vec![
                Cond::Cmp(Col::Lo, Op::Lt, Val::Int(150)),
                Cond::Cmp(Col::Hi, Op::Gt, Val::Int(150)),
            ],
        );
        assert_eq!(judge(&[overlaps], "o1", &d), Some(true));
        let after = has(
            Table::Date,
            DATE,
            vec![Cond::Cmp(Col::Lo, Op::Ge, Val::Int(200))],
        );
        assert_eq!(judge(&[after], "o1", &d), Some(false));
        let high = has(
            Table::Quantity,
            VALUE,
            vec![Cond::Cmp(Col::V, Op::Gt, Val::Float(140.0))],
        );
        assert_eq!(judge(std::slice::from_ref(&high), "o1", &d), Some(true));
        assert_eq!(judge(&[Filter::Not(Box::new(high))], "o1", &d), Some(false));
    }

    #[test]
    fn composites_need_one_value_with_every_part() {
        let d = doc();
        let part = |c: &str, cmp: Op, v: f64| {
            vec![
                Rows {
                    table: Table::Token,
                    keys: vec![CODE],
                    conds: vec![Cond::Cmp(Col::Code, Op::Eq, text(c))],
                },
                Rows {
                    table: Table::Quantity,
                    keys: vec![VALUE],
                    conds: vec![Cond::Cmp(Col::V, cmp, Val::Float(v))],
                },
            ]
        };
        // Systolic 150 > 140: same group.
        assert_eq!(
            judge(
                &[Filter::Composite(part("8480-6", Op::Gt, 140.0))],
                "o1",
                &d
            ),
            Some(true)
        );
        // Diastolic is 95, and 150 > 140 belongs to systolic: no single value has both.
        assert_eq!(
            judge(
                &[Filter::Composite(part("8462-4", Op::Gt, 140.0))],
                "o1",
                &d
            ),
            Some(false)
        );
    }

    #[test]
    fn what_needs_the_database_is_left_to_it_unless_another_filter_decides() {
        let d = doc();
        let text = Filter::Text {
            kind: crate::TextKind::Narrative,
            words: vec!["pressure".into()],
        };
        assert_eq!(judge(std::slice::from_ref(&text), "o1", &d), None);
        assert_eq!(judge(&[text.clone(), code("8480-6")], "o1", &d), None);
        assert_eq!(
            judge(&[text.clone(), code("0000-0")], "o1", &d),
            Some(false)
        );
        assert_eq!(
            judge(&[Filter::Any(vec![text.clone(), code("8480-6")])], "o1", &d),
            Some(true)
        );
        assert_eq!(judge(&[Filter::Not(Box::new(text))], "o1", &d), None);
    }
}
