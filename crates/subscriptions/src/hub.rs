//! WebSocket clients bound to subscriptions (the R4 binding): a client sends
//! `bind [id]`, is answered `bound [id]`, and gets `ping [id]` for every notification
//! of that subscription.
//!
//! Each instance holds its own clients. A notification's event goes on the store's bus
//! (`subscription-event [id] [event]`), and every instance, the sender included, pings
//! its clients bound to that id: a client sees the events of writes on any instance.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ember_repo::{Repo, RepoError};
use ember_store::Store;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;

use crate::SUBSCRIPTION;
use crate::model::{Channel, Subscription};

/// The bus message of one notification event.
pub(crate) const EVENT: &str = "subscription-event";

/// Events buffered per subscription for a slow client; a client that falls further
/// behind misses pings, not subscriptions.
const BUFFER: usize = 64;

/// Publishes one event of `subscription` to every instance's clients.
pub(crate) async fn publish(
    store: &dyn Store,
    subscription: &str,
    event: &str,
) -> ember_store::Result<()> {
    store
        .publish(&format!("{EVENT} {subscription} {event}"))
        .await
}

/// This instance's bound clients, by subscription id. Clones share them.
#[derive(Clone, Default)]
pub struct Hub {
    bound: Arc<Mutex<HashMap<String, broadcast::Sender<()>>>>,
}

impl Hub {
    fn receiver(&self, id: &str) -> broadcast::Receiver<()> {
        let mut bound = self.bound.lock().unwrap_or_else(|e| e.into_inner());
        bound
            .entry(id.to_owned())
            .or_insert_with(|| broadcast::channel(BUFFER).0)
            .subscribe()
    }

    /// Pings this instance's clients bound to `id` (a bus message arrived).
    pub(crate) fn deliver(&self, id: &str) {
        let mut bound = self.bound.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = bound.get(id) {
            if sender.send(()).is_err() {
                // Every client bound to it has gone.
                bound.remove(id);
            }
        }
    }

    /// A WebSocket client's session.
    pub fn session(&self, repo: Repo) -> Session {
        let (tx, rx) = mpsc::channel(BUFFER);
        Session {
            hub: self.clone(),
            repo,
            tx,
            rx,
            forwarders: JoinSet::new(),
            ids: Vec::new(),
        }
    }
}

/// Why a `bind` was refused.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("expected `bind [subscription id]`")]
    Syntax,
    #[error("Subscription/{0} is not a websocket subscription")]
    NotWebsocket(String),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// One client's bindings: the commands it sends, and the pings for it. Dropping it
/// unbinds.
pub struct Session {
    hub: Hub,
    repo: Repo,
    tx: mpsc::Sender<String>,
    rx: mpsc::Receiver<String>,
    forwarders: JoinSet<()>,
    ids: Vec<String>,
}

impl Session {
    /// Answers one text message of the client: `bound [id]`, or `error [reason]`.
    /// Reads the Subscription with the repository as the caller (under the grants
    /// of whoever runs the session).
    pub async fn command(&mut self, text: &str) -> String {
        match self.bind(text).await {
            Ok(id) => format!("bound {id}"),
            Err(e) => format!("error {e}"),
        }
    }

    async fn bind(&mut self, text: &str) -> Result<String, BindError> {
        let mut words = text.split_whitespace();
        let (Some("bind"), Some(id), None) = (words.next(), words.next(), words.next()) else {
            return Err(BindError::Syntax);
        };
        let stored = self.repo.read(SUBSCRIPTION, id).await?;
        let websocket = serde_json::from_str(&stored.body)
            .ok()
            .and_then(|r| Subscription::parse(&r).ok())
            .is_some_and(|s| s.channel == Channel::Websocket);
        if !websocket {
            return Err(BindError::NotWebsocket(id.to_owned()));
        }
        if !self.ids.iter().any(|i| i == id) {
            self.ids.push(id.to_owned());
            let mut events = self.hub.receiver(id);
            let (tx, ping) = (self.tx.clone(), format!("ping {id}"));
            self.forwarders.spawn(async move {
                loop {
                    match events.recv().await {
                        Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => {
                            if tx.send(ping.clone()).await.is_err() {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            });
        }
        Ok(id.to_owned())
    }

    /// The next message for the client (`ping [id]`); pending forever while nothing is
    /// bound.
    pub async fn next(&mut self) -> Option<String> {
        self.rx.recv().await
    }
}
