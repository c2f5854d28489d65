//! The walk: one element definition against one value, then its children by name, each
//! group's cardinality and slices.

use std::collections::BTreeSet;

use serde_json::Value;

use super::model::{ElementDef, Profile, TypeRef};
use super::values::{self, Member};
use super::{BindingCheck, Context};
use crate::fhirpath::{Env, Node, child_nodes};
use crate::outcome::{Issue, IssueType, Severity};

/// How deep type profiles may nest (a profile of a type whose element has a profile…).
const MAX_DEPTH: usize = 6;

/// One value being checked: its JSON (and a primitive's `_name` sibling), the type
/// its choice member names, its FHIRPath node (for invariants) and its location.
#[derive(Clone)]
pub(crate) struct Item<'a> {
    pub value: Option<&'a Value>,
    pub ext: Option<&'a Value>,
    pub ty: Option<String>,
    pub node: Option<Node<'a>>,
    pub loc: String,
}

impl<'a> Item<'a> {
    /// The type of this value under `def`: the choice member's, or the element's only
    /// type, or a contained resource's own.
    pub fn type_under(&self, def: &ElementDef) -> Option<String> {
        if let Some(t) = &self.ty {
            return Some(t.clone());
        }
        if let Some(rt) = self
            .value
            .and_then(|v| v.get("resourceType"))
            .and_then(Value::as_str)
        {
            return Some(rt.to_owned());
        }
        match def.types.as_slice() {
            [t] => Some(t.code.clone()),
            _ => None,
        }
    }
}

pub(crate) struct Walker<'c, 'a> {
    pub cx: &'c dyn Context,
    pub env: Env<'a>,
    pub issues: Vec<Issue>,
    pub bindings: Vec<BindingCheck>,
    /// Keys of constraints that could not be evaluated.
    pub skipped: BTreeSet<String>,
    pub depth: usize,
}

impl<'a> Walker<'_, 'a> {
    pub fn issue(&mut self, severity: Severity, code: IssueType, msg: String, loc: &str) {
        self.issues.push(Issue {
            severity,
            code,
            diagnostics: msg,
            expression: vec![loc.to_owned()],
        });
    }

    /// Checks `item` against the element `idx` of `profile` and walks its children.
    pub fn check(&mut self, profile: &Profile, idx: usize, item: &Item<'a>) {
        let def = &profile.elements[idx];
        let ty = item.type_under(def);
        self.types(def, item, ty.as_deref());
        if let Some(v) = item.value {
            if let Some(fixed) = &def.fixed {
                if !values::fixed_matches(fixed, v) {
                    let msg = format!("the value must be exactly {fixed} ({})", def.id);
                    self.issue(Severity::Error, IssueType::Value, msg, &item.loc);
                }
            }
            if let Some(pattern) = &def.pattern {
                if !values::pattern_matches(pattern, v) {
                    let msg = format!("the value must match the pattern {pattern} ({})", def.id);
                    self.issue(Severity::Error, IssueType::Value, msg, &item.loc);
                }
            }
            if let (Some(b), Some(t)) = (&def.binding, ty.as_deref()) {
                if let Some(codes) = values::codes(t, v).filter(|c| !c.is_empty()) {
                    self.bindings.push(BindingCheck {
                        value_set: b.value_set.clone(),
                        strength: b.strength,
                        codes,
                        expression: item.loc.clone(),
                        element: def.id.clone(),
                    });
                }
            }
        }
        self.invariants(def, item);
        self.children(profile, idx, item);
    }

    /// The value's type is one the element allows, its reference targets a type the
    /// target profiles allow, and it conforms to a type profile the server knows.
    fn types(&mut self, def: &ElementDef, item: &Item<'a>, ty: Option<&str>) {
        let Some(ty) = ty else { return };
        if def.types.is_empty() {
            return;
        }
        let resource = item.value.is_some_and(|v| v.get("resourceType").is_some());
        let Some(t) = def.types.iter().find(|t| {
            t.code == ty || (resource && matches!(t.code.as_str(), "Resource" | "DomainResource"))
        }) else {
            if def.is_choice() || resource {
                let allowed: Vec<&str> = def.types.iter().map(|t| t.code.as_str()).collect();
                let msg = format!(
                    "the type {ty} is not allowed here; allowed: {} ({})",
                    allowed.join(", "),
                    def.id
                );
                self.issue(Severity::Error, IssueType::Structure, msg, &item.loc);
            }
            return;
        };
        if ty == "Reference" && !t.target_profiles.is_empty() {
            self.target(def, t, item);
        }
        if !t.profiles.is_empty() && self.depth < MAX_DEPTH {
            self.type_profiles(def, t, item);
        }
    }

    fn target(&mut self, def: &ElementDef, t: &TypeRef, item: &Item<'a>) {
        let Some(target) = item
            .value
            .and_then(|v| v.get("reference"))
            .and_then(Value::as_str)
            .and_then(referenced_type)
        else {
            return;
        };
        let mut allowed = Vec::new();
        for url in &t.target_profiles {
            match profile_type(self.cx, url) {
                Some(ty) => allowed.push(ty),
                // A target the server does not know: the reference is not checked.
                None => return,
            }
        }
        if !allowed.iter().any(|a| a == target || a == "Resource") {
            let msg = format!(
                "the reference must be to {}, not {target} ({})",
                allowed.join(" or "),
                def.id
            );
            self.issue(Severity::Error, IssueType::Structure, msg, &item.loc);
        }
    }

    fn type_profiles(&mut self, def: &ElementDef, t: &TypeRef, item: &Item<'a>) {
        let known: Vec<_> = t
            .profiles
            .iter()
            .filter_map(|u| self.cx.profile(u))
            .collect();
        match known.as_slice() {
            [] => {}
            [one] => self.conform(one, item),
            several => {
                if !several.iter().any(|p| self.conforms_quietly(p, item)) {
                    let urls: Vec<&str> = several.iter().map(|p| p.url.as_str()).collect();
                    let msg = format!(
                        "the value conforms to none of the profiles {} ({})",
                        urls.join(", "),
                        def.id
                    );
                    self.issue(Severity::Error, IssueType::Structure, msg, &item.loc);
                }
            }
        }
    }

    /// Checks `item` against the root of another profile (a type profile).
    pub fn conform(&mut self, profile: &Profile, item: &Item<'a>) {
        self.depth += 1;
        self.check(profile, 0, item);
        self.depth -= 1;
    }

    /// Whether `item` conforms to `profile`, reporting nothing.
    pub fn conforms_quietly(&mut self, profile: &Profile, item: &Item<'a>) -> bool {
        if self.depth >= MAX_DEPTH {
            return false;
        }
        let (issues, bindings) = (self.issues.len(), self.bindings.len());
        self.conform(profile, item);
        let ok = !self.issues[issues..]
            .iter()
            .any(|i| matches!(i.severity, Severity::Error | Severity::Fatal));
        self.issues.truncate(issues);
        self.bindings.truncate(bindings);
        ok
    }

    fn invariants(&mut self, def: &ElementDef, item: &Item<'a>) {
        if def.constraints.is_empty() {
            return;
        }
        let Some(node) = &item.node else { return };
        for c in &def.constraints {
            let Ok(expr) = &c.expression else {
                self.skipped.insert(c.key.clone());
                continue;
            };
            match expr.evaluate_node(node.clone(), &self.env) {
                Ok(out) => {
                    if out.len() == 1 && out[0].as_bool() == Some(false) {
                        let msg = format!("{}: {} ({})", c.key, c.human, def.id);
                        self.issue(c.severity, IssueType::Invariant, msg, &item.loc);
                    }
                }
                Err(_) => {
                    self.skipped.insert(c.key.clone());
                }
            }
        }
    }

    fn children(&mut self, profile: &Profile, idx: usize, item: &Item<'a>) {
        let groups = &profile.children[idx];
        if groups.is_empty() {
            return;
        }
        let primitive = !matches!(item.value, Some(Value::Object(_)));
        let obj = match (item.value, item.ext) {
            (Some(Value::Object(m)), _) => m,
            (_, Some(Value::Object(m))) => m,
            _ => {
                // A primitive without id or extensions: only the minimums apply.
                for g in groups {
                    let base = &profile.elements[g.base];
                    if base.name != "value" && base.min > 0 {
                        self.cardinality(base, 0, &format!("{}.{}", item.loc, base.base_name()));
                    }
                }
                return;
            }
        };
        for g in groups {
            let base = &profile.elements[g.base];
            if primitive && base.name == "value" {
                continue;
            }
            let members = values::members(obj, base.base_name(), base.is_choice());
            let nodes = item
                .node
                .as_ref()
                .map(|n| child_nodes(n, base.base_name()))
                .unwrap_or_default();
            let items: Vec<Item<'a>> = members
                .iter()
                .map(|m| self.item(base, &item.loc, m, &nodes))
                .collect();
            self.cardinality(
                base,
                items.len(),
                &format!("{}.{}", item.loc, base.base_name()),
            );
            for it in &items {
                self.check(profile, g.base, it);
            }
            if !g.slices.is_empty() {
                self.slices(
                    profile,
                    g,
                    &items,
                    &format!("{}.{}", item.loc, base.base_name()),
                );
            }
        }
    }

    fn item(&self, def: &ElementDef, parent: &str, m: &Member<'a>, nodes: &[Node<'a>]) -> Item<'a> {
        let loc = match m.index {
            Some(i) => format!("{parent}.{}[{i}]", m.key),
            None => format!("{parent}.{}", m.key),
        };
        let node = nodes
            .iter()
            .find(|n| {
                n.as_element().is_some_and(|e| match m.value {
                    Some(v) => e.json().is_some_and(|j| std::ptr::eq(j, v)),
                    None => e
                        .extension_json()
                        .zip(m.ext)
                        .is_some_and(|(a, b)| std::ptr::eq(a, b)),
                })
            })
            .cloned();
        Item {
            value: m.value,
            ext: m.ext,
            ty: def
                .is_choice()
                .then(|| values::suffix_type(&m.key[def.base_name().len()..]))
                .flatten(),
            node,
            loc,
        }
    }

    pub fn cardinality(&mut self, def: &ElementDef, count: usize, loc: &str) {
        let count = count as u64;
        let what = match &def.slice_name {
            Some(s) => format!("slice {s} of {}", def.path),
            None => def.path.clone(),
        };
        if count < def.min {
            let msg = format!(
                "{what}: at least {} required, {count} found ({})",
                def.min, def.id
            );
            self.issue(Severity::Error, IssueType::Required, msg, loc);
        }
        if let Some(max) = def.max.filter(|m| count > *m) {
            let msg = format!("{what}: at most {max} allowed, {count} found ({})", def.id);
            self.issue(Severity::Error, IssueType::Structure, msg, loc);
        }
    }
}

/// The resource type a reference points to (`Patient/1`, `http://x/fhir/Patient/1`,
/// `Patient/1/_history/2`); `None` for contained, logical or unparsable references.
fn referenced_type(reference: &str) -> Option<&str> {
    if reference.starts_with('#') || reference.starts_with("urn:") {
        return None;
    }
    let parts: Vec<&str> = reference.split('/').collect();
    let n = parts.len();
    let ty = if n >= 4 && parts[n - 2] == "_history" {
        parts[n - 4]
    } else if n >= 2 {
        parts[n - 2]
    } else {
        return None;
    };
    crate::is_resource_type(ty).then_some(ty)
}

/// The type a profile URL constrains: a core resource definition by its name, another
/// profile by its `type` when the server knows it.
fn profile_type(cx: &dyn Context, url: &str) -> Option<String> {
    let plain = url.split('|').next().unwrap_or(url);
    if let Some(name) = plain.strip_prefix("http://hl7.org/fhir/StructureDefinition/") {
        if crate::is_resource_type(name) || name == "Resource" {
            return Some(name.to_owned());
        }
    }
    cx.profile(url).map(|p| p.type_name.clone())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reference_types() {
        use super::referenced_type as t;
        assert_eq!(t("Patient/1"), Some("Patient"));
        assert_eq!(t("http://x.org/fhir/Patient/1/_history/2"), Some("Patient"));
        assert_eq!(t("#p1"), None);
        assert_eq!(t("Nothing/1"), None);
    }
}
