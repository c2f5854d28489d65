//! Subscriptions across instances: a WebSocket client bound on one instance is pinged
//! for matching writes on another. The other instance learns of the Subscription
//! through the bus (its registry reloads), matches its own writes, and the event
//! reaches the first instance's clients through the bus.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use crate::common::expect;
use crate::subscriptions::{pulse, websocket_subscription};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_on_one_instance_hears_writes_on_another() {
    let (_db, a, b) = super::two_instances().await;
    let (id, mut socket) = websocket_subscription(&a.http).await;
    // The other instance matches its writes once the bus has told it of the
    // Subscription (within milliseconds): write until the first ping.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    let ping = loop {
        n += 1;
        let obs = format!("b{n}");
        expect(
            &b.http
                .put(&format!("Observation/{obs}"), &pulse(&obs, "8867-4"))
                .await,
            201,
        );
        match tokio::time::timeout(Duration::from_millis(500), socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => break text.as_str().to_owned(),
            Ok(other) => panic!("unexpected: {other:?}"),
            Err(_) => assert!(
                Instant::now() < deadline,
                "no ping for writes on the other instance"
            ),
        }
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
