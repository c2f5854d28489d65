//! Quantities: a decimal value with a UCUM unit or a calendar-duration keyword, and
//! a small UCUM unit-expression evaluator so `1000 'mg' = 1 'g'`.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use super::decimal::Decimal;
use super::temporal::CalendarUnit;

#[derive(Clone, Debug)]
pub struct Quantity {
    pub value: Decimal,
    /// A UCUM code (`mg`, `mm[Hg]`, `1`) or a calendar keyword (`year`, `days`).
    pub unit: Arc<str>,
}

/// Maps the calendar keywords (singular or plural) to their unit.
pub fn calendar_unit(word: &str) -> Option<CalendarUnit> {
    Some(match word {
        "year" | "years" => CalendarUnit::Year,
        "month" | "months" => CalendarUnit::Month,
        "week" | "weeks" => CalendarUnit::Week,
        "day" | "days" => CalendarUnit::Day,
        "hour" | "hours" => CalendarUnit::Hour,
        "minute" | "minutes" => CalendarUnit::Minute,
        "second" | "seconds" => CalendarUnit::Second,
        "millisecond" | "milliseconds" => CalendarUnit::Millisecond,
        _ => return None,
    })
}

/// UCUM codes usable in date arithmetic (`'a'` and `'mo'` are not: they are not
/// calendar durations).
fn ucum_time_unit(code: &str) -> Option<CalendarUnit> {
    Some(match code {
        "wk" => CalendarUnit::Week,
        "d" => CalendarUnit::Day,
        "h" => CalendarUnit::Hour,
        "min" => CalendarUnit::Minute,
        "s" => CalendarUnit::Second,
        "ms" => CalendarUnit::Millisecond,
        _ => return None,
    })
}

fn calendar_to_ucum(u: CalendarUnit) -> &'static str {
    match u {
        CalendarUnit::Year => "a",
        CalendarUnit::Month => "mo",
        CalendarUnit::Week => "wk",
        CalendarUnit::Day => "d",
        CalendarUnit::Hour => "h",
        CalendarUnit::Minute => "min",
        CalendarUnit::Second => "s",
        CalendarUnit::Millisecond => "ms",
    }
}

impl Quantity {
    pub fn new(value: Decimal, unit: &str) -> Self {
        Quantity {
            value,
            unit: Arc::from(unit),
        }
    }

    pub fn is_calendar(&self) -> bool {
        calendar_unit(&self.unit).is_some()
    }

    /// The unit to use when adding this quantity to a date, time or date-time.
    pub fn duration_unit(&self) -> Option<CalendarUnit> {
        calendar_unit(&self.unit).or_else(|| ucum_time_unit(&self.unit))
    }

    /// Year/month calendar durations compare only among themselves (in months).
    fn months(&self) -> Option<Decimal> {
        match calendar_unit(&self.unit)? {
            CalendarUnit::Year => self.value.checked_mul(&Decimal::from_i64(12)),
            CalendarUnit::Month => Some(self.value),
            _ => None,
        }
    }

    fn ucum_code(&self) -> &str {
        match calendar_unit(&self.unit) {
            Some(u) => calendar_to_ucum(u),
            None => &self.unit,
        }
    }

    /// The value in canonical UCUM base units, with its dimension.
    fn canonical(&self) -> Option<(Decimal, Dims)> {
        let u = parse_unit(self.ucum_code())?;
        Some((self.value.checked_mul(&u.factor)?, u.dims))
    }

    /// `None` when the units are not comparable.
    pub fn compare(&self, other: &Quantity) -> Option<Ordering> {
        if self.unit == other.unit {
            return Some(self.value.cmp_value(&other.value));
        }
        let (a_cal, b_cal) = (self.months(), other.months());
        match (a_cal, b_cal) {
            (Some(a), Some(b)) => return Some(a.cmp_value(&b)),
            (Some(_), None) | (None, Some(_)) => return None,
            _ => {}
        }
        let (a, ad) = self.canonical()?;
        let (b, bd) = other.canonical()?;
        (ad == bd).then(|| a.cmp_value(&b))
    }

    pub fn equivalent(&self, other: &Quantity) -> bool {
        if self.unit == other.unit {
            return self.value.equivalent(&other.value);
        }
        let scale = self.value.scale().min(other.value.scale());
        match (self.canonical(), other.canonical()) {
            (Some((a, ad)), Some((b, bd))) if ad == bd => {
                a.round(scale).cmp_value(&b.round(scale)) == Ordering::Equal
            }
            _ => self.compare(other) == Some(Ordering::Equal),
        }
    }

    /// `other` expressed in this quantity's unit.
    pub fn convert_to(&self, other: &Quantity) -> Option<Decimal> {
        if self.unit == other.unit {
            return Some(other.value);
        }
        if calendar_unit(&self.unit).is_some() || calendar_unit(&other.unit).is_some() {
            // Same duration in different calendar/UCUM spellings.
            let (a, b) = (self.ucum_code(), other.ucum_code());
            if a == b {
                return Some(other.value);
            }
            if self.months().is_some() || other.months().is_some() {
                return None;
            }
        }
        let ua = parse_unit(self.ucum_code())?;
        let ub = parse_unit(other.ucum_code())?;
        if ua.dims != ub.dims {
            return None;
        }
        other.value.checked_mul(&ub.factor)?.checked_div(&ua.factor)
    }

    pub fn add(&self, other: &Quantity) -> Option<Quantity> {
        let b = self.convert_to(other)?;
        Some(Quantity {
            value: self.value.checked_add(&b)?,
            unit: self.unit.clone(),
        })
    }

    pub fn sub(&self, other: &Quantity) -> Option<Quantity> {
        let b = self.convert_to(other)?;
        Some(Quantity {
            value: self.value.checked_sub(&b)?,
            unit: self.unit.clone(),
        })
    }

    pub fn mul(&self, other: &Quantity) -> Option<Quantity> {
        let value = self.value.checked_mul(&other.value)?;
        let unit = match (&*self.unit, &*other.unit) {
            ("1", u) | (u, "1") => u.to_string(),
            (a, b) => format!("{}.{}", self.ucum_unit_term(a), other.ucum_unit_term(b)),
        };
        Some(Quantity::new(value, &simplify(&unit)))
    }

    pub fn div(&self, other: &Quantity) -> Option<Quantity> {
        // Same dimension: a plain ratio.
        if let Some(b) = self.convert_to(other)
            && self.unit != other.unit
        {
            return Some(Quantity::new(self.value.checked_div(&b)?, "1"));
        }
        let value = self.value.checked_div(&other.value)?;
        let unit = match (&*self.unit, &*other.unit) {
            (a, b) if a == b => "1".to_string(),
            (u, "1") => u.to_string(),
            ("1", b) => format!("/{}", self.ucum_unit_term(b)),
            (a, b) => format!("{}/{}", self.ucum_unit_term(a), self.ucum_unit_term(b)),
        };
        Some(Quantity::new(value, &simplify(&unit)))
    }

    fn ucum_unit_term<'u>(&self, u: &'u str) -> &'u str {
        match calendar_unit(u) {
            Some(c) => calendar_to_ucum(c),
            None => u,
        }
    }
}

/// `cm.cm` → `cm2`; everything else as is.
fn simplify(unit: &str) -> String {
    if let Some((a, b)) = unit.split_once('.')
        && a == b
        && !a.contains(['.', '/'])
        && !a.ends_with(|c: char| c.is_ascii_digit())
    {
        return format!("{a}2");
    }
    unit.to_string()
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_calendar() {
            write!(f, "{} {}", self.value, self.unit)
        } else {
            write!(f, "{} '{}'", self.value, self.unit)
        }
    }
}

/// Exponents of the base units m, s, g, K, C, cd, mol, [iU].
type Dims = [i8; 8];

#[derive(Clone, Copy, Debug)]
struct Unit {
    factor: Decimal,
    dims: Dims,
}

const M: Dims = [1, 0, 0, 0, 0, 0, 0, 0];
const S: Dims = [0, 1, 0, 0, 0, 0, 0, 0];
const G: Dims = [0, 0, 1, 0, 0, 0, 0, 0];
const NONE: Dims = [0; 8];

struct Atom {
    code: &'static str,
    factor: &'static str,
    dims: Dims,
    metric: bool,
}

const fn a(code: &'static str, factor: &'static str, dims: Dims, metric: bool) -> Atom {
    Atom {
        code,
        factor,
        dims,
        metric,
    }
}

// Derived units expressed in the base units (g, not kg).
const ATOMS: &[Atom] = &[
    a("m", "1", M, true),
    a("s", "1", S, true),
    a("g", "1", G, true),
    a("K", "1", [0, 0, 0, 1, 0, 0, 0, 0], true),
    a("C", "1", [0, 0, 0, 0, 1, 0, 0, 0], true),
    a("cd", "1", [0, 0, 0, 0, 0, 1, 0, 0], true),
    a("mol", "1", [0, 0, 0, 0, 0, 0, 1, 0], true),
    a("eq", "1", [0, 0, 0, 0, 0, 0, 1, 0], true),
    a("kat", "1", [0, -1, 0, 0, 0, 0, 1, 0], true),
    a(
        "U",
        "0.000000016666666666666667",
        [0, -1, 0, 0, 0, 0, 1, 0],
        true,
    ),
    a("[iU]", "1", [0, 0, 0, 0, 0, 0, 0, 1], true),
    a("[IU]", "1", [0, 0, 0, 0, 0, 0, 0, 1], true),
    a("rad", "1", NONE, true),
    a("sr", "1", NONE, true),
    a("L", "0.001", [3, 0, 0, 0, 0, 0, 0, 0], true),
    a("l", "0.001", [3, 0, 0, 0, 0, 0, 0, 0], true),
    a("t", "1000000", G, true),
    a("Hz", "1", [0, -1, 0, 0, 0, 0, 0, 0], true),
    a("N", "1000", [1, -2, 1, 0, 0, 0, 0, 0], true),
    a("Pa", "1000", [-1, -2, 1, 0, 0, 0, 0, 0], true),
    a("bar", "100000000", [-1, -2, 1, 0, 0, 0, 0, 0], true),
    a("J", "1000", [2, -2, 1, 0, 0, 0, 0, 0], true),
    a("W", "1000", [2, -3, 1, 0, 0, 0, 0, 0], true),
    a("A", "1", [0, -1, 0, 0, 1, 0, 0, 0], true),
    a("V", "1000", [2, -2, 1, 0, -1, 0, 0, 0], true),
    a("cal", "4184", [2, -2, 1, 0, 0, 0, 0, 0], true),
    a("m[Hg]", "133322000", [-1, -2, 1, 0, 0, 0, 0, 0], true),
    a("m[H2O]", "9806650", [-1, -2, 1, 0, 0, 0, 0, 0], true),
    a("min", "60", S, false),
    a("h", "3600", S, false),
    a("d", "86400", S, false),
    a("wk", "604800", S, false),
    a("a", "31557600", S, false),
    a("a_j", "31557600", S, false),
    a("mo", "2629800", S, false),
    a("mo_j", "2629800", S, false),
    a("[in_i]", "0.0254", M, false),
    a("[ft_i]", "0.3048", M, false),
    a("[yd_i]", "0.9144", M, false),
    a("[mi_i]", "1609.344", M, false),
    a("[lb_av]", "453.59237", G, false),
    a("[oz_av]", "28.349523125", G, false),
    a("[gr]", "0.06479891", G, false),
    a("[stone_av]", "6350.29318", G, false),
    a("%", "0.01", NONE, false),
    a("[ppth]", "0.001", NONE, false),
    a("[ppm]", "0.000001", NONE, false),
    a("[ppb]", "0.000000001", NONE, false),
    a("10*", "10", NONE, false),
    a("10^", "10", NONE, false),
    a("1", "1", NONE, false),
];

const PREFIXES: &[(&str, &str)] = &[
    ("da", "10"),
    ("Y", "1000000000000000000000000"),
    ("Z", "1000000000000000000000"),
    ("E", "1000000000000000000"),
    ("P", "1000000000000000"),
    ("T", "1000000000000"),
    ("G", "1000000000"),
    ("M", "1000000"),
    ("k", "1000"),
    ("h", "100"),
    ("d", "0.1"),
    ("c", "0.01"),
    ("m", "0.001"),
    ("u", "0.000001"),
    ("n", "0.000000001"),
    ("p", "0.000000000001"),
    ("f", "0.000000000000001"),
    ("a", "0.000000000000000001"),
];

fn dec(s: &str) -> Decimal {
    Decimal::parse(s).unwrap_or(Decimal::ONE)
}

fn atom(code: &str) -> Option<Unit> {
    if let Some(at) = ATOMS.iter().find(|a| a.code == code) {
        return Some(Unit {
            factor: dec(at.factor),
            dims: at.dims,
        });
    }
    for (p, f) in PREFIXES {
        if let Some(rest) = code.strip_prefix(p)
            && let Some(at) = ATOMS.iter().find(|a| a.code == rest && a.metric)
        {
            return Some(Unit {
                factor: dec(f).checked_mul(&dec(at.factor))?,
                dims: at.dims,
            });
        }
    }
    None
}

fn pow(u: Unit, e: i32) -> Option<Unit> {
    if e.unsigned_abs() > 12 {
        return None;
    }
    let mut factor = Decimal::ONE;
    for _ in 0..e.unsigned_abs() {
        factor = factor.checked_mul(&u.factor)?;
    }
    if e < 0 {
        factor = Decimal::ONE.checked_div(&factor)?;
    }
    let mut dims = u.dims;
    for d in &mut dims {
        *d = d.checked_mul(e as i8)?;
    }
    Some(Unit { factor, dims })
}

fn combine(a: Unit, b: Unit, divide: bool) -> Option<Unit> {
    let factor = if divide {
        a.factor.checked_div(&b.factor)?
    } else {
        a.factor.checked_mul(&b.factor)?
    };
    let mut dims = a.dims;
    for (d, e) in dims.iter_mut().zip(b.dims) {
        *d = if divide { *d - e } else { *d + e };
    }
    Some(Unit { factor, dims })
}

/// One component: an atom with an optional exponent, a number, a bracketed term
/// or an annotation.
fn component(c: &str) -> Option<Unit> {
    // Drop annotations.
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
    if s.is_empty() {
        return Some(Unit {
            factor: Decimal::ONE,
            dims: NONE,
        });
    }
    if let Some(inner) = s.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        return parse_unit(inner);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Unit {
            factor: Decimal::parse(&s)?,
            dims: NONE,
        });
    }
    if let Some(u) = atom(&s) {
        return Some(u);
    }
    // Trailing exponent (outside brackets).
    let bytes = s.as_bytes();
    let mut i = bytes.len();
    while i > 0 && bytes[i - 1].is_ascii_digit() {
        i -= 1;
    }
    if i > 0 && (bytes[i - 1] == b'-' || bytes[i - 1] == b'+') {
        i -= 1;
    }
    if i == 0 || i == bytes.len() {
        return None;
    }
    let e: i32 = s[i..].parse().ok()?;
    pow(atom(&s[..i])?, e)
}

fn parse_unit(s: &str) -> Option<Unit> {
    let mut acc = Unit {
        factor: Decimal::ONE,
        dims: NONE,
    };
    let mut divide = false;
    let mut start = 0;
    let mut depth = 0i32;
    let bytes = s.as_bytes();
    let mut first = true;
    for i in 0..=bytes.len() {
        let b = bytes.get(i).copied();
        match b {
            Some(b'[' | b'(' | b'{') => depth += 1,
            Some(b']' | b')' | b'}') => depth -= 1,
            Some(b'.' | b'/') | None if depth == 0 => {
                let part = &s[start..i];
                if part.is_empty() {
                    if !(first && b == Some(b'/')) {
                        return None;
                    }
                } else {
                    acc = combine(acc, component(part)?, divide)?;
                }
                first = false;
                divide = b == Some(b'/');
                start = i + 1;
            }
            _ => {}
        }
    }
    Some(acc)
}

/// `value` in `unit` expressed in UCUM base units: the converted value and the
/// canonical unit code, base units in the order g, m, s, K, C, cd, mol, [iU] with
/// exponents (`120 mm[Hg]` → `15998640 g.m-1.s-2`; `1` when dimensionless). `None`
/// for units this module does not know.
pub fn to_canonical(value: &Decimal, unit: &str) -> Option<(Decimal, String)> {
    let u = parse_unit(unit)?;
    // `Dims` holds m, s, g, …; canonical codes list g first, as UCUM's base units do.
    const ORDER: [(usize, &str); 8] = [
        (2, "g"),
        (0, "m"),
        (1, "s"),
        (3, "K"),
        (4, "C"),
        (5, "cd"),
        (6, "mol"),
        (7, "[iU]"),
    ];
    let mut code = String::new();
    for (i, base) in ORDER {
        let e = u.dims[i];
        if e == 0 {
            continue;
        }
        if !code.is_empty() {
            code.push('.');
        }
        code.push_str(base);
        if e != 1 {
            code.push_str(&e.to_string());
        }
    }
    if code.is_empty() {
        code.push('1');
    }
    Some((value.checked_mul(&u.factor)?, code))
}

/// Whether `unit` is a UCUM expression this module understands.
pub fn is_known_unit(unit: &str) -> bool {
    calendar_unit(unit).is_some() || parse_unit(unit).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(v: &str, u: &str) -> Quantity {
        Quantity::new(Decimal::parse(v).unwrap(), u)
    }

    #[test]
    fn converts_common_units() {
        assert_eq!(q("1000", "mg").compare(&q("1", "g")), Some(Ordering::Equal));
        assert_eq!(
            q("1", "kg").compare(&q("999", "g")),
            Some(Ordering::Greater)
        );
        assert_eq!(q("100", "cm").compare(&q("1", "m")), Some(Ordering::Equal));
        assert_eq!(
            q("90", "min").compare(&q("1.5", "h")),
            Some(Ordering::Equal)
        );
        assert_eq!(q("1", "d").compare(&q("24", "h")), Some(Ordering::Equal));
        assert_eq!(q("7", "days").compare(&q("1", "wk")), Some(Ordering::Equal));
        assert_eq!(
            q("1", "year").compare(&q("12", "months")),
            Some(Ordering::Equal)
        );
        assert_eq!(q("1", "year").compare(&q("1", "a")), None);
        assert_eq!(q("1", "mg").compare(&q("1", "m")), None);
        assert_eq!(
            q("1", "mg/dL").compare(&q("10", "mg/L")),
            Some(Ordering::Equal)
        );
        assert_eq!(
            q("120", "mm[Hg]").compare(&q("12", "cm[Hg]")),
            Some(Ordering::Equal)
        );
        assert_eq!(q("50", "%").compare(&q("0.5", "1")), Some(Ordering::Equal));
        assert_eq!(
            q("1", "kg/m2").compare(&q("0.1", "g/cm2")),
            Some(Ordering::Equal)
        );
        assert_eq!(
            q("4", "g").add(&q("500", "mg")).unwrap().to_string(),
            "4.5 'g'"
        );
    }
}
