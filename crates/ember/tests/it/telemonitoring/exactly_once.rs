//! Exactly once across instances and crashes: three `ember serve` processes on one
//! PostgreSQL database take 500 submissions while one of them is SIGKILLed in the
//! middle of triage. Every measurement ends with exactly one ClinicalImpression and one
//! Task, and every red or yellow one with exactly one Communication.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::*;
use crate::common::{Backend, Process, TestDb};

const SUBMISSIONS: usize = 500;

async fn spawn(url: &str) -> Process {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        Process::spawn(
            &url,
            &[
                ("EMBER_DB_POOL_SIZE", "8"),
                ("EMBER_JOB_LEASE_SECONDS", "2"),
                ("EMBER_MISSING_CHECK_SECONDS", "0"),
            ],
        )
    })
    .await
    .expect("spawn")
}

/// SpO2 of submission `i`: 80..=99 in turn; red at or below 85, yellow 86 to 88.
fn spo2(i: usize) -> f64 {
    80.0 + (i % 20) as f64
}

async fn total(http: &Http, query: &str) -> u64 {
    let r = http.get(&format!("{query}&_summary=count")).await;
    expect(&r, 200);
    r.json()["total"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_triage_is_exactly_once_when_an_instance_dies() {
    let db = TestDb::new(Backend::Postgres).await;
    let mut victim = spawn(&db.url).await;
    setup(&victim.http).await;
    // The first submission, triaged by the victim alone, names its worker.
    let first = submit(&victim.http, &[reading("spo2", "59408-5", spo2(0), "%")]).await;
    wait_for(
        &victim.http,
        &format!("ClinicalImpression?investigation={}", first[0]),
        1,
    )
    .await;
    let owner: String = db
        .pg_client()
        .await
        .query_one("SELECT lease_owner FROM jobs WHERE kind = 'triage'", &[])
        .await
        .expect("the first job")
        .get(0);
    let b = spawn(&db.url).await;
    let c = spawn(&db.url).await;

    // Eight clients submit through b and c; the victim only runs triage jobs.
    let next = Arc::new(AtomicUsize::new(1));
    let mut clients = tokio::task::JoinSet::new();
    for w in 0..8 {
        let http = Http::new(if w % 2 == 0 {
            b.http.base.clone()
        } else {
            c.http.base.clone()
        });
        let next = Arc::clone(&next);
        clients.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= SUBMISSIONS {
                    return mine;
                }
                let refs = submit(&http, &[reading("spo2", "59408-5", spo2(i), "%")]).await;
                mine.push((i, refs[0].clone()));
            }
        });
    }
    // Kill the victim while it holds triage jobs and submissions still come in.
    let client = db.pg_client().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let held: i64 = client
            .query_one(
                "SELECT count(*) FROM jobs WHERE kind = 'triage' AND state = 'running' AND lease_owner = $1",
                &[&owner],
            )
            .await
            .expect("held jobs")
            .get(0);
        if held > 0 && total(&b.http, "ClinicalImpression?status=completed").await >= 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the victim held no triage job within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    victim.child.kill().expect("SIGKILL");
    let _ = victim.child.wait();
    drop(victim);

    let mut submitted = vec![(0, first[0].clone())];
    while let Some(done) = clients.join_next().await {
        submitted.extend(done.expect("client"));
    }
    assert_eq!(submitted.len(), SUBMISSIONS);

    // The survivors finish every job, the victim's leased ones after their lease.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let open = db
            .sql_i64("SELECT count(*) FROM jobs WHERE kind = 'triage' AND state <> 'done'")
            .await;
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} triage jobs still open after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        db.sql_i64("SELECT count(*) FROM jobs WHERE kind = 'triage'")
            .await,
        SUBMISSIONS as i64,
        "one job per submission"
    );
    assert_eq!(
        total(&b.http, "ClinicalImpression?status=completed").await,
        SUBMISSIONS as u64
    );
    assert_eq!(
        total(&b.http, "Task?owner=CareTeam/team").await,
        SUBMISSIONS as u64
    );
    let alarming = (0..SUBMISSIONS).filter(|i| spo2(*i) <= 88.0).count();
    assert_eq!(
        total(&c.http, "Communication?recipient=CareTeam/team").await,
        alarming as u64
    );
    // Each measurement has exactly one result, of the right colour.
    for (i, reference) in &submitted {
        let found = c
            .http
            .get(&format!("ClinicalImpression?investigation={reference}"))
            .await
            .json();
        let entries = found["entry"].as_array().map_or(0, Vec::len);
        assert_eq!(entries, 1, "{reference}");
        let colour = found["entry"][0]["resource"]["finding"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|f| {
                let coding = &f["itemCodeableConcept"]["coding"][0];
                (coding["system"]
                    == "http://ehealth.sundhed.dk/cs/clinicalimpression-finding-codes")
                    .then(|| coding["code"].as_str().unwrap().to_owned())
            })
            .unwrap();
        let expected = match spo2(*i) {
            v if v <= 85.0 => "red",
            v if v <= 88.0 => "yellow",
            _ => "green",
        };
        assert_eq!(colour, expected, "{reference}: {}", spo2(*i));
    }
}
