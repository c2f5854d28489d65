//! The care team's worklist: open triage Tasks, most urgent first (stat, asap,
//! urgent, routine: the value set's order, not the alphabet's), newest first within
//! a priority; and the searches the scenarios need.

use super::*;
use crate::common::TestServer;

both_stores!(
    most_urgent_first_then_newest,
    the_scenario_searches_find_the_results
);

async fn most_urgent_first_then_newest(s: &TestServer) {
    setup(s).await;
    let mut expected = Vec::new();
    // Submitted one by one, so each Task is newer than the one before.
    for (value, priority) in [
        (95.0, "routine"),
        (80.0, "asap"),
        (87.0, "urgent"),
        (96.0, "routine"),
        (84.0, "asap"),
    ] {
        let refs = submit(s, &[reading("spo2", "59408-5", value, "%")]).await;
        let t = triaged(s, &refs[0]).await;
        assert_eq!(t.priority(), priority);
        expected.push((priority, t.task["id"].as_str().unwrap().to_owned()));
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let rank = |p: &str| {
        ["stat", "asap", "urgent", "routine"]
            .iter()
            .position(|x| *x == p)
            .unwrap()
    };
    let mut order: Vec<(usize, usize)> = expected
        .iter()
        .enumerate()
        .map(|(i, (p, _))| (rank(p), i))
        .collect();
    order.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let expected: Vec<String> = order
        .into_iter()
        .map(|(_, i)| expected[i].1.clone())
        .collect();
    let query = "Task?owner=CareTeam/team&status=requested&_sort=-priority,-authored-on";
    let got: Vec<String> = wait_for(s, query, 5)
        .await
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, expected);
    // Paging keeps the order.
    let first = s.get(&format!("{query}&_count=2")).await.json();
    assert_eq!(page_ids(&first), expected[..2]);
    let next = first["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = s.get(&next).await.json();
    assert_eq!(page_ids(&second), expected[2..4]);
    // Ascending puts routine first.
    let asc = wait_for(s, "Task?owner=CareTeam/team&_sort=priority", 5).await;
    assert_eq!(asc[0]["priority"], "routine");
    assert_eq!(asc[4]["priority"], "asap");
}

/// The ids of a searchset page, in order.
fn page_ids(bundle: &serde_json::Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn the_scenario_searches_find_the_results(s: &TestServer) {
    setup(s).await;
    let refs = submit(s, &[reading("spo2", "59408-5", 80.0, "%")]).await;
    let t = triaged(s, &refs[0]).await;
    let ci = format!(
        "ClinicalImpression/{}",
        t.impression["id"].as_str().unwrap()
    );
    let task = format!("Task/{}", t.task["id"].as_str().unwrap());
    assert_eq!(wait_for(s, &format!("Task?focus={ci}"), 1).await.len(), 1);
    assert_eq!(wait_for(s, "Task?patient=Patient/pat", 1).await.len(), 1);
    assert_eq!(
        wait_for(s, &format!("Communication?about={task}"), 1)
            .await
            .len(),
        1
    );
    assert_eq!(
        wait_for(s, "Observation?based-on=ServiceRequest/spo2", 1)
            .await
            .len(),
        1
    );
    assert_eq!(
        wait_for(
            s,
            &format!("ClinicalImpression?investigation={}", refs[0]),
            1
        )
        .await
        .len(),
        1
    );
    assert_eq!(
        wait_for(
            s,
            "Task?code=http://ehealth.sundhed.dk/cs/task-category|MeasurementForAssessment",
            1
        )
        .await
        .len(),
        1
    );
}
