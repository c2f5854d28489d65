//! Cached profiles across instances: a StructureDefinition changed on one instance is
//! used at once by another, whose profile cache the bus empties.

use std::time::{Duration, Instant};

use crate::common::expect;
use crate::profiles::{small_observation, small_profile};

const VALIDATE: &str = "Observation/$validate?profile=http://example.org/StructureDefinition/small";

/// The error issues of validating an amended Observation on `http`.
async fn errors(http: &crate::common::Http) -> usize {
    let resp = http
        .post(VALIDATE, &small_observation("a", "amended"))
        .await;
    expect(&resp, 200);
    resp.json()["issue"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["severity"] == "error")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_profile_reaches_the_cache_of_another_instance() {
    let (_db, a, b) = super::two_instances().await;
    expect(
        &a.http
            .put("StructureDefinition/small", &small_profile("final", true))
            .await,
        201,
    );
    // b compiles and caches the profile: `amended` is not the fixed status.
    assert_eq!(errors(&b.http).await, 1);
    expect(
        &a.http
            .put("StructureDefinition/small", &small_profile("amended", true))
            .await,
        200,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while errors(&b.http).await != 0 {
        assert!(
            Instant::now() < deadline,
            "the other instance still validates against the old profile"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    super::terminate(a).await;
    super::terminate(b).await;
}
