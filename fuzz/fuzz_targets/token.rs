//! Bearer tokens and scopes: bytes → text → each whitespace-separated part as a SMART
//! scope, the text as a JWT (header, and payload without verification), and the
//! claims (from the JWT, or the text itself when it is JSON) mapped to a `Principal`
//! under both claim models and asked for decisions. Nothing may panic.

#![no_main]

use ember_auth::{Action, ClaimModel, Decision, Principal, Scope};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const ACTIONS: [Action; 5] = [
    Action::Create,
    Action::Read,
    Action::Update,
    Action::Delete,
    Action::Search,
];

fn principal(claims: &Value) {
    for model in [ClaimModel::Smart, ClaimModel::Ehealth] {
        let p = Principal::from_claims(claims, model);
        let _ = p.is_admin();
        for res_type in ["Observation", "Patient"] {
            for action in ACTIONS {
                let decision = p.decide(res_type, action);
                let granted = p.scopes.iter().any(|s| s.grants(res_type, action));
                if !matches!(decision, Decision::Deny(_)) {
                    assert!(granted, "{decision:?} without a scope granting it");
                }
                if let Decision::Compartment(id)
                | Decision::Matching {
                    patient: Some(id), ..
                } = &decision
                {
                    assert_eq!(
                        Some(id),
                        p.patient.as_ref(),
                        "a compartment not the token's"
                    );
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for part in text.split_whitespace() {
        if let Some(scope) = Scope::parse(part) {
            for action in ACTIONS {
                let _ = scope.grants("Observation", action);
            }
        }
    }
    let token = text.trim();
    let _ = jsonwebtoken::decode_header(token);
    if let Ok(decoded) = jsonwebtoken::dangerous::insecure_decode::<Value>(token) {
        principal(&decoded.claims);
    }
    if let Ok(claims) = serde_json::from_slice::<Value>(data) {
        principal(&claims);
    }
});
