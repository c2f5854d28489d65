//! The terminology caches of one repository: expansions and code-system hierarchies,
//! bounded, with a time-to-live as a backstop, and emptied on every instance when any
//! `ValueSet` or `CodeSystem` is written (the bus message [`MESSAGE`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ember_platform::cache::{Invalidate, TtlCache};

use super::Expansion;
use super::code_system::Hierarchy;
use crate::Repo;
use crate::commit::{AfterCommit, Stored as CommitStored};

/// The bus message (and cache name) that empties the terminology caches everywhere.
pub(crate) const MESSAGE: &str = "terminology";

/// Entries kept per cache: an expansion holds up to `Limits::max_expansion` codes.
const CAPACITY: u64 = 64;

/// How long an entry lives at most, should an invalidation be lost.
const TTL: Duration = Duration::from_secs(3600);

/// The resource types whose writes change expansions.
pub(crate) const TYPES: [&str; 2] = ["ValueSet", "CodeSystem"];

/// Both caches, with a generation that every invalidation bumps: an entry computed
/// before an invalidation is not kept after it.
pub(crate) struct Caches {
    pub expansions: TtlCache<Arc<Expansion>>,
    pub hierarchies: TtlCache<Arc<Hierarchy>>,
    generation: AtomicU64,
}

impl Default for Caches {
    fn default() -> Self {
        Self {
            expansions: TtlCache::new("expansions", CAPACITY, TTL, None),
            hierarchies: TtlCache::new("code-systems", CAPACITY, TTL, None),
            generation: AtomicU64::new(0),
        }
    }
}

impl Caches {
    /// The current generation, read before computing an entry.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Keeps an expansion computed in generation `since`, unless invalidated since.
    pub fn keep_expansion(&self, key: &str, since: u64, value: Arc<Expansion>) {
        if self.generation() == since {
            self.expansions.insert(key, value);
        }
    }

    /// Keeps a hierarchy read in generation `since`, unless invalidated since.
    pub fn keep_hierarchy(&self, key: &str, since: u64, value: Arc<Hierarchy>) {
        if self.generation() == since {
            self.hierarchies.insert(key, value);
        }
    }

    /// Empties both caches.
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.expansions.invalidate(None);
        self.hierarchies.invalidate(None);
    }
}

impl Invalidate for Caches {
    fn name(&self) -> &'static str {
        MESSAGE
    }

    /// Any invalidation empties both: a change of one code system or value set can
    /// change the expansion of any value set that includes it.
    fn invalidate(&self, _key: Option<&str>) {
        self.clear();
    }
}

/// Empties the terminology caches after every commit that writes a ValueSet or a
/// CodeSystem, before the commit returns, and tells the other instances.
pub(crate) struct Invalidation;

#[async_trait::async_trait]
impl AfterCommit for Invalidation {
    async fn after_commit(&self, repo: &Repo, stored: &CommitStored) {
        if !stored
            .versions
            .iter()
            .any(|(t, _, _)| TYPES.contains(&t.as_str()))
        {
            return;
        }
        repo.terminology.clear();
        repo.tell_others(MESSAGE).await;
    }
}
