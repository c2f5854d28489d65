//! Token counts stay exact while two instances write and fold them.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{terminate, text, two_instances};

/// Writes on two instances while both fold the token-count deltas (every 5 s): the
/// counts kept on write end up equal to the documents actually indexed, per value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_counts_stay_exact_under_concurrent_writes_and_folding() {
    let (db, a, b) = two_instances().await;
    let codes = ["1-1", "2-2", "3-3"];
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (w, http) in [&a.http, &b.http, &a.http, &b.http].into_iter().enumerate() {
        let http = http.clone();
        tasks.spawn(async move {
            let mut i = 0usize;
            // Past two folding rounds of each instance.
            while started.elapsed() < Duration::from_secs(11) {
                let id = format!("tc{}", (w * 7 + i) % 12);
                let code = codes[(w + i) % codes.len()];
                let path = format!("Observation/{id}");
                let r = if i % 5 == 4 {
                    http.delete(&path).await
                } else {
                    let body = json!({
                        "resourceType": "Observation",
                        "id": id,
                        "status": "final",
                        "code": {"coding": [
                            {"system": "http://loinc.org", "code": code},
                            {"system": "http://loinc.org", "code": code, "display": "again"}
                        ]},
                    });
                    http.put(&path, &body).await
                };
                // Deleting what was never created is a 404.
                let ok = r.status.is_success() || (i % 5 == 4 && r.status == 404);
                assert!(ok, "{path}: {} {}", r.status, text(&r));
                i += 1;
            }
            i
        });
    }
    let mut writes = 0;
    while let Some(n) = tasks.join_next().await {
        writes += n.expect("writer");
    }
    assert!(writes > 100, "only {writes} writes");
    // Sums that differ from the indexed documents, per value (zero sums included).
    let drift = "SELECT count(*) FROM (
            SELECT p, system, code, sum(n) AS n FROM idx_token_counts GROUP BY 1, 2, 3
        ) kept FULL JOIN (
            SELECT p, system, code, count(DISTINCT rid) AS n FROM idx_token
            WHERE system IS NOT NULL AND code IS NOT NULL GROUP BY 1, 2, 3
        ) indexed USING (p, system, code)
        WHERE COALESCE(kept.n, 0) <> COALESCE(indexed.n, 0)";
    assert_eq!(db.sql_i64(drift).await, 0, "kept counts drifted");
    let deltas = "SELECT count(*) FROM idx_token_counts WHERE delta";
    let folded_rows = "SELECT count(*) FROM idx_token_counts WHERE NOT delta";
    assert!(
        db.sql_i64(folded_rows).await > 0,
        "no instance folded any deltas (pending: {})",
        db.sql_i64(deltas).await
    );
    terminate(a).await;
    terminate(b).await;
}
