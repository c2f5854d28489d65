//! Subscriptions (R4): criteria checked on write, `requested` activated by the server,
//! rest-hook notifications (empty and full payload, channel headers, trace headers,
//! the event id, retries, `status=error` after the last attempt) to a receiver in the
//! test, and the WebSocket binding, on both stores. The cross-instance WebSocket test
//! is in `instances::subscriptions`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{Backend, Http, TestServer, TestSettings, expect, expect_outcome};

macro_rules! on_both_stores {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&super::server(crate::common::Backend::Sqlite).await).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&super::server(crate::common::Backend::Postgres).await).await;
                }
            )+
        }
    };
}

on_both_stores!(
    bad_subscriptions_are_refused_and_nothing_is_stored,
    rest_hook_gets_exactly_the_matching_writes,
    full_payload_is_put_and_retried_with_the_same_event_id,
    a_failing_endpoint_sets_the_subscription_to_error,
    websocket_bind_bound_ping,
    the_triage_recipe_notifies_each_asap_task_of_the_team,
);

/// A server whose failed jobs are retried after 50 ms, three attempts in all.
async fn server(backend: Backend) -> TestServer {
    let mut settings = TestSettings::default();
    settings.limits.job_retry_base = Duration::from_millis(50);
    settings.limits.job_max_attempts = 3;
    TestServer::start_with(backend, settings).await
}

mod hanging {
    use super::*;

    /// [`server`] with job leases of 2 s, so a matching job sends for half a second.
    async fn short_lease(backend: Backend) -> TestServer {
        let mut settings = TestSettings::default();
        settings.limits.job_retry_base = Duration::from_millis(50);
        settings.limits.job_max_attempts = 3;
        settings.limits.job_lease = Duration::from_secs(2);
        TestServer::start_with(backend, settings).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_endpoint_does_not_hold_the_matching_job() {
        a_hanging_endpoint_does_not_hold_the_matching_job(&short_lease(Backend::Sqlite).await)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_endpoint_does_not_hold_the_matching_job() {
        a_hanging_endpoint_does_not_hold_the_matching_job(&short_lease(Backend::Postgres).await)
            .await;
    }
}

mod activation {
    use super::*;

    /// An instance that has not heard yet that a Subscription became active (the bus
    /// message is on its way) gets a matching job for its writes all the same, and
    /// the write is notified: it knew the Subscription as `requested`. The instance
    /// here never hears: it listens to no bus and runs no jobs; the test server's
    /// instance activates the Subscription and runs the matching job.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_a_write_on_an_instance_that_has_not_heard_is_notified() {
        let a = server(Backend::Postgres).await;
        let store = ember_store::open(&ember_store::StoreOptions {
            url: a.db.url.clone(),
            pool_size: 2,
            acquire_timeout: Duration::from_secs(10),
        })
        .await
        .expect("open store");
        let (b, _) = ember_subscriptions::install(
            ember_repo::Repo::new(store, ember_repo::Limits::default()),
            ember_platform::http_client::HttpClient::new("ember-test", Duration::from_secs(5)),
            Default::default(),
        );
        let mut hook = receiver(0).await;
        let stored = b
            .create(
                "Subscription",
                subscription(TRIAGE, json!({"type": "rest-hook", "endpoint": hook.url})),
            )
            .await
            .expect("store the Subscription");
        wait_status(&a, &stored.id, "active").await;
        b.update("Task", "t1", task("t1", "asap", "CareTeam/team"), None)
            .await
            .expect("write on the instance that has not heard");
        let seen = hook.next().await;
        assert_eq!(seen.method, "POST");
        // A write that does not match is not notified, whoever runs its job.
        b.update("Task", "t2", task("t2", "routine", "CareTeam/team"), None)
            .await
            .expect("write");
        hook.nothing_more(Duration::from_millis(1500)).await;
    }
}

/// What the test's rest-hook receiver got.
#[derive(Debug)]
pub(crate) struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// A rest-hook receiver on a loopback port: it records every request and answers 500
/// to the first `failures` of them (`usize::MAX`: always 503), 200 after.
pub(crate) struct Receiver {
    pub url: String,
    seen: mpsc::UnboundedReceiver<Seen>,
}

async fn receiver(failures: usize) -> Receiver {
    receiver_with(failures, false).await
}

/// A receiver that holds its first request without an answer (for a minute), so the
/// sender is caught mid-delivery, and answers the others as [`receiver`] does.
pub(crate) async fn hanging_receiver() -> Receiver {
    receiver_with(0, true).await
}

async fn receiver_with(failures: usize, hang_first: bool) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, seen) = mpsc::unbounded_channel();
    let left = Arc::new(AtomicUsize::new(failures));
    let hang = Arc::new(std::sync::atomic::AtomicBool::new(hang_first));
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let (tx, left, hang) = (tx.clone(), Arc::clone(&left), Arc::clone(&hang));
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20)
                .await
                .unwrap_or_default();
            let _ = tx.send(Seen {
                method: parts.method.to_string(),
                path: parts.uri.path().to_owned(),
                headers: parts.headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            if hang.swap(false, Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            if left.load(Ordering::SeqCst) == usize::MAX {
                return StatusCode::SERVICE_UNAVAILABLE;
            }
            match left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)) {
                Ok(_) => StatusCode::INTERNAL_SERVER_ERROR,
                Err(_) => StatusCode::OK,
            }
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver { url, seen }
}

impl Receiver {
    /// The next request, within 15 s.
    pub async fn next(&mut self) -> Seen {
        tokio::time::timeout(Duration::from_secs(15), self.seen.recv())
            .await
            .expect("no notification within 15 s")
            .expect("the receiver stopped")
    }

    /// Asserts that nothing more arrives within `wait`.
    async fn nothing_more(&mut self, wait: Duration) {
        if let Ok(Some(extra)) = tokio::time::timeout(wait, self.seen.recv()).await {
            panic!("an unexpected notification: {extra:?}");
        }
    }
}

pub(crate) fn subscription(criteria: &str, channel: Value) -> Value {
    json!({"resourceType": "Subscription", "status": "requested",
        "reason": "follow the triage", "criteria": criteria, "channel": channel})
}

/// Creates a Subscription and waits until the server has activated it; its id.
pub(crate) async fn subscribe(http: &Http, resource: &Value) -> String {
    let created = http.post("Subscription", resource).await;
    expect(&created, 201);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(created.json()["status"], "requested");
    wait_status(http, &id, "active").await;
    id
}

/// Waits until Subscription `id` has `status`; the resource.
async fn wait_status(http: &Http, id: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let read = http.get(&format!("Subscription/{id}")).await;
        expect(&read, 200);
        let body = read.json();
        if body["status"] == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "Subscription/{id} never became {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn task(id: &str, priority: &str, owner: &str) -> Value {
    json!({"resourceType": "Task", "id": id, "status": "requested", "intent": "order",
        "priority": priority, "owner": {"reference": owner}})
}

const TRIAGE: &str = "Task?owner=CareTeam/team&priority=asap&status=requested";
const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

async fn bad_subscriptions_are_refused_and_nothing_is_stored(s: &TestServer) {
    let hook = json!({"type": "rest-hook", "endpoint": "https://example.org/hook"});
    let cases = [
        (subscription("Task?nonsense=1", hook.clone()), "nonsense"),
        (subscription("Nonsense?x=1", hook.clone()), "Nonsense"),
        (subscription("Task?_sort=date", hook.clone()), "_sort"),
        (subscription("Task?_count=5", hook.clone()), "_count"),
        (
            subscription("Task?priority=asap", json!({"type": "rest-hook"})),
            "endpoint",
        ),
        (
            subscription(
                "Task?priority=asap",
                json!({"type": "rest-hook", "endpoint": "http://example.org/hook"}),
            ),
            "https",
        ),
        (
            subscription(
                "Task?priority=asap",
                json!({"type": "rest-hook", "endpoint": "https://example.org/h", "payload": "text/csv"}),
            ),
            "payload",
        ),
        (
            subscription(
                "Task?priority=asap",
                json!({"type": "rest-hook", "endpoint": "https://example.org/h", "header": ["no colon"]}),
            ),
            "header",
        ),
        (
            subscription(
                "Task?priority=asap",
                json!({"type": "email", "endpoint": "mailto:team@example.org"}),
            ),
            "email",
        ),
        (
            subscription(
                "Task?priority=asap",
                json!({"type": "message", "endpoint": "https://example.org/m"}),
            ),
            "message",
        ),
    ];
    for (resource, needle) in &cases {
        let refused = s.post("Subscription", resource).await;
        let diagnostics = expect_outcome(&refused, 422);
        assert!(diagnostics.contains(needle), "{needle}: {diagnostics}");
        let mut put = resource.clone();
        put["id"] = json!("bad");
        let refused = s.put("Subscription/bad", &put).await;
        let diagnostics = expect_outcome(&refused, 422);
        assert!(diagnostics.contains(needle), "{needle}: {diagnostics}");
    }
    let count = s.get("Subscription?_summary=count").await;
    expect(&count, 200);
    assert_eq!(
        count.json()["total"],
        0,
        "a refused Subscription was stored"
    );
    expect(&s.get("Subscription/bad").await, 404);
    // A good one is stored, and activated.
    let id = subscribe(s, &subscription(TRIAGE, hook)).await;
    // Changing it into one Ember cannot serve is refused too, and changes nothing.
    let mut active = s.get(&format!("Subscription/{id}")).await.json();
    active["channel"]["type"] = json!("sms");
    let refused = s.put(&format!("Subscription/{id}"), &active).await;
    expect_outcome(&refused, 422);
    let read = s.get(&format!("Subscription/{id}")).await.json();
    assert_eq!(read["channel"]["type"], "rest-hook");
    assert_eq!(read["meta"]["versionId"], "2", "{read}");
}

async fn rest_hook_gets_exactly_the_matching_writes(s: &TestServer) {
    let mut hook = receiver(0).await;
    let id = subscribe(
        s,
        &subscription(
            TRIAGE,
            json!({"type": "rest-hook", "endpoint": hook.url,
                "header": ["Authorization: Bearer hook-secret"]}),
        ),
    )
    .await;
    // A matching create, with the request's trace context.
    let created = s
        .send(
            "PUT",
            "Task/t1",
            &[("traceparent", TRACEPARENT)],
            Some(&task("t1", "asap", "CareTeam/team").to_string()),
        )
        .await;
    expect(&created, 201);
    let first = hook.next().await;
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/hook");
    assert_eq!(first.body, "", "an empty payload has no body");
    assert_eq!(first.header("authorization"), "Bearer hook-secret");
    assert_eq!(first.header("traceparent"), TRACEPARENT);
    assert!(
        first.header("user-agent").starts_with("Ember/"),
        "{:?}",
        first.headers
    );
    let first_event = first.header("x-ember-event-id").to_owned();
    assert!(uuid::Uuid::parse_str(&first_event).is_ok(), "{first_event}");
    // Writes that do not match.
    expect(
        &s.put("Task/t2", &task("t2", "routine", "CareTeam/team"))
            .await,
        201,
    );
    expect(
        &s.put("Task/t3", &task("t3", "asap", "CareTeam/other"))
            .await,
        201,
    );
    let observation = json!({"resourceType": "Observation", "id": "o1", "status": "final",
        "code": {"text": "pulse"}});
    expect(&s.put("Observation/o1", &observation).await, 201);
    // An update that makes t2 match.
    expect(
        &s.put("Task/t2", &task("t2", "asap", "CareTeam/team")).await,
        200,
    );
    let second = hook.next().await;
    assert_eq!(second.method, "POST");
    assert_ne!(second.header("x-ember-event-id"), first_event);
    assert_ne!(second.header("traceparent"), TRACEPARENT);
    // R4: a deletion notifies no one.
    expect(&s.delete("Task/t1").await, 204);
    hook.nothing_more(Duration::from_millis(1500)).await;
    // Only watched types were matched: the Observation enqueued no matching job.
    let jobs = s.repo.jobs(None, 1000).await.unwrap();
    let matched: Vec<&str> = jobs
        .iter()
        .filter(|j| j.kind == "subscription-match")
        .map(|j| j.payload.as_str())
        .collect();
    assert!(
        !matched.iter().any(|p| p.contains("Observation")),
        "{matched:?}"
    );
    assert_eq!(matched.len(), 4, "{matched:?}");
    let sub = s.get(&format!("Subscription/{id}")).await.json();
    assert_eq!(sub["status"], "active");
}

async fn full_payload_is_put_and_retried_with_the_same_event_id(s: &TestServer) {
    let mut hook = receiver(1).await;
    let base = hook.url.clone();
    let id = subscribe(
        s,
        &subscription(
            TRIAGE,
            json!({"type": "rest-hook", "endpoint": base, "payload": "application/fhir+json",
                "header": ["X-Tenant: clinic-1"]}),
        ),
    )
    .await;
    let mut xml_hook = receiver(0).await;
    subscribe(
        s,
        &subscription(
            TRIAGE,
            json!({"type": "rest-hook", "endpoint": xml_hook.url.clone(),
                "payload": "application/fhir+xml"}),
        ),
    )
    .await;
    expect(
        &s.put("Task/t1", &task("t1", "asap", "CareTeam/team")).await,
        201,
    );
    let failed = hook.next().await;
    let retried = hook.next().await;
    for seen in [&failed, &retried] {
        assert_eq!(seen.method, "PUT");
        assert_eq!(seen.path, "/hook/Task/t1");
        assert_eq!(seen.header("content-type"), "application/fhir+json");
        assert_eq!(seen.header("x-tenant"), "clinic-1");
        let body: Value = serde_json::from_str(&seen.body).unwrap();
        assert_eq!(body["id"], "t1");
        assert_eq!(body["meta"]["versionId"], "1");
    }
    // The same version in XML to the subscription that asked for it.
    let in_xml = xml_hook.next().await;
    assert_eq!(
        (in_xml.method.as_str(), in_xml.path.as_str()),
        ("PUT", "/hook/Task/t1")
    );
    assert_eq!(in_xml.header("content-type"), "application/fhir+xml");
    let body = ember_fhir::xml::from_xml(in_xml.body.as_bytes(), 64).expect("FHIR XML");
    assert_eq!(body["resourceType"], "Task");
    assert_eq!(body["meta"]["versionId"], "1");
    let event = failed.header("x-ember-event-id");
    assert!(!event.is_empty());
    assert_eq!(
        retried.header("x-ember-event-id"),
        event,
        "a retry keeps its event id"
    );
    // A second version is a new event with the new content.
    let mut changed = task("t1", "asap", "CareTeam/team");
    changed["description"] = json!("call the patient");
    expect(&s.put("Task/t1", &changed).await, 200);
    let update = hook.next().await;
    let body: Value = serde_json::from_str(&update.body).unwrap();
    assert_eq!(body["meta"]["versionId"], "2");
    assert_eq!(body["description"], "call the patient");
    assert_ne!(update.header("x-ember-event-id"), event);
    hook.nothing_more(Duration::from_millis(1000)).await;
    let sub = s.get(&format!("Subscription/{id}")).await.json();
    assert_eq!(sub["status"], "active", "{sub}");
}

async fn a_failing_endpoint_sets_the_subscription_to_error(s: &TestServer) {
    let mut hook = receiver(usize::MAX).await;
    let id = subscribe(
        s,
        &subscription(TRIAGE, json!({"type": "rest-hook", "endpoint": hook.url})),
    )
    .await;
    expect(
        &s.put("Task/t1", &task("t1", "asap", "CareTeam/team")).await,
        201,
    );
    // Three attempts (job_max_attempts), one event.
    let attempts = [hook.next().await, hook.next().await, hook.next().await];
    let event = attempts[0].header("x-ember-event-id");
    assert!(
        attempts
            .iter()
            .all(|a| a.header("x-ember-event-id") == event)
    );
    let sub = wait_status(s, &id, "error").await;
    let reason = sub["error"].as_str().unwrap_or_default();
    assert!(reason.contains("503"), "{sub}");
    assert!(reason.contains("3 times"), "{sub}");
    // An errored subscription is notified no more.
    expect(
        &s.put("Task/t2", &task("t2", "asap", "CareTeam/team")).await,
        201,
    );
    hook.nothing_more(Duration::from_millis(1500)).await;
}

/// The WebSocket URL the CapabilityStatement advertises.
async fn websocket_url(http: &Http) -> String {
    let cs = http.get("metadata").await.json();
    let extension = cs["rest"][0]["extension"]
        .as_array()
        .and_then(|e| {
            e.iter().find(|x| {
                x["url"] == "http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket"
            })
        })
        .cloned()
        .expect("the websocket extension");
    extension["valueUri"].as_str().unwrap().to_owned()
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Sends `text` and returns the answer.
async fn say(socket: &mut Socket, text: &str) -> String {
    socket.send(Message::text(text)).await.unwrap();
    heard(socket, Duration::from_secs(10))
        .await
        .expect("no answer")
}

/// The next text message within `wait`.
async fn heard(socket: &mut Socket, wait: Duration) -> Option<String> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let next = tokio::time::timeout_at(deadline, socket.next())
            .await
            .ok()??;
        if let Message::Text(text) = next.unwrap() {
            return Some(text.as_str().to_owned());
        }
    }
}

pub(crate) async fn websocket_subscription(http: &Http) -> (String, Socket) {
    let id = subscribe(
        http,
        &subscription(
            "Observation?code=http://loinc.org|8867-4",
            json!({"type": "websocket"}),
        ),
    )
    .await;
    let url = websocket_url(http).await;
    assert!(
        url.starts_with("ws://") && url.ends_with("/fhir/websocket"),
        "{url}"
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    assert_eq!(
        say(&mut socket, &format!("bind {id}")).await,
        format!("bound {id}")
    );
    (id, socket)
}

pub(crate) fn pulse(id: &str, code: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]}})
}

async fn websocket_bind_bound_ping(s: &TestServer) {
    let (id, mut socket) = websocket_subscription(s).await;
    expect(&s.put("Observation/p1", &pulse("p1", "8867-4")).await, 201);
    let ping = heard(&mut socket, Duration::from_secs(15)).await;
    assert_eq!(ping.as_deref(), Some(format!("ping {id}").as_str()));
    // Not matching: no ping.
    expect(&s.put("Observation/p2", &pulse("p2", "1234-5")).await, 201);
    assert_eq!(heard(&mut socket, Duration::from_millis(1500)).await, None);
    // Binding what is no websocket subscription is refused on the socket.
    assert!(say(&mut socket, "bind missing").await.starts_with("error "));
    let hook = subscribe(
        s,
        &subscription(
            TRIAGE,
            json!({"type": "rest-hook", "endpoint": "https://example.org/h"}),
        ),
    )
    .await;
    let refused = say(&mut socket, &format!("bind {hook}")).await;
    assert!(refused.contains("not a websocket"), "{refused}");
    assert!(say(&mut socket, "hello").await.starts_with("error "));
    // The socket still serves its binding.
    expect(&s.put("Observation/p3", &pulse("p3", "8867-4")).await, 201);
    let ping = heard(&mut socket, Duration::from_secs(15)).await;
    assert_eq!(ping.as_deref(), Some(format!("ping {id}").as_str()));
}

/// The recipe of docs/subscriptions.md: triage's `asap` Tasks for one care team.
async fn the_triage_recipe_notifies_each_asap_task_of_the_team(s: &TestServer) {
    use crate::telemonitoring::{reading, setup, submit};
    setup(s).await;
    let mut hook = receiver(0).await;
    subscribe(
        s,
        &subscription(
            TRIAGE,
            json!({"type": "rest-hook", "endpoint": hook.url, "payload": "application/fhir+json"}),
        ),
    )
    .await;
    // Red (asap), yellow (urgent) and green (routine) readings.
    submit(
        s,
        &[
            reading("spo2", "59408-5", 80.0, "%"),
            reading("spo2", "59408-5", 87.0, "%"),
            reading("spo2", "59408-5", 97.0, "%"),
        ],
    )
    .await;
    let seen = hook.next().await;
    assert_eq!(seen.method, "PUT");
    assert!(seen.path.starts_with("/hook/Task/"), "{}", seen.path);
    let task: Value = serde_json::from_str(&seen.body).unwrap();
    assert_eq!(task["priority"], "asap");
    assert_eq!(task["owner"]["reference"], "CareTeam/team");
    assert_eq!(task["for"]["reference"], "Patient/pat");
    assert_eq!(
        seen.path,
        format!("/hook/Task/{}", task["id"].as_str().unwrap())
    );
    hook.nothing_more(Duration::from_millis(2000)).await;
}

/// An endpoint that takes the request and never answers holds the matching job only
/// for a quarter of its lease: the notification is then retried by a job of its own,
/// with the same event id, and the other subscription of the same write is notified
/// at once.
async fn a_hanging_endpoint_does_not_hold_the_matching_job(s: &TestServer) {
    let mut hanging = hanging_receiver().await;
    let mut prompt = receiver(0).await;
    for hook in [&hanging.url, &prompt.url] {
        subscribe(
            s,
            &subscription(TRIAGE, json!({"type": "rest-hook", "endpoint": hook})),
        )
        .await;
    }
    let written = Instant::now();
    expect(
        &s.put("Task/t1", &task("t1", "asap", "CareTeam/team")).await,
        201,
    );
    let other = prompt.next().await;
    assert_eq!(other.method, "POST");
    let held = hanging.next().await;
    let again = hanging.next().await;
    // Sent again after the matching job gave up on it (0.5 s), long before the first
    // request would have been answered (60 s).
    assert!(written.elapsed() < Duration::from_secs(15));
    let event = held.header("x-ember-event-id");
    assert!(!event.is_empty());
    assert_eq!(again.header("x-ember-event-id"), event);
    assert_ne!(other.header("x-ember-event-id"), event);
    // The matching job ended on its first claim, handing the unanswered notification
    // to a retry (it did not run again after its lease ran out).
    let deadline = Instant::now() + Duration::from_secs(10);
    let matching = loop {
        let jobs = s
            .repo
            .jobs(Some(ember_store::JobState::Done), 100)
            .await
            .unwrap();
        if let Some(job) = jobs.into_iter().find(|j| j.kind == "subscription-match") {
            break job;
        }
        assert!(Instant::now() < deadline, "the matching job did not end");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(matching.attempts, 1);
    let progress: Value = serde_json::from_str(matching.progress.as_deref().unwrap()).unwrap();
    assert_eq!(progress, json!({"matched": 2, "retried": 1}));
    prompt.nothing_more(Duration::from_millis(1500)).await;
}
