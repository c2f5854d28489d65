//! An exact decimal: `mantissa / 10^scale`, keeping the scale it was written with
//! (so `1.0` prints as `1.0` and the precision rules of FHIRPath can be applied).

use std::cmp::Ordering;
use std::fmt;

/// The largest scale kept; results needing more are rounded.
const MAX_SCALE: u32 = 28;
/// Digits after the point kept by division.
const DIV_SCALE: u32 = 16;

#[derive(Clone, Copy, Debug)]
pub struct Decimal {
    mantissa: i128,
    scale: u32,
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

impl Decimal {
    pub const ZERO: Decimal = Decimal {
        mantissa: 0,
        scale: 0,
    };
    pub const ONE: Decimal = Decimal {
        mantissa: 1,
        scale: 0,
    };

    pub fn new(mantissa: i128, scale: u32) -> Self {
        Decimal { mantissa, scale }
    }

    pub fn from_i64(v: i64) -> Self {
        Decimal {
            mantissa: v as i128,
            scale: 0,
        }
    }

    pub fn mantissa(&self) -> i128 {
        self.mantissa
    }

    /// Digits after the decimal point, as written.
    pub fn scale(&self) -> u32 {
        self.scale
    }

    /// Parses `-12.340`, `1e3`, `+5`. Returns `None` for anything else or when the
    /// value does not fit.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (neg, body) = match s.as_bytes().first()? {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let (num, exp) = match body.find(['e', 'E']) {
            Some(i) => (&body[..i], Some(&body[i + 1..])),
            None => (body, None),
        };
        let (int, frac) = match num.find('.') {
            Some(i) => (&num[..i], &num[i + 1..]),
            None => (num, ""),
        };
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if num.contains('.') && frac.is_empty() {
            return None;
        }
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut mantissa: i128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            mantissa = mantissa.checked_mul(10)?.checked_add((b - b'0') as i128)?;
        }
        let mut scale = frac.len() as i64;
        if let Some(e) = exp {
            let e: i64 = e.parse().ok()?;
            scale -= e;
        }
        if scale < 0 {
            mantissa = mantissa.checked_mul(pow10((-scale) as u32)?)?;
            scale = 0;
        }
        if scale > 38 {
            return None;
        }
        let d = Decimal {
            mantissa: if neg { -mantissa } else { mantissa },
            scale: scale as u32,
        };
        Some(if d.scale > MAX_SCALE {
            d.round(MAX_SCALE)
        } else {
            d
        })
    }

    pub fn from_f64(v: f64) -> Option<Self> {
        if !v.is_finite() {
            return None;
        }
        // Shortest representation that round-trips, then trimmed to a sane scale.
        let s = format!("{v}");
        let d = Decimal::parse(&s)?;
        Some(if d.scale > 15 { d.round(15).trim() } else { d })
    }

    pub fn to_f64(&self) -> f64 {
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    pub fn is_negative(&self) -> bool {
        self.mantissa < 0
    }

    /// The value with its scale raised to `scale` (no rounding needed).
    fn rescale_up(&self, scale: u32) -> Option<i128> {
        debug_assert!(scale >= self.scale);
        self.mantissa.checked_mul(pow10(scale - self.scale)?)
    }

    /// Removes trailing zeros after the point.
    pub fn trim(mut self) -> Self {
        while self.scale > 0 && self.mantissa % 10 == 0 {
            self.mantissa /= 10;
            self.scale -= 1;
        }
        self
    }

    /// Rounds half away from zero to `scale` digits after the point.
    pub fn round(&self, scale: u32) -> Self {
        if scale >= self.scale {
            return match self.rescale_up(scale) {
                Some(m) => Decimal { mantissa: m, scale },
                None => *self,
            };
        }
        let div = match pow10(self.scale - scale) {
            Some(d) => d,
            None => return Decimal::new(0, scale),
        };
        let q = self.mantissa / div;
        let r = self.mantissa % div;
        let q = if r.unsigned_abs() * 2 >= div.unsigned_abs() {
            q + self.mantissa.signum()
        } else {
            q
        };
        Decimal { mantissa: q, scale }
    }

    /// Drops digits past `scale` (towards zero).
    pub fn truncate_to(&self, scale: u32) -> Self {
        if scale >= self.scale {
            return *self;
        }
        match pow10(self.scale - scale) {
            Some(div) => Decimal {
                mantissa: self.mantissa / div,
                scale,
            },
            None => Decimal::new(0, scale),
        }
    }

    /// Integer part, towards zero.
    pub fn trunc_i128(&self) -> i128 {
        self.truncate_to(0).mantissa
    }

    pub fn floor_i128(&self) -> i128 {
        let t = self.truncate_to(0);
        if self.mantissa < 0 && t.cmp_value(self) != Ordering::Equal {
            t.mantissa - 1
        } else {
            t.mantissa
        }
    }

    pub fn ceil_i128(&self) -> i128 {
        let t = self.truncate_to(0);
        if self.mantissa > 0 && t.cmp_value(self) != Ordering::Equal {
            t.mantissa + 1
        } else {
            t.mantissa
        }
    }

    pub fn neg(&self) -> Self {
        Decimal {
            mantissa: -self.mantissa,
            scale: self.scale,
        }
    }

    pub fn abs(&self) -> Self {
        Decimal {
            mantissa: self.mantissa.abs(),
            scale: self.scale,
        }
    }

    /// Numeric comparison, ignoring the written precision (`0.10 == 0.1`).
    pub fn cmp_value(&self, other: &Decimal) -> Ordering {
        let scale = self.scale.max(other.scale);
        match (self.rescale_up(scale), other.rescale_up(scale)) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => self
                .to_f64()
                .partial_cmp(&other.to_f64())
                .unwrap_or(Ordering::Equal),
        }
    }

    /// Equal once both are rounded to the precision of the less precise one.
    pub fn equivalent(&self, other: &Decimal) -> bool {
        let scale = self.scale.min(other.scale);
        self.round(scale).cmp_value(&other.round(scale)) == Ordering::Equal
    }

    fn aligned(&self, other: &Decimal) -> Option<(i128, i128, u32)> {
        let scale = self.scale.max(other.scale);
        Some((self.rescale_up(scale)?, other.rescale_up(scale)?, scale))
    }

    pub fn checked_add(&self, other: &Decimal) -> Option<Self> {
        let (a, b, scale) = self.aligned(other)?;
        Some(Decimal::new(a.checked_add(b)?, scale))
    }

    pub fn checked_sub(&self, other: &Decimal) -> Option<Self> {
        let (a, b, scale) = self.aligned(other)?;
        Some(Decimal::new(a.checked_sub(b)?, scale))
    }

    pub fn checked_mul(&self, other: &Decimal) -> Option<Self> {
        let mut a = *self;
        let mut b = *other;
        loop {
            if let Some(m) = a.mantissa.checked_mul(b.mantissa) {
                let d = Decimal::new(m, a.scale + b.scale);
                return Some(if d.scale > MAX_SCALE {
                    d.round(MAX_SCALE)
                } else {
                    d
                });
            }
            // Lose precision on the operand with the larger scale, if any.
            if a.scale >= b.scale && a.scale > 0 {
                a = a.round(a.scale - 1);
            } else if b.scale > 0 {
                b = b.round(b.scale - 1);
            } else {
                return None;
            }
        }
    }

    /// Division to `DIV_SCALE` digits, trailing zeros removed.
    pub fn checked_div(&self, other: &Decimal) -> Option<Self> {
        if other.mantissa == 0 {
            return None;
        }
        // self / other = (a / b) with both at the same scale.
        let (mut a, b, _) = self.aligned(other)?;
        let mut scale = 0;
        // Scale a up as far as DIV_SCALE + 1 digits (for rounding) allow.
        while scale < DIV_SCALE + 1 {
            match a.checked_mul(10) {
                Some(v) => {
                    a = v;
                    scale += 1;
                }
                None => break,
            }
        }
        let q = Decimal::new(a / b, scale);
        Some(q.round(scale.min(DIV_SCALE)).trim())
    }

    /// Truncated division (`div`).
    pub fn checked_div_int(&self, other: &Decimal) -> Option<i128> {
        if other.mantissa == 0 {
            return None;
        }
        let (a, b, _) = self.aligned(other)?;
        Some(a / b)
    }

    /// Remainder of truncated division (`mod`).
    pub fn checked_rem(&self, other: &Decimal) -> Option<Self> {
        if other.mantissa == 0 {
            return None;
        }
        let (a, b, scale) = self.aligned(other)?;
        Some(Decimal::new(a % b, scale))
    }

    /// The integer value, if the number has no fractional part.
    pub fn to_i64_exact(&self) -> Option<i64> {
        let t = self.trim();
        if t.scale != 0 {
            return None;
        }
        i64::try_from(t.mantissa).ok()
    }
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Self) -> bool {
        self.cmp_value(other) == Ordering::Equal
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.mantissa.unsigned_abs().to_string();
        if self.mantissa < 0 {
            f.write_str("-")?;
        }
        let scale = self.scale as usize;
        if scale == 0 {
            return f.write_str(&digits);
        }
        if digits.len() > scale {
            let (i, fr) = digits.split_at(digits.len() - scale);
            write!(f, "{i}.{fr}")
        } else {
            write!(f, "0.{}{}", "0".repeat(scale - digits.len()), digits)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    #[test]
    fn parses_and_prints_exactly() {
        assert_eq!(d("0.10").to_string(), "0.10");
        assert_eq!(d("-0.5").to_string(), "-0.5");
        assert_eq!(d("1e3").to_string(), "1000");
        assert_eq!(d("1.5E-2").to_string(), "0.015");
        assert!(Decimal::parse("1.").is_none());
        assert!(Decimal::parse(".5").is_none());
        assert!(Decimal::parse("1.a").is_none());
    }

    #[test]
    fn compares_by_value_and_precision() {
        assert_eq!(d("0.10"), d("0.1"));
        assert!(d("1.0").equivalent(&d("1.04")));
        assert!(!d("1.0").equivalent(&d("1.05")));
        assert_eq!(d("2.2").checked_rem(&d("1.8")).unwrap(), d("0.4"));
        assert_eq!(d("1.2").checked_div(&d("1.8")).unwrap().round(2), d("0.67"));
        assert_eq!(d("3.14159").round(3).to_string(), "3.142");
        assert_eq!(d("-1.56").trunc_i128(), -1);
        assert_eq!(d("-1.5").floor_i128(), -2);
        assert_eq!(d("1.1").ceil_i128(), 2);
    }
}
