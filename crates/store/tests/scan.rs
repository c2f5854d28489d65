//! `Documents::scan` on both backends: the live documents of one type whose current
//! version was written within a span, in `rid` order, page after page from a cursor;
//! deleted documents, other types and older versions are not in it.

mod common;

use std::sync::Arc;

use ember_store::{Change, Commit, IndexRows, Scan, Store, StoreOptions, Write};

fn options(url: &str) -> StoreOptions {
    StoreOptions {
        url: url.to_owned(),
        pool_size: 2,
        acquire_timeout: std::time::Duration::from_secs(10),
    }
}

fn write(res_type: &str, id: &str, version: i64, at: i64, deleted: bool) -> Write {
    Write {
        res_type: res_type.into(),
        id: id.into(),
        expected: (version > 1).then_some(version - 1),
        version,
        last_updated: at,
        change: match (deleted, version) {
            (true, _) => Change::Delete,
            (false, 1) => Change::Create,
            _ => Change::Update,
        },
        body: (!deleted).then(|| format!("{{\"id\":\"{id}\",\"v\":{version}}}")),
        index: IndexRows::default(),
    }
}

async fn store_all(store: &dyn Store, writes: Vec<Write>) {
    store
        .commit(Commit {
            writes,
            ..Default::default()
        })
        .await
        .unwrap();
}

/// Every page of a scan, `limit` at a time: `(id, version, body)` in order.
async fn scan_all(
    store: &dyn Store,
    since: Option<i64>,
    until: i64,
    limit: u32,
) -> Vec<(String, i64, String)> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .scan(&Scan {
                res_type: "T",
                since,
                until,
                after,
                limit,
            })
            .await
            .unwrap();
        assert!(page.len() <= limit as usize);
        assert!(page.windows(2).all(|w| w[0].rid < w[1].rid));
        assert!(page.iter().all(|d| d.rid > after && d.res_type == "T"));
        let Some(last) = page.last() else {
            return out;
        };
        after = last.rid;
        out.extend(page.into_iter().map(|d| (d.id, d.version, d.body)));
    }
}

fn ids(docs: &[(String, i64, String)]) -> Vec<&str> {
    docs.iter().map(|(id, _, _)| id.as_str()).collect()
}

async fn scans_one_type_by_last_update(store: Arc<dyn Store>) {
    // a0..a9 written at 10, 20, ..., 100; another type at the same times.
    store_all(
        store.as_ref(),
        (0..10)
            .flat_map(|i| {
                let at = (i + 1) * 10;
                [
                    write("T", &format!("a{i}"), 1, at, false),
                    write("U", &format!("u{i}"), 1, at, false),
                ]
            })
            .collect(),
    )
    .await;
    // a2 updated at 200 (after the span below), a3 updated at 55 (inside it), a4 deleted.
    store_all(
        store.as_ref(),
        vec![
            write("T", "a2", 2, 200, false),
            write("T", "a3", 2, 55, false),
            write("T", "a4", 2, 60, true),
        ],
    )
    .await;

    // Everything up to 100, in the order the documents were first stored, whatever the
    // page size; the current version's body only.
    let all = scan_all(store.as_ref(), None, 100, 1000).await;
    assert_eq!(ids(&all), ["a0", "a1", "a3", "a5", "a6", "a7", "a8", "a9"]);
    assert_eq!(
        all[2],
        ("a3".to_owned(), 2, r#"{"id":"a3","v":2}"#.to_owned())
    );
    for limit in [1, 2, 3, 7] {
        assert_eq!(scan_all(store.as_ref(), None, 100, limit).await, all);
    }
    // Both ends are inclusive.
    let span = scan_all(store.as_ref(), Some(50), 80, 2).await;
    assert_eq!(ids(&span), ["a3", "a5", "a6", "a7"]);
    assert_eq!(
        ids(&scan_all(store.as_ref(), Some(200), 200, 5).await),
        ["a2"]
    );
    assert!(scan_all(store.as_ref(), Some(101), 199, 5).await.is_empty());
    // A cursor in the middle: only what lies after it.
    let first = store
        .scan(&Scan {
            res_type: "T",
            since: None,
            until: 1000,
            after: 0,
            limit: 3,
        })
        .await
        .unwrap();
    assert_eq!(first.len(), 3);
    let rest = store
        .scan(&Scan {
            res_type: "T",
            since: None,
            until: 1000,
            after: first[2].rid,
            limit: 100,
        })
        .await
        .unwrap();
    let rest: Vec<&str> = rest.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(rest, ["a3", "a5", "a6", "a7", "a8", "a9"]);
    // A type with no documents.
    assert!(
        store
            .scan(&Scan {
                res_type: "V",
                since: None,
                until: 1000,
                after: 0,
                limit: 10,
            })
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn postgres_scans_one_type_by_last_update() {
    let schema = common::Schema::new("scan").await;
    let store = ember_store::open(&options(&schema.url)).await.unwrap();
    scans_one_type_by_last_update(store.clone()).await;
    drop(store);
    schema.drop_now().await;
}

#[tokio::test]
async fn sqlite_scans_one_type_by_last_update() {
    let dir = std::env::temp_dir().join(format!("ember-scan-{}", uuid::Uuid::new_v4().simple()));
    let store = ember_store::open(&options(&format!(
        "sqlite://{}",
        dir.join("ember.db").display()
    )))
    .await
    .unwrap();
    scans_one_type_by_last_update(store.clone()).await;
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}
