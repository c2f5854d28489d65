//! The bus: `NOTIFY` on a channel of the schema, and one `LISTEN` connection per
//! instance that reconnects by itself.

use async_trait::async_trait;
use deadpool_postgres::Pool;
use tokio_postgres::NoTls;

use super::{PgStore, pg_err};
use crate::{Bus, Result, StoreError, Subscriber};

#[async_trait]
impl Bus for PgStore {
    async fn publish(&self, message: &str) -> Result<()> {
        let channel = self.channel().await?;
        let client = self.client().await?;
        client
            .execute("SELECT pg_notify($1, $2)", &[&channel, &message])
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    fn subscribe(&self, on_message: Subscriber) {
        let config = self.config.clone();
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let mut wait = std::time::Duration::from_millis(100);
            let mut first = true;
            loop {
                match listen(&config, &pool, &on_message, first).await {
                    Ok(()) => wait = std::time::Duration::from_millis(100),
                    Err(e) => {
                        tracing::warn!(error = %e, "the cache bus lost its connection; reconnecting")
                    }
                }
                first = false;
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(5));
            }
        });
    }
}

/// Listens on the schema's channel until the connection ends, passing every
/// notification to `on_message`. Every (re)connection after the first starts with
/// [`crate::RESYNC`].
async fn listen(
    config: &tokio_postgres::Config,
    pool: &Pool,
    on_message: &Subscriber,
    first: bool,
) -> Result<()> {
    let schema: String = {
        let client = pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        client
            .query_one("SELECT current_schema()", &[])
            .await
            .map_err(pg_err)?
            .get(0)
    };
    let (client, mut connection) = config.connect(NoTls).await.map_err(pg_err)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    });
    let channel = format!("ember_bus_{schema}");
    client
        .batch_execute(&format!("LISTEN \"{}\"", channel.replace('"', "\"\"")))
        .await
        .map_err(pg_err)?;
    if !first {
        tracing::info!("the cache bus reconnected");
        on_message(crate::RESYNC);
    }
    while let Some(message) = rx.recv().await {
        on_message(&message);
    }
    driver.abort();
    Err(StoreError::Unavailable(
        "the listening connection closed".into(),
    ))
}
