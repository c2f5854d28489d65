//! The subscriptions this instance watches for, by resource type: the `active` ones,
//! and the `requested` ones about to become active. Loaded at start-up, reloaded after
//! every commit that writes a Subscription (before the commit returns), and on every
//! other instance through the store's bus.
//!
//! A `requested` Subscription is watched for before it is active, so that no
//! instance can miss a write while the change to `active` travels: the activation
//! waits until every instance has heard of the `requested` version (see
//! [`crate::matching::SETTLE`]), each write of a watched type gets its matching job,
//! and that job asks the store whether a `requested` one has become active since.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use ember_repo::{Matcher, Repo};

use crate::model::{Status, Subscription};

/// The bus message that makes every instance reload its subscriptions.
pub(crate) const MESSAGE: &str = "subscriptions";

/// Subscriptions loaded per page.
const PAGE: &str = "500";

/// The watched subscriptions at one moment.
#[derive(Debug, Default)]
pub(crate) struct Active {
    by_type: HashMap<String, Vec<Arc<Watched>>>,
}

/// An active or requested subscription, with its criteria compiled once for judging
/// resources.
#[derive(Debug)]
pub(crate) struct Watched {
    pub subscription: Subscription,
    matcher: Mutex<Option<Arc<Matcher>>>,
}

impl Watched {
    pub fn new(subscription: Subscription) -> Self {
        Self {
            subscription,
            matcher: Mutex::default(),
        }
    }

    /// The compiled criteria: kept while the SearchParameter definitions they were
    /// compiled under are in force, unless they name code sets (see [`Matcher`]).
    pub async fn matcher(&self, repo: &Repo) -> ember_repo::Result<Arc<Matcher>> {
        let kept = self.matcher.lock().ok().and_then(|m| m.clone());
        if let Some(m) = kept.filter(|m| repo.matcher_is_current(m)) {
            return Ok(m);
        }
        let s = &self.subscription;
        let m = Arc::new(repo.matcher(&s.res_type, &s.params).await?);
        if m.is_lasting() {
            if let Ok(mut kept) = self.matcher.lock() {
                *kept = Some(Arc::clone(&m));
            }
        }
        Ok(m)
    }
}

impl Active {
    /// The active and requested subscriptions of `res_type`.
    pub fn of_type(&self, res_type: &str) -> &[Arc<Watched>] {
        self.by_type.get(res_type).map_or(&[], Vec::as_slice)
    }

    /// How many are active.
    pub fn len(&self) -> usize {
        self.by_type
            .values()
            .flatten()
            .filter(|w| w.subscription.status == Status::Active)
            .count()
    }
}

/// The registry of one repository. Clones share it.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    current: Arc<RwLock<Arc<Active>>>,
    /// Serializes reloads, so an older load never replaces a newer one.
    reload: Arc<tokio::sync::Mutex<()>>,
}

impl Registry {
    pub fn snapshot(&self) -> Arc<Active> {
        self.current
            .read()
            .map(|a| Arc::clone(&a))
            .unwrap_or_default()
    }

    /// Reads every active and requested Subscription from the store; returns how many
    /// are active. A stored one Ember cannot serve (it was stored before a rule
    /// changed) is skipped.
    pub async fn reload(&self, repo: &Repo) -> ember_repo::Result<usize> {
        let _serial = self.reload.lock().await;
        let query = [
            ("status".to_owned(), "active,requested".to_owned()),
            ("_count".to_owned(), PAGE.to_owned()),
        ];
        let mut pages = repo.pages("Subscription", &query).await?;
        let mut active = Active::default();
        while let Some(page) = pages.next().await? {
            for resource in page {
                match Subscription::parse(&resource) {
                    Ok(s) if matches!(s.status, Status::Active | Status::Requested) => active
                        .by_type
                        .entry(s.res_type.clone())
                        .or_default()
                        .push(Arc::new(Watched::new(s))),
                    Ok(_) => {}
                    Err(reason) => tracing::warn!(
                        subscription = resource["id"].as_str().unwrap_or_default(),
                        reason,
                        "a stored Subscription cannot be served; skipped"
                    ),
                }
            }
        }
        let n = active.len();
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(active);
        }
        Ok(n)
    }
}
