//! JSON Patch (RFC 6902) applied to a resource.

use serde_json::Value;

/// Why a JSON Patch could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The patch document itself is malformed.
    #[error("invalid patch document: {0}")]
    Invalid(String),
    /// The patch is well-formed but does not apply to this resource (a failed `test`,
    /// a missing path, …).
    #[error("the patch does not apply: {0}")]
    NotApplicable(String),
}

/// Applies `patch` (a JSON array of operations) to `doc`. On failure `doc` is unchanged.
pub fn apply_json_patch(doc: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let ops: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| PatchError::Invalid(e.to_string()))?;
    json_patch::patch(doc, &ops).map_err(|e| PatchError::NotApplicable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every case of the official JSON Patch tests shipped in `../shared/fhir/patch/`.
    #[test]
    fn official_json_patch_cases() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fhir/patch/json-patch-tests.json"
        );
        let Ok(text) = std::fs::read_to_string(path) else {
            assert!(std::env::var_os("CI").is_none(), "{path} is missing in CI");
            return;
        };
        let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
        assert!(cases.len() >= 16);
        for case in &cases {
            let name = case["comment"].as_str().unwrap_or("?");
            let mut doc = case["doc"].clone();
            let result = apply_json_patch(&mut doc, &case["patch"]);
            if let Some(expected) = case.get("expected") {
                assert!(result.is_ok(), "{name}: {result:?}");
                assert_eq!(&doc, expected, "{name}");
            } else {
                assert!(
                    case.get("error").is_some(),
                    "{name}: case has neither expected nor error"
                );
                assert!(result.is_err(), "{name}: should fail");
                assert_eq!(
                    doc, case["doc"],
                    "{name}: a failed patch must leave the document unchanged"
                );
            }
        }
    }
}
