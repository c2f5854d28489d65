//! A request body: bytes → JSON → structural validation in every mode, the checks
//! `ember_fhir::json` applies to bodies, and search-index extraction. Nothing may
//! panic, whatever the bytes.

#![no_main]

use ember_fhir::validate::{self, Mode};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    // What `json::parse_resource` does after parsing.
    let _ = ember_fhir::json::depth(&value);
    let _ = ember_fhir::json::check_resource(&value);

    let strict = validate::validate(&value, Mode::Strict);
    let lenient = validate::validate(&value, Mode::Lenient);
    let off = validate::validate(&value, Mode::Off);
    // Every mode refuses what no store can hold, so an outcome with errors under
    // `off` has errors under the stricter modes too.
    if validate::has_errors(&off) {
        assert!(
            validate::has_errors(&lenient),
            "off found errors, lenient none"
        );
        assert!(
            validate::has_errors(&strict),
            "off found errors, strict none"
        );
    }
    if validate::has_errors(&lenient) {
        assert!(
            validate::has_errors(&strict),
            "lenient found errors, strict none"
        );
    }

    let _ = ember_fhir::index::extract(&value);
});
