//! Paging: `next` and `previous` links, and pages that stay right while resources are
//! inserted.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;

use super::{link, match_ids, pages, put, search};
use crate::common::TestServer;

both_stores!(
    paging_follows_links,
    paging_under_concurrent_inserts,
    sorted_paging_under_concurrent_inserts,
);

async fn paging_follows_links(s: &TestServer) {
    for i in 0..23 {
        put(
            s,
            "Patient",
            &format!("pg{i:02}"),
            json!({"name": [{"family": "Page"}]}),
        )
        .await;
    }
    put(
        s,
        "Patient",
        "other1",
        json!({"name": [{"family": "Other"}]}),
    )
    .await;
    put(
        s,
        "Patient",
        "other2",
        json!({"name": [{"family": "Other"}]}),
    )
    .await;
    let expected: Vec<String> = (0..23).map(|i| format!("pg{i:02}")).collect();

    // Sorted: every match exactly once, in order, in pages of 5.
    let ps = pages(s, "Patient?family=page&_count=5&_sort=_id").await;
    let sizes: Vec<usize> = ps.iter().map(|b| match_ids(b).len()).collect();
    assert_eq!(sizes, [5, 5, 5, 5, 3]);
    let ids: Vec<String> = ps.iter().flat_map(match_ids).collect();
    assert_eq!(ids, expected);
    assert_eq!(link(ps.last().unwrap(), "next"), None);
    // Links are absolute, on the server's base URL.
    for b in &ps {
        for l in b["link"].as_array().expect("links") {
            let url = l["url"].as_str().expect("link url");
            assert!(
                url.starts_with(&format!("{}/", s.base))
                    || url.starts_with(&format!("{}?", s.base)),
                "{url}"
            );
        }
        assert!(link(b, "self").is_some(), "every page has a self link");
    }
    // previous goes back to the same contents.
    for i in 1..ps.len() {
        let prev = link(&ps[i], "previous")
            .or_else(|| link(&ps[i], "prev"))
            .unwrap_or_else(|| panic!("page {i} has no previous link: {}", ps[i]["link"]));
        assert!(prev.starts_with(&s.base), "{prev}");
        let back = search(s, &prev).await;
        assert_eq!(
            match_ids(&back),
            match_ids(&ps[i - 1]),
            "previous of page {i}"
        );
    }
    assert!(
        link(&ps[0], "previous").is_none() && link(&ps[0], "prev").is_none(),
        "the first page has no previous link"
    );
    // The self link of a page reproduces it.
    let again = search(s, &link(&ps[2], "self").unwrap()).await;
    assert_eq!(match_ids(&again), match_ids(&ps[2]));

    // Unsorted: every match exactly once.
    let ids: Vec<String> = pages(s, "Patient?family=page&_count=4")
        .await
        .iter()
        .flat_map(match_ids)
        .collect();
    let mut sorted_ids = ids.clone();
    sorted_ids.sort();
    assert_eq!(sorted_ids, expected, "pages of 4: {ids:?}");
    // Descending.
    let ids: Vec<String> = pages(s, "Patient?family=page&_count=6&_sort=-_id")
        .await
        .iter()
        .flat_map(match_ids)
        .collect();
    let mut rev = expected.clone();
    rev.reverse();
    assert_eq!(ids, rev);
}

/// Pages through 60 matching resources with `_count=7` (plus `extra`) while another task
/// inserts 40 more matching resources.
async fn page_while_inserting(s: &TestServer, extra: &str) {
    for i in 0..60 {
        put(
            s,
            "Patient",
            &format!("st{i:02}"),
            json!({"name": [{"family": "Stream"}]}),
        )
        .await;
    }
    let inserted = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicBool::new(false));
    let writer = {
        let http = s.http.clone();
        let inserted = Arc::clone(&inserted);
        let started = Arc::clone(&started);
        tokio::spawn(async move {
            for _ in 0..40 {
                started.store(true, Ordering::SeqCst);
                let r = http
                    .post(
                        "Patient",
                        &json!({"resourceType": "Patient", "name": [{"family": "Stream"}]}),
                    )
                    .await;
                assert_eq!(r.status.as_u16(), 201);
                inserted.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(4)).await;
            }
        })
    };
    while !started.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut ids: Vec<String> = Vec::new();
    let mut next = Some(format!("Patient?family=stream&_count=7{extra}"));
    let mut n_pages = 0;
    while let Some(p) = next {
        n_pages += 1;
        assert!(n_pages < 100, "too many pages");
        let b = search(s, &p).await;
        let page = match_ids(&b);
        assert!(page.len() <= 7, "{page:?}");
        ids.extend(page);
        next = link(&b, "next");
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    writer.await.expect("writer");
    assert!(inserted.load(Ordering::SeqCst) == 40);
    let mut seen = HashSet::new();
    let dups: Vec<&String> = ids.iter().filter(|id| !seen.insert(*id)).collect();
    assert!(
        dups.is_empty(),
        "ids seen twice while paging{extra}: {dups:?}"
    );
    let missing: Vec<String> = (0..60)
        .map(|i| format!("st{i:02}"))
        .filter(|id| !seen.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "original ids missed while paging{extra}: {missing:?}"
    );
}

async fn paging_under_concurrent_inserts(s: &TestServer) {
    page_while_inserting(s, "").await;
}

async fn sorted_paging_under_concurrent_inserts(s: &TestServer) {
    // Server-assigned ids are UUIDv7 (hex digits), so new resources sort before "st..".
    page_while_inserting(s, "&_sort=_id").await;
}
