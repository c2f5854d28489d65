//! Partial dates, date-times and times with FHIRPath precision semantics.

use std::cmp::Ordering;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Precision {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Millisecond,
}

impl Precision {
    /// Number of digits of the precision, as `precision()` reports it.
    pub fn digits(self, time_only: bool) -> i64 {
        if time_only {
            match self {
                Precision::Hour => 2,
                Precision::Minute => 4,
                Precision::Second => 6,
                _ => 9,
            }
        } else {
            match self {
                Precision::Year => 4,
                Precision::Month => 6,
                Precision::Day => 8,
                Precision::Hour => 10,
                Precision::Minute => 12,
                Precision::Second => 14,
                Precision::Millisecond => 17,
            }
        }
    }
}

/// A calendar unit used in date arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CalendarUnit {
    Year,
    Month,
    Week,
    Day,
    Hour,
    Minute,
    Second,
    Millisecond,
}

/// A date (precision Year..=Day) or a date-time (any precision).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DateTime {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub millis: u16,
    /// Offset from UTC in minutes, when given.
    pub tz: Option<i16>,
    pub precision: Precision,
}

/// A time of day (precision Hour..=Millisecond).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Time {
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub millis: u16,
    pub precision: Precision,
}

pub fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub fn days_in_month(y: i32, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i32, m: u8, d: u8) -> i64 {
    let y = if m <= 2 { y as i64 - 1 } else { y as i64 };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

pub fn civil_from_days(z: i64) -> (i32, u8, u8) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    ((if m <= 2 { y + 1 } else { y }) as i32, m, d)
}

/// A small cursor for the fixed-width formats.
struct Cursor<'s> {
    s: &'s [u8],
    i: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<u32> {
        if self.i + n > self.s.len() {
            return None;
        }
        let mut v = 0u32;
        for &b in &self.s[self.i..self.i + n] {
            if !b.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (b - b'0') as u32;
        }
        self.i += n;
        Some(v)
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn done(&self) -> bool {
        self.i == self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
}

/// Parses `hh(:mm(:ss(.fff)?)?)?` into a time; `full` requires seconds.
fn parse_time_part(c: &mut Cursor<'_>) -> Option<Time> {
    let hour = c.digits(2)? as u8;
    if hour > 23 {
        return None;
    }
    let mut t = Time {
        hour,
        minute: 0,
        second: 0,
        millis: 0,
        precision: Precision::Hour,
    };
    if !c.eat(b':') {
        return Some(t);
    }
    t.minute = c.digits(2)? as u8;
    if t.minute > 59 {
        return None;
    }
    t.precision = Precision::Minute;
    if !c.eat(b':') {
        return Some(t);
    }
    t.second = c.digits(2)? as u8;
    if t.second > 59 {
        return None;
    }
    t.precision = Precision::Second;
    if c.eat(b'.') {
        let start = c.i;
        let mut ms = 0u32;
        let mut n = 0;
        while let Some(b) = c.peek() {
            if !b.is_ascii_digit() {
                break;
            }
            if n < 3 {
                ms = ms * 10 + (b - b'0') as u32;
            }
            n += 1;
            c.i += 1;
        }
        if c.i == start {
            return None;
        }
        while n < 3 {
            ms *= 10;
            n += 1;
        }
        t.millis = ms as u16;
        t.precision = Precision::Millisecond;
    }
    Some(t)
}

fn parse_tz(c: &mut Cursor<'_>) -> Option<Option<i16>> {
    match c.peek() {
        Some(b'Z') => {
            c.i += 1;
            Some(Some(0))
        }
        Some(sign @ (b'+' | b'-')) => {
            c.i += 1;
            let h = c.digits(2)? as i16;
            if !c.eat(b':') {
                return None;
            }
            let m = c.digits(2)? as i16;
            if h > 14 || m > 59 {
                return None;
            }
            let off = h * 60 + m;
            Some(Some(if sign == b'-' { -off } else { off }))
        }
        _ => Some(None),
    }
}

impl DateTime {
    pub fn is_date(&self) -> bool {
        self.precision <= Precision::Day && self.tz.is_none()
    }

    /// `YYYY(-MM(-DD)?)?` only.
    pub fn parse_date(s: &str) -> Option<DateTime> {
        let mut c = Cursor {
            s: s.as_bytes(),
            i: 0,
        };
        let d = Self::parse_date_part(&mut c)?;
        c.done().then_some(d)
    }

    fn parse_date_part(c: &mut Cursor<'_>) -> Option<DateTime> {
        let year = c.digits(4)? as i32;
        let mut d = DateTime {
            year,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            millis: 0,
            tz: None,
            precision: Precision::Year,
        };
        if c.peek() == Some(b'-') && c.s.get(c.i + 1).is_some_and(|b| b.is_ascii_digit()) {
            c.i += 1;
            d.month = c.digits(2)? as u8;
            if !(1..=12).contains(&d.month) {
                return None;
            }
            d.precision = Precision::Month;
            if c.peek() == Some(b'-') {
                c.i += 1;
                d.day = c.digits(2)? as u8;
                if d.day == 0 || d.day > days_in_month(d.year, d.month) {
                    return None;
                }
                d.precision = Precision::Day;
            }
        }
        Some(d)
    }

    /// A date or date-time: `YYYY(-MM(-DD(Thh(:mm(:ss(.fff)?)?)?)?)?)?(tz)?`; a bare
    /// trailing `T` is accepted (`2015T`).
    pub fn parse_datetime(s: &str) -> Option<DateTime> {
        let mut c = Cursor {
            s: s.as_bytes(),
            i: 0,
        };
        let mut d = Self::parse_date_part(&mut c)?;
        if c.eat(b'T') {
            if c.peek().is_some_and(|b| b.is_ascii_digit()) {
                if d.precision != Precision::Day {
                    return None;
                }
                let t = parse_time_part(&mut c)?;
                d.hour = t.hour;
                d.minute = t.minute;
                d.second = t.second;
                d.millis = t.millis;
                d.precision = t.precision;
            }
            d.tz = parse_tz(&mut c)?;
        } else if d.precision == Precision::Day {
            // FHIR JSON never has a zone without a time, but be tolerant.
            d.tz = None;
        }
        c.done().then_some(d)
    }

    pub fn to_date(&self) -> DateTime {
        DateTime {
            hour: 0,
            minute: 0,
            second: 0,
            millis: 0,
            tz: None,
            precision: self.precision.min(Precision::Day),
            ..*self
        }
    }

    fn epoch_millis(&self) -> i64 {
        let days = days_from_civil(self.year, self.month, self.day);
        ((days * 24 + self.hour as i64) * 60 + self.minute as i64) * 60_000
            + self.second as i64 * 1000
            + self.millis as i64
    }

    fn with_epoch_millis(&self, ms: i64) -> DateTime {
        let days = ms.div_euclid(86_400_000);
        let rem = ms.rem_euclid(86_400_000);
        let (year, month, day) = civil_from_days(days);
        DateTime {
            year,
            month,
            day,
            hour: (rem / 3_600_000) as u8,
            minute: (rem / 60_000 % 60) as u8,
            second: (rem / 1000 % 60) as u8,
            millis: (rem % 1000) as u16,
            tz: self.tz,
            precision: self.precision,
        }
    }

    /// The same instant in UTC (only for values with a time and a zone).
    fn normalized(&self) -> DateTime {
        match self.tz {
            Some(off) if self.precision >= Precision::Hour && off != 0 => {
                let mut d = self.with_epoch_millis(self.epoch_millis() - off as i64 * 60_000);
                d.tz = Some(0);
                d
            }
            _ => *self,
        }
    }

    fn components(&self) -> [i64; 6] {
        [
            self.year as i64,
            self.month as i64,
            self.day as i64,
            self.hour as i64,
            self.minute as i64,
            self.second as i64 * 1000 + self.millis as i64,
        ]
    }

    /// Compares honouring precision: `None` when the answer depends on the parts
    /// one of the two does not have.
    pub fn compare(&self, other: &DateTime) -> Option<Ordering> {
        // With times on both sides, a zone on one side only makes the answer unknown.
        if self.precision >= Precision::Hour
            && other.precision >= Precision::Hour
            && self.tz.is_some() != other.tz.is_some()
        {
            return None;
        }
        let (a, b) = (self.normalized(), other.normalized());
        compare_components(
            &a.components(),
            &b.components(),
            level(a.precision),
            level(b.precision),
        )
    }

    /// Adds `n` calendar units (negative to subtract). The result keeps the
    /// precision of `self`.
    pub fn add(&self, n: i64, unit: CalendarUnit) -> Option<DateTime> {
        let mut d = *self;
        match unit {
            CalendarUnit::Year | CalendarUnit::Month => {
                let months = if unit == CalendarUnit::Year {
                    n.checked_mul(12)?
                } else {
                    n
                };
                let total = d.year as i64 * 12 + (d.month as i64 - 1) + months;
                let year = total.div_euclid(12);
                if !(1..=9999).contains(&year) {
                    return None;
                }
                d.year = year as i32;
                d.month = (total.rem_euclid(12) + 1) as u8;
                d.day = d.day.min(days_in_month(d.year, d.month));
            }
            _ => {
                let ms = match unit {
                    CalendarUnit::Week => n.checked_mul(7 * 86_400_000)?,
                    CalendarUnit::Day => n.checked_mul(86_400_000)?,
                    CalendarUnit::Hour => n.checked_mul(3_600_000)?,
                    CalendarUnit::Minute => n.checked_mul(60_000)?,
                    CalendarUnit::Second => n.checked_mul(1000)?,
                    _ => n,
                };
                d = d.with_epoch_millis(d.epoch_millis().checked_add(ms)?);
                if !(1..=9999).contains(&d.year) {
                    return None;
                }
            }
        }
        Some(d.truncated())
    }

    /// Zeroes the parts below the precision (so equal values print alike).
    fn truncated(mut self) -> DateTime {
        let p = self.precision;
        if p < Precision::Month {
            self.month = 1;
        }
        if p < Precision::Day {
            self.day = 1;
        }
        if p < Precision::Hour {
            self.hour = 0;
        }
        if p < Precision::Minute {
            self.minute = 0;
        }
        if p < Precision::Second {
            self.second = 0;
        }
        if p < Precision::Millisecond {
            self.millis = 0;
        }
        self
    }

    /// Writes the date-time without the leading `@`; `date_time_marker` adds the
    /// `T` of a date-time literal with no time part (`2015T`).
    pub fn write(&self, f: &mut impl fmt::Write, date_time_marker: bool) -> fmt::Result {
        write!(f, "{:04}", self.year)?;
        if self.precision >= Precision::Month {
            write!(f, "-{:02}", self.month)?;
        }
        if self.precision >= Precision::Day {
            write!(f, "-{:02}", self.day)?;
        }
        if self.precision >= Precision::Hour {
            write!(f, "T{:02}", self.hour)?;
            if self.precision >= Precision::Minute {
                write!(f, ":{:02}", self.minute)?;
            }
            if self.precision >= Precision::Second {
                write!(f, ":{:02}", self.second)?;
            }
            if self.precision >= Precision::Millisecond {
                write!(f, ".{:03}", self.millis)?;
            }
        } else if date_time_marker {
            f.write_char('T')?;
        }
        if let Some(off) = self.tz {
            if off == 0 {
                f.write_char('Z')?;
            } else {
                let sign = if off < 0 { '-' } else { '+' };
                write!(f, "{sign}{:02}:{:02}", off.abs() / 60, off.abs() % 60)?;
            }
        }
        Ok(())
    }

    pub fn to_string_with(&self, date_time_marker: bool) -> String {
        let mut s = String::new();
        let _ = self.write(&mut s, date_time_marker);
        s
    }

    /// The earliest (`high == false`) or latest possible value, at `precision`.
    pub fn boundary(&self, precision: Precision, high: bool, is_date: bool) -> DateTime {
        let mut d = *self;
        if self.precision < Precision::Month {
            d.month = if high { 12 } else { 1 };
        }
        if self.precision < Precision::Day {
            d.day = if high {
                days_in_month(d.year, d.month)
            } else {
                1
            };
        }
        if self.precision < Precision::Hour {
            d.hour = if high { 23 } else { 0 };
        }
        if self.precision < Precision::Minute {
            d.minute = if high { 59 } else { 0 };
        }
        if self.precision < Precision::Second {
            d.second = if high { 59 } else { 0 };
        }
        if self.precision < Precision::Millisecond {
            d.millis = if high { 999 } else { 0 };
        }
        if !is_date && precision >= Precision::Hour && d.tz.is_none() {
            d.tz = Some(if high { -12 * 60 } else { 14 * 60 });
        }
        d.precision = precision;
        d.truncated()
    }
}

fn level(p: Precision) -> usize {
    (p as usize).min(5)
}

fn compare_components(a: &[i64], b: &[i64], pa: usize, pb: usize) -> Option<Ordering> {
    for i in 0..=pa.min(pb) {
        match a[i].cmp(&b[i]) {
            Ordering::Equal => {}
            o => return Some(o),
        }
    }
    (pa == pb).then_some(Ordering::Equal)
}

impl Time {
    /// `hh(:mm(:ss(.fff)?)?)?`
    pub fn parse(s: &str) -> Option<Time> {
        let mut c = Cursor {
            s: s.as_bytes(),
            i: 0,
        };
        let t = parse_time_part(&mut c)?;
        c.done().then_some(t)
    }

    fn components(&self) -> [i64; 3] {
        [
            self.hour as i64,
            self.minute as i64,
            self.second as i64 * 1000 + self.millis as i64,
        ]
    }

    pub fn compare(&self, other: &Time) -> Option<Ordering> {
        let l = |p: Precision| (p as usize).clamp(3, 5) - 3;
        compare_components(
            &self.components(),
            &other.components(),
            l(self.precision),
            l(other.precision),
        )
    }

    pub fn add(&self, n: i64, unit: CalendarUnit) -> Option<Time> {
        let ms = match unit {
            CalendarUnit::Hour => n.checked_mul(3_600_000)?,
            CalendarUnit::Minute => n.checked_mul(60_000)?,
            CalendarUnit::Second => n.checked_mul(1000)?,
            CalendarUnit::Millisecond => n,
            _ => return None,
        };
        let cur = ((self.hour as i64 * 60 + self.minute as i64) * 60 + self.second as i64) * 1000
            + self.millis as i64;
        let t = (cur + ms).rem_euclid(86_400_000);
        Some(Time {
            hour: (t / 3_600_000) as u8,
            minute: (t / 60_000 % 60) as u8,
            second: (t / 1000 % 60) as u8,
            millis: (t % 1000) as u16,
            precision: self.precision,
        })
    }

    pub fn boundary(&self, precision: Precision, high: bool) -> Time {
        let mut t = *self;
        if self.precision < Precision::Minute {
            t.minute = if high { 59 } else { 0 };
        }
        if self.precision < Precision::Second {
            t.second = if high { 59 } else { 0 };
        }
        if self.precision < Precision::Millisecond {
            t.millis = if high { 999 } else { 0 };
        }
        t.precision = precision;
        t
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}", self.hour)?;
        if self.precision >= Precision::Minute {
            write!(f, ":{:02}", self.minute)?;
        }
        if self.precision >= Precision::Second {
            write!(f, ":{:02}", self.second)?;
        }
        if self.precision >= Precision::Millisecond {
            write!(f, ".{:03}", self.millis)?;
        }
        Ok(())
    }
}

/// The current UTC date-time, at millisecond precision.
pub fn now_utc() -> DateTime {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let base = DateTime {
        year: 1970,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
        millis: 0,
        tz: Some(0),
        precision: Precision::Millisecond,
    };
    base.with_epoch_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> DateTime {
        DateTime::parse_datetime(s).unwrap()
    }

    #[test]
    fn precision_rules() {
        assert_eq!(dt("2012-04-15").compare(&dt("2012-04-15T10:00")), None);
        assert_eq!(
            dt("2012-04-15").compare(&dt("2012-04-16T10:00")),
            Some(Ordering::Less)
        );
        assert_eq!(
            dt("2012-04-15T15:00:00Z").compare(&dt("2012-04-15T10:00:00-05:00")),
            Some(Ordering::Equal)
        );
        assert_eq!(
            dt("2012-04-15T10:00:00").compare(&dt("2012-04-15T10:00:00.000")),
            Some(Ordering::Equal)
        );
        let t = |s| Time::parse(s).unwrap();
        assert_eq!(t("10:00").compare(&t("10:00:00")), None);
    }

    #[test]
    fn arithmetic_and_printing() {
        let d = dt("1973-12-25").add(1, CalendarUnit::Month).unwrap();
        assert_eq!(d.to_string_with(false), "1974-01-25");
        let d = dt("2016-01-31").add(1, CalendarUnit::Month).unwrap();
        assert_eq!(d.to_string_with(false), "2016-02-29");
        let d = dt("1973-12-25T00:00:00.000+10:00")
            .add(7, CalendarUnit::Day)
            .unwrap();
        assert_eq!(d.to_string_with(false), "1974-01-01T00:00:00.000+10:00");
        assert_eq!(dt("2015").to_string_with(true), "2015T");
        assert!(DateTime::parse_datetime("2015-02-30").is_none());
        assert_eq!(civil_from_days(days_from_civil(2000, 2, 29)), (2000, 2, 29));
    }
}
