//! `$lookup`: a code of a stored CodeSystem with its name, display, designations and
//! properties (its parents and children among them).

use serde_json::{Value, json};

use crate::access::{Need, check};
use crate::{Repo, RepoError, Result};

/// One `$lookup` request.
#[derive(Debug, Clone)]
pub struct LookupRequest {
    pub system: String,
    pub code: String,
    pub version: Option<String>,
    /// The properties wanted (all when empty).
    pub properties: Vec<String>,
}

impl Repo {
    /// `$lookup`: a `Parameters` resource; 404 for a system or code Ember does not hold.
    pub async fn lookup(&self, req: LookupRequest) -> Result<Value> {
        check("CodeSystem", Need::Read)?;
        let canonical = match &req.version {
            Some(v) => format!("{}|{v}", req.system),
            None => req.system.clone(),
        };
        let h = self
            .hierarchy(&canonical)
            .await?
            .ok_or_else(|| RepoError::NotFound(format!("the CodeSystem {canonical}")))?;
        let (_, node) = h.get(&req.code).ok_or_else(|| {
            RepoError::NotFound(format!(
                "the code {:?} of the CodeSystem {canonical}",
                req.code
            ))
        })?;
        let wanted = |p: &str| req.properties.is_empty() || req.properties.iter().any(|w| w == p);
        let mut out =
            vec![json!({"name": "name", "valueString": h.name.as_deref().unwrap_or(&h.url)})];
        if let Some(v) = &h.version {
            out.push(json!({"name": "version", "valueString": v}));
        }
        if let Some(d) = &node.display {
            out.push(json!({"name": "display", "valueString": d}));
        }
        for d in &node.designations {
            let mut part = Vec::new();
            if let Some(language) = d.get("language") {
                part.push(json!({"name": "language", "valueCode": language}));
            }
            if let Some(use_) = d.get("use") {
                part.push(json!({"name": "use", "valueCoding": use_}));
            }
            if let Some(value) = d.get("value") {
                part.push(json!({"name": "value", "valueString": value}));
            }
            out.push(json!({"name": "designation", "part": part}));
        }
        let property = |code: &str, value: (&str, Value)| {
            json!({"name": "property", "part": [
                {"name": "code", "valueCode": code},
                {"name": "value", value.0: value.1},
            ]})
        };
        if wanted("definition") {
            if let Some(d) = &node.definition {
                out.push(property("definition", ("valueString", json!(d))));
            }
        }
        for (code, links) in [("parent", &node.parents), ("child", &node.children)] {
            if wanted(code) {
                for &i in links {
                    out.push(property(code, ("valueCode", json!(h.nodes[i].code))));
                }
            }
        }
        for p in &node.properties {
            let Some(code) = p.get("code").and_then(Value::as_str) else {
                continue;
            };
            // Links are given once, above, whichever way the CodeSystem states them.
            if matches!(code, "parent" | "child" | "subsumedBy") || !wanted(code) {
                continue;
            }
            let value = p
                .as_object()
                .and_then(|o| o.iter().find(|(k, _)| k.starts_with("value")))
                .map(|(k, v)| (k.as_str(), v.clone()));
            if let Some(value) = value {
                out.push(property(code, value));
            }
        }
        Ok(json!({"resourceType": "Parameters", "parameter": out}))
    }
}
