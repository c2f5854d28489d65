//! The FHIR R4 model: definitions generated from the official package, and pure
//! functions over JSON resources (ids, instants, meta, JSON Patch, OperationOutcome).
//!
//! Resources are `serde_json::Value`s. Nothing here does I/O.

mod generated {
    pub mod compartments;
    pub mod elements;
    pub mod resource_types;
    pub mod search_params;
    pub mod types;
    pub mod value_sets;
}

pub mod definitions;
pub mod fhirpath;
pub mod fhirpath_patch;
pub mod id;
pub mod index;
pub mod instant;
pub mod json;
pub mod meta;
pub mod outcome;
pub mod patch;
pub mod profile;
pub mod validate;
pub mod xml;

pub use outcome::{IssueType, OperationOutcome, Severity};

/// Whether `name` is a concrete R4 resource type (`Patient`, `Observation`, …).
pub fn is_resource_type(name: &str) -> bool {
    generated::resource_types::RESOURCE_TYPES
        .binary_search(&name)
        .is_ok()
}

/// The first character in `s` that no FHIR string may hold: the control characters
/// below U+0020 other than tab, CR and LF (R4 datatypes, `string`). NUL among them is
/// also what PostgreSQL cannot store in text or `jsonb`.
pub fn control_char(s: &str) -> Option<char> {
    // A byte below 0x80 is always a whole character in UTF-8.
    s.bytes()
        .find(|b| *b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n'))
        .map(char::from)
}

/// Every concrete R4 resource type, sorted.
pub fn resource_types() -> &'static [&'static str] {
    generated::resource_types::RESOURCE_TYPES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_concrete_resource_types_only() {
        assert!(is_resource_type("Patient"));
        assert!(is_resource_type("Observation"));
        assert!(is_resource_type("Binary"));
        assert!(!is_resource_type("DomainResource"));
        assert!(!is_resource_type("Resource"));
        assert!(!is_resource_type("patient"));
        assert!(!is_resource_type("HumanName"));
        assert!(resource_types().len() > 140);
        assert!(resource_types().windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn control_characters_but_tab_cr_lf_are_found() {
        assert_eq!(control_char("a\0b"), Some('\0'));
        assert_eq!(control_char("\u{1f}"), Some('\u{1f}'));
        assert_eq!(control_char("é\u{1}"), Some('\u{1}'));
        assert_eq!(control_char("a\tb\r\nc é \u{7f} \u{85}"), None);
    }
}
