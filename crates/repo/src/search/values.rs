//! One search value of one parameter type, as conditions on index rows.

use ember_fhir::index::{canonical_quantity, normalize, number_range, parse_reference};
use ember_fhir::instant;
use ember_store::{Col, Cond, Op, Val};

use super::filter::Problem;
use crate::indexer::UCUM;

/// Why a value cannot be searched: always a 400, in any handling mode.
pub(crate) type ValueError = String;

/// A search prefix (`eq`, `gt`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    Ap,
}

/// Splits a leading prefix off an ordered value; `eq` when none is written.
pub(crate) fn prefix(value: &str) -> (Prefix, &str) {
    let p = match value.get(..2) {
        Some("eq") => Prefix::Eq,
        Some("ne") => Prefix::Ne,
        Some("gt") => Prefix::Gt,
        Some("lt") => Prefix::Lt,
        Some("ge") => Prefix::Ge,
        Some("le") => Prefix::Le,
        Some("sa") => Prefix::Sa,
        Some("eb") => Prefix::Eb,
        Some("ap") => Prefix::Ap,
        _ => return (Prefix::Eq, value),
    };
    (p, &value[2..])
}

/// Splits on an unescaped separator and removes the escapes (`\,` `\|` `\$` `\\`).
pub(crate) fn split_escaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut part = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n @ (',' | '|' | '$' | '\\')) if n != sep => {
                    // An escape of another separator stays for the next split.
                    part.push('\\');
                    part.push(n);
                }
                Some(n) => part.push(n),
                None => part.push('\\'),
            },
            c if c == sep => parts.push(std::mem::take(&mut part)),
            c => part.push(c),
        }
    }
    parts.push(part);
    parts
}

/// Removes the remaining escapes of a value that will not be split further.
pub(crate) fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next().unwrap_or('\\')),
            c => out.push(c),
        }
    }
    out
}

fn text(s: &str) -> Val {
    Val::Text(s.to_owned())
}

fn cmp(col: Col, op: Op, v: Val) -> Cond {
    Cond::Cmp(col, op, v)
}

/// `:exact`, `:contains` or the default (starts with, case- and accent-insensitive).
pub(crate) fn string(value: &str, modifier: Option<&str>) -> Cond {
    let value = unescape(value);
    match modifier {
        Some("exact") => cmp(Col::Exact, Op::Eq, text(&value)),
        Some("contains") => Cond::Contains(Col::Norm, normalize(&value)),
        _ => Cond::Prefix(Col::Norm, normalize(&value)),
    }
}

/// `[system]|[code]`, `|code`, `system|` or `code`.
pub(crate) fn token(value: &str) -> Cond {
    let parts = split_escaped(value, '|');
    let (system, code) = match parts.as_slice() {
        [code] => (None, Some(unescape(code))),
        [system, code] => (Some(unescape(system)), Some(unescape(code))),
        _ => (None, Some(unescape(value))),
    };
    let code = code.filter(|c| !c.is_empty());
    let mut conds = Vec::new();
    match system.as_deref() {
        None => {}
        Some("") => conds.push(Cond::IsNull(Col::System)),
        Some(s) => conds.push(cmp(Col::System, Op::Eq, text(s))),
    }
    if let Some(code) = code {
        conds.push(cmp(Col::Code, Op::Eq, text(&code)));
    }
    Cond::All(conds)
}

/// `:of-type`: `system|code|value`, an identifier whose type has that coding and whose
/// value is `value`.
pub(crate) fn of_type(value: &str) -> Result<Cond, Problem> {
    match split_escaped(value, '|').as_slice() {
        [system, code, id] if !system.is_empty() && !code.is_empty() && !id.is_empty() => {
            Ok(Cond::All(vec![
                cmp(Col::System, Op::Eq, text(&unescape(system))),
                cmp(
                    Col::Code,
                    Op::Eq,
                    text(&format!("{}|{}", unescape(code), unescape(id))),
                ),
            ]))
        }
        _ => Err(Problem::Invalid(format!(
            ":of-type: {value:?} is not system|code|value"
        ))),
    }
}

/// `:text`: the display text starts with the value, case- and accent-insensitive.
pub(crate) fn token_text(value: &str) -> Cond {
    Cond::Prefix(Col::Text, normalize(&unescape(value)))
}

/// A reference value: `Type/id`, `id` (with `types` the allowed target types, when
/// known) or an absolute URL. Versions (`/_history/n`, `|n`) are not compared.
pub(crate) fn reference(value: &str, target_type: Option<&str>) -> Cond {
    let value = unescape(value);
    let value = value.split('|').next().unwrap_or_default();
    if !value.contains('/') && !value.contains(':') {
        let mut conds = vec![cmp(Col::TargetId, Op::Eq, text(value))];
        if let Some(t) = target_type {
            conds.push(cmp(Col::TargetType, Op::Eq, text(t)));
        }
        return Cond::All(conds);
    }
    let parts = parse_reference(value);
    match (parts.res_type, parts.id, parts.url) {
        // An absolute URL: a reference to another server, compared as written.
        (_, _, Some(url)) => cmp(Col::Url, Op::Eq, text(url)),
        (Some(t), Some(id), None) if target_type.is_none_or(|want| want == t) => Cond::All(vec![
            cmp(Col::TargetType, Op::Eq, text(t)),
            cmp(Col::TargetId, Op::Eq, text(id)),
        ]),
        (Some(_), Some(_), None) => Cond::Any(vec![]),
        _ => cmp(Col::Url, Op::Eq, text(value)),
    }
}

/// A uri: equal, `:below` (starts with the value) or `:above` (a prefix of it).
pub(crate) fn uri(value: &str, modifier: Option<&str>) -> Cond {
    let value = unescape(value);
    match modifier {
        Some("below") => Cond::Prefix(Col::Uri, value),
        Some("above") => Cond::PrefixOf(Col::Uri, value),
        _ => cmp(Col::Uri, Op::Eq, text(&value)),
    }
}

/// A date value with its prefix, against the `[lo, hi)` columns, per the R4 rules:
/// the search value stands for the range its precision implies.
pub(crate) fn date(value: &str) -> Result<Cond, ValueError> {
    let (p, raw) = prefix(value);
    let (sl, sh) = instant::parse_range(raw)
        .ok_or_else(|| format!("{raw:?} is not a FHIR date, dateTime or instant"))?;
    let (lo, hi) = (
        |op, v| cmp(Col::Lo, op, Val::Int(v)),
        |op, v| cmp(Col::Hi, op, Val::Int(v)),
    );
    let within = || Cond::All(vec![lo(Op::Ge, sl), hi(Op::Le, sh)]);
    Ok(match p {
        Prefix::Eq => within(),
        Prefix::Ne => Cond::Not(Box::new(within())),
        Prefix::Gt => hi(Op::Gt, sh),
        Prefix::Lt => lo(Op::Lt, sl),
        Prefix::Ge => Cond::Any(vec![hi(Op::Gt, sh), within()]),
        Prefix::Le => Cond::Any(vec![lo(Op::Lt, sl), within()]),
        Prefix::Sa => lo(Op::Ge, sh),
        Prefix::Eb => hi(Op::Le, sl),
        Prefix::Ap => {
            let now = instant::now();
            let gap = (now - sl).abs() / 10;
            Cond::All(vec![
                lo(Op::Lt, sh.saturating_add(gap)),
                hi(Op::Gt, sl.saturating_sub(gap)),
            ])
        }
    })
}

/// A number with its prefix against the `v` column. `eq` covers the range the
/// written precision implies (`100` is `[99.5, 100.5)`); the others compare exactly.
pub(crate) fn number(value: &str) -> Result<Cond, ValueError> {
    let (p, raw) = prefix(value);
    number_cond(p, raw, |s| Some(s.to_owned()))
}

/// `p` applied to the decimal `raw`, each bound passed through `convert` (to canonical
/// units for quantities) before it is compared with `v`.
fn number_cond(
    p: Prefix,
    raw: &str,
    convert: impl Fn(&str) -> Option<String>,
) -> Result<Cond, ValueError> {
    let bad = || format!("{raw:?} is not a decimal number");
    let (low, high) = number_range(raw).ok_or_else(bad)?;
    let f = |s: &str| -> Result<f64, ValueError> {
        convert(s)
            .and_then(|c| c.parse::<f64>().ok())
            .ok_or_else(bad)
    };
    let (x, low, high) = (f(raw)?, f(&low)?, f(&high)?);
    let v = |op, n| cmp(Col::V, op, Val::Float(n));
    let within = || Cond::All(vec![v(Op::Ge, low), v(Op::Lt, high)]);
    Ok(match p {
        Prefix::Eq => within(),
        Prefix::Ne => Cond::Not(Box::new(within())),
        Prefix::Gt | Prefix::Sa => v(Op::Gt, x),
        Prefix::Lt | Prefix::Eb => v(Op::Lt, x),
        Prefix::Ge => v(Op::Ge, x),
        Prefix::Le => v(Op::Le, x),
        Prefix::Ap => {
            let d = (x * 0.1).abs();
            Cond::All(vec![v(Op::Ge, x - d), v(Op::Le, x + d)])
        }
    })
}

/// How a quantity search compares.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QuantityCond {
    pub cond: Cond,
    /// In canonical UCUM units: compare the canonical copies too.
    pub canonical: bool,
}

/// `[prefix]number|system|code`, `number||code` or `number`. A UCUM unit the engine
/// knows is compared in canonical units, so `1 g` matches a stored `1000 mg`; without
/// a unit the value is compared as written.
pub(crate) fn quantity(value: &str) -> Result<QuantityCond, ValueError> {
    let parts = split_escaped(value, '|');
    let (number, system, code) = match parts.as_slice() {
        [n] => (n.clone(), None, None),
        [n, s, c] => (
            n.clone(),
            Some(unescape(s)).filter(|s| !s.is_empty()),
            Some(unescape(c)).filter(|c| !c.is_empty()),
        ),
        _ => return Err(format!("{value:?} is not number|system|code")),
    };
    let (p, raw) = prefix(&number);
    let mut as_written = Vec::new();
    if let Some(s) = &system {
        as_written.push(cmp(Col::System, Op::Eq, text(s)));
    }
    if let Some(c) = &code {
        as_written.push(cmp(Col::Code, Op::Eq, text(c)));
    }
    as_written.push(number_cond(p, raw, |s| Some(s.to_owned()))?);
    let as_written = Cond::All(as_written);
    let ucum = code.as_deref().and_then(|code| {
        let (_, canonical) = canonical_quantity(raw, code)?;
        Some((code, canonical))
    });
    match ucum {
        Some((code, canonical)) if system.as_deref().is_none_or(|s| s == UCUM) => {
            let convert = |s: &str| canonical_quantity(s, code).map(|(v, _)| v);
            let in_canonical = Cond::All(vec![
                cmp(Col::System, Op::Eq, text(UCUM)),
                cmp(Col::Code, Op::Eq, text(&canonical)),
                number_cond(p, raw, convert)?,
            ]);
            // Without a system the code may also be a unit of another system, or the
            // human-readable unit.
            let cond = if system.is_none() {
                Cond::Any(vec![in_canonical, as_written])
            } else {
                in_canonical
            };
            Ok(QuantityCond {
                cond,
                canonical: true,
            })
        }
        _ => Ok(QuantityCond {
            cond: as_written,
            canonical: false,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_split_only_their_separator() {
        assert_eq!(split_escaped(r"a\,b,c", ','), vec!["a,b", "c"]);
        assert_eq!(split_escaped(r"s\|x|c", ','), vec![r"s\|x|c"]);
        assert_eq!(split_escaped(r"s\|x|c", '|'), vec!["s|x", "c"]);
        assert_eq!(unescape(r"a\$b"), "a$b");
    }

    #[test]
    fn prefixes() {
        assert_eq!(prefix("ge2020"), (Prefix::Ge, "2020"));
        assert_eq!(prefix("2020"), (Prefix::Eq, "2020"));
        assert!(date("xx2020").is_err());
        assert!(number("gtabc").is_err());
    }

    #[test]
    fn tokens() {
        assert_eq!(
            token("http://loinc.org|1234-5"),
            Cond::All(vec![
                cmp(Col::System, Op::Eq, text("http://loinc.org")),
                cmp(Col::Code, Op::Eq, text("1234-5"))
            ])
        );
        assert_eq!(
            token("|x"),
            Cond::All(vec![
                Cond::IsNull(Col::System),
                cmp(Col::Code, Op::Eq, text("x"))
            ])
        );
        assert_eq!(
            token("s|"),
            Cond::All(vec![cmp(Col::System, Op::Eq, text("s"))])
        );
    }

    #[test]
    fn quantities_in_canonical_units() {
        let q = quantity("gt1|http://unitsofmeasure.org|g").unwrap();
        assert!(q.canonical);
        let Cond::All(conds) = q.cond else {
            panic!("conditions")
        };
        assert_eq!(conds[1], cmp(Col::Code, Op::Eq, text("g")));
        let Cond::All(conds) = quantity("5|http://unitsofmeasure.org|mg").unwrap().cond else {
            panic!("conditions")
        };
        assert_eq!(conds[1], cmp(Col::Code, Op::Eq, text("g")));
        // 5 mg is [4.5, 5.5) mg, so [0.0045, 0.0055) g.
        let Cond::All(range) = &conds[2] else {
            panic!("range")
        };
        let Cond::Cmp(_, Op::Ge, Val::Float(lo)) = range[0] else {
            panic!("lo")
        };
        assert!((lo - 0.0045).abs() < 1e-12);
        assert!(!quantity("gt100").unwrap().canonical);
    }
}
