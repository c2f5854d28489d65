//! Group commit: commits that only create documents (with the jobs they enqueue, and
//! the end or progress of jobs their committers hold), arriving while others are being
//! stored, are stored together by one store commit.
//!
//! A create costs the database far more in setting up its statement (every index
//! table it touches, the count trigger, the commit's flush) than in its rows, and the
//! store writes the new documents of one commit in one statement. So each waiting
//! create joins the next group, and at most [`SLOTS`] groups are in flight at once. A
//! lone create goes straight through: grouping adds no wait when there is no queue.
//!
//! Each commit stays atomic and independent of the others in its group:
//! - a group is one store commit, so it is stored whole or not at all;
//! - when a group fails, each of its commits is tried again alone, so one bad
//!   document (or a concurrent writer of the same new id, or a job whose lease ran
//!   out) fails only its own commit;
//! - a failure whose outcome the database did not report (the connection dropped at
//!   the commit) is settled by reading back the group's first document, so a stored
//!   group is never stored twice.
//!
//! The group runs in a task of its own, so a caller that goes away (a client that
//! hangs up) does not cancel the commits of the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ember_store::{Commit, Committed, Store, StoreError, Write};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// Groups in flight at once: enough to keep the database busy while the next group
/// gathers, few enough that creates under load form groups.
const SLOTS: usize = 4;

/// The most documents one group writes (a commit larger than this goes alone).
const MAX_WRITES: usize = 64;

type Reply = oneshot::Sender<Result<Committed, StoreError>>;

/// What a group needs of the store: to commit, and to tell whether a version it
/// wrote is there.
#[async_trait::async_trait]
pub(crate) trait Committer: Send + Sync + 'static {
    async fn commit(&self, commit: Commit) -> Result<Committed, StoreError>;

    /// Whether `write` is stored, as written.
    async fn holds(&self, write: &Write) -> bool;
}

#[async_trait::async_trait]
impl Committer for dyn Store {
    async fn commit(&self, commit: Commit) -> Result<Committed, StoreError> {
        ember_store::Documents::commit(self, commit).await
    }

    async fn holds(&self, write: &Write) -> bool {
        let stored = self.vread(&write.res_type, &write.id, write.version).await;
        matches!(stored, Ok(Some(v)) if v.body == write.body)
    }
}

struct Waiting {
    seq: u64,
    commit: Commit,
    reply: Reply,
}

/// The commits waiting to be grouped and the slots of the groups in flight.
pub(crate) struct Group {
    waiting: std::sync::Mutex<Vec<Waiting>>,
    slots: Arc<Semaphore>,
    seq: AtomicU64,
}

impl Default for Group {
    fn default() -> Self {
        Self {
            waiting: std::sync::Mutex::default(),
            slots: Arc::new(Semaphore::new(SLOTS)),
            seq: AtomicU64::new(0),
        }
    }
}

impl Group {
    /// Whether `commit` may share a store commit: it only creates documents, with
    /// their jobs and the progress of the jobs it holds, and checks no guard.
    pub(crate) fn takes(commit: &Commit) -> bool {
        commit.guards.is_empty()
            && commit.reindexed.is_empty()
            && !commit.writes.is_empty()
            && commit.writes.len() <= MAX_WRITES
            && commit
                .writes
                .iter()
                .all(|w| w.expected.is_none() && w.body.is_some())
    }

    /// Stores `commit` (one that [`Group::takes`]) in the next group.
    pub(crate) async fn commit<S: Committer + ?Sized>(
        &self,
        store: &Arc<S>,
        commit: Commit,
    ) -> Result<Committed, StoreError> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        self.lock().push(Waiting { seq, commit, reply });
        // Start groups until one holds this commit (or another caller's did).
        loop {
            let slot = self
                .slots
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| StoreError::Unavailable("the commit group closed".into()))?;
            let group = self.next_group();
            if group.is_empty() {
                break;
            }
            let mine = group.iter().any(|w| w.seq == seq);
            tokio::spawn(store_group(store.clone(), group, slot));
            if mine {
                break;
            }
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Backend("the commit group ended".into())))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The oldest waiting commits, up to [`MAX_WRITES`] documents (the first always
    /// fits: [`Group::takes`] admits no larger commit).
    fn next_group(&self) -> Vec<Waiting> {
        let mut waiting = self.lock();
        let mut writes = 0;
        let n = waiting
            .iter()
            .take_while(|w| {
                writes += w.commit.writes.len();
                writes <= MAX_WRITES
            })
            .count();
        waiting.drain(..n).collect()
    }
}

/// Stores a group and answers each of its commits; holds its slot until then.
async fn store_group<S: Committer + ?Sized>(
    store: Arc<S>,
    group: Vec<Waiting>,
    _slot: OwnedSemaphorePermit,
) {
    if group.len() == 1 {
        let Waiting { commit, reply, .. } = group.into_iter().next().expect("one commit");
        let _ = reply.send(store.commit(commit).await);
        return;
    }
    let job_counts: Vec<usize> = group.iter().map(|w| w.commit.jobs.len()).collect();
    let merged = Commit {
        writes: group
            .iter()
            .flat_map(|w| w.commit.writes.iter().cloned())
            .collect(),
        jobs: group
            .iter()
            .flat_map(|w| w.commit.jobs.iter().cloned())
            .collect(),
        progress: group
            .iter()
            .flat_map(|w| w.commit.progress.iter().cloned())
            .collect(),
        ..Default::default()
    };
    let first = merged.writes[0].clone();
    let job_ids: Vec<String> = merged.jobs.iter().map(|j| j.id.clone()).collect();
    let ids = match store.commit(merged).await {
        Ok(Committed::Stored { jobs }) => Some(jobs),
        Ok(Committed::Matched { .. })
        | Err(StoreError::Conflict { .. } | StoreError::LeaseLost(_)) => None,
        // The outcome of a commit whose answer was lost: the group is stored when its
        // first document is, as written (not another writer's of the same id).
        Err(_) => store.holds(&first).await.then_some(job_ids),
    };
    match ids {
        Some(ids) => {
            let mut ids = ids.into_iter();
            for (w, n) in group.into_iter().zip(job_counts) {
                let jobs = ids.by_ref().take(n).collect();
                let _ = w.reply.send(Ok(Committed::Stored { jobs }));
            }
        }
        // Not stored: each commit alone, so a failure is only its own.
        None => {
            for w in group {
                let _ = w.reply.send(store.commit(w.commit).await);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_store::{Change, NewJob, Progress};
    use std::collections::HashMap;
    use std::time::Duration;

    fn create(id: &str) -> Commit {
        Commit {
            writes: vec![Write {
                res_type: "Basic".into(),
                id: id.into(),
                expected: None,
                version: 1,
                last_updated: 0,
                change: Change::Create,
                body: Some(format!(r#"{{"resourceType":"Basic","id":"{id}"}}"#)),
                index: Default::default(),
            }],
            ..Default::default()
        }
    }

    fn with_job(id: &str) -> Commit {
        let mut commit = create(id);
        commit.jobs.push(NewJob {
            id: format!("job-{id}"),
            kind: "noop".into(),
            payload: "{}".into(),
            key: None,
            due: 0,
            trace: None,
            created_at: 0,
        });
        commit
    }

    /// A commit that creates `id` and ends the job `job-{id}`, held by `owner`.
    fn ending_job(id: &str, owner: &str) -> Commit {
        let mut commit = create(id);
        commit.progress.push(Progress {
            job: format!("job-{id}"),
            owner: owner.into(),
            progress: None,
            lease_until: 0,
            finished_at: Some(0),
        });
        commit
    }

    /// A store in memory that takes a while per commit, refuses any commit holding
    /// the document `bad` or the progress of a job whose owner is `gone`, and loses
    /// the answer of the commits `lose` says.
    #[derive(Default)]
    struct Fake {
        docs: std::sync::Mutex<HashMap<String, Option<String>>>,
        commits: std::sync::Mutex<Vec<usize>>,
        lose_answers: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Committer for Fake {
        async fn commit(&self, commit: Commit) -> Result<Committed, StoreError> {
            tokio::time::sleep(Duration::from_millis(5)).await;
            if commit.writes.iter().any(|w| w.id == "bad") {
                return Err(StoreError::Backend("index row too large".into()));
            }
            if let Some(p) = commit.progress.iter().find(|p| p.owner == "gone") {
                return Err(StoreError::LeaseLost(p.job.clone()));
            }
            {
                let mut docs = self.docs.lock().unwrap();
                for w in &commit.writes {
                    assert!(
                        docs.insert(w.id.clone(), w.body.clone()).is_none(),
                        "{} twice",
                        w.id
                    );
                }
            }
            self.commits.lock().unwrap().push(commit.writes.len());
            let lose = self.lose_answers.load(Ordering::SeqCst);
            if lose > 0 {
                self.lose_answers.store(lose - 1, Ordering::SeqCst);
                return Err(StoreError::Unavailable("connection reset".into()));
            }
            Ok(Committed::Stored {
                jobs: commit.jobs.iter().map(|j| j.id.clone()).collect(),
            })
        }

        async fn holds(&self, write: &Write) -> bool {
            self.docs.lock().unwrap().get(&write.id) == Some(&write.body)
        }
    }

    /// Commits `ids` at once through one group; their answers in order.
    async fn all_at_once(
        store: &Arc<Fake>,
        commits: Vec<Commit>,
    ) -> Vec<Result<Committed, StoreError>> {
        let group = Arc::new(Group::default());
        let tasks: Vec<_> = commits
            .into_iter()
            .map(|c| {
                let (group, store) = (group.clone(), store.clone());
                tokio::spawn(async move { group.commit(&store, c).await })
            })
            .collect();
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        answers
    }

    #[test]
    fn only_commits_that_only_create_are_grouped() {
        assert!(Group::takes(&create("a")));
        assert!(Group::takes(&with_job("a")));
        assert!(Group::takes(&ending_job("a", "me")));
        let mut update = create("a");
        update.writes[0].expected = Some(1);
        assert!(!Group::takes(&update));
        let mut delete = create("a");
        delete.writes[0].body = None;
        assert!(!Group::takes(&delete));
        assert!(!Group::takes(&Commit::default()), "jobs alone");
        let mut big = create("a");
        big.writes = (0..=MAX_WRITES)
            .flat_map(|i| create(&i.to_string()).writes)
            .collect();
        assert!(!Group::takes(&big));
    }

    #[test]
    fn a_group_takes_the_oldest_commits_up_to_the_limit() {
        let group = Group::default();
        for (seq, n) in [(0, 40), (1, 20), (2, 10)] {
            let mut commit = create("x");
            commit.writes = (0..n).flat_map(|i| create(&i.to_string()).writes).collect();
            let (reply, _) = oneshot::channel();
            group.lock().push(Waiting { seq, commit, reply });
        }
        let first: Vec<u64> = group.next_group().iter().map(|w| w.seq).collect();
        assert_eq!(first, [0, 1]);
        let second: Vec<u64> = group.next_group().iter().map(|w| w.seq).collect();
        assert_eq!(second, [2]);
        assert!(group.next_group().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn creates_that_arrive_together_share_commits_and_keep_their_jobs() {
        let store = Arc::new(Fake::default());
        let commits = (0..100).map(|i| with_job(&i.to_string())).collect();
        let answers = all_at_once(&store, commits).await;
        for (i, answer) in answers.into_iter().enumerate() {
            assert_eq!(
                answer.unwrap(),
                Committed::Stored {
                    jobs: vec![format!("job-{i}")]
                }
            );
        }
        let sizes = store.commits.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 100);
        assert!(sizes.len() < 100, "no commit was shared: {sizes:?}");
        assert_eq!(store.docs.lock().unwrap().len(), 100);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bad_document_fails_only_its_own_commit() {
        let store = Arc::new(Fake::default());
        let mut commits: Vec<Commit> = (0..30).map(|i| create(&i.to_string())).collect();
        commits.insert(15, create("bad"));
        let answers = all_at_once(&store, commits).await;
        for (i, answer) in answers.iter().enumerate() {
            assert_eq!(answer.is_err(), i == 15, "{i}: {answer:?}");
        }
        assert_eq!(store.docs.lock().unwrap().len(), 30);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_end_together_and_a_lost_lease_fails_only_its_own_commit() {
        let store = Arc::new(Fake::default());
        let commits = (0..40)
            .map(|i| ending_job(&i.to_string(), if i == 25 { "gone" } else { "me" }))
            .collect();
        let answers = all_at_once(&store, commits).await;
        for (i, answer) in answers.iter().enumerate() {
            match answer {
                Err(StoreError::LeaseLost(job)) => assert_eq!((i, job.as_str()), (25, "job-25")),
                other => assert!(i != 25 && other.is_ok(), "{i}: {other:?}"),
            }
        }
        let docs = store.docs.lock().unwrap().clone();
        assert_eq!(docs.len(), 39);
        assert!(!docs.contains_key("25"));
        // Held jobs end in shared commits.
        let store = Arc::new(Fake::default());
        let commits = (0..40).map(|i| ending_job(&i.to_string(), "me")).collect();
        let answers = all_at_once(&store, commits).await;
        assert!(answers.iter().all(Result::is_ok), "{answers:?}");
        let sizes = store.commits.lock().unwrap().clone();
        assert!(sizes.len() < 40, "no commit was shared: {sizes:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stored_group_whose_answer_was_lost_is_stored_once() {
        let store = Arc::new(Fake::default());
        store.lose_answers.store(3, Ordering::SeqCst);
        let commits = (0..50).map(|i| with_job(&i.to_string())).collect();
        let answers = all_at_once(&store, commits).await;
        // A lone commit whose answer is lost is the caller's to settle, as without
        // groups; a group's is settled by reading its first document back.
        let lost = store
            .commits
            .lock()
            .unwrap()
            .iter()
            .take(3)
            .filter(|&&n| n == 1)
            .count();
        assert_eq!(answers.iter().filter(|a| a.is_err()).count(), lost);
        assert_eq!(store.docs.lock().unwrap().len(), 50, "each stored once");
    }
}
