//! Subscriptions across instances: a WebSocket client bound on one instance is pinged
//! for matching writes on another, from the first write after the Subscription is
//! active. The other instance learns of the Subscription through the bus (its registry
//! reloads), matches its own writes, and the event reaches the first instance's
//! clients through the bus. And a notification whose instance is killed
//! mid-delivery is delivered by another: at least once.

use std::time::Duration;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use serde_json::json;

use crate::common::{Backend, Process, TestDb, expect};
use crate::subscriptions::{
    hanging_receiver, pulse, subscribe, subscription, websocket_subscription,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_on_one_instance_hears_writes_on_another() {
    let (_db, a, b) = super::two_instances().await;
    let (id, mut socket) = websocket_subscription(&a.http).await;
    // Once the Subscription is active, the other instance's first matching write is
    // notified: it heard of the Subscription through the bus while it was `requested`.
    expect(
        &b.http.put("Observation/b1", &pulse("b1", "8867-4")).await,
        201,
    );
    let ping = match tokio::time::timeout(Duration::from_secs(15), socket.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => text.as_str().to_owned(),
        other => panic!("no ping for the first write on the other instance: {other:?}"),
    };
    assert_eq!(ping, format!("ping {id}"));
    // A write that does not match, on the other instance, pings no one.
    let drained = async {
        while let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_millis(1500), socket.next()).await
        {}
    };
    drained.await;
    expect(
        &b.http
            .put("Observation/other", &pulse("other", "1234-5"))
            .await,
        201,
    );
    let quiet = tokio::time::timeout(Duration::from_millis(1500), socket.next()).await;
    assert!(quiet.is_err(), "{quiet:?}");
    super::terminate(a).await;
    super::terminate(b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_cut_off_by_sigkill_is_delivered_by_another_instance() {
    let db = TestDb::new(Backend::Postgres).await;
    let mut a = spawn_short_lease(&db.url).await;
    let mut hook = hanging_receiver().await;
    let criteria = "Observation?code=http://loinc.org|8867-4";
    let rest_hook = json!({"type": "rest-hook", "endpoint": hook.url,
        "payload": "application/fhir+json"});
    subscribe(&a.http, &subscription(criteria, rest_hook)).await;
    expect(
        &a.http.put("Observation/k1", &pulse("k1", "8867-4")).await,
        201,
    );
    // `a` is sending the notification and waits for the receiver's answer: kill it.
    let first = hook.next().await;
    assert_eq!(first.path, "/hook/Observation/k1");
    a.child.kill().expect("SIGKILL");
    let _ = a.child.wait();
    drop(a);
    // Another instance takes the job over once its lease (2 s) has run out, and sends
    // the same event again.
    let b = spawn_short_lease(&db.url).await;
    let again = hook.next().await;
    assert_eq!(again.path, "/hook/Observation/k1");
    let event = first.header("x-ember-event-id");
    assert!(!event.is_empty());
    assert_eq!(again.header("x-ember-event-id"), event);
    assert!(again.body.contains("\"k1\""), "{}", again.body);
    super::terminate(b).await;
}

async fn spawn_short_lease(url: &str) -> Process {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        Process::spawn(
            &url,
            &[
                ("EMBER_DB_POOL_SIZE", super::POOL_SIZE),
                ("EMBER_JOB_LEASE_SECONDS", "2"),
            ],
        )
    })
    .await
    .expect("spawn ember")
}
