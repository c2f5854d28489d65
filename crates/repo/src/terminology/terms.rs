//! The code sets behind the token modifiers `:in`/`:not-in` (a value set's codes) and
//! `:below`/`:above` (a code and what it subsumes, or what subsumes it, in a stored
//! CodeSystem), resolved before a search is parsed, since parsing is synchronous.

use std::collections::HashMap;
use std::sync::Arc;

use crate::search::values::{split_escaped, unescape};
use crate::{Repo, RepoError, Result};

/// `(system, code)` pairs.
pub(crate) type CodeSet = Arc<Vec<(String, String)>>;

/// The code sets one search refers to, by [`key`]; a set that could not be made
/// holds the reason, reported only if a token parameter uses it.
#[derive(Debug, Default)]
pub(crate) struct Terms {
    sets: HashMap<String, std::result::Result<CodeSet, String>>,
}

/// The modifiers that stand for code sets.
pub(crate) const MODIFIERS: [&str; 4] = ["in", "not-in", "below", "above"];

/// The key of one value of a modifier (`not-in` shares `in`'s sets).
pub(crate) fn key(modifier: &str, raw: &str) -> String {
    let modifier = if modifier == "not-in" { "in" } else { modifier };
    format!("{modifier} {raw}")
}

impl Terms {
    /// Whether the search names no code set.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    pub fn get(&self, modifier: &str, raw: &str) -> Option<&std::result::Result<CodeSet, String>> {
        self.sets.get(&key(modifier, raw))
    }
}

impl Repo {
    /// The code sets the modifiers of `pairs` refer to (chained and `_has` parameters
    /// included). A value set or code that is unknown, cannot be expanded or has more
    /// than `Limits::max_search_codes` codes is kept as its reason; storage errors fail.
    pub(crate) async fn resolve_terms(&self, pairs: &[(String, String)]) -> Result<Terms> {
        let mut terms = Terms::default();
        let max = self.limits().max_search_codes;
        for (name, value) in pairs {
            let modifier = name
                .rsplit('.')
                .next()
                .and_then(|n| n.rsplit_once(':'))
                .map(|(_, m)| m);
            let Some(modifier) = modifier.filter(|m| MODIFIERS.contains(m)) else {
                continue;
            };
            for raw in split_escaped(value, ',') {
                let k = key(modifier, &raw);
                if terms.sets.contains_key(&k) {
                    continue;
                }
                let set = match modifier {
                    "in" | "not-in" => self.value_set_codes(&unescape(&raw)).await?,
                    _ => self.subsumption(modifier == "below", &raw).await?,
                };
                let set = set.and_then(|s| match s.len() {
                    n if n > max => Err(format!(
                        ":{modifier}={} stands for {n} codes; a search takes at most {max}",
                        unescape(&raw)
                    )),
                    _ => Ok(s),
                });
                terms.sets.insert(k, set);
            }
        }
        Ok(terms)
    }

    async fn value_set_codes(&self, url: &str) -> Result<std::result::Result<CodeSet, String>> {
        match self.expansion_of(url, 0).await {
            Ok(e) => Ok(Ok(Arc::new(
                e.concepts
                    .iter()
                    .map(|c| (c.system.clone(), c.code.clone()))
                    .collect(),
            ))),
            Err(RepoError::NotFound(_)) => Ok(Err(format!(
                "the ValueSet {url:?} is not known to this server"
            ))),
            Err(RepoError::Unprocessable(why)) => Ok(Err(why)),
            Err(e) => Err(e),
        }
    }

    /// `system|code` and every code below it (`below`) or above it.
    async fn subsumption(
        &self,
        below: bool,
        raw: &str,
    ) -> Result<std::result::Result<CodeSet, String>> {
        let parts = split_escaped(raw, '|');
        let [system, code] = parts.as_slice() else {
            return Ok(Err(format!("{raw:?} is not system|code")));
        };
        let (system, code) = (unescape(system), unescape(code));
        if system.is_empty() || code.is_empty() {
            return Ok(Err(format!("{raw:?} is not system|code")));
        }
        let Some(h) = self.hierarchy(&system).await? else {
            return Ok(Err(format!(
                "the code system {system} is not held by this server"
            )));
        };
        let Some((i, _)) = h.get(&code) else {
            return Ok(Err(format!(
                "{code:?} is not a code of the CodeSystem {system}"
            )));
        };
        let related = if below {
            h.descendants(i)
        } else {
            h.ancestors(i)
        };
        Ok(Ok(Arc::new(
            std::iter::once(i)
                .chain(related)
                .map(|j| (system.clone(), h.nodes[j].code.clone()))
                .collect(),
        )))
    }
}
