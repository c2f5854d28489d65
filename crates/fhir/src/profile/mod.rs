//! Validation of a resource against a profile: does this JSON conform to this
//! StructureDefinition's `snapshot.element`?
//!
//! [`Profile::compile`] turns a StructureDefinition into a tree of element definitions
//! (a StructureDefinition without a snapshot is refused: Ember does not expand
//! differentials). [`validate`] walks the resource down that tree and reports, with
//! FHIRPath-like locations (`Observation.component[0].code`):
//!
//! - **cardinality**: `min` and `max` of every element the snapshot lists, and of each
//!   slice;
//! - **types**: a choice member's type is one the element allows; a reference's target
//!   type is one its `targetProfile`s constrain (core resource definitions by name,
//!   others when the [`Context`] knows them); a value of a type with `profile`s
//!   conforms to one the context knows (unknown ones are not checked);
//! - **fixed\[x\]** (exact) and **pattern\[x\]** (the value contains the pattern);
//! - **bindings**: `required` and `extensible` bindings of coded values (code, Coding,
//!   CodeableConcept, Quantity) are returned as [`BindingCheck`]s, because value sets
//!   are the caller's to expand; [`binding_issue`] words the result (required: error,
//!   extensible: warning); `preferred` and `example` are not checked;
//! - **invariants**: each `constraint.expression`, evaluated by [`crate::fhirpath`]
//!   on the element with `%resource` the resource; `error` constraints are errors,
//!   `warning` ones warnings. A constraint the engine cannot evaluate is listed once
//!   in an `information` issue;
//! - **slicing** (see `slicing`): `value`, `pattern`, `exists`, `type` and `profile`
//!   discriminators; an item that matches no slice of a closed slicing is an error;
//!   `ordered` is not checked.
//!
//! Elements the snapshot does not list are not looked at: the structural validation
//! of [`crate::validate`] covers the base definitions.

mod model;
mod slicing;
mod values;
mod walk;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::fhirpath::{Env, Node};
use crate::outcome::{Issue, IssueType, OperationOutcome, Severity};

pub use model::{
    Binding, Constraint, Discriminator, DiscriminatorKind, ElementDef, Group, Profile,
    ProfileError, Slicing, Strength, TypeRef,
};

/// What validation needs from outside: other profiles by canonical URL (`url` or
/// `url|version`), for type profiles, target profiles and `profile` discriminators.
pub trait Context {
    fn profile(&self, url: &str) -> Option<Arc<Profile>>;
}

/// No other profile is known.
impl Context for () {
    fn profile(&self, _url: &str) -> Option<Arc<Profile>> {
        None
    }
}

/// Profiles by canonical URL; `url|version` falls back to `url`.
impl Context for HashMap<String, Arc<Profile>> {
    fn profile(&self, url: &str) -> Option<Arc<Profile>> {
        self.get(url)
            .or_else(|| self.get(url.split('|').next().unwrap_or(url)))
            .cloned()
    }
}

/// A coded value under a `required` or `extensible` binding, for the caller to check
/// against the value set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingCheck {
    pub value_set: String,
    pub strength: Strength,
    /// `(system, code)` of each coding (a `code` has no system).
    pub codes: Vec<(Option<String>, String)>,
    /// The location of the value.
    pub expression: String,
    /// The element definition's id.
    pub element: String,
}

/// The outcome of a validation, and the bindings still to check.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub outcome: OperationOutcome,
    pub bindings: Vec<BindingCheck>,
}

/// Validates `resource` against `profile`.
pub fn validate(resource: &Value, profile: &Profile, cx: &dyn Context) -> Report {
    let rt = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if rt != profile.type_name {
        let msg = format!(
            "the profile {} is for {}, not {rt}",
            profile.url, profile.type_name
        );
        let mut outcome = OperationOutcome::error(IssueType::Structure, msg);
        outcome.issues[0].expression.push(rt.to_owned());
        return Report {
            outcome,
            bindings: Vec::new(),
        };
    }
    let root = Node::resource(resource);
    let env = Env::new()
        .with_var("resource", vec![root.clone()])
        .with_var("rootResource", vec![root.clone()]);
    let mut w = walk::Walker {
        cx,
        env,
        issues: Vec::new(),
        bindings: Vec::new(),
        skipped: Default::default(),
        depth: 0,
    };
    let item = walk::Item {
        value: Some(resource),
        ext: None,
        ty: None,
        node: Some(root),
        loc: rt.to_owned(),
    };
    w.check(profile, 0, &item);
    let mut issues: Vec<Issue> = Vec::new();
    for i in w.issues {
        if !issues.contains(&i) {
            issues.push(i);
        }
    }
    if !w.skipped.is_empty() {
        let keys: Vec<&str> = w.skipped.iter().map(String::as_str).collect();
        issues.push(Issue {
            severity: Severity::Information,
            code: IssueType::Informational,
            diagnostics: format!(
                "constraints not evaluated (unsupported by Ember's FHIRPath engine): {}",
                keys.join(", ")
            ),
            expression: Vec::new(),
        });
    }
    let mut bindings = w.bindings;
    bindings.dedup();
    Report {
        outcome: OperationOutcome { issues },
        bindings,
    }
}

/// The issue for a binding check: `in_value_set` tells whether any of its codes is in
/// the value set; `None` when the value set could not be expanded (`why`).
pub fn binding_issue(check: &BindingCheck, in_value_set: Result<bool, String>) -> Option<Issue> {
    let codes: Vec<String> = check
        .codes
        .iter()
        .map(|(s, c)| match s {
            Some(s) => format!("{s}|{c}"),
            None => c.clone(),
        })
        .collect();
    let (severity, code, diagnostics) = match in_value_set {
        Ok(true) => return None,
        Ok(false) => (
            match check.strength {
                Strength::Required => Severity::Error,
                Strength::Extensible => Severity::Warning,
            },
            IssueType::CodeInvalid,
            format!(
                "{} is not in the value set {} ({} binding of {})",
                codes.join(", "),
                check.value_set,
                check.strength.as_str(),
                check.element
            ),
        ),
        Err(why) => (
            Severity::Warning,
            IssueType::NotSupported,
            format!(
                "the {} binding of {} to {} was not checked: {why}",
                check.strength.as_str(),
                check.element,
                check.value_set
            ),
        ),
    };
    Some(Issue {
        severity,
        code,
        diagnostics,
        expression: vec![check.expression.clone()],
    })
}
