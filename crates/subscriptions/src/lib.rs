//! FHIR R4 Subscriptions: a stored `Subscription` whose `criteria` (a search) match a
//! created or updated resource is notified by `rest-hook` or `websocket`.
//!
//! Nothing happens inside the request that writes: the commit's outbox holds one
//! matching job per version of a type some active (or about to be active)
//! subscription watches (writes of other types pay nothing). That job, on the queue
//! of any instance, judges the version against the criteria in memory and sends the
//! notifications of its matches at once; one that fails goes to a notification job of
//! its own, retried with backoff. Notifications go out at least once, with a stable
//! event id. [`install`] plugs this into the repository as a write rule, a listener,
//! an after-commit hook and job handlers; [`Subscriptions::start`] loads the registry
//! and listens on the bus.
//! Knows nothing of HTTP serving: `api` runs the WebSocket and hands its text to a
//! [`Session`].

mod delivery;
mod hub;
mod matching;
pub mod model;
mod registry;
mod rules;

use std::sync::Arc;

use ember_platform::http_client::HttpClient;
use ember_platform::metrics::Metrics;
use ember_repo::Repo;

pub use delivery::EVENT_HEADER;
pub use hub::{BindError, Hub, Session};

/// The resource type.
pub const SUBSCRIPTION: &str = "Subscription";
/// The operation name under which subscriptions write (activation, errors).
pub const OPERATION: &str = "subscriptions";
/// The job kind that matches one version against the active subscriptions.
pub const MATCH_JOB: &str = "subscription-match";
/// The job kind of one notification.
pub const NOTIFY_JOB: &str = "subscription-notify";
/// The job kind that activates a `requested` Subscription.
pub const ACTIVATE_JOB: &str = "subscription-activate";

/// The subscriptions of one repository: the registry of active ones and this
/// instance's WebSocket clients. Cheap to clone.
#[derive(Clone)]
pub struct Subscriptions {
    registry: registry::Registry,
    hub: Hub,
    /// This instance's tag in bus messages.
    origin: Arc<str>,
}

/// `repo` with subscriptions installed: the Subscription rule, the outbox listener,
/// the registry reload, and the matching, notification and activation jobs, which
/// call endpoints with `client` and count notifications in `metrics`.
pub fn install(repo: Repo, client: HttpClient, metrics: Arc<Metrics>) -> (Repo, Subscriptions) {
    let subscriptions = Subscriptions {
        registry: registry::Registry::default(),
        hub: Hub::default(),
        origin: ember_fhir::id::new_id().into(),
    };
    let registry = subscriptions.registry.clone();
    let notify = Arc::new(delivery::Notify { client, metrics });
    let repo = repo
        .with_rule(Arc::new(rules::Valid))
        .with_listener(Arc::new(rules::Outbox {
            registry: registry.clone(),
        }))
        .with_hook(Arc::new(rules::Reload {
            registry: registry.clone(),
            origin: Arc::clone(&subscriptions.origin),
        }))
        .with_handler(Arc::new(matching::Match {
            registry,
            notify: Arc::clone(&notify),
        }))
        .with_handler(Arc::new(matching::Activate))
        .with_handler(notify);
    (repo, subscriptions)
}

impl Subscriptions {
    /// Listens on the store's bus (Subscription changes of other instances, WebSocket
    /// events of every instance) and loads the active subscriptions; returns how many
    /// there are. Must run inside a Tokio runtime.
    pub async fn start(&self, repo: &Repo) -> ember_repo::Result<usize> {
        self.listen(repo);
        self.registry.reload(repo).await
    }

    fn listen(&self, repo: &Repo) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let store = Arc::clone(repo.store());
        let (registry, hub, repo) = (self.registry.clone(), self.hub.clone(), repo.clone());
        let own = format!("{} {}", registry::MESSAGE, self.origin);
        store.subscribe(Arc::new(move |message: &str| {
            let mut words = message.split(' ');
            match words.next() {
                Some(hub::EVENT) => {
                    if let Some(id) = words.next() {
                        hub.deliver(id);
                    }
                }
                Some(registry::MESSAGE) if message != own => reload(&runtime, &registry, &repo),
                Some(ember_store::RESYNC) => reload(&runtime, &registry, &repo),
                _ => {}
            }
        }));
    }

    /// A WebSocket client's session, reading Subscriptions through `repo`.
    pub fn session(&self, repo: Repo) -> Session {
        self.hub.session(repo)
    }

    /// How many subscriptions are active (this instance's registry).
    pub fn active(&self) -> usize {
        self.registry.snapshot().len()
    }
}

fn reload(runtime: &tokio::runtime::Handle, registry: &registry::Registry, repo: &Repo) {
    let (registry, repo) = (registry.clone(), repo.clone());
    runtime.spawn(async move {
        if let Err(e) = registry.reload(&repo).await {
            tracing::error!(error = %e, "cannot reload the subscriptions");
        }
    });
}
