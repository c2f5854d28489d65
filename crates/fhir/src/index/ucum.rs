//! Canonical UCUM forms of quantities, so `120 mm[Hg]` and `16 kPa` index comparably.
//! The conversion is the FHIRPath engine's ([`to_canonical`]); this module rounds away
//! the noise its divisions leave in the last digits.

use crate::fhirpath::Decimal;
use crate::fhirpath::to_canonical;

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
    let (converted, canonical) = to_canonical(&Decimal::parse(value)?, unit)?;
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
