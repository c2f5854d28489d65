//! The durable job queue and the transactional outbox: events are enqueued with the
//! write that causes them or not at all, keys make jobs idempotent, every job runs
//! exactly once across instances, and failing jobs are retried with backoff, then
//! dead-lettered and retried through the admin API.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{self, Backend, Process, TestDb};
use async_trait::async_trait;
use ember_repo::{
    JobContext, JobError, JobHandler, JobRequest, Limits, Ran, Repo, WriteListener, Written,
};
use ember_store::{Commit, Committed, Job, JobState, NewJob, Progress, StoreError, Write};
use serde_json::{Value, json};

/// Asks for one `observed` job per Observation version written.
struct Observed;

impl WriteListener for Observed {
    fn jobs(&self, written: &Written<'_>) -> Vec<JobRequest> {
        if written.res_type != "Observation" {
            return Vec::new();
        }
        vec![JobRequest {
            kind: "observed".into(),
            payload: json!({"id": written.id, "version": written.version}),
            key: None,
        }]
    }
}

/// Fails every time, recording when it ran.
struct AlwaysFails(Arc<Mutex<Vec<Instant>>>);

#[async_trait]
impl JobHandler for AlwaysFails {
    fn kind(&self) -> &'static str {
        "always-fails"
    }

    async fn run(&self, _ctx: &JobContext, _job: &Job) -> Result<Ran, JobError> {
        self.0.lock().unwrap().push(Instant::now());
        Err(JobError::Failed("broken on purpose".into()))
    }
}

/// Creates the Patient its payload names, ending the job in the same commit.
struct CreatesPatient;

#[async_trait]
impl JobHandler for CreatesPatient {
    fn kind(&self) -> &'static str {
        "creates-patient"
    }

    async fn run(&self, ctx: &JobContext, job: &Job) -> Result<Ran, JobError> {
        let payload: Value = serde_json::from_str(&job.payload).unwrap();
        let patient = json!({"resourceType": "Patient", "id": payload["id"]});
        let progress = json!({"created": payload["id"]});
        ctx.create_once_and_finish(ctx.repo(), vec![patient], Some(progress))
            .await
    }
}

/// A repository on its own database, with the test listener and handlers.
async fn repo(db: &TestDb, limits: Limits, runs: Arc<Mutex<Vec<Instant>>>) -> Repo {
    let store = ember_store::open(&ember_store::StoreOptions {
        url: db.url.clone(),
        pool_size: 4,
        acquire_timeout: Duration::from_secs(10),
    })
    .await
    .expect("open store");
    Repo::new(store, limits)
        .with_listener(Arc::new(Observed))
        .with_handler(Arc::new(AlwaysFails(runs)))
        .with_handler(Arc::new(CreatesPatient))
}

async fn jobs_of(repo: &Repo, kind: &str) -> Vec<Job> {
    let all = repo.jobs(None, 10_000).await.unwrap();
    all.into_iter().filter(|j| j.kind == kind).collect()
}

fn noops(n: usize) -> Vec<JobRequest> {
    (0..n)
        .map(|_| JobRequest {
            kind: "noop".into(),
            payload: json!({}),
            key: None,
        })
        .collect()
}

fn observation(id: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final", "code": {"text": "x"}})
}

/// Waits until `done` holds, at most `within`.
async fn until<F: AsyncFn() -> bool>(within: Duration, what: &str, done: F) {
    let deadline = Instant::now() + within;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn committed_writes_leave_exactly_their_events(backend: Backend) {
    let db = TestDb::new(backend).await;
    let repo = repo(&db, Limits::default(), Arc::default()).await;
    let created = repo.create("Observation", observation("x")).await.unwrap();
    let events = jobs_of(&repo, "observed").await;
    assert_eq!(events.len(), 1);
    let payload: Value = serde_json::from_str(&events[0].payload).unwrap();
    assert_eq!(payload, json!({"id": created.id, "version": 1}));
    repo.update("Observation", "o1", observation("o1"), None)
        .await
        .unwrap();
    repo.create("Patient", json!({"resourceType": "Patient"}))
        .await
        .unwrap();
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": observation("a"), "request": {"method": "PUT", "url": "Observation/a"}},
        {"resource": observation("b"), "request": {"method": "PUT", "url": "Observation/b"}},
    ]});
    repo.process_bundle(bundle, "http://x/fhir", Default::default())
        .await
        .unwrap();
    assert_eq!(jobs_of(&repo, "observed").await.len(), 4);
    // A rejected transaction stores nothing: neither versions nor events.
    let bad = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": observation("c"), "request": {"method": "PUT", "url": "Observation/c"}},
        {"resource": {"resourceType": "Observation", "status": "no-such-status", "code": {"text": "x"}},
         "request": {"method": "POST", "url": "Observation"}},
    ]});
    assert!(
        repo.process_bundle(bad, "http://x/fhir", Default::default())
            .await
            .is_err()
    );
    assert_eq!(jobs_of(&repo, "observed").await.len(), 4);
}

async fn a_rolled_back_commit_leaves_no_event(backend: Backend) {
    let db = TestDb::new(backend).await;
    let repo = repo(&db, Limits::default(), Arc::default()).await;
    let store = repo.store();
    let write = |id: &str, expected| Write {
        res_type: "Observation".into(),
        id: id.into(),
        expected,
        version: expected.map_or(1, |v| v + 1),
        last_updated: 1,
        change: ember_store::Change::Create,
        body: Some(observation(id).to_string()),
        index: Default::default(),
    };
    let job = |key: &str| NewJob {
        id: format!("job-{key}"),
        kind: "observed".into(),
        payload: "{}".into(),
        key: Some(key.into()),
        due: 0,
        trace: None,
        created_at: 0,
    };
    // The second write expects a version that does not exist: the whole commit,
    // its first write and its job included, rolls back.
    let failed = store
        .commit(Commit {
            writes: vec![write("r1", None), write("r2", Some(7))],
            jobs: vec![job("rolled-back")],
            ..Default::default()
        })
        .await;
    assert!(
        matches!(failed, Err(StoreError::Conflict { index: 1 })),
        "{failed:?}"
    );
    assert!(store.read("Observation", "r1").await.unwrap().is_none());
    assert!(repo.job("job-rolled-back").await.unwrap().is_none());
    let stored = store
        .commit(Commit {
            writes: vec![write("r1", None)],
            jobs: vec![job("kept")],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        stored,
        Committed::Stored {
            jobs: vec!["job-kept".into()]
        }
    );
    assert_eq!(
        repo.job("job-kept").await.unwrap().unwrap().state,
        JobState::Queued
    );
}

async fn one_key_makes_one_job(backend: Backend) {
    let db = TestDb::new(backend).await;
    let repo = repo(&db, Limits::default(), Arc::default()).await;
    let keyed = |key: &str| JobRequest {
        kind: "observed".into(),
        payload: json!({}),
        key: Some(key.into()),
    };
    let request = || keyed("the-key");
    let first = repo.enqueue(vec![request()]).await.unwrap();
    let again = repo.enqueue(vec![request(), request()]).await.unwrap();
    assert_eq!(again, vec![first[0].clone(), first[0].clone()]);
    assert_eq!(jobs_of(&repo, "observed").await.len(), 1);
    // A new key twice in one commit, between others: one job for it, named twice.
    let mixed = repo
        .enqueue(vec![keyed("new"), request(), keyed("new"), keyed("third")])
        .await
        .unwrap();
    assert_eq!(mixed[0], mixed[2]);
    assert_eq!(mixed[1], first[0]);
    assert_ne!(mixed[3], mixed[0]);
    assert_eq!(jobs_of(&repo, "observed").await.len(), 3);
}

async fn a_failing_job_backs_off_then_dies_and_can_be_retried(backend: Backend) {
    let db = TestDb::new(backend).await;
    let runs: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let limits = Limits {
        job_max_attempts: 3,
        job_retry_base: Duration::from_millis(100),
        ..Limits::default()
    };
    let repo = repo(&db, limits, Arc::clone(&runs)).await;
    let background = repo.start_background();
    let request = JobRequest {
        kind: "always-fails".into(),
        payload: json!({}),
        key: None,
    };
    let id = repo.enqueue(vec![request]).await.unwrap().remove(0);
    let dead = async || {
        repo.job(&id)
            .await
            .unwrap()
            .is_some_and(|j| j.state == JobState::Dead)
    };
    until(Duration::from_secs(20), "dead-lettered", dead).await;
    let job = repo.job(&id).await.unwrap().unwrap();
    assert_eq!(job.attempts, 3);
    assert_eq!(job.last_error.as_deref(), Some("broken on purpose"));
    {
        let runs = runs.lock().unwrap();
        assert_eq!(runs.len(), 3);
        // Each pause is at least the backoff (100 ms, then 200 ms, less 20 % jitter).
        assert!(runs[1] - runs[0] >= Duration::from_millis(80), "{runs:?}");
        assert!(runs[2] - runs[1] >= Duration::from_millis(160), "{runs:?}");
    }
    assert!(repo.retry_job(&id).await.unwrap());
    assert!(!repo.retry_job("no-such-job").await.unwrap());
    until(Duration::from_secs(20), "dead again", dead).await;
    assert_eq!(runs.lock().unwrap().len(), 6);
    background.stop(Duration::from_secs(5)).await;
}

async fn many_jobs_run_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let repo = repo(&db, Limits::default(), Arc::default()).await;
    let background = repo.start_background();
    repo.enqueue(noops(300)).await.unwrap();
    let all_done = async || {
        jobs_of(&repo, "noop")
            .await
            .iter()
            .all(|j| j.state == JobState::Done)
    };
    until(Duration::from_secs(30), "300 jobs done", all_done).await;
    let jobs = jobs_of(&repo, "noop").await;
    assert_eq!(jobs.len(), 300);
    assert!(jobs.iter().all(|j| j.attempts == 1), "a job ran twice");
    background.stop(Duration::from_secs(5)).await;
}

async fn a_job_can_end_in_the_commit_of_its_work(backend: Backend) {
    let db = TestDb::new(backend).await;
    let repo = repo(&db, Limits::default(), Arc::default()).await;
    let store = repo.store();
    let create = |id: &str| JobRequest {
        kind: "creates-patient".into(),
        payload: json!({"id": id}),
        key: None,
    };
    // A commit that ends a job the committer does not hold stores nothing.
    let queued = repo.enqueue(vec![create("p0")]).await.unwrap().remove(0);
    let write = Write {
        res_type: "Patient".into(),
        id: "p0".into(),
        expected: None,
        version: 1,
        last_updated: 1,
        change: ember_store::Change::Create,
        body: Some(json!({"resourceType": "Patient", "id": "p0"}).to_string()),
        index: Default::default(),
    };
    let end = Progress {
        job: queued.clone(),
        owner: "not-the-owner".into(),
        progress: None,
        lease_until: 1,
        finished_at: Some(1),
    };
    let lost = store
        .commit(Commit {
            writes: vec![write],
            progress: vec![end],
            ..Default::default()
        })
        .await;
    assert!(matches!(lost, Err(StoreError::LeaseLost(_))), "{lost:?}");
    assert!(store.read("Patient", "p0").await.unwrap().is_none());
    assert_eq!(
        repo.job(&queued).await.unwrap().unwrap().state,
        JobState::Queued
    );
    // Run by the worker, each job stores its Patient and ends in the same commit; the
    // job whose Patient exists already ends all the same.
    repo.create("Patient", json!({"resourceType": "Patient"}))
        .await
        .unwrap();
    repo.update(
        "Patient",
        "p2",
        json!({"resourceType": "Patient", "id": "p2"}),
        None,
    )
    .await
    .unwrap();
    let ids = repo
        .enqueue(vec![create("p1"), create("p2")])
        .await
        .unwrap();
    let background = repo.start_background();
    let ended = async || {
        let mut all = Vec::new();
        for id in ids.iter().chain([&queued]) {
            all.push(repo.job(id).await.unwrap().unwrap());
        }
        all.iter().all(|j| j.state == JobState::Done)
    };
    until(Duration::from_secs(20), "3 jobs done", ended).await;
    background.stop(Duration::from_secs(5)).await;
    for (id, patient) in ids.iter().zip(["p1", "p2"]).chain([(&queued, "p0")]) {
        let job = repo.job(id).await.unwrap().unwrap();
        assert!(job.finished_at.is_some(), "{job:?}");
        assert_eq!(job.attempts, 1, "{job:?}");
        let progress: Value = serde_json::from_str(job.progress.as_deref().unwrap()).unwrap();
        assert_eq!(progress, json!({"created": patient}));
        let stored = store.read("Patient", patient).await.unwrap().unwrap();
        assert_eq!(stored.version, 1);
    }
}

/// A commit that ends several jobs (a group's) stores nothing unless it holds them all.
async fn a_commit_ends_several_jobs_only_when_it_holds_them_all(backend: Backend) {
    let db = TestDb::new(backend).await;
    let repo = repo(&db, Limits::default(), Arc::default()).await;
    let store = repo.store();
    let job = |kind: &str| JobRequest {
        kind: kind.into(),
        payload: json!({}),
        key: None,
    };
    let ids = repo
        .enqueue(vec![job("held"), job("held"), job("not-held")])
        .await
        .unwrap();
    let claimed = store
        .claim("me", &["held"], i64::MAX / 2, i64::MAX, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let ends = |job: &str| Progress {
        job: job.into(),
        owner: "me".into(),
        progress: Some(r#"{"done":true}"#.into()),
        lease_until: i64::MAX,
        finished_at: Some(2),
    };
    let patient = Write {
        res_type: "Patient".into(),
        id: "g1".into(),
        expected: None,
        version: 1,
        last_updated: 1,
        change: ember_store::Change::Create,
        body: Some(json!({"resourceType": "Patient", "id": "g1"}).to_string()),
        index: Default::default(),
    };
    let commit = |jobs: [&str; 2]| Commit {
        writes: vec![patient.clone()],
        progress: jobs.iter().map(|j| ends(j)).collect(),
        ..Default::default()
    };
    let lost = store.commit(commit([&ids[0], &ids[2]])).await;
    assert!(
        matches!(&lost, Err(StoreError::LeaseLost(job)) if *job == ids[2]),
        "{lost:?}"
    );
    assert!(store.read("Patient", "g1").await.unwrap().is_none());
    assert_eq!(
        repo.job(&ids[0]).await.unwrap().unwrap().state,
        JobState::Running
    );
    store.commit(commit([&ids[0], &ids[1]])).await.unwrap();
    assert!(store.read("Patient", "g1").await.unwrap().is_some());
    for id in &ids[..2] {
        let job = repo.job(id).await.unwrap().unwrap();
        assert_eq!(
            (job.state, job.finished_at, job.progress.as_deref()),
            (JobState::Done, Some(2), Some(r#"{"done":true}"#))
        );
    }
    assert_eq!(
        repo.job(&ids[2]).await.unwrap().unwrap().state,
        JobState::Queued
    );
}

macro_rules! on_both_stores {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::common::Backend::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::common::Backend::Postgres).await;
                }
            )+
        }
    };
}

on_both_stores!(
    committed_writes_leave_exactly_their_events,
    a_rolled_back_commit_leaves_no_event,
    one_key_makes_one_job,
    a_failing_job_backs_off_then_dies_and_can_be_retried,
    many_jobs_run_once,
    a_job_can_end_in_the_commit_of_its_work,
    a_commit_ends_several_jobs_only_when_it_holds_them_all,
);

/// Three `ember serve` processes on one database share 1,500 jobs: each runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_run_every_job_exactly_once() {
    let db = TestDb::new(Backend::Postgres).await;
    let repo = repo(&db, Limits::default(), Arc::default()).await;
    let instances: Vec<Process> = (0..3).map(|_| Process::spawn(&db.url, &[])).collect();
    for _ in 0..15 {
        repo.enqueue(noops(100)).await.unwrap();
    }
    let all_done = async || {
        db.sql_i64("SELECT count(*) FROM jobs WHERE state <> 'done'")
            .await
            == 0
    };
    until(Duration::from_secs(60), "1,500 jobs done", all_done).await;
    assert_eq!(
        db.sql_i64("SELECT count(*) FROM jobs WHERE state = 'done'")
            .await,
        1500
    );
    assert_eq!(
        db.sql_i64("SELECT count(*) FROM jobs WHERE attempts <> 1")
            .await,
        0,
        "a job was claimed more than once"
    );
    assert!(
        db.sql_i64("SELECT count(DISTINCT lease_owner) FROM jobs")
            .await
            >= 2,
        "one instance ran every job"
    );
    drop(instances);
}

/// A job whose handler fails (a reindex of a type that does not exist, as a faulty
/// producer might enqueue) is retried, dead-lettered with its reason, listed by the
/// admin API, and queued again through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_job_is_listed_and_retried_through_the_admin_api() {
    let db = TestDb::new(Backend::Postgres).await;
    let repo = repo(&db, Limits::default(), Arc::default()).await;
    let ember = Process::spawn(
        &db.url,
        &[
            ("EMBER_JOB_MAX_ATTEMPTS", "3"),
            ("EMBER_JOB_RETRY_BASE_MS", "50"),
        ],
    );
    let bad = JobRequest {
        kind: "reindex".into(),
        payload: json!({"scope": "NoSuchType"}),
        key: None,
    };
    let id = repo.enqueue(vec![bad]).await.unwrap().remove(0);
    let admin = format!("http://{}/admin/jobs", ember.addr);
    let dead = async || {
        let listed = ember.http.get(&format!("{admin}?state=dead")).await.json();
        listed["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["id"] == id.as_str())
    };
    until(Duration::from_secs(30), "dead-lettered", dead).await;
    let job = ember.http.get(&format!("{admin}/{id}")).await.json();
    assert_eq!(job["state"], "dead", "{job}");
    assert_eq!(job["attempts"], 3, "{job}");
    assert!(
        job["error"].as_str().unwrap().contains("NoSuchType"),
        "{job}"
    );
    let retried = ember
        .http
        .send("POST", &format!("{admin}/{id}/retry"), &[], None)
        .await;
    common::expect(&retried, 200);
    assert_ne!(retried.json()["state"], "dead");
    let again = ember
        .http
        .send("POST", &format!("{admin}/no-such-job/retry"), &[], None)
        .await;
    common::expect_outcome(&again, 404);
    until(Duration::from_secs(30), "dead again", dead).await;
    let job = ember.http.get(&format!("{admin}/{id}")).await.json();
    assert_eq!(job["attempts"], 3, "{job}");
    let listing = ember.http.get(&format!("{admin}?state=sleeping")).await;
    common::expect_outcome(&listing, 400);
}

/// A job runs in the trace context of the request that queued it: its logs carry that
/// request's id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_logs_under_the_id_of_its_request() {
    let db = TestDb::new(Backend::Postgres).await;
    let ember = Process::spawn(&db.url, &[]);
    let started = ember
        .http
        .send(
            "POST",
            "Patient/$reindex",
            &[("x-request-id", "reindex-trace-7")],
            None,
        )
        .await;
    common::expect(&started, 202);
    let status = started.header("content-location").unwrap().to_owned();
    let done = async || {
        let s = ember.http.get(&status).await.json();
        s["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["valueCode"] == "done")
    };
    until(Duration::from_secs(30), "reindex done", done).await;
    let (_, logs) = ember.terminate_keep_logs();
    let line = logs
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| {
            l["body"]
                .as_str()
                .is_some_and(|b| b.starts_with("reindex done"))
        })
        .expect("the job logged its end");
    assert_eq!(line["id"], "reindex-trace-7", "{line}");
}
