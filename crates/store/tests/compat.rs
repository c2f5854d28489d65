//! Rolling updates and rollback need old and new releases to run side by side on one
//! schema (expand/contract). `compat/<version>.json` keeps the statements of each
//! release; every kept release's statements must still prepare on the newest schema.

use std::collections::BTreeMap;
use std::path::PathBuf;

mod common;

use ember_store::{Backend, StoreOptions};

type Snapshot = BTreeMap<String, Vec<String>>;

fn compat_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("compat")
}

fn current() -> Snapshot {
    BTreeMap::from([
        (
            "postgres".to_owned(),
            ember_store::statements(Backend::Postgres),
        ),
        (
            "sqlite".to_owned(),
            ember_store::statements(Backend::Sqlite),
        ),
    ])
}

fn releases() -> Vec<(String, Snapshot)> {
    let mut all: Vec<(String, Snapshot)> = std::fs::read_dir(compat_dir())
        .expect("compat/ exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read snapshot");
            (
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                serde_json::from_str(&text).expect("snapshot JSON"),
            )
        })
        .collect();
    all.sort();
    all
}

/// The snapshot of this release matches what the code runs. Refresh it with
/// `EMBER_UPDATE_COMPAT=1 cargo test -p ember-store --test compat`.
#[test]
fn current_release_snapshot_is_up_to_date() {
    let path = compat_dir().join(format!("{}.json", env!("CARGO_PKG_VERSION")));
    let text = serde_json::to_string_pretty(&current()).unwrap() + "\n";
    if std::env::var_os("EMBER_UPDATE_COMPAT").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let kept = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        kept == text,
        "{} is stale: the statements of this release changed; refresh it with EMBER_UPDATE_COMPAT=1 cargo test -p ember-store --test compat",
        path.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_release_prepares_on_the_newest_postgres_schema() {
    let schema = common::Schema::new("compat").await;
    let url = schema.url.clone();
    let options = StoreOptions {
        url: url.clone(),
        pool_size: 1,
        acquire_timeout: std::time::Duration::from_secs(10),
    };
    ember_store::migrate(&options).await.unwrap();
    let scoped = schema.client().await;
    let mut failures = Vec::new();
    for (release, snapshot) in releases() {
        for sql in &snapshot["postgres"] {
            if let Err(e) = scoped.prepare(sql).await {
                failures.push(format!("{release}: {e}: {sql}"));
            }
        }
    }
    schema.drop_now().await;
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_release_prepares_on_the_newest_sqlite_schema() {
    let dir = std::env::temp_dir().join(format!("ember-compat-{}", uuid::Uuid::new_v4().simple()));
    let path = dir.join("ember.db");
    let options = StoreOptions {
        url: format!("sqlite://{}", path.display()),
        pool_size: 1,
        acquire_timeout: std::time::Duration::from_secs(10),
    };
    ember_store::migrate(&options).await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut failures = Vec::new();
    for (release, snapshot) in releases() {
        for sql in &snapshot["sqlite"] {
            if let Err(e) = conn.prepare(sql) {
                failures.push(format!("{release}: {e}: {sql}"));
            }
        }
    }
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{failures:#?}");
}
