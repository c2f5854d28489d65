//! Search by `POST [type]/_search`.

use super::{body_text, check_searchset, clinical_fixture, link, match_ids, search};
use crate::common::TestServer;

both_stores!(post_search);

async fn post_search(s: &TestServer) {
    clinical_fixture(s).await;
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let post = |path: &'static str, body: &'static str| async move {
        let r = s.send("POST", path, &form, Some(body)).await;
        assert_eq!(
            r.status.as_u16(),
            200,
            "POST {path} {body}: {}",
            body_text(&r)
        );
        let b = r.json();
        check_searchset(&b).unwrap();
        let mut ids = match_ids(&b);
        ids.sort();
        ids
    };
    assert_eq!(
        post("Observation/_search", "code=8480-6").await,
        ["o1", "o2"]
    );
    assert_eq!(
        post(
            "Observation/_search",
            "code=http%3A%2F%2Floinc.org%7C8480-6&subject=Patient%2Fp1"
        )
        .await,
        ["o1"]
    );
    // Parameters in the URL and the body together.
    assert_eq!(
        post("Observation/_search?subject=Patient/p1", "code=29463-7").await,
        ["o3"]
    );
    assert_eq!(post("Patient/_search", "family=tw").await, ["p2"]);
    assert_eq!(post("Patient/_search", "").await, ["p1", "p2"]);
    // A POST search's next link is a GET that continues it.
    let r = s
        .send(
            "POST",
            "Observation/_search",
            &form,
            Some("_count=1&_sort=_id"),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", body_text(&r));
    let b = r.json();
    assert_eq!(match_ids(&b), ["o1"]);
    let next = link(&b, "next").expect("next link");
    assert_eq!(match_ids(&search(s, &next).await), ["o2"]);
}
