//! `ValueSet/$validate-code`: whether a code (or a Coding, or one coding of a
//! CodeableConcept) is in a value set, and its display there.

use serde_json::{Value, json};

use super::ValueSetRef;
use crate::{Repo, RepoError, Result};

/// A code as given: `system` may be absent (then any system of the value set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coded {
    pub system: Option<String>,
    pub code: String,
    pub display: Option<String>,
}

/// One `$validate-code` request: valid when any of `codings` is in the value set
/// (several come from a CodeableConcept).
#[derive(Debug, Clone)]
pub struct ValidateCodeRequest {
    pub value_set: ValueSetRef,
    pub codings: Vec<Coded>,
}

impl Repo {
    /// `$validate-code`: a `Parameters` resource with `result`, and `message` and
    /// `display` where they apply.
    pub async fn validate_code(&self, req: ValidateCodeRequest) -> Result<Value> {
        if req.codings.is_empty() {
            return Err(RepoError::Invalid(
                "$validate-code needs code (with system), coding or codeableConcept".into(),
            ));
        }
        let (vs, key) = self.value_set(&req.value_set).await?;
        let name = vs
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or("the ValueSet")
            .to_owned();
        let expansion = self.cached_expansion(&vs, key.as_deref(), 0).await?;
        let mut messages = Vec::new();
        for coded in &req.codings {
            let found = expansion.concepts.iter().find(|c| {
                c.code == coded.code && coded.system.as_deref().is_none_or(|s| s == c.system)
            });
            let label = match &coded.system {
                Some(s) => format!("{s}|{}", coded.code),
                None => coded.code.clone(),
            };
            let Some(concept) = found else {
                messages.push(format!("{label} is not in the value set {name}"));
                continue;
            };
            let mut out = vec![];
            let wrong_display = match (&coded.display, &concept.display) {
                (Some(given), Some(known)) => !given.eq_ignore_ascii_case(known),
                _ => false,
            };
            out.push(json!({"name": "result", "valueBoolean": !wrong_display}));
            if wrong_display {
                out.push(json!({"name": "message", "valueString": format!(
                    "the display of {label} is {:?}, not {:?}",
                    concept.display.as_deref().unwrap_or_default(),
                    coded.display.as_deref().unwrap_or_default()
                )}));
            }
            if let Some(d) = &concept.display {
                out.push(json!({"name": "display", "valueString": d}));
            }
            return Ok(json!({"resourceType": "Parameters", "parameter": out}));
        }
        Ok(json!({"resourceType": "Parameters", "parameter": [
            {"name": "result", "valueBoolean": false},
            {"name": "message", "valueString": messages.join("; ")},
        ]}))
    }
}
