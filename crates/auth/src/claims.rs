//! The claims of a verified token mapped to a [`Principal`]: who calls, for which
//! client, with which grants and which patient context.
//!
//! Two mappings exist ([`ClaimModel`]):
//! - **SMART**: the space-separated `scope` claim (or an `scp` array), the `patient`
//!   claim, and `client_id` or `azp`;
//! - **eHealth** (the Danish national infrastructure): the privileges in
//!   `realm_access.roles` (`Observation.read`, `Task.write`, `CarePlan.*`, …), `user_type`
//!   (`PATIENT`, `PRACTITIONER`, `SYSTEM`), the patient from `context.patient_id`
//!   (for a patient, else `user_id` when it names a Patient), and the care team from
//!   `context.care_team_id`. A patient's privileges are
//!   confined to their own compartment, a practitioner's are `user/`, a system's are
//!   `system/`.

use serde_json::Value;

use crate::scopes::{self, Action, Context, Decision, Scope};

/// Which claims carry the grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimModel {
    Smart,
    Ehealth,
}

/// The kind of user behind a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserType {
    Patient,
    Practitioner,
    System,
    /// Not stated (SMART tokens say it through their scopes).
    Unknown,
}

/// The verified caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// `sub`.
    pub subject: String,
    /// `client_id` or `azp`.
    pub client: Option<String>,
    /// `iss`.
    pub issuer: String,
    pub user_type: UserType,
    /// The resource scopes granted (other scopes are dropped).
    pub scopes: Vec<Scope>,
    /// The patient context: a Patient id.
    pub patient: Option<String>,
    /// The care team the user acts for (eHealth `context.care_team_id`): a CareTeam id,
    /// recorded in the audit trail.
    pub care_team: Option<String>,
    /// Roles (`realm_access.roles`), for the admin role.
    pub roles: Vec<String>,
    /// `exp`, in seconds since the epoch.
    pub expires: u64,
    /// Key-value namespaces granted beyond the client's own: the scopes (SMART) or
    /// roles (eHealth) `ember-kv:<namespace>`.
    pub kv_namespaces: Vec<String>,
}

/// The prefix of a scope or role that grants a key-value namespace.
pub const KV_GRANT: &str = "ember-kv:";

/// The role that opens the admin endpoints without a `system/` scope.
pub const ADMIN_ROLE: &str = "ember-admin";

impl Principal {
    /// Maps verified `claims` under `model`.
    pub fn from_claims(claims: &Value, model: ClaimModel) -> Principal {
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let roles: Vec<String> = claims
            .pointer("/realm_access/roles")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        let user_type = match text("user_type").map(|t| t.to_ascii_uppercase()).as_deref() {
            Some("PATIENT") => UserType::Patient,
            Some("PRACTITIONER") => UserType::Practitioner,
            Some("SYSTEM") => UserType::System,
            _ => UserType::Unknown,
        };
        let (scopes, patient, kv_namespaces) = match model {
            ClaimModel::Smart => {
                let listed: Vec<String> = match claims.get("scope").or_else(|| claims.get("scp")) {
                    Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
                    Some(Value::Array(items)) => items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect(),
                    _ => Vec::new(),
                };
                let scopes = listed.iter().filter_map(|s| Scope::parse(s)).collect();
                let kv = kv_grants(&listed);
                (scopes, text("patient").map(|p| last_segment(&p)), kv)
            }
            ClaimModel::Ehealth => {
                let context = match user_type {
                    UserType::Patient => Context::Patient,
                    UserType::System => Context::System,
                    UserType::Practitioner | UserType::Unknown => Context::User,
                };
                let scopes = roles
                    .iter()
                    .filter_map(|r| ehealth_privilege(r, context))
                    .collect();
                let context_patient = claims
                    .pointer("/context/patient_id")
                    .and_then(Value::as_str)
                    .map(last_segment);
                let own = text("user_id")
                    .filter(|u| u.contains("Patient/"))
                    .map(|u| last_segment(&u));
                let patient = match user_type {
                    UserType::Patient => own.or(context_patient),
                    _ => context_patient,
                };
                (scopes, patient, kv_grants(&roles))
            }
        };
        Principal {
            subject: text("sub").unwrap_or_default(),
            client: text("client_id").or_else(|| text("azp")),
            issuer: text("iss").unwrap_or_default(),
            user_type,
            scopes,
            patient,
            care_team: claims
                .pointer("/context/care_team_id")
                .and_then(Value::as_str)
                .map(last_segment),
            roles,
            expires: claims.get("exp").and_then(Value::as_u64).unwrap_or(0),
            kv_namespaces,
        }
    }

    /// What this caller may do with `action` on `res_type`.
    pub fn decide(&self, res_type: &str, action: Action) -> Decision {
        scopes::decide(&self.scopes, self.patient.as_deref(), res_type, action)
    }

    /// Whether the caller may use the key-value namespace `ns`: the one named by its
    /// client id, and those granted by `ember-kv:<namespace>`.
    pub fn may_use_namespace(&self, ns: &str) -> bool {
        self.client.as_deref() == Some(ns) || self.kv_namespaces.iter().any(|n| n == ns)
    }

    /// Whether the caller may use the admin endpoints: a `system/` scope on every type,
    /// or the [`ADMIN_ROLE`].
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == ADMIN_ROLE)
            || self
                .scopes
                .iter()
                .any(|s| s.context == Context::System && s.res_type.is_none())
    }
}

/// The namespaces of `ember-kv:<namespace>` entries.
fn kv_grants(entries: &[String]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|e| e.strip_prefix(KV_GRANT))
        .filter(|ns| !ns.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `https://x/fhir/Patient/8` → `8`.
fn last_segment(reference: &str) -> String {
    reference
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// An eHealth privilege `Type.verb` as a scope in `context`; `None` for the privileges
/// of operations and the role names.
fn ehealth_privilege(privilege: &str, context: Context) -> Option<Scope> {
    let (res_type, verb) = privilege.split_once('.')?;
    let letters = match verb {
        "read" => "r",
        "search" => "s",
        "create" => "c",
        "update" | "patch" => "u",
        "delete" => "d",
        "write" => "cud",
        "*" => "cruds",
        _ => return None,
    };
    let prefix = match context {
        Context::Patient => "patient",
        Context::User => "user",
        Context::System => "system",
    };
    Scope::parse(&format!("{prefix}/{res_type}.{letters}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn smart_claims() {
        let claims = json!({
            "sub": "u1", "iss": "https://idp", "azp": "app", "exp": 2000000000u64,
            "scope": "openid fhirUser launch/patient patient/Observation.rs user/Task.cu ember-kv:shared",
            "patient": "p1"
        });
        let p = Principal::from_claims(&claims, ClaimModel::Smart);
        assert_eq!(p.client.as_deref(), Some("app"));
        assert!(p.may_use_namespace("shared"));
        assert_eq!(p.patient.as_deref(), Some("p1"));
        assert_eq!(p.scopes.len(), 2);
        assert_eq!(
            p.decide("Observation", Action::Read),
            Decision::Compartment("p1".into())
        );
        assert_eq!(p.decide("Task", Action::Create), Decision::Allow);
        assert!(matches!(p.decide("Task", Action::Read), Decision::Deny(_)));
        assert!(!p.is_admin());
        assert!(p.may_use_namespace("app") && !p.may_use_namespace("other"));
        let system = json!({"sub": "svc", "scp": ["system/*.rs"], "exp": 1});
        assert!(Principal::from_claims(&system, ClaimModel::Smart).is_admin());
    }

    #[test]
    fn ehealth_claims() {
        let citizen = json!({
            "sub": "c1", "user_type": "PATIENT", "azp": "CitizenClient",
            "user_id": "https://fut.example/fhir/Patient/8",
            "realm_access": {"roles": ["Observation.read", "Observation.search", "Observation.create", "$submit-measurement"]}
        });
        let p = Principal::from_claims(&citizen, ClaimModel::Ehealth);
        assert_eq!(p.user_type, UserType::Patient);
        assert_eq!(p.patient.as_deref(), Some("8"));
        assert_eq!(
            p.decide("Observation", Action::Create),
            Decision::Compartment("8".into())
        );
        assert!(matches!(
            p.decide("Observation", Action::Delete),
            Decision::Deny(_)
        ));
        let clinician = json!({
            "sub": "d1", "user_type": "PRACTITIONER",
            "context": {"patient_id": "https://fut.example/fhir/Patient/9", "care_team_id": "https://fut.example/fhir/CareTeam/4"},
            "realm_access": {"roles": ["Task.*", "Patient.read", "ember-admin"]}
        });
        let p = Principal::from_claims(&clinician, ClaimModel::Ehealth);
        assert_eq!(p.patient.as_deref(), Some("9"));
        assert_eq!(p.care_team.as_deref(), Some("4"));
        assert_eq!(p.decide("Task", Action::Delete), Decision::Allow);
        assert_eq!(p.decide("Patient", Action::Read), Decision::Allow);
        assert!(matches!(
            p.decide("Patient", Action::Search),
            Decision::Deny(_)
        ));
        assert!(p.is_admin());
    }
}
