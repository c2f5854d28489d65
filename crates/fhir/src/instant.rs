//! FHIR instants and the time ranges that partial dates stand for.
//!
//! Internally time is microseconds since the Unix epoch (UTC). A partial FHIR date
//! such as `2024` or `2024-05-01T10:00` stands for the whole period its precision
//! covers: [`parse_range`] returns that period as a half-open range.

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Microseconds since the Unix epoch, UTC.
pub type Micros = i64;

/// The current time, in microseconds.
pub fn now() -> Micros {
    to_micros(OffsetDateTime::now_utc())
}

fn to_micros(t: OffsetDateTime) -> Micros {
    (t.unix_timestamp_nanos() / 1_000) as Micros
}

fn from_micros(m: Micros) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(m) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Formats as a FHIR `instant`, e.g. `2024-05-01T10:00:00.123456Z`.
pub fn format_instant(m: Micros) -> String {
    let t = from_micros(m);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// Formats as an HTTP date (`Last-Modified`), at whole seconds.
pub fn format_http_date(m: Micros) -> String {
    let t = from_micros(m);
    let weekday = &t.weekday().to_string()[..3];
    let month = &t.month().to_string()[..3];
    format!(
        "{weekday}, {:02} {month} {:04} {:02}:{:02}:{:02} GMT",
        t.day(),
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parses a FHIR `date`, `dateTime` or `instant` into the half-open range of
/// microseconds it covers. Times without a zone are taken as UTC.
pub fn parse_range(s: &str) -> Option<(Micros, Micros)> {
    if s.len() > 10 {
        let t = OffsetDateTime::parse(s, &Rfc3339)
            .ok()
            .or_else(|| parse_partial_time(s))?;
        let seconds_precision = s.get(16..17) == Some(":");
        let fraction_digits = s
            .split_once('.')
            .map(|(_, f)| f.bytes().take_while(u8::is_ascii_digit).count())
            .unwrap_or(0);
        let width: i64 = if fraction_digits > 0 {
            10i64.pow(6u32.saturating_sub(fraction_digits.min(6) as u32))
        } else if seconds_precision {
            1_000_000
        } else {
            60_000_000
        };
        let start = to_micros(t);
        return Some((start, start + width));
    }
    let mut parts = s.split('-');
    let year: i32 = parse_digits(parts.next()?, 4)?;
    let (month, day) = (parts.next(), parts.next());
    if parts.next().is_some() {
        return None;
    }
    let start_month = month.map(|m| parse_digits::<u8>(m, 2)).unwrap_or(Some(1))?;
    let start_day = day.map(|d| parse_digits::<u8>(d, 2)).unwrap_or(Some(1))?;
    let start =
        Date::from_calendar_date(year, Month::try_from(start_month).ok()?, start_day).ok()?;
    let end = match (month, day) {
        (None, _) => Date::from_calendar_date(year + 1, Month::January, 1).ok()?,
        (Some(_), None) => {
            let next = Month::try_from(start_month).ok()?.next();
            let y = if next == Month::January {
                year + 1
            } else {
                year
            };
            Date::from_calendar_date(y, next, 1).ok()?
        }
        (Some(_), Some(_)) => start.next_day()?,
    };
    let at_midnight = |d: Date| to_micros(PrimitiveDateTime::new(d, Time::MIDNIGHT).assume_utc());
    Some((at_midnight(start), at_midnight(end)))
}

/// `YYYY-MM-DDThh:mm[:ss]` with an optional zone; minutes precision is not RFC 3339.
fn parse_partial_time(s: &str) -> Option<OffsetDateTime> {
    let (date, rest) = s.split_once('T')?;
    let (d0, _) = parse_range(date)?;
    let (clock, offset) = match rest.find(['Z', '+', '-']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut hms = clock.split(':');
    let h: u8 = parse_digits(hms.next()?, 2)?;
    let m: u8 = parse_digits(hms.next()?, 2)?;
    let sec: u8 = match hms.next() {
        Some(x) => parse_digits(x, 2)?,
        None => 0,
    };
    if hms.next().is_some() {
        return None;
    }
    let offset = match offset {
        "" | "Z" => UtcOffset::UTC,
        o => {
            let sign: i8 = if o.starts_with('-') { -1 } else { 1 };
            let (oh, om) = o[1..].split_once(':')?;
            UtcOffset::from_hms(
                sign * parse_digits::<i8>(oh, 2)?,
                sign * parse_digits::<i8>(om, 2)?,
                0,
            )
            .ok()?
        }
    };
    let date = from_micros(d0).date();
    Some(PrimitiveDateTime::new(date, Time::from_hms(h, m, sec).ok()?).assume_offset(offset))
}

fn parse_digits<T: std::str::FromStr>(s: &str, len: usize) -> Option<T> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
}

/// Parses an HTTP date (`If-Modified-Since`), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn parse_http_date(s: &str) -> Option<Micros> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let t = PrimitiveDateTime::parse(s.trim(), &format).ok()?;
    Some(to_micros(t.assume_utc()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000;

    #[test]
    fn formats_instants_and_http_dates() {
        let m = 1_700_000_000_123_456;
        assert_eq!(format_instant(m), "2023-11-14T22:13:20.123456Z");
        assert_eq!(format_http_date(m), "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(
            parse_http_date("Tue, 14 Nov 2023 22:13:20 GMT"),
            Some(1_700_000_000_000_000)
        );
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn partial_dates_cover_their_precision() {
        let (s, e) = parse_range("2024").unwrap();
        assert_eq!(e - s, 366 * DAY);
        let (s, e) = parse_range("2024-02").unwrap();
        assert_eq!(e - s, 29 * DAY);
        let (s, e) = parse_range("2023-12").unwrap();
        assert_eq!(e - s, 31 * DAY);
        let (s, e) = parse_range("2024-02-28").unwrap();
        assert_eq!(e - s, DAY);
        assert_eq!(format_instant(s), "2024-02-28T00:00:00.000000Z");
        let (s, e) = parse_range("2024-02-28T10:00:00Z").unwrap();
        assert_eq!(e - s, 1_000_000);
        assert_eq!(format_instant(s), "2024-02-28T10:00:00.000000Z");
        let (s, e) = parse_range("2024-02-28T10:00:00.5+02:00").unwrap();
        assert_eq!(e - s, 100_000);
        assert_eq!(format_instant(s), "2024-02-28T08:00:00.500000Z");
        let (s, e) = parse_range("2024-02-28T10:00").unwrap();
        assert_eq!(e - s, 60_000_000);
        assert_eq!(format_instant(s), "2024-02-28T10:00:00.000000Z");
        for bad in [
            "",
            "24",
            "2024-13",
            "2024-02-30",
            "2024-1-01",
            "2024-02-28T25:00:00Z",
            "x",
        ] {
            assert_eq!(parse_range(bad), None, "{bad}");
        }
    }
}
