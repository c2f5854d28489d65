//! `_count`, `_total` and `_summary=count`, and the token counts behind counting.

use serde_json::json;

use super::{LOINC, coded, enc, link, match_ids, obs, put, search};
use crate::common::TestServer;

both_stores!(count_and_total, token_counts_follow_writes, total_estimate);

async fn count_and_total(s: &TestServer) {
    for i in 0..25 {
        put(
            s,
            "Patient",
            &format!("n{i:02}"),
            json!({"name": [{"family": "Count"}]}),
        )
        .await;
    }
    for i in 0..3 {
        put(
            s,
            "Patient",
            &format!("x{i}"),
            json!({"name": [{"family": "Other"}]}),
        )
        .await;
    }
    // Default page size 20, with a next link to the rest.
    let first = search(s, "Patient?family=count").await;
    assert_eq!(match_ids(&first).len(), 20, "default _count is 20");
    let next = link(&first, "next").expect("a next link when more results exist");
    assert!(next.starts_with(&s.base), "{next}");
    let second = search(s, &next).await;
    assert_eq!(match_ids(&second).len(), 5);
    assert_eq!(link(&second, "next"), None);
    let mut all: Vec<String> = match_ids(&first);
    all.extend(match_ids(&second));
    all.sort();
    let expected: Vec<String> = (0..25).map(|i| format!("n{i:02}")).collect();
    assert_eq!(all, expected);

    // _count larger than the result: one page.
    let one = search(s, "Patient?family=count&_count=30").await;
    assert_eq!(match_ids(&one).len(), 25);
    assert_eq!(link(&one, "next"), None);
    assert_eq!(
        one["total"], 25,
        "all matches on the first page: the total is known"
    );
    let none = search(s, "Patient?family=count&_count=30&_total=none").await;
    assert!(none["total"].is_null(), "{none}");
    let later = search(s, &next).await;
    assert!(
        later["total"].is_null(),
        "a later page does not know the total: {later}"
    );
    let small = search(s, "Patient?family=count&_count=5").await;
    assert_eq!(match_ids(&small).len(), 5);
    assert!(link(&small, "next").is_some());
    if !small["total"].is_null() {
        assert_eq!(small["total"], 25, "a total, when given, is the full count");
    }

    // _total=accurate.
    let acc = search(s, "Patient?family=count&_count=5&_total=accurate").await;
    assert_eq!(acc["total"], 25, "{acc}");
    assert_eq!(match_ids(&acc).len(), 5);
    let acc_all = search(s, "Patient?_total=accurate&_count=1").await;
    assert_eq!(acc_all["total"], 28);

    // _summary=count: the total, no entries.
    let cnt = search(s, "Patient?family=count&_summary=count").await;
    assert_eq!(cnt["total"], 25, "{cnt}");
    assert!(
        cnt["entry"].as_array().is_none_or(|e| e.is_empty()),
        "no entries with _summary=count: {cnt}"
    );
    let cnt_none = search(s, "Patient?family=nobody&_summary=count").await;
    assert_eq!(cnt_none["total"], 0);
    let cnt_all = search(s, "Patient?_summary=count").await;
    assert_eq!(cnt_all["total"], 28);
}

/// `code=system|code&_summary=count` reads the counts kept on write; the same count
/// with a second (always true) parameter scans the index. Both must agree with the
/// expected number through creates, updates, deletes and compaction.
async fn token_counts_follow_writes(s: &TestServer) {
    const OTHER: &str = "http://example.org/codes";
    let coded_twice = json!({"coding": [
        {"system": LOINC, "code": "1-1", "display": "one"},
        {"system": LOINC, "code": "1-1", "display": "uno"}
    ]});
    let total = |path: String| async move {
        let b = search(s, &path).await;
        b["total"]
            .as_u64()
            .unwrap_or_else(|| panic!("no total in {b}"))
    };
    let check = |system: &'static str, code: &'static str, expected: u64, when: &'static str| async move {
        let value = enc(&format!("{system}|{code}"));
        let kept = total(format!("Observation?code={value}&_summary=count")).await;
        let scanned = total(format!(
            "Observation?code={value}&status=final&_summary=count"
        ))
        .await;
        assert_eq!(
            (kept, scanned),
            (expected, expected),
            "{system}|{code} {when} on {:?}: (kept, scanned)",
            s.backend
        );
    };
    put(
        s,
        "Observation",
        "a1",
        obs(json!({"code": coded(LOINC, "1-1")})),
    )
    .await;
    put(s, "Observation", "a2", obs(json!({"code": coded_twice}))).await;
    put(
        s,
        "Observation",
        "b1",
        obs(json!({"code": coded(LOINC, "2-2")})),
    )
    .await;
    put(
        s,
        "Observation",
        "x1",
        obs(json!({"code": coded(OTHER, "1-1")})),
    )
    .await;
    check(LOINC, "1-1", 2, "after creates (one coded twice)").await;
    check(LOINC, "2-2", 1, "after creates").await;
    check(OTHER, "1-1", 1, "after creates").await;
    check(LOINC, "9-9", 0, "never used").await;

    put(
        s,
        "Observation",
        "a1",
        obs(json!({"code": coded(LOINC, "2-2")})),
    )
    .await;
    put(
        s,
        "Observation",
        "a2",
        obs(json!({"code": coded(LOINC, "1-1"), "issued": "2024-01-01T00:00:00Z"})),
    )
    .await;
    check(LOINC, "1-1", 1, "after a1 moved to 2-2").await;
    check(LOINC, "2-2", 2, "after a1 moved to 2-2").await;

    let r = s.http.delete("Observation/b1").await;
    assert!(r.status == 200 || r.status == 204, "delete: {}", r.status);
    check(LOINC, "2-2", 1, "after deleting b1").await;

    // Folding the deltas keeps every count.
    s.repo.compact_counts().await.expect("compaction");
    check(LOINC, "1-1", 1, "after compaction").await;
    check(LOINC, "2-2", 1, "after compaction").await;
    check(OTHER, "1-1", 1, "after compaction").await;
    assert_eq!(
        s.repo.compact_counts().await.expect("compaction"),
        0,
        "nothing left to fold"
    );

    put(
        s,
        "Observation",
        "a3",
        obs(json!({"code": coded(LOINC, "1-1")})),
    )
    .await;
    check(LOINC, "1-1", 2, "after a create following compaction").await;
    let r = s.http.delete("Observation/a2").await;
    assert!(r.status == 200 || r.status == 204, "delete: {}", r.status);
    let r = s.http.delete("Observation/a3").await;
    assert!(r.status == 200 || r.status == 204, "delete: {}", r.status);
    s.repo.compact_counts().await.expect("compaction");
    check(LOINC, "1-1", 0, "after deleting all").await;
}

/// `_total=estimate`: PostgreSQL's planner estimate (exact here, after `ANALYZE` of a
/// small table), SQLite's count.
async fn total_estimate(s: &TestServer) {
    for i in 0..12 {
        put(s, "Observation", &format!("e{i}"), obs(json!({}))).await;
    }
    for i in 0..3 {
        put(s, "Patient", &format!("e{i}"), json!({})).await;
    }
    if s.backend == crate::common::Backend::Postgres {
        s.db.pg_client()
            .await
            .batch_execute("ANALYZE")
            .await
            .unwrap();
    }
    let b = search(s, "Observation?_total=estimate&_count=5").await;
    assert_eq!(b["total"], 12, "{b}");
    assert_eq!(match_ids(&b).len(), 5);
    // A filter the planner cannot see through is still a number.
    let b = search(s, "Observation?status=final&_total=estimate&_count=1").await;
    assert!(b["total"].as_u64().is_some(), "{b}");
}
