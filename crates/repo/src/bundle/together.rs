//! A batch's plain writes in one commit.
//!
//! A batch answers as if each entry ran on its own. Its plain creates and updates (no
//! condition, each of a resource no other entry names) do not depend on one another,
//! so they can share one commit: each is planned on its own against the current
//! version, exactly as it would be alone, and the commit stores all of them or none.
//! One commit instead of one per entry is what makes loading data with batches fast
//! (one storage transaction, and on PostgreSQL one statement for all new documents).
//! When the shared commit fails (a concurrent write, a write a rule or the caller's
//! grants refuse), nothing of it stays, and each of those entries runs on its own.

use std::collections::HashMap;

use ember_fhir::id;
use ember_store::{Commit, Committed, Current};

use super::{Entry, Method, Outcome};
use crate::write::{Plan, check_if_match, check_put};
use crate::{Repo, Result};

/// Types whose writes change how later writes are indexed; their entries run alone.
const RUN_ALONE: [&str; 1] = ["SearchParameter"];

impl Repo {
    /// Writes the plain creates and updates among `entries` in one commit, when there
    /// are at least two; returns the outcome of each entry it handled (a failure to plan
    /// one is its outcome, as it would be alone). Returns nothing when the commit, or
    /// the read of the current versions, fails: those entries are then run one by one.
    pub(super) async fn write_together(&self, entries: &[Result<Entry>]) -> Vec<(usize, Outcome)> {
        let mut named: HashMap<(&str, &str), usize> = HashMap::new();
        for e in entries.iter().flatten() {
            if let Some(id) = &e.id {
                *named.entry((e.res_type.as_str(), id.as_str())).or_default() += 1;
            }
        }
        let together: Vec<(usize, &Entry)> = entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some((i, e.as_ref().ok()?)))
            .filter(|(_, e)| e.condition.is_none() && !RUN_ALONE.contains(&e.res_type.as_str()))
            .filter(|(_, e)| match (e.method, &e.id) {
                (Method::Post, _) => true,
                (Method::Put, Some(id)) => named[&(e.res_type.as_str(), id.as_str())] == 1,
                _ => false,
            })
            .collect();
        // The current versions of the updates, in one read.
        let updated: Vec<(&str, &str)> = together
            .iter()
            .filter(|(_, e)| e.method == Method::Put)
            .map(|(_, e)| (e.res_type.as_str(), e.id.as_deref().unwrap_or_default()))
            .collect();
        let Ok(currents) = self.store.read_many(&updated).await else {
            return Vec::new();
        };
        let mut currents = currents.into_iter();
        let mut plans: Vec<(usize, Plan)> = Vec::new();
        let mut failed: Vec<(usize, Outcome)> = Vec::new();
        for (i, e) in together {
            let planned = match (e.method, &e.id) {
                (Method::Put, Some(id)) => {
                    let current = currents.next().flatten();
                    self.plan_update_entry(e, id, current.as_ref())
                }
                _ => self.plan_create(
                    &e.res_type,
                    &id::new_id(),
                    e.resource.clone().unwrap_or_default(),
                ),
            };
            match planned {
                Ok(plan) => plans.push((i, plan)),
                Err(err) => failed.push((i, Outcome::Failed(err))),
            }
        }
        if plans.len() < 2 {
            return Vec::new();
        }
        let (stored, writes): (Vec<_>, Vec<_>) = plans
            .into_iter()
            .map(|(i, p)| ((i, p.stored), p.write))
            .unzip();
        let commit = Commit {
            writes,
            ..Default::default()
        };
        match self.commit(commit).await {
            Ok(Committed::Stored { .. }) => stored
                .into_iter()
                .map(|(i, stored)| (i, Outcome::Written(stored)))
                .chain(failed)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Plans an update entry as [`Repo::update`] would, against the `current` version.
    fn plan_update_entry(&self, e: &Entry, id: &str, current: Option<&Current>) -> Result<Plan> {
        let body = e.resource.clone().unwrap_or_default();
        check_put(&e.res_type, id, &body)?;
        check_if_match(&e.res_type, id, e.if_match, current)?;
        self.plan_update(&e.res_type, id, body, current)
    }
}
