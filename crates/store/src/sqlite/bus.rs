//! The bus of the single SQLite instance: published messages go to its own
//! subscribers.

use async_trait::async_trait;

use super::SqliteStore;
use crate::{Bus, Result, Subscriber};

#[async_trait]
impl Bus for SqliteStore {
    async fn publish(&self, message: &str) -> Result<()> {
        let subscribers = self
            .subscribers
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        for subscriber in subscribers {
            subscriber(message);
        }
        Ok(())
    }

    fn subscribe(&self, on_message: Subscriber) {
        if let Ok(mut subscribers) = self.subscribers.lock() {
            subscribers.push(on_message);
        }
    }
}
