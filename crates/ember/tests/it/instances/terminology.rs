//! Cached expansions across instances: a ValueSet changed on one instance is expanded
//! afresh on another, whose cache the bus empties.

use std::time::{Duration, Instant};

use crate::common::expect;
use crate::terminology::{VS_CARDIO, cardio_value_set, codes, fixture};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_instance_reaches_the_cached_expansions_of_another() {
    let (_db, a, b) = super::two_instances().await;
    fixture(&a.http).await;
    let path = format!("ValueSet/$expand?url={VS_CARDIO}");
    let first = b.http.get(&path).await;
    expect(&first, 200);
    assert_eq!(
        codes(&first.json()),
        ["asthma", "hypertension", "htn-stage1", "afib"]
    );
    // b answers from its cache now: the same expansion.
    let again = b.http.get(&path).await.json();
    assert_eq!(
        again["expansion"]["identifier"],
        first.json()["expansion"]["identifier"]
    );
    let mut vs = cardio_value_set();
    vs["compose"].as_object_mut().unwrap().remove("exclude");
    expect(&a.http.put("ValueSet/cardio", &vs).await, 200);
    // The bus tells b within milliseconds; its cache would otherwise keep the old
    // expansion for an hour.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = codes(&b.http.get(&path).await.json());
        if now.contains(&"htn-stage2".to_owned()) {
            assert_eq!(
                now,
                ["asthma", "hypertension", "htn-stage1", "htn-stage2", "afib"]
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the other instance still expands the old ValueSet: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    super::terminate(a).await;
    super::terminate(b).await;
}
