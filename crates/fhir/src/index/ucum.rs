//! Canonical UCUM forms of quantities, so `120 mm[Hg]` and `16 kPa` index comparably.
//!
//! The conversion factor is the FHIRPath engine's ([`Quantity::convert_to`]): this module
//! only works out the dimension of a unit expression, to name the canonical unit
//! (base units `g`, `m`, `s`, `K`, `C`, `cd`, `mol`, `[iU]` with exponents, e.g.
//! `g.m-1.s-2`; `1` when dimensionless). Each atom's dimension is found by asking the
//! engine which of a few base-unit products it converts to, and the unit expression
//! (`.`, `/`, exponents, `10*3`, `{annotations}`, parentheses) is combined here. The
//! engine then converts the value to that canonical unit, and refuses when the dimensions
//! differ, so a unit this module reads differently from the engine gets no canonical form
//! rather than a wrong one.

use crate::fhirpath::{Decimal, Quantity};

/// Exponents of g, m, s, K, C, cd, mol, [iU] (the order of the canonical code).
type Dims = [i32; 8];

const BASE: [&str; 8] = ["g", "m", "s", "K", "C", "cd", "mol", "[iU]"];

/// The dimensions of every atom of the engine's UCUM table.
const ATOM_DIMS: [Dims; 17] = [
    [0, 0, 0, 0, 0, 0, 0, 0],   // 1, %, rad, 10*
    [1, 0, 0, 0, 0, 0, 0, 0],   // g, t, [lb_av]
    [0, 1, 0, 0, 0, 0, 0, 0],   // m, [in_i]
    [0, 0, 1, 0, 0, 0, 0, 0],   // s, min, h, d, a, mo
    [0, 3, 0, 0, 0, 0, 0, 0],   // L
    [0, 0, -1, 0, 0, 0, 0, 0],  // Hz
    [1, -1, -2, 0, 0, 0, 0, 0], // Pa, bar, m[Hg], m[H2O]
    [1, 1, -2, 0, 0, 0, 0, 0],  // N
    [1, 2, -2, 0, 0, 0, 0, 0],  // J, cal
    [1, 2, -3, 0, 0, 0, 0, 0],  // W
    [0, 0, 0, 1, 0, 0, 0, 0],   // K
    [0, 0, 0, 0, 1, 0, 0, 0],   // C
    [0, 0, -1, 0, 1, 0, 0, 0],  // A
    [1, 2, -2, 0, -1, 0, 0, 0], // V
    [0, 0, 0, 0, 0, 1, 0, 0],   // cd
    [0, 0, 0, 0, 0, 0, 1, 0],   // mol, eq
    [0, 0, -1, 0, 0, 0, 1, 0],  // kat, U
];
const IU: Dims = [0, 0, 0, 0, 0, 0, 0, 1];

/// The canonical unit code of a dimension: `g.m-1.s-2`, `m3`, `1`.
fn code(dims: &Dims) -> String {
    let mut out = String::new();
    for (base, e) in BASE.iter().zip(dims) {
        if *e == 0 {
            continue;
        }
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(base);
        if *e != 1 {
            out.push_str(&e.to_string());
        }
    }
    if out.is_empty() {
        out.push('1');
    }
    out
}

fn one(unit: &str) -> Quantity {
    Quantity::new(Decimal::ONE, unit)
}

/// The dimension of one atom with its prefix (`mm[Hg]`, `kg`, `10*`), asking the engine.
fn atom_dims(atom: &str) -> Option<Dims> {
    let q = one(atom);
    std::iter::once(IU)
        .chain(ATOM_DIMS)
        .find(|d| one(&code(d)).convert_to(&q).is_some())
}

fn scale(d: Dims, e: i32) -> Dims {
    d.map(|x| x * e)
}

/// One component of a unit term: an atom with an optional exponent, an integer, a
/// parenthesized term, an annotation.
fn component_dims(c: &str) -> Option<Dims> {
    let mut s = String::with_capacity(c.len());
    let mut depth = 0;
    for ch in c.chars() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ if depth == 0 => s.push(ch),
            _ => {}
        }
    }
    if s.is_empty() || s.bytes().all(|b| b.is_ascii_digit()) {
        return Some([0; 8]);
    }
    if let Some(inner) = s.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        return unit_dims(inner);
    }
    if let Some(d) = atom_dims(&s) {
        return Some(d);
    }
    let bytes = s.as_bytes();
    let mut i = bytes.len();
    while i > 0 && bytes[i - 1].is_ascii_digit() {
        i -= 1;
    }
    if i > 0 && matches!(bytes[i - 1], b'-' | b'+') {
        i -= 1;
    }
    if i == 0 || i == bytes.len() {
        return None;
    }
    let e: i32 = s[i..].parse().ok()?;
    Some(scale(atom_dims(&s[..i])?, e))
}

/// The dimension of a unit expression: components joined by `.` and `/`.
fn unit_dims(s: &str) -> Option<Dims> {
    let mut acc = [0; 8];
    let (mut divide, mut start, mut depth) = (false, 0, 0i32);
    let bytes = s.as_bytes();
    for i in 0..=bytes.len() {
        let b = bytes.get(i).copied();
        match b {
            Some(b'[' | b'(' | b'{') => depth += 1,
            Some(b']' | b')' | b'}') => depth -= 1,
            Some(b'.' | b'/') | None if depth == 0 => {
                let part = &s[start..i];
                if part.is_empty() {
                    if !(i == 0 && b == Some(b'/')) {
                        return None;
                    }
                } else {
                    let d = component_dims(part)?;
                    for (a, x) in acc.iter_mut().zip(d) {
                        *a += if divide { -x } else { x };
                    }
                }
                divide = b == Some(b'/');
                start = i + 1;
            }
            _ => {}
        }
    }
    Some(acc)
}

/// `value` (decimal text) in UCUM `unit` expressed in canonical base units: the exact
/// value (trailing zeros removed) and the canonical unit code. None when the value is
/// not a decimal or the unit is not understood.
///
/// ```
/// use ember_fhir::index::canonical_quantity;
/// assert_eq!(
///     canonical_quantity("120", "mm[Hg]"),
///     Some(("15998640".to_string(), "g.m-1.s-2".to_string()))
/// );
/// assert_eq!(canonical_quantity("5.5", "mmol/L"), Some(("5.5".into(), "m-3.mol".into())));
/// assert_eq!(canonical_quantity("1", "furlong"), None);
/// ```
pub fn canonical_quantity(value: &str, unit: &str) -> Option<(String, String)> {
    let value = Decimal::parse(value)?;
    let dims = unit_dims(unit)?;
    let canonical = code(&dims);
    let converted = one(&canonical).convert_to(&Quantity::new(value, unit))?;
    Some((significant(converted).trim().to_string(), canonical))
}

/// Significant digits kept in canonical values. The engine's factors of units with a
/// division (`/min` = 1/60) carry 16 decimal places, so the last digits are noise.
const SIGNIFICANT: i64 = 15;

/// `d` rounded to [`SIGNIFICANT`] digits (never to fewer decimal places than 0).
fn significant(d: Decimal) -> Decimal {
    let digits = d
        .mantissa()
        .unsigned_abs()
        .checked_ilog10()
        .map_or(1, |l| l + 1);
    let int_digits = i64::from(digits) - i64::from(d.scale());
    let keep = (SIGNIFICANT - int_digits).max(0);
    match u32::try_from(keep) {
        Ok(k) if k < d.scale() => d.round(k),
        _ => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(v: &str, u: &str) -> Option<(String, String)> {
        canonical_quantity(v, u)
    }

    fn pair(v: &str, u: &str) -> Option<(String, String)> {
        Some((v.to_string(), u.to_string()))
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(c("120", "mm[Hg]"), pair("15998640", "g.m-1.s-2"));
        assert_eq!(c("16", "kPa"), pair("16000000", "g.m-1.s-2"));
        assert_eq!(c("70", "kg"), pair("70000", "g"));
        assert_eq!(c("185", "cm"), pair("1.85", "m"));
        assert_eq!(c("1.5", "h"), pair("5400", "s"));
        assert_eq!(c("100", "mg/dL"), pair("1000", "g.m-3"));
        assert_eq!(c("4.5", "10*9/L"), pair("4500000000000", "m-3"));
        assert_eq!(c("72", "/min"), pair("1.2", "s-1"));
        assert_eq!(c("22.5", "kg/m2"), pair("22500", "g.m-2"));
        assert_eq!(c("98", "%"), pair("0.98", "1"));
        assert_eq!(c("37", "Cel"), None); // offset units are not in the engine's table
        assert_eq!(c("3", "{tbl}"), pair("3", "1"));
        assert_eq!(c("5", "[iU]/L"), pair("5000", "m-3.[iU]"));
        assert_eq!(c("2", "mL/(kg.min)").unwrap().1, "g-1.m3.s-1");
        assert_eq!(c("1", "m[H2O]/s2").unwrap().1, "g.m-1.s-4");
        assert_eq!(
            c("0.000123456789012345678", "g"),
            pair("0.000123456789012346", "g")
        );
        assert_eq!(
            c("123456789012345678", "g"),
            pair("123456789012345678", "g")
        );
        assert_eq!(c("x", "mg"), None);
        assert_eq!(c("1", "mg.."), None);
    }
}
