//! Slicing: which slice each item of a sliced element belongs to (by its
//! discriminators), each slice's cardinality, closed slicing.
//!
//! Discriminators of type `value` and `pattern` compare the item's values at the path
//! with the fixed or pattern values the slice defines there (or above it, descending
//! into a fixed or pattern value); `exists` with the slice's minimum and maximum there;
//! `type` with its types; `profile` checks the values against the slice's type profiles
//! the server knows. A discriminator whose path uses functions other than
//! `extension(url)` (such as `resolve()`) matches nothing. `ordered` is not checked.

use serde_json::Value;

use super::model::{DiscriminatorKind, Group, Profile, Slicing};
use super::values;
use super::walk::{Item, Walker};
use crate::outcome::{IssueType, Severity};

impl<'a> Walker<'_, 'a> {
    /// Assigns each item to its slice, checks it against the slice, and checks each
    /// slice's cardinality and closed slicing.
    pub(crate) fn slices(&mut self, profile: &Profile, g: &Group, items: &[Item<'a>], loc: &str) {
        let base = &profile.elements[g.base];
        let Some(slicing) = base.slicing.clone() else {
            return;
        };
        if slicing.discriminators.is_empty() {
            // Without discriminators items cannot be told apart: nothing to check.
            return;
        }
        let mut counts = vec![0usize; g.slices.len()];
        for item in items {
            let slice =
                (0..g.slices.len()).find(|&k| self.matches(profile, &slicing, g.slices[k], item));
            match slice {
                Some(k) => {
                    counts[k] += 1;
                    self.check(profile, g.slices[k], item);
                }
                None if slicing.closed => {
                    let msg = format!(
                        "the value matches no slice of {}, and its slicing is closed",
                        base.id
                    );
                    self.issue(Severity::Error, IssueType::Structure, msg, &item.loc);
                }
                None => {}
            }
        }
        for (k, &s) in g.slices.iter().enumerate() {
            self.cardinality(&profile.elements[s], counts[k], loc);
        }
    }

    fn matches(
        &mut self,
        profile: &Profile,
        slicing: &Slicing,
        slice: usize,
        item: &Item<'a>,
    ) -> bool {
        let Some(value) = item.value else {
            return false;
        };
        for d in &slicing.discriminators {
            let segs = values::segments(&d.path);
            let ok = match d.kind {
                DiscriminatorKind::Value | DiscriminatorKind::Pattern => {
                    let mut expected = Vec::new();
                    expected_values(profile, slice, &segs, &mut expected);
                    if expected.is_empty() && d.path == "url" {
                        expected.extend(extension_url(profile, slice));
                    }
                    if expected.is_empty() {
                        // The slice does not constrain this path.
                        continue;
                    }
                    values::at_path(value, &d.path).is_some_and(|actual| {
                        actual
                            .iter()
                            .any(|a| expected.iter().any(|e| values::pattern_matches(e, a)))
                    })
                }
                DiscriminatorKind::Exists => {
                    let defs = defs_at(profile, slice, &segs);
                    let present = values::at_path(value, &d.path).is_some_and(|a| !a.is_empty());
                    let required = defs.iter().any(|&i| profile.elements[i].min > 0);
                    let forbidden = defs.iter().any(|&i| profile.elements[i].max == Some(0));
                    (present || !required) && !(present && forbidden)
                }
                DiscriminatorKind::Type => {
                    let allowed: Vec<&str> = defs_at(profile, slice, &segs)
                        .iter()
                        .flat_map(|&i| &profile.elements[i].types)
                        .map(|t| t.code.as_str())
                        .collect();
                    types_at(item, value, &segs)
                        .iter()
                        .any(|t| allowed.contains(&t.as_str()))
                }
                DiscriminatorKind::Profile => self.profile_matches(profile, slice, &segs, item),
            };
            if !ok {
                return false;
            }
        }
        true
    }

    /// The item (or its values at the path) conforms to one of the type profiles the
    /// slice gives there.
    fn profile_matches(
        &mut self,
        profile: &Profile,
        slice: usize,
        segs: &[&str],
        item: &Item<'a>,
    ) -> bool {
        let urls: Vec<String> = defs_at(profile, slice, segs)
            .iter()
            .flat_map(|&i| &profile.elements[i].types)
            .flat_map(|t| t.profiles.iter().cloned())
            .collect();
        let known: Vec<_> = urls.iter().filter_map(|u| self.cx.profile(u)).collect();
        let targets: Vec<Item<'a>> = if segs.iter().all(|s| *s == "$this") {
            vec![item.clone()]
        } else {
            let Some(found) = item.value.and_then(|v| values::at_path(v, &segs.join("."))) else {
                return false;
            };
            found
                .into_iter()
                .map(|v| Item {
                    value: Some(v),
                    ext: None,
                    ty: None,
                    node: None,
                    loc: item.loc.clone(),
                })
                .collect()
        };
        targets
            .iter()
            .any(|t| known.iter().any(|p| self.conforms_quietly(p, t)))
    }
}

/// The element definitions at `segs` below `idx`: through child groups by name, the
/// group's element and all its slices.
fn defs_at(profile: &Profile, idx: usize, segs: &[&str]) -> Vec<usize> {
    let mut current = vec![idx];
    for seg in segs {
        if *seg == "$this" {
            continue;
        }
        let mut next = Vec::new();
        for &i in &current {
            for g in &profile.children[i] {
                if profile.elements[g.base].base_name() == *seg {
                    next.push(g.base);
                    next.extend(&g.slices);
                }
            }
        }
        current = next;
    }
    current
}

/// The fixed or pattern values a slice defines at `segs` (descending into a fixed or
/// pattern value met on the way).
fn expected_values(profile: &Profile, idx: usize, segs: &[&str], out: &mut Vec<Value>) {
    let def = &profile.elements[idx];
    if let Some(v) = def.fixed.as_ref().or(def.pattern.as_ref()) {
        if segs.is_empty() {
            out.push(v.clone());
        } else if let Some(found) = values::at_path(v, &segs.join(".")) {
            out.extend(found.into_iter().cloned());
        }
        return;
    }
    let Some((seg, rest)) = segs.split_first() else {
        return;
    };
    if *seg == "$this" {
        return expected_values(profile, idx, rest, out);
    }
    for g in &profile.children[idx] {
        if profile.elements[g.base].base_name() == *seg {
            for &i in std::iter::once(&g.base).chain(&g.slices) {
                expected_values(profile, i, rest, out);
            }
        }
    }
}

/// An extension slice's `url`: the profile of its Extension type.
fn extension_url(profile: &Profile, slice: usize) -> Option<Value> {
    profile.elements[slice]
        .types
        .iter()
        .find(|t| t.code == "Extension")
        .and_then(|t| t.profiles.first())
        .map(|u| Value::String(u.split('|').next().unwrap_or(u).to_owned()))
}

/// The types of the values at `segs` under the item: a choice member's type, a
/// resource's `resourceType`.
fn types_at(item: &Item<'_>, value: &Value, segs: &[&str]) -> Vec<String> {
    let segs: Vec<&str> = segs.iter().copied().filter(|s| *s != "$this").collect();
    let Some((last, parents)) = segs.split_last() else {
        let own = item.ty.clone().or_else(|| {
            value
                .get("resourceType")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        return own.into_iter().collect();
    };
    let Some(holders) = values::at_path(value, &parents.join(".")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for h in holders {
        let Some(obj) = h.as_object() else { continue };
        for m in values::members(obj, last, true) {
            out.extend(values::suffix_type(&m.key[last.len()..]));
        }
        for m in values::members(obj, last, false) {
            if let Some(rt) = m
                .value
                .and_then(|v| v.get("resourceType"))
                .and_then(Value::as_str)
            {
                out.push(rt.to_owned());
            }
        }
    }
    out
}
