//! CDS Hooks: discovery, `telemonitoring-summary` on triaged data read from Ember's own
//! store, with the same data prefetched, and from a second instance used as the
//! client's FHIR server (through a recorder of what arrives there); 400, 404 and 412;
//! feedback and its metrics; and the client JWT matrix with a replay on a second
//! instance. Every response is checked against the specification's card rules.

use std::sync::{Arc, Mutex};

use ember_cds::card::check;
use serde_json::{Value, json};

use crate::common::issuer::{Issuer, now};
use crate::common::{
    Backend, Http, Process, Resp, TestServer, TestSettings, expect, expect_outcome,
};
use crate::telemonitoring::{reading, setup, submit, wait_for};

both_stores!(
    summary_from_own_store_and_from_prefetch,
    bad_calls_are_4xx_outcomes,
    feedback_is_recorded_once_and_counted,
);

const SUMMARY: &str = "cds-services/telemonitoring-summary";
const TASKS: &str = "Task?patient=pat&status=requested,received,accepted,ready,in-progress,on-hold\
    &_include=Task:focus&_include:iterate=ClinicalImpression:investigation&_count=200";

/// The server's root (where `/cds-services` is).
fn root(s: &TestServer) -> Http {
    Http::new(format!("http://{}", s.addr))
}

fn call(hook: &str, instance: &str, fhir_server: Option<&str>, prefetch: Option<Value>) -> Value {
    let mut body = json!({
        "hook": hook,
        "hookInstance": instance,
        "context": {"userId": "Practitioner/nurse", "patientId": "pat"},
    });
    if let Some(server) = fhir_server {
        body["fhirServer"] = json!(server);
    }
    if let Some(p) = prefetch {
        body["prefetch"] = p;
    }
    body
}

/// Posts a call and asserts a 200 whose cards follow the specification.
async fn cards(http: &Http, path: &str, body: &Value, headers: &[(&str, &str)]) -> Value {
    let r = http
        .send("POST", path, headers, Some(&body.to_string()))
        .await;
    expect(&r, 200);
    let response = r.json();
    assert_eq!(check(&response), Vec::<String>::new(), "{response:#}");
    response
}

fn summaries(response: &Value) -> Vec<(String, String)> {
    response["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["indicator"].as_str().unwrap().into(),
                c["summary"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// The patient of `telemonitoring::setup` with a red SpO2, a red pulse and a green
/// SpO2 reading, triaged.
async fn triaged_patient(http: &Http) {
    setup(http).await;
    submit(
        http,
        &[
            reading("spo2", "59408-5", 84.0, "%"),
            reading("pulse", "8867-4", 135.0, "/min"),
            reading("spo2", "59408-5", 96.0, "%"),
        ],
    )
    .await;
    wait_for(http, "Task?patient=pat", 3).await;
}

async fn summary_from_own_store_and_from_prefetch(s: &TestServer) {
    triaged_patient(s).await;
    let http = root(s);
    let instance = "2f6b1d5e-4b0a-4c55-9d43-8d0b7ef7f001";
    let own = cards(
        &http,
        SUMMARY,
        &call("patient-view", instance, Some(&s.base), None),
        &[],
    )
    .await;
    let expected = [
        (
            "critical".to_owned(),
            "Red: Oxygen saturation 84.0 % (red zone ≤ 85.0 %) at 2026-12-06 08:00".to_owned(),
        ),
        (
            "critical".to_owned(),
            "Red: Pulse 135.0 /min (red zone ≤ 50.0 /min or ≥ 130.0 /min) at 2026-12-06 08:00"
                .to_owned(),
        ),
    ];
    let mut got = summaries(&own);
    got.sort();
    let mut want = expected.to_vec();
    want.sort();
    assert_eq!(got, want, "{own:#}");
    let link = own["cards"][0]["links"][0]["url"].as_str().unwrap();
    assert!(
        link.starts_with(&format!("{}/Observation?subject=Patient/pat", s.base)),
        "{link}"
    );
    // The same call with the data prefetched gives the same cards.
    let prefetched = s.get(TASKS).await;
    expect(&prefetched, 200);
    let with_prefetch = cards(
        &http,
        SUMMARY,
        &call(
            "patient-view",
            instance,
            Some(&s.base),
            Some(json!({"tasks": prefetched.json()})),
        ),
        &[],
    )
    .await;
    let shown = |r: &Value| -> Vec<Value> {
        r["cards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| json!([c["uuid"], c["summary"], c["links"]]))
            .collect()
    };
    assert_eq!(shown(&with_prefetch), shown(&own));
    // Acknowledging one result (the suggested update) takes its card away.
    let card = &own["cards"][0];
    let task = &card["suggestions"][0]["actions"][0]["resource"];
    let r = s
        .put(&format!("Task/{}", task["id"].as_str().unwrap()), task)
        .await;
    expect(&r, 200);
    let after = cards(
        &http,
        SUMMARY,
        &call("patient-view", instance, Some(&s.base), None),
        &[],
    )
    .await;
    assert_eq!(after["cards"].as_array().unwrap().len(), 1, "{after:#}");
    assert_ne!(after["cards"][0]["uuid"], card["uuid"]);
    // appointment-book warns about the remaining red result.
    let appointments = json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
        "resourceType": "Appointment", "status": "proposed", "start": "2027-02-01T09:00:00Z",
        "participant": [{"actor": {"reference": "Patient/pat"}, "status": "needs-action"}]}}]});
    let mut body = call("appointment-book", instance, Some(&s.base), None);
    body["context"]["appointments"] = appointments;
    let booked = cards(
        &http,
        "cds-services/telemonitoring-appointment-check",
        &body,
        &[],
    )
    .await;
    assert_eq!(
        summaries(&booked),
        [(
            "warning".to_owned(),
            "1 red home measurement awaits a decision: consider seeing the patient sooner"
                .to_owned()
        )]
    );
}

async fn bad_calls_are_4xx_outcomes(s: &TestServer) {
    let http = root(s);
    let instance = "2f6b1d5e-4b0a-4c55-9d43-8d0b7ef7f002";
    let discovery = http.get("cds-services").await;
    expect(&discovery, 200);
    let ids: Vec<String> = discovery.json()["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}:{}",
                s["hook"].as_str().unwrap(),
                s["id"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            "patient-view:telemonitoring-summary",
            "order-sign:telemonitoring-order-check",
            "appointment-book:telemonitoring-appointment-check"
        ]
    );
    let post = |path: &'static str, body: String| {
        let http = &http;
        async move {
            http.send(
                "POST",
                path,
                &[("content-type", "application/json")],
                Some(&body),
            )
            .await
        }
    };
    let r = post(SUMMARY, "{not json".into()).await;
    assert!(expect_outcome(&r, 400).contains("not valid JSON"));
    let r = post(
        SUMMARY,
        call("order-sign", instance, None, None).to_string(),
    )
    .await;
    assert!(expect_outcome(&r, 400).contains("answers the hook patient-view"));
    let r = post(
        "cds-services/no-such-service",
        call("patient-view", instance, None, None).to_string(),
    )
    .await;
    expect_outcome(&r, 404);
    // Nothing prefetched and nowhere to fetch from.
    let r = post(
        SUMMARY,
        call("patient-view", instance, None, None).to_string(),
    )
    .await;
    assert!(expect_outcome(&r, 412).contains("tasks"));
    // A fhirServer that does not answer.
    let r = post(
        SUMMARY,
        call(
            "patient-view",
            instance,
            Some("http://127.0.0.1:9/fhir"),
            None,
        )
        .to_string(),
    )
    .await;
    assert!(expect_outcome(&r, 412).contains("could not be fetched"));
    // Feedback on a card that is not this service's.
    let body = json!({"feedback": [{"card": "2f6b1d5e-4b0a-4c55-9d43-8d0b7ef7f003", "outcome": "accepted",
        "acceptedSuggestions": [{"id": "x"}], "outcomeTimestamp": "2026-12-06T10:00:00Z"}]});
    let r = post(
        "cds-services/telemonitoring-summary/feedback",
        body.to_string(),
    )
    .await;
    assert!(expect_outcome(&r, 400).contains("not a card of"));
}

async fn feedback_is_recorded_once_and_counted(s: &TestServer) {
    triaged_patient(s).await;
    let http = root(s);
    let instance = "2f6b1d5e-4b0a-4c55-9d43-8d0b7ef7f004";
    let response = cards(
        &http,
        SUMMARY,
        &call("patient-view", instance, Some(&s.base), None),
        &[],
    )
    .await;
    let card = &response["cards"][0];
    let accepted = json!({"feedback": [{"card": card["uuid"], "outcome": "accepted",
        "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}], "outcomeTimestamp": "2026-12-06T10:00:00Z"}]});
    let second = &response["cards"][1];
    let overridden = json!({"feedback": [{"card": second["uuid"], "outcome": "overridden",
        "overrideReason": {"reason": {"system": "http://ember.dev/fhir/CodeSystem/cds-override-reason",
            "code": "patient-contacted", "display": "Patient contacted"}, "userComment": "called"},
        "outcomeTimestamp": "2026-12-06T10:01:00Z"}]});
    for body in [&accepted, &accepted, &overridden, &overridden] {
        let r = http
            .send(
                "POST",
                "cds-services/telemonitoring-summary/feedback",
                &[],
                Some(&body.to_string()),
            )
            .await;
        expect(&r, 200);
    }
    let metrics = String::from_utf8(http.get("metrics").await.body.to_vec()).unwrap();
    for line in [
        r#"ember_cds_feedback_total{service="telemonitoring-summary",card="red-result",outcome="accepted"} 1"#,
        r#"ember_cds_feedback_total{service="telemonitoring-summary",card="red-result",outcome="overridden"} 1"#,
        r#"ember_cds_cards_total{service="telemonitoring-summary",card="red-result"} 2"#,
    ] {
        assert!(metrics.contains(line), "{line} not in:\n{metrics}");
    }
    let stored = s.repo.kv_list("ember.cds", "feedback/", 10).await.unwrap();
    assert_eq!(stored.len(), 2);
    // The key-value API never serves Ember's own records.
    assert!(
        expect_outcome(&http.get("kv/ember.cds?prefix=feedback/").await, 403).contains("reserved")
    );
}

/// Records the headers of every request and forwards it to `target`.
async fn recorder(target: String) -> (String, Arc<Mutex<Vec<axum::http::HeaderMap>>>) {
    let seen: Arc<Mutex<Vec<axum::http::HeaderMap>>> = Arc::default();
    let sink = seen.clone();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let sink = sink.clone();
        let target = target.clone();
        async move {
            sink.lock().unwrap().push(request.headers().clone());
            let path = request
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            let http = Http::new(target);
            let r = http.get(&format!("{}{path}", http.base)).await;
            (r.status, r.body)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/fhir"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_comes_from_the_clients_fhir_server_with_trace_headers() {
    // The client's FHIR server is a second Ember holding the data.
    let ehr = TestServer::start(Backend::Sqlite).await;
    triaged_patient(&ehr).await;
    let (fhir_server, seen) = recorder(format!("http://{}", ehr.addr)).await;
    let service = TestServer::start(Backend::Sqlite).await;
    let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut body = call(
        "patient-view",
        "2f6b1d5e-4b0a-4c55-9d43-8d0b7ef7f005",
        Some(&fhir_server),
        None,
    );
    body["fhirAuthorization"] = json!({"access_token": "ehr-token", "token_type": "Bearer",
        "expires_in": 300, "scope": "patient/*.read", "subject": "ember"});
    let response = cards(&root(&service), SUMMARY, &body, &[("traceparent", trace)]).await;
    assert_eq!(
        response["cards"].as_array().unwrap().len(),
        2,
        "{response:#}"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let header = |name: &str| {
        seen[0]
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("traceparent"), trace);
    assert!(
        header("user-agent").starts_with("Ember/"),
        "{}",
        header("user-agent")
    );
    assert_eq!(header("authorization"), "Bearer ehr-token");
}

/// Public base URL of both instances of the JWT tests, so tokens name one audience.
const PUBLIC: &str = "https://ember.test/fhir";
const AUD: &str = "https://ember.test/cds-services/telemonitoring-summary";

fn claims(issuer: &Issuer, aud: &str, exp: u64) -> Value {
    json!({"iss": issuer.url, "sub": "ehr", "aud": aud, "iat": now(), "exp": exp,
           "jti": uuid::Uuid::new_v4().to_string()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tokens_are_checked_and_used_once_across_instances() {
    let ehr = Issuer::start().await;
    let clients = format!("{}={}", ehr.url, ehr.jwks_url());
    let settings = TestSettings {
        cds_clients: ember_auth::settings::cds_clients(&clients).unwrap(),
        public_base_url: Some(PUBLIC.into()),
        cors_origins: vec!["https://ehr.example.org".into()],
        ..Default::default()
    };
    let a = TestServer::start_with(Backend::Postgres, settings).await;
    let b = Process::spawn(
        &a.db.url,
        &[
            ("EMBER_CDS_CLIENTS", &clients),
            ("EMBER_PUBLIC_BASE_URL", PUBLIC),
        ],
    );
    let body = call(
        "patient-view",
        "2f6b1d5e-4b0a-4c55-9d43-8d0b7ef7f006",
        None,
        Some(json!({"tasks": {"resourceType": "Bundle", "type": "searchset"}})),
    )
    .to_string();
    let send = |http: Http, token: String| {
        let body = body.clone();
        async move {
            let auth = format!("Bearer {token}");
            http.send("POST", SUMMARY, &[("authorization", &auth)], Some(&body))
                .await
        }
    };
    let status = |r: &Resp| r.status.as_u16();
    let good = ehr.sign(&claims(&ehr, AUD, now() + 60));
    assert_eq!(status(&send(root(&a), good.clone()).await), 200);
    // The same token on the other instance: a replay.
    let replay = send(Http::new(format!("http://{}", b.addr)), good).await;
    assert!(expect_outcome(&replay, 401).contains("used before"));
    // A fresh token works there.
    let fresh = ehr.sign(&claims(&ehr, AUD, now() + 60));
    assert_eq!(
        status(&send(Http::new(format!("http://{}", b.addr)), fresh).await),
        200
    );
    let other = Issuer::start().await;
    let faults = [
        ("no token", String::new()),
        (
            "wrong aud",
            ehr.sign(&claims(
                &ehr,
                "https://ember.test/cds-services/other",
                now() + 60,
            )),
        ),
        ("expired", ehr.sign(&claims(&ehr, AUD, now() - 120))),
        ("too long", ehr.sign(&claims(&ehr, AUD, now() + 3600))),
        ("alg none", ehr.unsigned(&claims(&ehr, AUD, now() + 60))),
        (
            "HS256",
            ehr.sign_hmac_with_public_key(&claims(&ehr, AUD, now() + 60)),
        ),
        (
            "unknown kid",
            ehr.sign_with(&claims(&ehr, AUD, now() + 60), |h| {
                h.kid = Some("nope".into())
            }),
        ),
        (
            "jku off the list",
            ehr.sign_with(&claims(&ehr, AUD, now() + 60), |h| {
                h.jku = Some(other.jwks_url())
            }),
        ),
        (
            "typ",
            ehr.sign_with(&claims(&ehr, AUD, now() + 60), |h| {
                h.typ = Some("at+jwt".into())
            }),
        ),
        (
            "unknown issuer",
            other.sign(&claims(&other, AUD, now() + 60)),
        ),
    ];
    for (name, token) in faults {
        let r = send(root(&a), token).await;
        assert_eq!(
            status(&r),
            401,
            "{name}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(r.header("www-authenticate").is_some(), "{name}");
    }
    // Discovery needs a token too; CORS preflights do not reach the check.
    expect(&root(&a).get("cds-services").await, 401);
    let listed = root(&a)
        .send(
            "GET",
            "cds-services",
            &[(
                "authorization",
                &format!(
                    "Bearer {}",
                    ehr.sign(&claims(&ehr, "https://ember.test/cds-services", now() + 60))
                ),
            )],
            None,
        )
        .await;
    expect(&listed, 200);
    let preflight = root(&a)
        .send(
            "OPTIONS",
            SUMMARY,
            &[
                ("origin", "https://ehr.example.org"),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "authorization,content-type",
                ),
            ],
            None,
        )
        .await;
    expect(&preflight, 200);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://ehr.example.org")
    );
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_data_needs_a_token_ember_accepts_when_it_checks_tokens() {
    let fhir = Issuer::start().await;
    let settings = TestSettings {
        auth: Some(crate::common::issuer::settings(&fhir)),
        ..Default::default()
    };
    let s = TestServer::start_with(Backend::Sqlite, settings).await;
    let admin = format!("Bearer {}", fhir.token("system/*.cruds", None));
    let as_admin = |method: &'static str, path: String, body: Value| {
        let s = &s;
        let admin = admin.clone();
        async move {
            s.send(
                method,
                &path,
                &[("authorization", &admin)],
                Some(&body.to_string()),
            )
            .await
        }
    };
    expect(
        &as_admin(
            "PUT",
            "Patient/pat".into(),
            json!({"resourceType": "Patient", "id": "pat"}),
        )
        .await,
        201,
    );
    let mut body = call(
        "patient-view",
        "2f6b1d5e-4b0a-4c55-9d43-8d0b7ef7f007",
        Some(&s.base),
        None,
    );
    let r = root(&s)
        .send("POST", SUMMARY, &[], Some(&body.to_string()))
        .await;
    assert!(expect_outcome(&r, 412).contains("needs fhirAuthorization"));
    body["fhirAuthorization"] = json!({"access_token": "forged", "token_type": "Bearer",
        "expires_in": 300, "scope": "system/*.read", "subject": "ehr"});
    let r = root(&s)
        .send("POST", SUMMARY, &[], Some(&body.to_string()))
        .await;
    assert!(expect_outcome(&r, 412).contains("token is refused"));
    body["fhirAuthorization"]["access_token"] = json!(fhir.token("system/*.read", None));
    let response = cards(&root(&s), SUMMARY, &body, &[]).await;
    assert_eq!(response, json!({"cards": []}));
    // A token for another patient's compartment cannot read this one's Tasks.
    body["fhirAuthorization"]["access_token"] = json!(fhir.token("patient/*.read", Some("other")));
    let r = root(&s)
        .send("POST", SUMMARY, &[], Some(&body.to_string()))
        .await;
    expect(&r, 200);
    assert_eq!(r.json(), json!({"cards": []}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_clients_a_network_address_refuses_cds_calls() {
    let db = crate::common::TestDb::new(Backend::Sqlite).await;
    let ember = Process::spawn(
        &db.url,
        &[("EMBER_LISTEN", "0.0.0.0:0"), ("EMBER_AUTH", "disabled")],
    );
    let http = Http::new(format!("http://127.0.0.1:{}", ember.addr.port()));
    let r = http.get("cds-services").await;
    assert!(expect_outcome(&r, 403).contains("EMBER_CDS_CLIENTS"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cds_calls_are_in_the_audit_trail() {
    let settings = TestSettings {
        audit: "fhir",
        ..Default::default()
    };
    let s = TestServer::start_with(Backend::Sqlite, settings).await;
    let empty = json!({"tasks": {"resourceType": "Bundle", "type": "searchset"}});
    let body = call(
        "patient-view",
        "2f6b1d5e-4b0a-4c55-9d43-8d0b7ef7f008",
        None,
        Some(empty),
    );
    cards(&root(&s), SUMMARY, &body, &[]).await;
    let operation = "$cds-services/telemonitoring-summary";
    let mut event = None;
    for _ in 0..100 {
        let found = s.get("AuditEvent?_count=100").await.json();
        event = found["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|e| {
                let r = &e["resource"];
                let named = r["entity"]
                    .as_array()?
                    .iter()
                    .any(|x| x["name"] == operation);
                named.then(|| r.clone())
            });
        if event.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let event = event.expect("an AuditEvent for the CDS call");
    assert_eq!(
        event["entity"][0]["what"]["reference"], "Patient/pat",
        "{event}"
    );
    assert_eq!(event["outcome"], "0");
    assert_eq!(event["subtype"][0]["code"], "operation");
}
