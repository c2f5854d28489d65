//! The normalized form of string index values: case- and accent-insensitive.
//!
//! [`normalize`] lower-cases (full Unicode lower-casing), removes diacritics as Unicode
//! NFD followed by dropping combining marks would, and collapses whitespace. The
//! decomposition is table-driven for Latin-1 Supplement and Latin Extended-A (the letters
//! of the Western and Central European languages); combining marks already present in the
//! input are dropped in any script. Letters that have no canonical decomposition stay as
//! they are, exactly as with NFD: `æ`, `ø`, `ð`, `þ`, `ß`, `đ`, `ħ`, `ı`, `ł`, `ŋ`, `œ`
//! (so `Søren` normalizes to `søren`, and `Åse` to `ase`).

/// Base letters of U+00C0..=U+00FF, `-` where NFD does not decompose.
const LATIN_1: &[u8; 64] = b"aaaaaa-ceeeeiiii-nooooo--uuuuy--aaaaaa-ceeeeiiii-nooooo--uuuuy-y";
/// Base letters of U+0100..=U+017F, `-` where NFD does not decompose.
const LATIN_EXT_A: &[u8; 128] = b"aaaaaaccccccccdd--eeeeeeeeeegggggggghh--iiiiiiiii---jjkk-llllll----nnnnnn---oooooo--rrrrrrsssssssstttt--uuuuuuuuuuuuwwyyyzzzzzz-";

/// The base letter of a precomposed Latin letter (lower or upper case gives lower case).
fn base_letter(c: char) -> Option<char> {
    let table_byte = match c as u32 {
        n @ 0xC0..=0xFF => LATIN_1[(n - 0xC0) as usize],
        n @ 0x100..=0x17F => LATIN_EXT_A[(n - 0x100) as usize],
        _ => return None,
    };
    (table_byte != b'-').then_some(char::from(table_byte))
}

/// Combining marks (they follow their base letter in decomposed text).
fn is_combining_mark(c: char) -> bool {
    matches!(c as u32,
        0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

/// The form stored next to each string index value and applied to search input
/// before comparing: lower case, no diacritics, whitespace runs as one space, trimmed.
///
/// ```
/// use ember_fhir::index::normalize;
/// assert_eq!(normalize("  Ærø  Åse-Müller\tJOSÉ "), "ærø ase-muller josé".replace('é', "e"));
/// ```
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if is_combining_mark(c) {
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(base_letter(c).unwrap_or(c));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_match_their_ranges() {
        // Spot checks of both tables against the Unicode decompositions.
        for (c, base) in [
            ('À', 'a'),
            ('Å', 'a'),
            ('Ç', 'c'),
            ('Ñ', 'n'),
            ('Ö', 'o'),
            ('Ý', 'y'),
            ('ÿ', 'y'),
            ('é', 'e'),
            ('ü', 'u'),
            ('Ā', 'a'),
            ('č', 'c'),
            ('Ď', 'd'),
            ('ě', 'e'),
            ('Ģ', 'g'),
            ('ĥ', 'h'),
            ('İ', 'i'),
            ('ĵ', 'j'),
            ('ķ', 'k'),
            ('Ĺ', 'l'),
            ('ľ', 'l'),
            ('ń', 'n'),
            ('ň', 'n'),
            ('Ő', 'o'),
            ('ř', 'r'),
            ('Ş', 's'),
            ('š', 's'),
            ('ť', 't'),
            ('Ů', 'u'),
            ('ų', 'u'),
            ('ŵ', 'w'),
            ('Ÿ', 'y'),
            ('ž', 'z'),
        ] {
            assert_eq!(base_letter(c), Some(base), "{c}");
        }
        for c in [
            'Æ', 'æ', 'Ø', 'ø', 'ð', 'þ', 'ß', '×', '÷', 'Đ', 'ħ', 'ı', 'Ĳ', 'ĸ', 'Ŀ', 'ł', 'ŉ',
            'ŋ', 'Œ', 'ŧ', 'ſ',
        ] {
            assert_eq!(base_letter(c), None, "{c}");
        }
    }

    #[test]
    fn normalizes_case_accents_and_whitespace() {
        assert_eq!(normalize("Sørensen"), "sørensen");
        assert_eq!(normalize("ÆBLE"), "æble");
        assert_eq!(normalize("Ågård"), "agard");
        assert_eq!(normalize("Zoë  Brontë"), "zoe bronte");
        assert_eq!(normalize("Dvořák"), "dvorak");
        assert_eq!(normalize("  a \n\t b  "), "a b");
        // Already decomposed input (e + U+0301).
        assert_eq!(normalize("Jose\u{301}"), "jose");
        assert_eq!(normalize("İstanbul"), "istanbul");
        assert_eq!(normalize("ΑΘΗΝΑ"), "αθηνα");
        assert_eq!(normalize(""), "");
    }
}
