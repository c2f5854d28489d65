//! The timeline is an access path only: searches find the same documents with it and
//! without it, and ignore it while documents written by an earlier release (which does
//! not keep it) wait to be put into it.

mod common;

use std::sync::Arc;

use ember_store::{
    Col, Cond, DateRow, Filter, IndexRows, Op, ReferenceRow, Rows, SearchQuery, Slot, Sort,
    SortKey, Store, StoreOptions, Table, Timeline, TimelineEntry, TimelinePath, TimelineRefresh,
    TokenRow, Val, Write, key,
};

const DOCS: i64 = 30;

/// An old release's writes, as raw SQL on the store's database.
enum Raw {
    Postgres(tokio_postgres::Client),
    Sqlite(std::path::PathBuf),
}

impl Drop for Raw {
    fn drop(&mut self) {
        if let Raw::Sqlite(path) = self {
            if let Some(dir) = path.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

impl Raw {
    async fn run(&self, sql: &str) {
        match self {
            Raw::Postgres(c) => c.batch_execute(sql).await.unwrap(),
            Raw::Sqlite(path) => rusqlite::Connection::open(path)
                .unwrap()
                .execute_batch(sql)
                .unwrap(),
        }
    }
}

async fn postgres(schema: &common::Schema) -> (Arc<dyn Store>, Raw) {
    let store = ember_store::open(&options(&schema.url)).await.unwrap();
    (store, Raw::Postgres(schema.client().await))
}

async fn sqlite() -> (Arc<dyn Store>, Raw) {
    let dir =
        std::env::temp_dir().join(format!("ember-timeline-{}", uuid::Uuid::new_v4().simple()));
    let path = dir.join("ember.db");
    let store = ember_store::open(&options(&format!("sqlite://{}", path.display())))
        .await
        .unwrap();
    (store, Raw::Sqlite(path))
}

fn options(url: &str) -> StoreOptions {
    StoreOptions {
        url: url.to_owned(),
        pool_size: 2,
        acquire_timeout: std::time::Duration::from_secs(10),
    }
}

fn date_key() -> i64 {
    key("T", "date")
}

/// Document `d{i}` of patient `p1`: dated `i`, coded `c{i % 3}`.
fn rows(i: i64) -> IndexRows {
    let cmp = key("Patient", "p1");
    let code = format!("c{}", i % 3);
    IndexRows {
        dates: vec![DateRow {
            slot: Slot {
                p: date_key(),
                grp: 0,
            },
            lo: i * 10,
            hi: i * 10 + 5,
        }],
        references: vec![ReferenceRow {
            slot: Slot {
                p: key("T", "subject"),
                grp: 0,
            },
            target_type: Some("Patient".into()),
            target_id: Some("p1".into()),
            url: None,
        }],
        tokens: vec![TokenRow {
            slot: Slot {
                p: key("T", "code"),
                grp: 0,
            },
            system: Some("s".into()),
            code: Some(code.clone()),
            text: None,
        }],
        timeline: Timeline {
            date_key: date_key(),
            updated_key: key("T", "_lastUpdated"),
            entries: vec![
                TimelineEntry {
                    cmp,
                    p: key("T", "*"),
                    system: String::new(),
                    code: String::new(),
                },
                TimelineEntry {
                    cmp,
                    p: key("T", "code"),
                    system: "s".into(),
                    code,
                },
            ],
        },
        ..Default::default()
    }
}

fn write(i: i64) -> Write {
    Write {
        res_type: "T".into(),
        id: format!("d{i}"),
        expected: None,
        version: 1,
        last_updated: i,
        change: ember_store::Change::Create,
        body: Some(format!("{{\"i\":{i}}}")),
        index: rows(i),
    }
}

/// Patient `p1`'s documents, latest first; coded `c0` when `coded`.
fn query(coded: bool, timeline: bool) -> SearchQuery {
    let eq = |col, v: &str| Cond::Cmp(col, Op::Eq, Val::Text(v.into()));
    let mut filters = vec![Filter::Has(Rows {
        table: Table::Reference,
        keys: vec![key("T", "subject")],
        conds: vec![eq(Col::TargetType, "Patient"), eq(Col::TargetId, "p1")],
    })];
    if coded {
        filters.push(Filter::Has(Rows {
            table: Table::Token,
            keys: vec![key("T", "code")],
            conds: vec![eq(Col::System, "s"), eq(Col::Code, "c0")],
        }));
    }
    let (p, code) = if coded {
        (key("T", "code"), "c0")
    } else {
        (key("T", "*"), "")
    };
    SearchQuery {
        types: vec!["T".into()],
        filters,
        sort: vec![Sort {
            key: SortKey::Rows {
                table: Table::Date,
                keys: vec![date_key()],
                asc: Col::Lo,
                desc: Col::Hi,
            },
            desc: true,
        }],
        cursor: None,
        limit: 5,
        timeline: timeline.then(|| TimelinePath {
            cmp: key("Patient", "p1"),
            p,
            system: if coded { "s".into() } else { String::new() },
            code: code.into(),
            at_least: None,
            date_key: date_key(),
            updated_key: key("T", "_lastUpdated"),
            implied: if coded { vec![1] } else { vec![] },
        }),
    }
}

async fn commit(store: &dyn Store, writes: Vec<Write>) {
    let c = ember_store::Commit {
        writes,
        ..Default::default()
    };
    assert!(matches!(
        store.commit(c).await.unwrap(),
        ember_store::Committed::Stored { .. }
    ));
}

async fn ids(store: &dyn Store, q: &SearchQuery) -> Vec<String> {
    store
        .search(q)
        .await
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.id)
        .collect()
}

/// The search finds the same page with and without the path, and whether the path was
/// used shows in the plan.
async fn same_answers(store: &dyn Store, want: &[&str], via_timeline: bool) {
    for coded in [false, true] {
        let with = query(coded, true);
        let expected: Vec<String> = if coded {
            want.iter()
                .filter(|id| id[1..].parse::<i64>().unwrap() % 3 == 0)
                .map(|s| s.to_string())
                .collect()
        } else {
            want.iter().map(|s| s.to_string()).collect()
        };
        let got = ids(store, &with).await;
        assert_eq!(got, expected[..expected.len().min(5)], "coded {coded}");
        assert_eq!(got, ids(store, &query(coded, false)).await);
        assert_eq!(
            store.count(&with).await.unwrap(),
            store.count(&query(coded, false)).await.unwrap()
        );
        let plan = store.explain(&with).await.unwrap();
        assert_eq!(plan.contains("idx_timeline"), via_timeline, "{plan}");
    }
}

async fn path_is_only_a_shortcut(store: Arc<dyn Store>, raw: Raw) {
    commit(&*store, (0..DOCS).map(write).collect()).await;
    let latest: Vec<String> = (0..DOCS).rev().map(|i| format!("d{i}")).collect();
    let latest: Vec<&str> = latest.iter().map(String::as_str).collect();
    same_answers(&*store, &latest, true).await;

    // An earlier release creates d30 (no entries) and deletes d27 (entries left
    // behind on PostgreSQL, where the pointer row stays).
    let old_release = Write {
        index: IndexRows {
            timeline: Timeline::default(),
            ..rows(30)
        },
        ..write(30)
    };
    commit(&*store, vec![old_release]).await;
    match raw {
        Raw::Postgres(_) => {
            raw.run(
                "UPDATE resources SET timeline_version = NULL WHERE res_id = 'd30';
                 DELETE FROM idx_reference WHERE rid = (SELECT rid FROM resources WHERE res_id = 'd27');
                 DELETE FROM idx_token WHERE rid = (SELECT rid FROM resources WHERE res_id = 'd27');
                 UPDATE resources SET deleted = true, version = 2 WHERE res_id = 'd27';",
            )
            .await
        }
        Raw::Sqlite(_) => {
            raw.run(
                "UPDATE resources SET timeline_version = NULL WHERE res_id = 'd30';
                 DELETE FROM idx_reference WHERE rid = (SELECT rid FROM resource_keys WHERE res_id = 'd27');
                 DELETE FROM idx_token WHERE rid = (SELECT rid FROM resource_keys WHERE res_id = 'd27');
                 DELETE FROM resource_keys WHERE res_id = 'd27';
                 UPDATE resources SET deleted = 1, version = 2 WHERE res_id = 'd27';",
            )
            .await
        }
    }
    let now: Vec<&str> = std::iter::once("d30")
        .chain(latest.iter().copied().filter(|id| *id != "d27"))
        .collect();
    // The path would miss d30 (and return d27 on PostgreSQL): it is not used.
    same_answers(&*store, &now, false).await;

    let stale = store.stale_timeline(100).await.unwrap();
    let mut waiting: Vec<&str> = stale.iter().map(|d| d.id.as_str()).collect();
    waiting.sort_unstable();
    assert_eq!(waiting, ["d27", "d30"]);
    let refresh = stale
        .into_iter()
        .map(|doc| {
            let i: i64 = doc.id[1..].parse().unwrap();
            let index = if doc.body.is_some() {
                rows(i)
            } else {
                IndexRows::default()
            };
            TimelineRefresh { doc, index }
        })
        .collect();
    store.refresh_timeline(refresh).await.unwrap();
    assert!(store.stale_timeline(100).await.unwrap().is_empty());
    same_answers(&*store, &now, true).await;

    // A write of this release keeps the timeline itself: nothing waits.
    let next = Write {
        expected: Some(1),
        version: 2,
        ..write(3)
    };
    commit(&*store, vec![next]).await;
    assert!(store.stale_timeline(100).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_path_is_only_a_shortcut() {
    let schema = common::Schema::new("timeline").await;
    let (store, raw) = postgres(&schema).await;
    path_is_only_a_shortcut(store, raw).await;
    schema.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_path_is_only_a_shortcut() {
    let (store, raw) = sqlite().await;
    path_is_only_a_shortcut(store, raw).await;
}
