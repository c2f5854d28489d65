//! `OperationOutcome`: how FHIR reports errors and warnings.

use serde_json::{Value, json};

/// `OperationOutcome.issue.severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Fatal,
    Error,
    Warning,
    Information,
}

impl Severity {
    pub fn code(self) -> &'static str {
        match self {
            Severity::Fatal => "fatal",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

/// `OperationOutcome.issue.code` (the IssueType value set), as far as Ember uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueType {
    Invalid,
    Structure,
    Required,
    Value,
    /// A constraint (`ElementDefinition.constraint`) does not hold.
    Invariant,
    /// A code is not in the value set it is bound to.
    CodeInvalid,
    Processing,
    NotSupported,
    Duplicate,
    NotFound,
    Deleted,
    TooLong,
    TooCostly,
    BusinessRule,
    Conflict,
    Transient,
    Exception,
    Timeout,
    Informational,
    /// The caller's token does not allow the interaction.
    Forbidden,
    /// The caller is not authenticated.
    Login,
}

impl IssueType {
    pub fn code(self) -> &'static str {
        match self {
            IssueType::Invalid => "invalid",
            IssueType::Structure => "structure",
            IssueType::Required => "required",
            IssueType::Value => "value",
            IssueType::Invariant => "invariant",
            IssueType::CodeInvalid => "code-invalid",
            IssueType::Processing => "processing",
            IssueType::NotSupported => "not-supported",
            IssueType::Duplicate => "duplicate",
            IssueType::NotFound => "not-found",
            IssueType::Deleted => "deleted",
            IssueType::TooLong => "too-long",
            IssueType::TooCostly => "too-costly",
            IssueType::BusinessRule => "business-rule",
            IssueType::Conflict => "conflict",
            IssueType::Transient => "transient",
            IssueType::Exception => "exception",
            IssueType::Timeout => "timeout",
            IssueType::Informational => "informational",
            IssueType::Forbidden => "forbidden",
            IssueType::Login => "login",
        }
    }
}

/// One `OperationOutcome.issue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub severity: Severity,
    pub code: IssueType,
    pub diagnostics: String,
    /// FHIRPath locations of the problem, when known.
    pub expression: Vec<String>,
}

/// An `OperationOutcome` under construction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperationOutcome {
    pub issues: Vec<Issue>,
}

impl OperationOutcome {
    /// An outcome with one issue.
    pub fn single(severity: Severity, code: IssueType, diagnostics: impl Into<String>) -> Self {
        Self {
            issues: vec![Issue {
                severity,
                code,
                diagnostics: diagnostics.into(),
                expression: Vec::new(),
            }],
        }
    }

    /// An outcome with one `error` issue.
    pub fn error(code: IssueType, diagnostics: impl Into<String>) -> Self {
        Self::single(Severity::Error, code, diagnostics)
    }

    /// The FHIR JSON of this outcome. An empty outcome reports "All OK".
    pub fn to_json(&self) -> Value {
        let issues: Vec<Value> = if self.issues.is_empty() {
            vec![
                json!({"severity": "information", "code": "informational", "diagnostics": "All OK"}),
            ]
        } else {
            self.issues
                .iter()
                .map(|i| {
                    let mut issue = json!({
                        "severity": i.severity.code(),
                        "code": i.code.code(),
                        "diagnostics": i.diagnostics,
                    });
                    if !i.expression.is_empty() {
                        issue["expression"] = json!(i.expression);
                    }
                    issue
                })
                .collect()
        };
        json!({"resourceType": "OperationOutcome", "issue": issues})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_issues() {
        let mut o = OperationOutcome::error(IssueType::NotFound, "Patient/x is not known");
        o.issues[0].expression.push("Patient.id".into());
        assert_eq!(
            o.to_json(),
            json!({"resourceType": "OperationOutcome", "issue": [{
                "severity": "error", "code": "not-found",
                "diagnostics": "Patient/x is not known", "expression": ["Patient.id"]}]})
        );
        assert_eq!(
            OperationOutcome::default().to_json()["issue"][0]["code"],
            "informational"
        );
    }
}
