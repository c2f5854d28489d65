//! The JSON representation and lexical rules of the R4 primitive types
//! (<https://hl7.org/fhir/R4/datatypes.html#primitive>), checked by hand: no regex and
//! no allocation.

/// How a primitive type is represented in FHIR JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum JsonKind {
    Bool,
    /// A JSON integer within `min..=i32::MAX`.
    Integer {
        min: i64,
    },
    /// Any JSON number.
    Decimal,
    String,
}

/// The JSON representation of primitive type `ty`.
pub(super) fn json_kind(ty: &str) -> JsonKind {
    match ty {
        "boolean" => JsonKind::Bool,
        "integer" => JsonKind::Integer {
            min: i64::from(i32::MIN),
        },
        "positiveInt" => JsonKind::Integer { min: 1 },
        "unsignedInt" => JsonKind::Integer { min: 0 },
        "decimal" => JsonKind::Decimal,
        _ => JsonKind::String,
    }
}

/// Checks a non-empty JSON string against the lexical space of primitive `ty`; the error
/// explains the expected form.
pub(super) fn check(ty: &str, s: &str) -> Result<(), &'static str> {
    let ok = match ty {
        "id" => crate::id::is_valid_id(s),
        "date" => is_date(s),
        "dateTime" => is_date_time(s),
        "instant" => is_instant(s),
        "time" => is_time(s),
        "uri" | "url" | "canonical" => !s.bytes().any(is_space),
        "code" => is_code(s),
        "oid" => is_oid(s),
        "uuid" => is_uuid(s),
        "base64Binary" => is_base64(s),
        _ => true,
    };
    if ok { Ok(()) } else { Err(expected(ty)) }
}

fn expected(ty: &str) -> &'static str {
    match ty {
        "id" => "1 to 64 characters among A-Z, a-z, 0-9, '-' and '.'",
        "date" => "YYYY, YYYY-MM or YYYY-MM-DD, a valid calendar date",
        "dateTime" => {
            "YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.fff] with a time zone (Z or +hh:mm)"
        }
        "instant" => "YYYY-MM-DDThh:mm:ss[.fff] with seconds and a time zone (Z or +hh:mm)",
        "time" => "hh:mm:ss[.fff] without a time zone",
        "uri" | "url" | "canonical" => "a URI without whitespace",
        "code" => "no leading or trailing whitespace and only single spaces inside",
        "oid" => "urn:oid: followed by a dotted OID such as 1.2.3",
        "uuid" => "urn:uuid: followed by a lower-case UUID",
        "base64Binary" => "base64 (A-Z, a-z, 0-9, '+', '/', '=' padding) in groups of 4",
        _ => "a valid value",
    }
}

/// Whitespace as the R4 patterns mean it (`\s` of XML Schema): space, tab, CR, LF. A
/// no-break space is not whitespace there (CodeSystem v2-0550 has codes made of one).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// `[^\s]+( [^\s]+)*`: no leading or trailing whitespace and only single spaces inside
/// (the prose of the spec; its pattern would let a single tab or newline through).
fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.split(' ')
            .all(|word| !word.is_empty() && !word.bytes().any(is_space))
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// `YYYY[-MM[-DD]]` at the start of `b`: the number of components (1-3) and the length read.
fn date_prefix(b: &[u8]) -> Option<(u8, usize)> {
    let year = digits(b.get(..4)?)?;
    if year == 0 {
        return None;
    }
    if b.get(4) != Some(&b'-') {
        return Some((1, 4));
    }
    let month = digits(b.get(5..7)?)?;
    if !(1..=12).contains(&month) {
        return None;
    }
    if b.get(7) != Some(&b'-') {
        return Some((2, 7));
    }
    let day = digits(b.get(8..10)?)?;
    if day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some((3, 10))
}

/// `hh:mm:ss[.f+]` at the start of `b` (seconds 60 allowed for leap seconds): length read.
fn time_prefix(b: &[u8]) -> Option<usize> {
    let two = |i: usize, max: u32| digits(b.get(i..i + 2)?).filter(|v| *v <= max);
    two(0, 23)?;
    (b.get(2) == Some(&b':')).then_some(())?;
    two(3, 59)?;
    (b.get(5) == Some(&b':')).then_some(())?;
    two(6, 60)?;
    if b.get(8) != Some(&b'.') {
        return Some(8);
    }
    let fraction = b[9..].iter().take_while(|c| c.is_ascii_digit()).count();
    (fraction > 0).then_some(9 + fraction)
}

/// `Z` or `(+|-)hh:mm` with hh:mm at most 14:00.
fn is_zone(b: &[u8]) -> bool {
    match b {
        [b'Z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => match (digits(&[*h1, *h2]), digits(&[*m1, *m2])) {
            (Some(h), Some(m)) => m <= 59 && (h < 14 || (h == 14 && m == 0)),
            _ => false,
        },
        _ => false,
    }
}

fn is_date(s: &str) -> bool {
    date_prefix(s.as_bytes()).is_some_and(|(_, len)| len == s.len())
}

fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    match date_prefix(b) {
        Some((_, len)) if len == b.len() => true,
        Some((3, len)) if b[len] == b'T' => {
            let rest = &b[len + 1..];
            time_prefix(rest).is_some_and(|t| is_zone(&rest[t..]))
        }
        _ => false,
    }
}

fn is_instant(s: &str) -> bool {
    let b = s.as_bytes();
    matches!(date_prefix(b), Some((3, 10)))
        && b.get(10) == Some(&b'T')
        && time_prefix(&b[11..]).is_some_and(|t| is_zone(&b[11 + t..]))
}

fn is_time(s: &str) -> bool {
    time_prefix(s.as_bytes()) == Some(s.len())
}

/// `urn:oid:[0-2](\.(0|[1-9][0-9]*))+`.
fn is_oid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("urn:oid:") else {
        return false;
    };
    let mut arcs = rest.split('.');
    let first_ok = matches!(arcs.next(), Some("0" | "1" | "2"));
    let mut count = 0;
    let rest_ok = arcs.all(|arc| {
        count += 1;
        digits(arc.as_bytes()).is_some() && (arc == "0" || !arc.starts_with('0'))
    });
    first_ok && rest_ok && count > 0
}

/// `urn:uuid:` and 8-4-4-4-12 lower-case hex digits.
fn is_uuid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("urn:uuid:") else {
        return false;
    };
    let b = rest.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
}

/// Base64 with optional whitespace between characters: a multiple of 4 characters, `=`
/// only as the last one or two.
fn is_base64(s: &str) -> bool {
    let mut count = 0usize;
    let mut padding = 0usize;
    for c in s.bytes() {
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => {}
            b'=' => {
                padding += 1;
                count += 1;
            }
            c if padding == 0 && (c.is_ascii_alphanumeric() || c == b'+' || c == b'/') => {
                count += 1;
            }
            _ => return false,
        }
    }
    count % 4 == 0 && padding <= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times() {
        for ok in ["2024", "2024-02", "2024-02-29", "2000-02-29", "0001"] {
            assert!(is_date(ok), "{ok}");
        }
        for bad in [
            "0000",
            "24",
            "2024-13",
            "2024-1",
            "2023-02-29",
            "1900-02-29",
            "2024-04-31",
            "2024-02-28T10:00:00Z",
            "2024-",
            "2024/02",
        ] {
            assert!(!is_date(bad), "{bad}");
        }
        for ok in [
            "2024",
            "2024-02-28",
            "2024-02-28T10:00:00Z",
            "2024-02-28T23:59:60.123+14:00",
            "2024-02-28T10:00:00-05:30",
        ] {
            assert!(is_date_time(ok), "{ok}");
        }
        for bad in [
            "2024-02-28T10:00",
            "2024-02-28T10:00:00",
            "2024-02T10:00:00Z",
            "2024-02-28T24:00:00Z",
            "2024-02-28T10:00:00+14:30",
            "2024-02-28T10:00:00.Z",
            "2024-02-28 10:00:00Z",
            "2024-02-28T",
        ] {
            assert!(!is_date_time(bad), "{bad}");
        }
        assert!(is_instant("2024-02-28T10:00:00.5Z"));
        assert!(!is_instant("2024-02-28T10:00:00"));
        assert!(!is_instant("2024-02-28"));
        assert!(is_time("10:00:00") && is_time("23:59:59.999"));
        assert!(!is_time("10:00") && !is_time("10:00:00Z") && !is_time("25:00:00"));
    }

    #[test]
    fn identifiers_and_codes() {
        assert!(is_code("a b") && is_code("ok"));
        assert!(!is_code(" a") && !is_code("a ") && !is_code("a  b") && !is_code("a\tb"));
        assert!(is_code("\u{a0}") && is_code("CHEST\u{a0}"));
        assert!(is_oid("urn:oid:1.2.840.10008") && is_oid("urn:oid:2.0"));
        assert!(!is_oid("urn:oid:1") && !is_oid("urn:oid:3.1") && !is_oid("urn:oid:1.02"));
        assert!(!is_oid("1.2.3"));
        assert!(is_uuid("urn:uuid:a76d9bbf-f293-4fb7-ad4c-2851cac77162"));
        assert!(!is_uuid("urn:uuid:A76D9BBF-F293-4FB7-AD4C-2851CAC77162"));
        assert!(!is_uuid("a76d9bbf-f293-4fb7-ad4c-2851cac77162"));
        assert!(is_base64("aGVsbG8=") && is_base64("aGVs\nbG8h") && is_base64("aA=="));
        assert!(!is_base64("aGVsbG8") && !is_base64("a=b=") && !is_base64("aGV!"));
        assert!(check("uri", "http://x/y").is_ok() && check("uri", "a b").is_err());
        assert!(check("string", "anything").is_ok());
    }
}
