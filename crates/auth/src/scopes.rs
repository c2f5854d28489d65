//! SMART App Launch scopes (v1 and v2) and the decision for one resource type and one
//! action.
//!
//! A scope is `context/Type.permissions[?query]`: `context` is `patient`, `user` or
//! `system`; `Type` a resource type or `*`; the permissions are v1 `read`, `write` or
//! `*`, or a v2 subset of `cruds` in that order. A v2 query (`?category=…`) narrows
//! what the scope grants to the resources that match it. Other scopes (`openid`,
//! `launch/patient`, …) grant no resource access.

use std::fmt;

/// One of the SMART v2 permissions: what an interaction does to a resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `c`: create.
    Create,
    /// `r`: read and vread, and the history of one resource.
    Read,
    /// `u`: update and patch.
    Update,
    /// `d`: delete.
    Delete,
    /// `s`: search, and the history of a type.
    Search,
}

impl Action {
    fn bit(self) -> u8 {
        match self {
            Action::Create => 1,
            Action::Read => 2,
            Action::Update => 4,
            Action::Delete => 8,
            Action::Search => 16,
        }
    }

    /// The permission's letter in a v2 scope.
    pub fn letter(self) -> char {
        match self {
            Action::Create => 'c',
            Action::Read => 'r',
            Action::Update => 'u',
            Action::Delete => 'd',
            Action::Search => 's',
        }
    }
}

/// Whose data a scope reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// `patient/`: the compartment of the token's patient.
    Patient,
    /// `user/`: what the user may see.
    User,
    /// `system/`: a backend service.
    System,
}

/// One resource scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub context: Context,
    /// `None` for `*`.
    pub res_type: Option<String>,
    perms: u8,
    /// The v2 query's parameters (empty when the scope has none).
    pub query: Vec<(String, String)>,
}

impl Scope {
    /// Parses one scope; `None` for a scope that is not a resource scope or is malformed.
    pub fn parse(s: &str) -> Option<Scope> {
        let (context, rest) = s.split_once('/')?;
        let context = match context {
            "patient" => Context::Patient,
            "user" => Context::User,
            "system" => Context::System,
            _ => return None,
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (res_type, perms) = rest.split_once('.')?;
        let res_type = match res_type {
            "*" => None,
            t if !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphabetic()) => Some(t.to_owned()),
            _ => return None,
        };
        let all = Action::Create.bit()
            | Action::Read.bit()
            | Action::Update.bit()
            | Action::Delete.bit()
            | Action::Search.bit();
        let (perms, v2) = match perms {
            "read" => (Action::Read.bit() | Action::Search.bit(), false),
            "write" => (
                Action::Create.bit() | Action::Update.bit() | Action::Delete.bit(),
                false,
            ),
            "*" => (all, false),
            letters => (v2_permissions(letters)?, true),
        };
        let query = match query {
            None => Vec::new(),
            // Queries exist in v2 scopes only.
            Some(_) if !v2 => return None,
            Some(q) => form_pairs(q)?,
        };
        Some(Scope {
            context,
            res_type,
            perms,
            query,
        })
    }

    /// Whether this scope grants `action` on `res_type`.
    pub fn grants(&self, res_type: &str, action: Action) -> bool {
        self.perms & action.bit() != 0 && self.res_type.as_deref().is_none_or(|t| t == res_type)
    }
}

/// `cruds` subsets in order, each letter at most once.
fn v2_permissions(letters: &str) -> Option<u8> {
    const ORDER: [Action; 5] = [
        Action::Create,
        Action::Read,
        Action::Update,
        Action::Delete,
        Action::Search,
    ];
    let mut perms = 0;
    let mut next = 0;
    for c in letters.chars() {
        let at = ORDER[next..].iter().position(|a| a.letter() == c)? + next;
        perms |= ORDER[at].bit();
        next = at + 1;
    }
    (perms != 0).then_some(perms)
}

/// `a=1&b=2`, percent-decoded; `None` when a pair has no `=` or the query is empty.
fn form_pairs(q: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for part in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=')?;
        pairs.push((decode(k)?, decode(v)?));
    }
    (!pairs.is_empty()).then_some(pairs)
}

fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// What a token may do with one resource type and action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed without conditions.
    Allow,
    /// Allowed within the compartment of this patient only (a `patient/` scope).
    Compartment(String),
    /// Allowed for the resources that match one of these queries (v2 granular
    /// scopes), within the patient's compartment when there is one.
    Matching {
        patient: Option<String>,
        queries: Vec<Vec<(String, String)>>,
    },
    /// Not allowed; the reason names the scope that would be needed.
    Deny(String),
}

/// Decides `action` on `res_type` for a token with `scopes` and patient context
/// `patient`: the widest grant wins (`user/` and `system/` over `patient/`; a scope
/// without a query over those with one).
pub fn decide(scopes: &[Scope], patient: Option<&str>, res_type: &str, action: Action) -> Decision {
    let granting: Vec<&Scope> = scopes
        .iter()
        .filter(|s| s.grants(res_type, action))
        // A patient scope without a patient context grants nothing.
        .filter(|s| s.context != Context::Patient || patient.is_some())
        .collect();
    let deny = || {
        Decision::Deny(format!(
            "the token's scopes do not allow {} on {res_type} (a scope such as \
             user/{res_type}.{} is needed)",
            Verb(action),
            action.letter()
        ))
    };
    if granting.is_empty() {
        return deny();
    }
    let wide = |s: &&Scope| s.context != Context::Patient;
    let patient = patient.map(str::to_owned);
    if granting.iter().any(|s| wide(s) && s.query.is_empty()) {
        return Decision::Allow;
    }
    if granting.iter().any(|s| !wide(s) && s.query.is_empty()) {
        // Wide scopes with a query reach further than the compartment in some ways and
        // less in others; the compartment is the simple, safe grant.
        return Decision::Compartment(patient.unwrap_or_default());
    }
    let in_compartment = granting.iter().all(|s| !wide(s));
    Decision::Matching {
        patient: if in_compartment { patient } else { None },
        queries: granting.iter().map(|s| s.query.clone()).collect(),
    }
}

struct Verb(Action);

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Action::Create => "create",
            Action::Read => "read",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Search => "search",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(s: &str) -> Vec<Scope> {
        s.split_whitespace().filter_map(Scope::parse).collect()
    }

    #[test]
    fn parses_v1_and_v2_forms() {
        let s = Scope::parse("patient/Observation.read").unwrap();
        assert!(s.grants("Observation", Action::Read));
        assert!(s.grants("Observation", Action::Search));
        assert!(!s.grants("Observation", Action::Create));
        assert!(!s.grants("Patient", Action::Read));
        let s = Scope::parse("user/*.write").unwrap();
        assert!(s.grants("Task", Action::Update) && s.grants("Task", Action::Delete));
        assert!(!s.grants("Task", Action::Read));
        let s = Scope::parse("system/*.*").unwrap();
        assert!(s.grants("Patient", Action::Search));
        let s = Scope::parse("user/Task.cu").unwrap();
        assert!(s.grants("Task", Action::Create) && s.grants("Task", Action::Update));
        assert!(!s.grants("Task", Action::Read));
        let s = Scope::parse("patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs").unwrap();
        assert_eq!(
            s.query,
            [(
                "category".to_owned(),
                "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs".to_owned()
            )]
        );
        for bad in [
            "openid",
            "fhirUser",
            "launch/patient",
            "patient/Observation",
            "patient/Observation.sr",
            "patient/Observation.rr",
            "patient/Observation.x",
            "patient/Observation.",
            "patient/Observation.read?code=1",
            "group/Observation.read",
            "patient/Obs-1.read",
            "patient/Observation.rs?",
        ] {
            assert_eq!(Scope::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_widest_grant_wins() {
        let p = Some("p1");
        let all = scopes("openid patient/*.rs user/Task.cruds");
        assert_eq!(decide(&all, p, "Task", Action::Read), Decision::Allow);
        assert_eq!(
            decide(&all, p, "Observation", Action::Search),
            Decision::Compartment("p1".into())
        );
        assert!(matches!(
            decide(&all, p, "Observation", Action::Create),
            Decision::Deny(_)
        ));
        // Without a patient context, patient scopes grant nothing.
        assert!(matches!(
            decide(&all, None, "Observation", Action::Read),
            Decision::Deny(_)
        ));
        let granular = scopes("patient/Observation.rs?category=vital-signs");
        assert_eq!(
            decide(&granular, p, "Observation", Action::Search),
            Decision::Matching {
                patient: Some("p1".into()),
                queries: vec![vec![("category".into(), "vital-signs".into())]]
            }
        );
        let mixed = scopes("patient/Observation.rs?category=vital-signs patient/Observation.rs");
        assert_eq!(
            decide(&mixed, p, "Observation", Action::Read),
            Decision::Compartment("p1".into())
        );
    }
}
