//! A stored `CodeSystem` as a concept hierarchy: nested `concept`s, and the `parent`,
//! `child` and `subsumedBy` properties, as links between concepts.

use std::collections::{HashMap, VecDeque};

use serde_json::Value;

/// One concept of a code system.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub code: String,
    pub display: Option<String>,
    pub definition: Option<String>,
    pub designations: Vec<Value>,
    pub properties: Vec<Value>,
    pub parents: Vec<usize>,
    pub children: Vec<usize>,
    /// Marked `inactive`, or with a `status` of `retired` or `inactive`.
    pub inactive: bool,
}

/// A code system's concepts and their hierarchy.
#[derive(Debug, Clone)]
pub(crate) struct Hierarchy {
    pub url: String,
    pub version: Option<String>,
    pub name: Option<String>,
    /// `CodeSystem.content`: only `complete` systems list every concept.
    pub content: String,
    pub nodes: Vec<Node>,
    by_code: HashMap<String, usize>,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn array<'v>(v: &'v Value, key: &str) -> impl DoubleEndedIterator<Item = &'v Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

impl Hierarchy {
    /// The hierarchy of a CodeSystem resource.
    pub fn of(cs: &Value) -> Hierarchy {
        let mut h = Hierarchy {
            url: text(cs, "url").unwrap_or_default(),
            version: text(cs, "version"),
            name: text(cs, "title").or_else(|| text(cs, "name")),
            content: text(cs, "content").unwrap_or_default(),
            nodes: Vec::new(),
            by_code: HashMap::new(),
        };
        // Property links, resolved once every concept has its index.
        let mut links: Vec<(usize, String, bool)> = Vec::new();
        let mut stack: Vec<(&Value, Option<usize>)> =
            array(cs, "concept").rev().map(|c| (c, None)).collect();
        while let Some((c, parent)) = stack.pop() {
            let Some(code) = text(c, "code") else {
                continue;
            };
            let i = match h.by_code.get(&code) {
                Some(&i) => i,
                None => {
                    let properties: Vec<Value> = array(c, "property").cloned().collect();
                    let inactive = properties.iter().any(|p| match p["code"].as_str() {
                        Some("inactive") => p["valueBoolean"] == true,
                        Some("status") => {
                            matches!(p["valueCode"].as_str(), Some("retired" | "inactive"))
                        }
                        _ => false,
                    });
                    h.nodes.push(Node {
                        code: code.clone(),
                        display: text(c, "display"),
                        definition: text(c, "definition"),
                        designations: array(c, "designation").cloned().collect(),
                        properties,
                        parents: Vec::new(),
                        children: Vec::new(),
                        inactive,
                    });
                    h.by_code.insert(code, h.nodes.len() - 1);
                    h.nodes.len() - 1
                }
            };
            if let Some(p) = parent {
                h.link(p, i);
            }
            for p in array(c, "property") {
                let target = p["valueCode"]
                    .as_str()
                    .or_else(|| p["valueString"].as_str());
                match (p["code"].as_str(), target) {
                    (Some("parent" | "subsumedBy"), Some(t)) => links.push((i, t.to_owned(), true)),
                    (Some("child"), Some(t)) => links.push((i, t.to_owned(), false)),
                    _ => {}
                }
            }
            stack.extend(array(c, "concept").rev().map(|child| (child, Some(i))));
        }
        for (i, other, is_parent) in links {
            if let Some(&j) = h.by_code.get(&other) {
                if is_parent {
                    h.link(j, i);
                } else {
                    h.link(i, j);
                }
            }
        }
        h
    }

    fn link(&mut self, parent: usize, child: usize) {
        if parent != child && !self.nodes[parent].children.contains(&child) {
            self.nodes[parent].children.push(child);
            self.nodes[child].parents.push(parent);
        }
    }

    /// The concept with this code.
    pub fn get(&self, code: &str) -> Option<(usize, &Node)> {
        self.by_code.get(code).map(|&i| (i, &self.nodes[i]))
    }

    /// Every concept this one subsumes, transitively (not itself), in breadth-first
    /// order.
    pub fn descendants(&self, i: usize) -> Vec<usize> {
        self.walk(i, |n| &n.children)
    }

    /// Every concept that subsumes this one, transitively (not itself).
    pub fn ancestors(&self, i: usize) -> Vec<usize> {
        self.walk(i, |n| &n.parents)
    }

    fn walk(&self, from: usize, next: impl Fn(&Node) -> &Vec<usize>) -> Vec<usize> {
        let mut seen = vec![false; self.nodes.len()];
        seen[from] = true;
        let mut out = Vec::new();
        let mut queue = VecDeque::from([from]);
        while let Some(i) = queue.pop_front() {
            for &j in next(&self.nodes[i]) {
                if !seen[j] {
                    seen[j] = true;
                    out.push(j);
                    queue.push_back(j);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_concepts_and_parent_properties_make_one_hierarchy() {
        let cs = json!({"resourceType": "CodeSystem", "url": "http://x", "content": "complete",
        "concept": [
            {"code": "a", "display": "A", "concept": [
                {"code": "b", "concept": [{"code": "c"}]},
            ]},
            {"code": "d", "property": [{"code": "parent", "valueCode": "b"}]},
            {"code": "e", "property": [{"code": "status", "valueCode": "retired"}]},
        ]});
        let h = Hierarchy::of(&cs);
        let codes = |is: Vec<usize>| -> Vec<&str> {
            is.into_iter().map(|i| h.nodes[i].code.as_str()).collect()
        };
        let (a, _) = h.get("a").unwrap();
        assert_eq!(codes(h.descendants(a)), ["b", "c", "d"]);
        let (d, _) = h.get("d").unwrap();
        assert_eq!(codes(h.ancestors(d)), ["b", "a"]);
        assert!(h.get("e").unwrap().1.inactive);
        assert!(!h.get("a").unwrap().1.inactive);
        assert!(h.get("zz").is_none());
    }
}
