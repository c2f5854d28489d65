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
pub mod validate;

pub use outcome::{IssueType, OperationOutcome, Severity};

/// Whether `name` is a concrete R4 resource type (`Patient`, `Observation`, …).
pub fn is_resource_type(name: &str) -> bool {
    generated::resource_types::RESOURCE_TYPES
        .binary_search(&name)
        .is_ok()
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
}
