//! A commit of several new documents: PostgreSQL writes them in one statement, and
//! what it stores must be exactly what one commit per document stores; a document that
//! exists already fails the whole commit, naming its write. A commit that also holds
//! jobs and enqueues some (PostgreSQL sends those statements together) fails for the
//! first reason in that order and stores nothing. Several documents read together read
//! as each does alone.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use ember_store::{
    Change, Commit, Committed, DateRow, IndexRows, JobState, NewJob, NumberRow, Progress,
    QuantityRow, ReferenceRow, Slot, Store, StoreError, StoreOptions, StringRow, TextKind, TextRow,
    Timeline, TimelineEntry, TokenRow, UriRow, Write, key,
};

fn options(url: &str) -> StoreOptions {
    StoreOptions {
        url: url.to_owned(),
        pool_size: 2,
        acquire_timeout: std::time::Duration::from_secs(10),
    }
}

fn slot(name: &str) -> Slot {
    Slot {
        p: key("T", name),
        grp: 0,
    }
}

/// Document `i`'s index rows: a different number of rows of each kind per document
/// (none for some), so rows bound to the wrong document would show.
fn rows(i: usize) -> IndexRows {
    let n = |k: usize| (i + k) % 4;
    let f = i as f64;
    let text = |j: usize| Some(format!("t{i}-{j}"));
    IndexRows {
        strings: (0..n(0))
            .map(|j| StringRow {
                slot: slot("name"),
                norm: format!("n{i}-{j}"),
                exact: format!("N{i}-{j}"),
            })
            .collect(),
        tokens: (0..n(1))
            .map(|j| TokenRow {
                slot: slot("code"),
                system: Some("s".into()),
                code: Some(format!("c{}", (i + j) % 3)),
                text: text(j),
            })
            .collect(),
        dates: (0..n(2))
            .map(|j| DateRow {
                slot: slot("date"),
                lo: (i * 100 + j) as i64,
                hi: (i * 100 + j + 9) as i64,
            })
            .collect(),
        numbers: (0..n(3))
            .map(|j| NumberRow {
                slot: slot("n"),
                v: f + j as f64 / 10.0,
            })
            .collect(),
        quantities: (0..n(1))
            .map(|j| QuantityRow {
                slot: slot("q"),
                system: Some("http://unitsofmeasure.org".into()),
                code: Some("kg".into()),
                v: f * 2.0 + j as f64,
            })
            .collect(),
        references: (0..n(2))
            .map(|j| ReferenceRow {
                slot: Slot {
                    p: key("T", "subject"),
                    grp: j as i32,
                },
                target_type: Some("Patient".into()),
                target_id: Some(format!("p{}", i % 2)),
                url: None,
            })
            .collect(),
        uris: (0..n(3))
            .map(|j| UriRow {
                slot: slot("url"),
                uri: format!("urn:u:{i}:{j}"),
            })
            .collect(),
        // At most one text of each kind.
        texts: [TextKind::Narrative, TextKind::Content]
            .into_iter()
            .take(n(0).min(2))
            .map(|kind| TextRow {
                kind,
                doc: format!("word{i} other{}", kind as i32),
            })
            .collect(),
        timeline: Timeline {
            date_key: key("T", "date"),
            updated_key: key("T", "_lastUpdated"),
            entries: (0..n(2))
                .map(|j| TimelineEntry {
                    cmp: key("Patient", &format!("p{}", i % 2)),
                    p: key("T", "code"),
                    system: "s".into(),
                    code: format!("c{j}"),
                })
                .collect(),
        },
    }
}

fn write(prefix: &str, i: usize) -> Write {
    Write {
        res_type: "T".into(),
        id: format!("{prefix}{i}"),
        expected: None,
        version: 1,
        last_updated: i as i64,
        change: Change::Create,
        body: Some(format!("{{\"i\":{i}}}")),
        index: rows(i),
    }
}

fn commit(writes: Vec<Write>) -> Commit {
    Commit {
        writes,
        ..Default::default()
    }
}

const DOCS: usize = 9;

async fn postgres() -> (common::Schema, Arc<dyn Store>) {
    let schema = common::Schema::new("commit").await;
    let store = ember_store::open(&options(&schema.url)).await.unwrap();
    (schema, store)
}

async fn sqlite() -> (std::path::PathBuf, Arc<dyn Store>) {
    let dir = std::env::temp_dir().join(format!("ember-commit-{}", uuid::Uuid::new_v4().simple()));
    let store = ember_store::open(&options(&format!(
        "sqlite://{}",
        dir.join("ember.db").display()
    )))
    .await
    .unwrap();
    (dir, store)
}

/// The first column of every row `sql` returns.
async fn strings(
    db: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> BTreeSet<String> {
    db.query(sql, params)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Every row of `table` of the documents whose id starts with `prefix`, as JSON without
/// the internal key and with the id's number in place of the id.
async fn table_rows(db: &tokio_postgres::Client, table: &str, prefix: &str) -> BTreeSet<String> {
    let sql = format!(
        "SELECT substr(r.res_id, 2) || ' ' || (to_jsonb(t) - 'rid')::text
         FROM {table} t JOIN resources r USING (rid) WHERE r.res_id LIKE $1 || '%'"
    );
    strings(db, &sql, &[&prefix]).await
}

#[tokio::test]
async fn postgres_one_commit_of_several_new_documents_stores_what_one_commit_each_does() {
    let (schema, store) = postgres().await;
    let together: Vec<Write> = (0..DOCS).map(|i| write("b", i)).collect();
    assert!(matches!(
        store.commit(commit(together)).await.unwrap(),
        Committed::Stored { .. }
    ));
    for i in 0..DOCS {
        store.commit(commit(vec![write("s", i)])).await.unwrap();
    }
    let db = schema.client().await;
    let tables = [
        "idx_string",
        "idx_token",
        "idx_date",
        "idx_number",
        "idx_quantity",
        "idx_reference",
        "idx_uri",
        "idx_text",
        "idx_timeline",
    ];
    for table in tables {
        let batch = table_rows(&db, table, "b").await;
        let alone = table_rows(&db, table, "s").await;
        assert!(!alone.is_empty(), "{table} has rows");
        assert_eq!(batch, alone, "{table}");
    }
    let versions = |prefix: &'static str| {
        let db = &db;
        async move {
            db.query(
                "SELECT substr(res_id, 2), version, last_updated, change, body
                 FROM resource_versions WHERE res_id LIKE $1 || '%' ORDER BY 1",
                &[&prefix],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| {
                let (n, v, at, change, body): (String, i64, i64, String, String) =
                    (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
                format!("{n} {v} {at} {change} {body}")
            })
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(versions("b").await, versions("s").await);
    assert_eq!(versions("b").await.len(), DOCS);
    // The kept token counts agree with the rows.
    let kept = strings(
        &db,
        "SELECT p || system || code || ' ' || sum(n) FROM idx_token_counts
         GROUP BY p, system, code HAVING sum(n) <> 0",
        &[],
    )
    .await;
    let scanned = strings(
        &db,
        "SELECT p || system || code || ' ' || count(DISTINCT rid) FROM idx_token
         WHERE system IS NOT NULL AND code IS NOT NULL GROUP BY p, system, code",
        &[],
    )
    .await;
    assert_eq!(kept, scanned);
    assert!(!kept.is_empty());
    drop(store);
    schema.drop_now().await;
}

/// A commit of new documents of which one exists, and one whose update is stale: each
/// fails as a whole, naming the failing write, and stores nothing.
async fn a_failing_write_fails_the_whole_commit(store: &dyn Store) {
    store.commit(commit(vec![write("x", 1)])).await.unwrap();
    let writes = vec![write("y", 0), write("x", 1), write("y", 2)];
    match store.commit(commit(writes)).await {
        Err(StoreError::Conflict { index }) => assert_eq!(index, 1),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let mut stale = write("x", 1);
    stale.expected = Some(7);
    stale.version = 8;
    stale.change = Change::Update;
    let writes = vec![write("z", 0), write("z", 1), stale, write("z", 3)];
    match store.commit(commit(writes)).await {
        Err(StoreError::Conflict { index }) => assert_eq!(index, 2),
        other => panic!("expected a conflict, got {other:?}"),
    }
    for id in ["y0", "y2", "z0", "z1", "z3"] {
        assert!(store.read("T", id).await.unwrap().is_none(), "{id}");
    }
    assert_eq!(store.read("T", "x1").await.unwrap().unwrap().version, 1);
    // Several new documents with an update of another one, all stored.
    let mut next = write("x", 1);
    next.expected = Some(1);
    next.version = 2;
    next.change = Change::Update;
    let writes = vec![write("y", 0), next, write("y", 2)];
    assert!(matches!(
        store.commit(commit(writes)).await.unwrap(),
        Committed::Stored { .. }
    ));
    assert_eq!(store.read("T", "x1").await.unwrap().unwrap().version, 2);
    for id in ["y0", "y2"] {
        assert_eq!(store.read("T", id).await.unwrap().unwrap().version, 1);
    }
}

#[tokio::test]
async fn postgres_a_failing_write_fails_the_whole_commit() {
    let (schema, store) = postgres().await;
    a_failing_write_fails_the_whole_commit(store.as_ref()).await;
    drop(store);
    schema.drop_now().await;
}

#[tokio::test]
async fn sqlite_a_failing_write_fails_the_whole_commit() {
    let (dir, store) = sqlite().await;
    a_failing_write_fails_the_whole_commit(store.as_ref()).await;
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

/// The current versions of several documents read together are what reading each
/// gives, in the order asked, with `None` for a document that does not exist; a
/// deleted one reads as deleted, and the same one can be asked twice.
async fn several_documents_read_together_read_as_each_alone(store: &dyn Store) {
    store
        .commit(commit(vec![write("r", 0), write("r", 1), write("r", 2)]))
        .await
        .unwrap();
    let mut next = write("r", 1);
    next.expected = Some(1);
    next.version = 2;
    next.change = Change::Update;
    next.body = Some("{\"i\":\"next\"}".into());
    let mut gone = write("r", 2);
    gone.expected = Some(1);
    gone.version = 2;
    gone.change = Change::Delete;
    gone.body = None;
    gone.index = IndexRows::default();
    store.commit(commit(vec![next, gone])).await.unwrap();
    let keys = [
        ("T", "r2"),
        ("T", "nope"),
        ("T", "r1"),
        ("U", "r0"),
        ("T", "r0"),
        ("T", "r1"),
    ];
    let together = store.read_many(&keys).await.unwrap();
    let mut alone = Vec::new();
    for (t, id) in keys {
        alone.push(store.read(t, id).await.unwrap());
    }
    assert_eq!(together, alone);
    let versions: Vec<_> = together
        .iter()
        .map(|c| c.as_ref().map(|c| (c.version, c.deleted, c.body.clone())))
        .collect();
    assert_eq!(
        versions,
        [
            Some((2, true, None)),
            None,
            Some((2, false, Some("{\"i\":\"next\"}".to_owned()))),
            None,
            Some((1, false, Some("{\"i\":0}".to_owned()))),
            Some((2, false, Some("{\"i\":\"next\"}".to_owned()))),
        ]
    );
    assert!(store.read_many(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn postgres_several_documents_read_together_read_as_each_alone() {
    let (schema, store) = postgres().await;
    several_documents_read_together_read_as_each_alone(store.as_ref()).await;
    drop(store);
    schema.drop_now().await;
}

#[tokio::test]
async fn sqlite_several_documents_read_together_read_as_each_alone() {
    let (dir, store) = sqlite().await;
    several_documents_read_together_read_as_each_alone(store.as_ref()).await;
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

/// A job with a new id and the idempotency key `key`.
fn new_job(key: &str) -> NewJob {
    NewJob {
        id: uuid::Uuid::new_v4().to_string(),
        kind: "k".into(),
        payload: "{}".into(),
        key: Some(key.into()),
        due: 0,
        trace: None,
        created_at: 0,
    }
}

fn end_of(job: &str, owner: &str) -> Progress {
    Progress {
        job: job.into(),
        owner: owner.into(),
        progress: None,
        lease_until: i64::MAX,
        finished_at: Some(1),
    }
}

/// A commit that ends held jobs, writes documents and enqueues jobs fails for the first
/// reason in that order (a lost lease before a conflicting write) and stores nothing of
/// its parts; when nothing fails, each part is stored and the jobs come back in order,
/// a key enqueued before giving its existing job.
async fn a_commit_with_jobs_fails_for_its_first_reason(store: &dyn Store) {
    store.commit(commit(vec![write("x", 1)])).await.unwrap();
    let Committed::Stored { jobs } = store
        .commit(Commit {
            jobs: vec![new_job("held"), new_job("old")],
            ..Default::default()
        })
        .await
        .unwrap()
    else {
        panic!("enqueueing matched a guard")
    };
    let (held, old) = (jobs[0].clone(), jobs[1].clone());
    let claimed = store.claim("a", &["k"], 1, i64::MAX, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);

    let failing = |progress: Vec<Progress>, writes: Vec<Write>| Commit {
        writes,
        jobs: vec![new_job("new")],
        progress,
        ..Default::default()
    };
    let conflicting = || vec![write("y", 0), write("x", 1)];
    match store
        .commit(failing(vec![end_of(&held, "b")], conflicting()))
        .await
    {
        Err(StoreError::LeaseLost(job)) => assert_eq!(job, held),
        other => panic!("expected the lost lease, got {other:?}"),
    }
    match store
        .commit(failing(vec![end_of(&held, "a")], conflicting()))
        .await
    {
        Err(StoreError::Conflict { index }) => assert_eq!(index, 1),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(store.read("T", "y0").await.unwrap().is_none());
    let job = store.job(&held).await.unwrap().unwrap();
    assert_eq!(
        job.state,
        JobState::Running,
        "the failed commits did not end it"
    );
    let keys: Vec<Option<String>> = store
        .jobs(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.key)
        .collect();
    assert_eq!(keys.len(), 2, "no job enqueued: {keys:?}");

    let stored = store
        .commit(Commit {
            writes: vec![write("y", 0), write("y", 2)],
            jobs: vec![new_job("new"), new_job("old")],
            progress: vec![end_of(&held, "a")],
            ..Default::default()
        })
        .await
        .unwrap();
    let Committed::Stored { jobs } = stored else {
        panic!("the commit matched a guard")
    };
    assert_eq!(jobs.len(), 2);
    assert_ne!(jobs[0], old);
    assert_eq!(jobs[1], old);
    assert_eq!(
        store.job(&held).await.unwrap().unwrap().state,
        JobState::Done
    );
    for id in ["y0", "y2"] {
        assert_eq!(store.read("T", id).await.unwrap().unwrap().version, 1);
    }
}

#[tokio::test]
async fn postgres_a_commit_with_jobs_fails_for_its_first_reason() {
    let (schema, store) = postgres().await;
    a_commit_with_jobs_fails_for_its_first_reason(store.as_ref()).await;
    drop(store);
    schema.drop_now().await;
}

#[tokio::test]
async fn sqlite_a_commit_with_jobs_fails_for_its_first_reason() {
    let (dir, store) = sqlite().await;
    a_commit_with_jobs_fails_for_its_first_reason(store.as_ref()).await;
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

/// A token value's first count row is stored folded: a value no document had leaves
/// nothing to fold, and documents that add a value already counted add deltas, which
/// the fold takes.
async fn a_new_token_value_is_counted_without_a_delta(store: &dyn Store) {
    let with_value = |id: &str, code: &str| {
        let mut w = write(id, 0);
        w.id = id.into();
        w.index = IndexRows {
            tokens: vec![TokenRow {
                slot: slot("code"),
                system: Some("s".into()),
                code: Some(code.into()),
                text: None,
            }],
            ..Default::default()
        };
        w
    };
    store
        .commit(commit(vec![
            with_value("f1", "new"),
            with_value("g1", "other"),
        ]))
        .await
        .unwrap();
    assert_eq!(
        store.compact_counts(100).await.unwrap(),
        0,
        "the rows of new values are stored folded"
    );
    store
        .commit(commit(vec![
            with_value("f2", "new"),
            with_value("f3", "new"),
        ]))
        .await
        .unwrap();
    assert_eq!(
        store.compact_counts(100).await.unwrap(),
        1,
        "a counted value gets deltas"
    );
    assert_eq!(store.compact_counts(100).await.unwrap(), 0);
}

#[tokio::test]
async fn postgres_a_new_token_value_is_counted_without_a_delta() {
    let (schema, store) = postgres().await;
    a_new_token_value_is_counted_without_a_delta(store.as_ref()).await;
    let db = schema.client().await;
    let kept = strings(
        &db,
        "SELECT code || ' ' || sum(n) || ' ' || count(*) FROM idx_token_counts
         GROUP BY p, system, code",
        &[],
    )
    .await;
    assert_eq!(kept, BTreeSet::from(["new 3 1".into(), "other 1 1".into()]));
    drop(store);
    schema.drop_now().await;
}

#[tokio::test]
async fn sqlite_a_new_token_value_is_counted_without_a_delta() {
    let (dir, store) = sqlite().await;
    a_new_token_value_is_counted_without_a_delta(store.as_ref()).await;
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}
