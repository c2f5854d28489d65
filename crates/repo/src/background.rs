//! The work each instance does beside requests, started and stopped explicitly by
//! whoever runs the repository ([`Repo::start_background`], [`Background::stop`]):
//! - the bus subscription: SearchParameter changes of other instances reload the
//!   run-time parameters, new jobs wake the idle job worker, and cache invalidations
//!   (terminology) empty this instance's caches;
//! - the job worker ([`crate::jobs`]);
//! - every few seconds, folding the appended token-count deltas
//!   ([`Repo::compact_counts`]) and putting documents an earlier release wrote into the
//!   patient timelines ([`Repo::refresh_timeline`]);
//! - every hour, removing jobs done more than a week ago;
//! - the scheduled job kinds ([`Repo::with_schedule`]): one job per period.

use std::sync::Arc;
use std::time::Duration;

use ember_fhir::instant;
use ember_store::{IndexRows, StaleDoc, TimelineRefresh};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::Repo;
use crate::registry::MESSAGE;

/// How often each instance folds the appended token-count deltas.
const COMPACT_EVERY: Duration = Duration::from_secs(5);

/// Token values folded per statement.
const COMPACT_BATCH: u32 = 1000;

/// How often each instance looks for documents of an earlier release to put into the
/// timelines, and how many it puts in per transaction.
const REFRESH_EVERY: Duration = Duration::from_secs(1);
const REFRESH_BATCH: u32 = 200;

/// How often done jobs are removed, and how long they are kept.
const PURGE_EVERY: Duration = Duration::from_secs(3600);
const KEEP_DONE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The running background work of one repository.
pub struct Background {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Repo {
    /// Starts the background work of this instance (see the module documentation).
    /// Must run inside a Tokio runtime.
    pub fn start_background(&self) -> Background {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        self.subscribe();
        tasks.spawn(crate::jobs::work(
            self.clone(),
            ember_fhir::id::new_id(),
            stopped.clone(),
        ));
        let repo = self.clone();
        tasks.spawn(every(COMPACT_EVERY, stopped.clone(), move || {
            let repo = repo.clone();
            async move {
                if let Err(e) = repo.compact_counts().await {
                    tracing::warn!(error = %e, "token count compaction: retrying");
                }
            }
        }));
        let repo = self.clone();
        tasks.spawn(every(REFRESH_EVERY, stopped.clone(), move || {
            let repo = repo.clone();
            async move {
                if let Err(e) = repo.refresh_timeline().await {
                    tracing::warn!(error = %e, "timeline refresh: retrying");
                }
            }
        }));
        for schedule in self.schedules.iter() {
            let (repo, schedule) = (self.clone(), schedule.clone());
            tasks.spawn(every(schedule.tick(), stopped.clone(), move || {
                let (repo, schedule) = (repo.clone(), schedule.clone());
                async move {
                    let request = schedule.request(instant::now());
                    if let Err(e) = repo.enqueue(vec![request]).await {
                        tracing::warn!(kind = schedule.kind, error = %e, "cannot enqueue a scheduled job; retrying");
                    }
                }
            }));
        }
        let repo = self.clone();
        tasks.spawn(every(PURGE_EVERY, stopped, move || {
            let repo = repo.clone();
            async move {
                let keep = i64::try_from(KEEP_DONE.as_micros()).unwrap_or(i64::MAX);
                match repo.store.purge_done(instant::now() - keep).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(jobs = n, "removed jobs done more than a week ago"),
                    Err(e) => tracing::warn!(error = %e, "cannot remove old jobs; retrying later"),
                }
                match repo.store.kv_purge(instant::now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(entries = n, "removed expired key-value entries"),
                    Err(e) => tracing::warn!(error = %e, "cannot remove expired key-value entries"),
                }
            }
        }));
        Background { stop, tasks }
    }

    /// Folds the appended deltas of the token counts (see migration 0004) until none
    /// are left; returns the token values folded. A count is right before and after.
    pub async fn compact_counts(&self) -> crate::Result<u64> {
        let mut folded = 0;
        loop {
            let n = self.store.compact_counts(COMPACT_BATCH).await?;
            folded += u64::from(n);
            if n < COMPACT_BATCH {
                return Ok(folded);
            }
        }
    }

    /// Puts documents that an earlier release wrote into the timeline, in batches,
    /// until none wait; returns how many it handled. The background work runs it
    /// every second.
    pub async fn refresh_timeline(&self) -> crate::Result<u64> {
        let mut handled = 0;
        loop {
            let stale = self.store.stale_timeline(REFRESH_BATCH).await?;
            if stale.is_empty() {
                return Ok(handled);
            }
            handled += stale.len() as u64;
            let params = self.params.clone();
            let docs = tokio::task::spawn_blocking(move || {
                stale
                    .into_iter()
                    .map(|doc| TimelineRefresh {
                        index: rows_of(&doc, &params),
                        doc,
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| {
                crate::RepoError::Store(ember_store::StoreError::Backend(e.to_string()))
            })?;
            self.store.refresh_timeline(docs).await?;
        }
    }

    /// Tells the other instances that `topic` changed on this one, which has already
    /// acted on it: the bus message is `"<topic> <origin>"`, and [`Self::subscribe`]
    /// ignores the echo of its own messages. A lost message is only logged: the
    /// caches' time-to-live and the resynchronization after a reconnect bound it.
    pub(crate) async fn tell_others(&self, topic: &str) {
        if let Err(e) = self
            .store
            .publish(&format!("{topic} {}", self.origin))
            .await
        {
            tracing::warn!(error = %e, topic, "cannot tell the other instances of a change");
        }
    }

    /// Listens on the bus: run-time parameter changes of other instances, new jobs,
    /// and resynchronization after a lost connection.
    fn subscribe(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let repo = self.clone();
        let echo = format!(" {}", self.origin);
        self.store.subscribe(Arc::new(move |message: &str| {
            // This instance acted on its own change before it told the others.
            if message.ends_with(&echo) {
                return;
            }
            let resync = message == ember_store::RESYNC;
            let reload = resync || message.split(' ').next() == Some(MESSAGE);
            if reload {
                let repo = repo.clone();
                runtime.spawn(async move {
                    if let Err(e) = repo.load_search_params().await {
                        tracing::error!(error = %e, "cannot reload the run-time search parameters");
                    }
                });
            }
            if resync || message == crate::jobs::WAKE {
                repo.wake.notify_one();
            }
            // Cache invalidations (and, after a resync, all of them).
            repo.caches.on_message(if resync { "*" } else { message });
        }));
    }
}

impl Background {
    /// Stops the background work: the job worker claims nothing more and its running
    /// jobs go back to the queue at their next checkpoint. Whatever has not ended
    /// within `grace` is cut off; its jobs' leases run out and another instance
    /// resumes them.
    pub async fn stop(mut self, grace: Duration) {
        let _ = self.stop.send(true);
        let ended = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if ended.is_err() {
            tracing::warn!("background work still running at the end of the grace period");
            self.tasks.abort_all();
        }
    }
}

/// Runs `step` every `period` until `stop` turns true.
async fn every<F, Fut>(period: Duration, mut stop: watch::Receiver<bool>, step: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => step().await,
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// The index rows of a waiting document's current version (none when deleted).
fn rows_of(doc: &StaleDoc, params: &crate::SearchParams) -> IndexRows {
    doc.body
        .as_deref()
        .and_then(|b| serde_json::from_str::<Value>(b).ok())
        .map(|body| crate::indexer::rows_of(&body, params))
        .unwrap_or_default()
}
