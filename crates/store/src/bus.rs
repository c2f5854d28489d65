//! Messages between the instances on one database: PostgreSQL `LISTEN`/`NOTIFY`, or
//! in-process for the single-instance SQLite store.

use std::sync::Arc;

use async_trait::async_trait;

use crate::Result;

/// A receiver of published messages.
pub type Subscriber = Arc<dyn Fn(&str) + Send + Sync>;

/// The message a subscriber gets when it may have missed messages.
pub const RESYNC: &str = "*";

/// Publish and subscribe.
#[async_trait]
pub trait Bus: Send + Sync {
    /// Sends `message` to the subscribers of every instance on this database.
    async fn publish(&self, message: &str) -> Result<()>;

    /// Calls `on_message` for every published message, from any instance, until the
    /// process ends. After a lost connection it reconnects by itself and calls
    /// `on_message` with [`RESYNC`], since messages may have been missed meanwhile.
    fn subscribe(&self, on_message: Subscriber);
}
