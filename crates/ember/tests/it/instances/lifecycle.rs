//! Starting, migrating and stopping instances: migrations apply once however many start at
//! once, and SIGTERM stops one while the other serves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{POOL_SIZE, migrations_logged, patient, spawn, terminate, text, two_instances};
use crate::common::{Backend, Process, TestDb};

/// Three instances started at the same moment on an empty schema migrate it exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_starts_migrate_exactly_once() {
    let db = TestDb::new(Backend::Postgres).await;
    let barrier = Arc::new(std::sync::Barrier::new(3));
    let starts: Vec<_> = (0..3)
        .map(|_| {
            let url = db.url.clone();
            let barrier = Arc::clone(&barrier);
            tokio::task::spawn_blocking(move || {
                barrier.wait();
                Process::spawn(&url, &[("EMBER_DB_POOL_SIZE", POOL_SIZE)])
            })
        })
        .collect();
    let mut processes = Vec::new();
    for s in starts {
        processes.push(s.await.expect("an instance failed to start"));
    }

    let client = db.pg_client().await;
    let rows = client
        .query(
            "SELECT version, count(*) FROM ember_schema GROUP BY version ORDER BY version",
            &[],
        )
        .await
        .expect("ember_schema");
    let applied: Vec<(i64, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert!(!applied.is_empty(), "no migration recorded");
    for (i, (version, count)) in applied.iter().enumerate() {
        assert_eq!(
            *version,
            i as i64 + 1,
            "migrations must be 1..=n: {applied:?}"
        );
        assert_eq!(*count, 1, "migration {version} recorded {count} times");
    }
    let logged: usize = processes.iter().map(migrations_logged).sum();
    assert_eq!(
        logged,
        applied.len(),
        "each migration must be applied by exactly one instance"
    );

    // A later start applies nothing.
    let late = spawn(&db.url).await;
    assert_eq!(migrations_logged(&late), 0);
    processes.push(late);

    // All instances serve the same data.
    let created = processes[0]
        .http
        .put("Patient/m", &patient("m", "migrated"))
        .await;
    assert_eq!(created.status, 201, "{}", text(&created));
    for p in &processes {
        let r = p.http.get("Patient/m").await;
        assert_eq!(r.status, 200, "{}", text(&r));
        assert_eq!(r.json()["identifier"][0]["value"], "migrated");
    }
}

/// SIGTERM stops an instance cleanly (exit status 0) while the other keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_gracefully() {
    let (_db, a, b) = two_instances().await;
    let created = a.http.put("Patient/stop", &patient("stop", "before")).await;
    assert_eq!(created.status, 201, "{}", text(&created));
    let b_http = b.http.clone();

    let started = Instant::now();
    let status = terminate(a).await;
    assert!(status.success(), "ember exited with {status}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopping took {:?}",
        started.elapsed()
    );

    let r = b_http.put("Patient/stop", &patient("stop", "after")).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.header("etag"), Some("W/\"2\""));

    let status = terminate(b).await;
    assert!(status.success(), "ember exited with {status}");
}

/// `ember migrate` from several pods at once: all succeed and each migration is
/// applied exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrate_commands_apply_each_migration_once() {
    let db = TestDb::new(Backend::Postgres).await;
    let children: Vec<std::process::Child> = (0..3)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_ember"))
                .args(["migrate", "--database-url", &db.url])
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("spawn ember migrate")
        })
        .collect();
    for mut child in children {
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "{status}");
    }
    let client = db.pg_client().await;
    let rows = client
        .query(
            "SELECT version, count(*) FROM ember_schema GROUP BY version",
            &[],
        )
        .await
        .unwrap();
    assert!(!rows.is_empty());
    for row in rows {
        let (version, count): (i64, i64) = (row.get(0), row.get(1));
        assert_eq!(count, 1, "migration {version} recorded {count} times");
    }
}
