//! Bearer tokens and SMART scopes, against a test issuer started here (ES256 keys made
//! at start, discovery and JWKS over HTTP): token faults, every interaction crossed
//! with allowing and forbidding scopes, `patient/` compartment narrowing, included
//! resources, Bundles, the admin endpoints and the start-up rule. Every case has its
//! expected status; a leak fails the test.

use serde_json::{Value, json};

use crate::common::issuer::{Issuer, now, settings, tampered, with_introspection};
use crate::common::{Resp, TestServer, TestSettings};

both_stores!(
    token_faults_are_401,
    interactions_follow_the_scopes,
    patient_scopes_confine_to_the_compartment,
    included_resources_never_leak,
    bundles_are_checked_entry_by_entry,
    admin_endpoints_need_a_system_scope,
    granular_scopes_narrow_by_their_criteria,
    audit_events_record_every_access,
    opaque_tokens_are_introspected,
    subscriptions_need_the_whole_criteria_type,
);

struct Secured {
    server: TestServer,
    issuer: Issuer,
}

async fn secured(s: &TestServer) -> Secured {
    let issuer = Issuer::start().await;
    let settings = TestSettings {
        auth: Some(settings(&issuer)),
        ..Default::default()
    };
    let server = TestServer::start_with(s.backend, settings).await;
    Secured { server, issuer }
}

impl Secured {
    async fn call(&self, token: &str, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let auth = format!("Bearer {token}");
        let body = body.map(Value::to_string);
        self.server
            .send(method, path, &[("authorization", &auth)], body.as_deref())
            .await
    }

    async fn status(&self, token: &str, method: &str, path: &str, body: Option<&Value>) -> u16 {
        self.call(token, method, path, body).await.status.as_u16()
    }

    /// Asserts the status of a call with a token for `scope`.
    async fn expect(
        &self,
        scope: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
        want: u16,
    ) -> Resp {
        let token = self.issuer.token(scope, None);
        let resp = self.call(&token, method, path, body).await;
        assert_eq!(
            resp.status.as_u16(),
            want,
            "{scope}: {method} {path}: {}",
            String::from_utf8_lossy(&resp.body)
        );
        resp
    }

    /// Stores `resource` (with its id) as an all-powerful system client.
    async fn seed(&self, resource: Value) {
        let path = format!(
            "{}/{}",
            resource["resourceType"].as_str().unwrap(),
            resource["id"].as_str().unwrap()
        );
        self.expect("system/*.*", "PUT", &path, Some(&resource), 201)
            .await;
    }
}

fn observation(id: &str, patient: &str, category: &str) -> Value {
    json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "valueQuantity": {"value": 70, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}
    })
}

fn ids(bundle: &Value) -> Vec<String> {
    let mut ids: Vec<String> = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap_or("?"),
                e["resource"]["id"].as_str().unwrap_or("?")
            )
        })
        .collect();
    ids.sort();
    ids
}

async fn token_faults_are_401(s: &TestServer) {
    let t = secured(s).await;
    t.seed(json!({"resourceType": "Patient", "id": "p1"})).await;
    let i = &t.issuer;
    let good = i.claims("user/*.*", None);
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let faults = [
        ("expired", i.sign(&with("exp", json!(now() - 600)))),
        ("not yet valid", i.sign(&with("nbf", json!(now() + 600)))),
        (
            "issued in the future",
            i.sign(&with("iat", json!(now() + 600))),
        ),
        (
            "wrong aud",
            i.sign(&with("aud", json!("https://other.example/fhir"))),
        ),
        (
            "wrong iss",
            i.sign(&with("iss", json!("http://127.0.0.1:1/realms/other"))),
        ),
        ("alg none", i.unsigned(&good)),
        (
            "HMAC with the public key",
            i.sign_hmac_with_public_key(&good),
        ),
        (
            "tampered payload",
            tampered(&i.sign(&good), &with("sub", json!("someone-else"))),
        ),
        ("not a JWT", "abc.def".to_owned()),
        ("no exp", {
            let mut c = good.clone();
            c.as_object_mut().unwrap().remove("exp");
            i.sign(&c)
        }),
    ];
    for (what, token) in &faults {
        let resp = t.call(token, "GET", "Patient/p1", None).await;
        assert_eq!(resp.status.as_u16(), 401, "{what}");
        let challenge = resp.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{what}: {challenge}"
        );
        assert!(resp.outcome().len() > 5, "{what}");
    }
    // No token, or another scheme.
    let resp = t.server.get("Patient/p1").await;
    assert_eq!(resp.status.as_u16(), 401);
    // Asked for XML, the refusal is an XML OperationOutcome with its challenge.
    let resp = t.server.get("Patient/p1?_format=xml").await;
    assert_eq!(resp.status.as_u16(), 401);
    assert!(resp.header("www-authenticate").is_some());
    let outcome = ember_fhir::xml::from_xml(&resp.body, 64).expect("an XML OperationOutcome");
    assert_eq!(outcome["issue"][0]["code"], "login", "{outcome}");
    let resp = t
        .server
        .send(
            "GET",
            "Patient/p1",
            &[("authorization", "Basic dXNlcjpwdw==")],
            None,
        )
        .await;
    assert_eq!(resp.status.as_u16(), 401);
    // A valid token works, and keeps working from the cache.
    let token = i.sign(&good);
    for _ in 0..3 {
        assert_eq!(t.status(&token, "GET", "Patient/p1", None).await, 200);
    }
    // After a key rotation, a token with the new kid is accepted (one refresh), and one
    // signed with the retired key is not.
    i.rotate();
    let rotated = i.sign(&good);
    assert_eq!(t.status(&rotated, "GET", "Patient/p1", None).await, 200);
    let resp = t.call(&token, "GET", "Patient/p1", None).await;
    assert_eq!(
        resp.status.as_u16(),
        200,
        "a verified token stays valid until it expires"
    );
    // Discovery: the SMART configuration and the CapabilityStatement's security.
    for path in [
        format!("http://{}/.well-known/smart-configuration", t.server.addr),
        ".well-known/smart-configuration".to_owned(),
    ] {
        let resp = t.server.get(&path).await;
        assert_eq!(resp.status.as_u16(), 200, "{path}");
        let conf = resp.json();
        assert_eq!(conf["token_endpoint"], format!("{}/token", i.url));
        assert_eq!(
            conf["authorization_endpoint"],
            format!("{}/authorize", i.url)
        );
        assert!(
            conf["capabilities"]
                .as_array()
                .unwrap()
                .contains(&json!("permission-v2"))
        );
        assert!(
            conf["code_challenge_methods_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("S256"))
        );
    }
    let statement = t.server.get("metadata").await.json();
    let security = &statement["rest"][0]["security"];
    assert_eq!(security["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
    let uris = security["extension"][0]["extension"].as_array().unwrap();
    assert!(uris.contains(&json!({"url": "token", "valueUri": format!("{}/token", i.url)})));
    // The open endpoints need no token.
    for open in ["metadata", "http://{addr}/livez", "http://{addr}/readyz"] {
        let path = open.replace("{addr}", &t.server.addr.to_string());
        let resp = t.server.get(&path).await;
        assert_eq!(resp.status.as_u16(), 200, "{path}");
    }
}

async fn interactions_follow_the_scopes(s: &TestServer) {
    let t = secured(s).await;
    t.seed(json!({"resourceType": "Patient", "id": "p1", "active": true}))
        .await;
    let patient = json!({"resourceType": "Patient", "id": "p1", "active": false});
    let new = json!({"resourceType": "Patient", "active": true});
    let patch = json!([{"op": "replace", "path": "/active", "value": true}]);
    let p2 = json!({"resourceType": "Patient", "id": "p2"});
    // (scope, method, path, body, status)
    let cases: Vec<(&str, &str, &str, Option<&Value>, u16)> = vec![
        ("user/Patient.r", "GET", "Patient/p1", None, 200),
        ("user/Patient.s", "GET", "Patient/p1", None, 403),
        ("user/Observation.r", "GET", "Patient/p1", None, 403),
        ("user/Patient.r", "GET", "Patient/p1/_history/1", None, 200),
        ("user/Patient.s", "GET", "Patient/p1/_history/1", None, 403),
        ("user/Patient.r", "GET", "Patient/p1/_history", None, 200),
        ("user/Patient.s", "GET", "Patient/p1/_history", None, 403),
        ("user/Patient.s", "GET", "Patient/_history", None, 200),
        ("user/Patient.r", "GET", "Patient/_history", None, 403),
        ("user/Patient.s", "GET", "Patient?active=true", None, 200),
        ("user/Patient.r", "GET", "Patient?active=true", None, 403),
        (
            "user/Observation.s",
            "GET",
            "Patient?active=true",
            None,
            403,
        ),
        ("user/Patient.s", "POST", "Patient/_search", None, 200),
        ("user/Patient.rs", "GET", "Patient?active=true", None, 200),
        ("user/Patient.c", "POST", "Patient", Some(&new), 201),
        ("user/Patient.rs", "POST", "Patient", Some(&new), 403),
        ("user/Patient.u", "PUT", "Patient/p1", Some(&patient), 200),
        ("user/Patient.c", "PUT", "Patient/p1", Some(&patient), 403),
        ("user/Patient.c", "PUT", "Patient/p2", Some(&p2), 201),
        (
            "user/Patient.read",
            "PUT",
            "Patient/p1",
            Some(&patient),
            403,
        ),
        (
            "user/Patient.write",
            "PUT",
            "Patient/p1",
            Some(&patient),
            200,
        ),
        ("user/Patient.write", "GET", "Patient/p1", None, 403),
        ("user/Patient.read", "GET", "Patient?_id=p1", None, 200),
        ("user/*.*", "GET", "Patient/p1", None, 200),
        ("patient/Patient.r", "GET", "Patient/p1", None, 403),
        ("openid fhirUser", "GET", "Patient/p1", None, 403),
        ("user/Patient.d", "DELETE", "Patient/p2", None, 204),
        ("user/Patient.ru", "DELETE", "Patient/p1", None, 403),
    ];
    for (scope, method, path, body, want) in cases {
        t.expect(scope, method, path, body, want).await;
    }
    for (scope, want) in [("user/Patient.u", 200), ("user/Patient.r", 403)] {
        let token = t.issuer.token(scope, None);
        let auth = format!("Bearer {token}");
        let headers = [
            ("authorization", auth.as_str()),
            ("content-type", "application/json-patch+json"),
        ];
        let body = patch.to_string();
        let resp = t
            .server
            .send("PATCH", "Patient/p1", &headers, Some(&body))
            .await;
        assert_eq!(resp.status.as_u16(), want, "PATCH with {scope}");
    }
    // A refusal is an OperationOutcome saying what is missing.
    let resp = t
        .expect("user/Observation.r", "GET", "Patient/p1", None, 403)
        .await;
    assert!(resp.outcome().contains("Patient"), "{}", resp.outcome());
    // Conditional interactions go through the same checks.
    t.expect("user/Patient.rs", "DELETE", "Patient?_id=p1", None, 403)
        .await;
    t.expect(
        "user/Patient.rs",
        "PUT",
        "Patient?_id=p1",
        Some(&patient),
        403,
    )
    .await;
}

async fn patient_scopes_confine_to_the_compartment(s: &TestServer) {
    let t = secured(s).await;
    for p in ["p1", "p2"] {
        t.seed(json!({"resourceType": "Patient", "id": p})).await;
    }
    t.seed(observation("o1", "p1", "vital-signs")).await;
    t.seed(observation("o2", "p2", "vital-signs")).await;
    t.seed(json!({"resourceType": "Medication", "id": "m1"}))
        .await;
    let token = t.issuer.token("patient/*.rs", Some("p1"));
    let get = |path: &'static str| {
        let token = token.clone();
        let t = &t;
        async move { t.call(&token, "GET", path, None).await }
    };
    let found = get("Observation?code=http://loinc.org|8867-4").await;
    assert_eq!(found.status.as_u16(), 200);
    assert_eq!(ids(&found.json()), ["Observation/o1"]);
    assert_eq!(ids(&get("Patient").await.json()), ["Patient/p1"]);
    assert_eq!(
        ids(&get("Patient?_id=p2").await.json()),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&get("Patient/p2/Observation").await.json()),
        Vec::<String>::new()
    );
    assert_eq!(get("Observation/o1").await.status.as_u16(), 200);
    assert_eq!(get("Observation/o2").await.status.as_u16(), 403);
    assert_eq!(get("Observation/o2/_history/1").await.status.as_u16(), 403);
    assert_eq!(get("Patient/p2").await.status.as_u16(), 403);
    assert_eq!(get("Patient/p1").await.status.as_u16(), 200);
    // Not patient data: readable under patient/*.
    assert_eq!(get("Medication/m1").await.status.as_u16(), 200);
    // History leaves out what is outside the compartment.
    let history = get("Observation/_history").await;
    assert_eq!(ids(&history.json()), ["Observation/o1"]);
    // Without a patient context, patient scopes grant nothing.
    let none = t.issuer.token("patient/*.rs", None);
    assert_eq!(t.status(&none, "GET", "Observation/o1", None).await, 403);
    // Writes must stay in the compartment, before and after.
    let writer = t.issuer.token("patient/Observation.cru", Some("p1"));
    let mut elsewhere = observation("o3", "p2", "vital-signs");
    elsewhere.as_object_mut().unwrap().remove("id");
    let resp = t
        .call(&writer, "POST", "Observation", Some(&elsewhere))
        .await;
    assert_eq!(resp.status.as_u16(), 403);
    let mut own = observation("o3", "p1", "vital-signs");
    own.as_object_mut().unwrap().remove("id");
    assert_eq!(
        t.status(&writer, "POST", "Observation", Some(&own)).await,
        201
    );
    let moved = observation("o1", "p2", "vital-signs");
    assert_eq!(
        t.status(&writer, "PUT", "Observation/o1", Some(&moved))
            .await,
        403
    );
    let other = observation("o2", "p1", "vital-signs");
    assert_eq!(
        t.status(&writer, "PUT", "Observation/o2", Some(&other))
            .await,
        403
    );
    // A conditional create whose criteria match another patient's resource is refused,
    // not answered with that resource.
    let auth = format!("Bearer {writer}");
    let body = own.to_string();
    let resp = t
        .server
        .send(
            "POST",
            "Observation",
            &[("authorization", &auth), ("if-none-exist", "_id=o2")],
            Some(&body),
        )
        .await;
    assert_eq!(resp.status.as_u16(), 403);
    assert!(!String::from_utf8_lossy(&resp.body).contains("Patient/p2"));
    // Nothing of the refused writes was stored.
    let admin = t.issuer.token("system/*.*", None);
    let o2 = t.call(&admin, "GET", "Observation/o2", None).await.json();
    assert_eq!(o2["subject"]["reference"], "Patient/p2");
    let p2_obs = t
        .call(&admin, "GET", "Observation?subject=Patient/p2", None)
        .await
        .json();
    assert_eq!(ids(&p2_obs), ["Observation/o2"]);
}

async fn included_resources_never_leak(s: &TestServer) {
    let t = secured(s).await;
    for p in ["p1", "p2"] {
        t.seed(json!({"resourceType": "Patient", "id": p})).await;
    }
    t.seed(observation("o1", "p1", "vital-signs")).await;
    t.seed(observation("o2", "p2", "vital-signs")).await;
    // Observations only: the Patient an include would bring is not readable.
    let obs_only = t.issuer.token("user/Observation.rs", None);
    let found = t
        .call(
            &obs_only,
            "GET",
            "Observation?_include=Observation:subject",
            None,
        )
        .await;
    assert_eq!(found.status.as_u16(), 200);
    assert_eq!(ids(&found.json()), ["Observation/o1", "Observation/o2"]);
    // Patients only: revincluded Observations are not readable.
    let patients_only = t.issuer.token("user/Patient.rs", None);
    let found = t
        .call(
            &patients_only,
            "GET",
            "Patient?_revinclude=Observation:subject",
            None,
        )
        .await;
    assert_eq!(ids(&found.json()), ["Patient/p1", "Patient/p2"]);
    // In a compartment, includes stay inside it.
    let p1 = t.issuer.token("patient/*.rs", Some("p1"));
    let found = t
        .call(&p1, "GET", "Patient?_revinclude=Observation:subject", None)
        .await;
    assert_eq!(ids(&found.json()), ["Observation/o1", "Patient/p1"]);
    let found = t
        .call(&p1, "GET", "Observation?_include=Observation:subject", None)
        .await;
    assert_eq!(ids(&found.json()), ["Observation/o1", "Patient/p1"]);
    // `_has` selects within what the caller may search.
    let found = t
        .call(
            &p1,
            "GET",
            "Patient?_has:Observation:subject:code=8867-4",
            None,
        )
        .await;
    assert_eq!(ids(&found.json()), ["Patient/p1"]);
    // A search of every type covers only the searchable types.
    let found = t.call(&obs_only, "GET", "?_count=100", None).await;
    assert_eq!(ids(&found.json()), ["Observation/o1", "Observation/o2"]);
    // Naming a type the token cannot search is refused.
    let resp = t
        .call(&obs_only, "GET", "?_type=Patient,Observation", None)
        .await;
    assert_eq!(resp.status.as_u16(), 403);
}

async fn bundles_are_checked_entry_by_entry(s: &TestServer) {
    let t = secured(s).await;
    t.seed(json!({"resourceType": "Patient", "id": "p1"})).await;
    let entries = json!([
        {"resource": {"resourceType": "Patient", "active": true}, "request": {"method": "POST", "url": "Patient"}},
        {"resource": observation("ob", "p1", "vital-signs"), "request": {"method": "PUT", "url": "Observation/ob"}},
        {"request": {"method": "GET", "url": "Patient/p1"}},
    ]);
    let bundle = |kind: &str| json!({"resourceType": "Bundle", "type": kind, "entry": entries});
    // One forbidden entry refuses the transaction whole.
    let scope = "user/Patient.crs";
    t.expect(scope, "POST", "", Some(&bundle("transaction")), 403)
        .await;
    let all = t.expect("system/*.*", "GET", "Patient", None, 200).await;
    assert_eq!(
        ids(&all.json()),
        ["Patient/p1"],
        "nothing of the transaction was stored"
    );
    // A batch answers each entry on its own.
    let resp = t
        .expect(scope, "POST", "", Some(&bundle("batch")), 200)
        .await;
    let statuses: Vec<String> = resp.json()["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap_or("?")[..3].to_owned())
        .collect();
    assert_eq!(statuses, ["201", "403", "200"]);
    // With every scope needed, the transaction goes through.
    t.expect(
        "user/Patient.crs user/Observation.cu",
        "POST",
        "",
        Some(&bundle("transaction")),
        200,
    )
    .await;
    // A search entry is narrowed like a direct search.
    let search = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Observation?code=8867-4"}}]});
    t.seed(observation("o2", "p2", "vital-signs")).await;
    let token = t.issuer.token("patient/Observation.rs", Some("p1"));
    let resp = t.call(&token, "POST", "", Some(&search)).await;
    let inner = &resp.json()["entry"][0]["resource"];
    assert_eq!(ids(inner), ["Observation/ob"]);
}

async fn admin_endpoints_need_a_system_scope(s: &TestServer) {
    let t = secured(s).await;
    let jobs = format!("http://{}/admin/jobs", t.server.addr);
    t.expect("user/*.*", "GET", &jobs, None, 403).await;
    t.expect("system/Patient.rs", "GET", &jobs, None, 403).await;
    t.expect("system/*.rs", "GET", &jobs, None, 200).await;
    t.expect(
        "user/*.*",
        "POST",
        "$reindex",
        Some(&json!({"resourceType": "Parameters"})),
        403,
    )
    .await;
    let params = json!({"resourceType": "Parameters"});
    t.expect("system/*.*", "POST", "$reindex", Some(&params), 202)
        .await;
    t.expect("user/*.*", "POST", "Patient/$reindex", Some(&params), 403)
        .await;
    t.expect("ember-kv:x", "POST", "Patient/$reindex", Some(&params), 403)
        .await;
    // $validate reads and writes nothing: any valid token; on a stored resource it
    // is a read.
    let patient = json!({"resourceType": "Patient"});
    t.expect("openid", "POST", "Patient/$validate", Some(&patient), 200)
        .await;
    t.seed(json!({"resourceType": "Patient", "id": "v1"})).await;
    t.expect("user/Patient.r", "GET", "Patient/v1/$validate", None, 200)
        .await;
    t.expect(
        "user/Observation.r",
        "GET",
        "Patient/v1/$validate",
        None,
        403,
    )
    .await;
    let token = t.issuer.token("user/*.*", None);
    let resp = t
        .call(
            &token,
            "GET",
            &format!("http://{}/metrics", t.server.addr),
            None,
        )
        .await;
    assert_eq!(
        resp.status.as_u16(),
        200,
        "metrics are scraped without a token"
    );
}

async fn granular_scopes_narrow_by_their_criteria(s: &TestServer) {
    let t = secured(s).await;
    t.seed(json!({"resourceType": "Patient", "id": "p1"})).await;
    t.seed(observation("vs", "p1", "vital-signs")).await;
    t.seed(observation("lab", "p1", "laboratory")).await;
    let scope = "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs";
    let token = t.issuer.token(scope, Some("p1"));
    let found = t.call(&token, "GET", "Observation", None).await;
    assert_eq!(
        found.status.as_u16(),
        200,
        "{}",
        String::from_utf8_lossy(&found.body)
    );
    assert_eq!(ids(&found.json()), ["Observation/vs"]);
    assert_eq!(t.status(&token, "GET", "Observation/vs", None).await, 200);
    assert_eq!(t.status(&token, "GET", "Observation/lab", None).await, 403);
}

#[tokio::test]
async fn start_up_refuses_an_open_server_on_a_network_address() {
    let run = |env: Vec<(&'static str, &'static str)>| {
        tokio::task::spawn_blocking(move || {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ember"));
            cmd.arg("serve")
                .env("EMBER_LISTEN", "0.0.0.0:0")
                .env(
                    "EMBER_DATABASE_URL",
                    "sqlite:///tmp/ember-auth-refusal-never-opened.db",
                )
                .env_remove("EMBER_AUTH")
                .env_remove("EMBER_AUTH_ISSUERS");
            for (k, v) in env {
                cmd.env(k, v);
            }
            cmd.output().expect("run ember")
        })
    };
    let out = run(vec![]).await.unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("EMBER_AUTH=disabled"), "{text}");
    let out = run(vec![("EMBER_AUTH_ISSUERS", "http://idp.example.org")])
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("https"));
}

/// CORS for browser apps: preflights are answered before authentication, only for the
/// configured origins, and answers to them expose the headers a FHIR client reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_the_configured_origins_only() {
    let issuer = Issuer::start().await;
    let settings = TestSettings {
        auth: Some(settings(&issuer)),
        cors_origins: vec!["https://app.example.org".into()],
        ..Default::default()
    };
    let s = TestServer::start_with(crate::common::Backend::Sqlite, settings).await;
    let preflight = |origin: &'static str| {
        let s = &s;
        async move {
            s.send(
                "OPTIONS",
                "Patient",
                &[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                    (
                        "access-control-request-headers",
                        "authorization,content-type",
                    ),
                ],
                None,
            )
            .await
        }
    };
    let allowed = preflight("https://app.example.org").await;
    assert_eq!(allowed.status.as_u16(), 200);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://app.example.org")
    );
    let methods = allowed
        .header("access-control-allow-methods")
        .unwrap_or_default();
    assert!(
        methods.contains("POST") && methods.contains("PATCH"),
        "{methods}"
    );
    let headers = allowed
        .header("access-control-allow-headers")
        .unwrap_or_default();
    assert!(headers.contains("authorization"), "{headers}");
    // A client library's own header (`x-medplum`), and credentials, for listed origins.
    let custom = s
        .send(
            "OPTIONS",
            "Patient",
            &[
                ("origin", "https://app.example.org"),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "x-medplum"),
            ],
            None,
        )
        .await;
    assert_eq!(
        custom.header("access-control-allow-headers"),
        Some("x-medplum")
    );
    assert_eq!(
        custom.header("access-control-allow-credentials"),
        Some("true")
    );
    let other = preflight("https://evil.example.org").await;
    assert_eq!(other.header("access-control-allow-origin"), None);
    // An actual request from the allowed origin.
    let token = format!("Bearer {}", issuer.token("user/*.*", None));
    let body = json!({"resourceType": "Patient"}).to_string();
    let created = s
        .send(
            "POST",
            "Patient",
            &[
                ("origin", "https://app.example.org"),
                ("authorization", &token),
            ],
            Some(&body),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201);
    assert_eq!(
        created.header("access-control-allow-origin"),
        Some("https://app.example.org")
    );
    let exposed = created
        .header("access-control-expose-headers")
        .unwrap_or_default();
    assert!(
        exposed.contains("location") && exposed.contains("etag"),
        "{exposed}"
    );
}

/// `EMBER_AUDIT=fhir`: every access, refused ones too, becomes an AuditEvent (written
/// in batches through the job queue) naming who, what, which patient and the outcome,
/// and never a search value.
async fn audit_events_record_every_access(s: &TestServer) {
    let issuer = Issuer::start().await;
    let settings = TestSettings {
        auth: Some(settings(&issuer)),
        audit: "fhir",
        ..Default::default()
    };
    let server = TestServer::start_with(s.backend, settings).await;
    let t = Secured { server, issuer };
    t.seed(json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Hansen"}]}))
        .await;
    t.expect("user/Patient.rs", "GET", "Patient/p1", None, 200)
        .await;
    t.expect("user/Observation.rs", "GET", "Patient/p1", None, 403)
        .await;
    t.expect("user/Patient.rs", "GET", "Patient?name=Hansen", None, 200)
        .await;
    let admin = t.issuer.token("system/*.*", None);
    let mut events = Vec::new();
    for _ in 0..100 {
        let found = t
            .call(&admin, "GET", "AuditEvent?_count=100", None)
            .await
            .json();
        events = found["entry"].as_array().cloned().unwrap_or_default();
        if events.len() >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let events: Vec<Value> = events.into_iter().map(|e| e["resource"].clone()).collect();
    let text = serde_json::to_string(&events).unwrap();
    assert!(
        !text.contains("Hansen"),
        "a search value reached the audit trail"
    );
    let find = |subtype: &str, outcome: &str| {
        events.iter().find(|e| {
            e["subtype"][0]["code"] == subtype
                && e["outcome"] == outcome
                && e["entity"][0]["what"]["reference"] == "Patient/p1"
        })
    };
    let read = find("read", "0").unwrap_or_else(|| panic!("no read event: {text}"));
    assert_eq!(read["action"], "R");
    assert_eq!(read["agent"][0]["who"]["identifier"]["value"], "user-1");
    assert_eq!(read["agent"][1]["who"]["identifier"]["value"], "test-app");
    assert!(find("read", "4").is_some(), "no refused read: {text}");
    // The admin's own searches of AuditEvent are recorded too; this is the Patient one.
    let search = events
        .iter()
        .find(|e| e["subtype"][0]["code"] == "search-type" && e["entity"][0]["name"] == "Patient")
        .unwrap_or_else(|| panic!("no search event: {text}"));
    assert_eq!(
        search["entity"][1]["description"],
        "search parameters: name"
    );
}

/// Opaque tokens go to the RFC 7662 endpoint: an active one works (and is cached), an
/// unknown one, an expired one or one for another audience is a 401.
async fn opaque_tokens_are_introspected(s: &TestServer) {
    let issuer = Issuer::start().await;
    let settings = TestSettings {
        auth: Some(with_introspection(&issuer)),
        ..Default::default()
    };
    let server = TestServer::start_with(s.backend, settings).await;
    let t = Secured { server, issuer };
    t.seed(json!({"resourceType": "Patient", "id": "p1"})).await;
    let claims = t.issuer.claims("user/Patient.rs", None);
    let opaque = t.issuer.opaque(&claims);
    assert_eq!(t.status(&opaque, "GET", "Patient/p1", None).await, 200);
    assert_eq!(t.status(&opaque, "GET", "Patient", None).await, 200);
    // Scopes apply as to a JWT.
    assert_eq!(t.status(&opaque, "DELETE", "Patient/p1", None).await, 403);
    // Answered from the cache after the first call, even once revoked (for at most
    // five minutes).
    t.issuer.revoke(&opaque);
    assert_eq!(t.status(&opaque, "GET", "Patient/p1", None).await, 200);
    let unknown = "opaque-never-issued";
    assert_eq!(t.status(unknown, "GET", "Patient/p1", None).await, 401);
    let mut expired = claims.clone();
    expired["exp"] = json!(now() - 600);
    let expired = t.issuer.opaque(&expired);
    assert_eq!(t.status(&expired, "GET", "Patient/p1", None).await, 401);
    let mut elsewhere = claims.clone();
    elsewhere["aud"] = json!("https://other.example/fhir");
    let elsewhere = t.issuer.opaque(&elsewhere);
    assert_eq!(t.status(&elsewhere, "GET", "Patient/p1", None).await, 401);
    // JWTs still work beside them.
    let jwt = t.issuer.token("user/Patient.rs", None);
    assert_eq!(t.status(&jwt, "GET", "Patient/p1", None).await, 200);
}

/// `ember check` against a deployment that requires tokens: it passes with one and
/// fails without.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smoke_test_takes_a_bearer_token() {
    use ember_bench::check::{CheckArgs, Outcome, check};
    let issuer = Issuer::start().await;
    let settings = TestSettings {
        auth: Some(settings(&issuer)),
        ..Default::default()
    };
    let s = TestServer::start_with(crate::common::Backend::Sqlite, settings).await;
    let args = |bearer: Option<String>| CheckArgs {
        url: s.base.clone(),
        cds_url: None,
        bearer,
    };
    let with = check(&args(Some(issuer.token("user/Patient.cruds", None))))
        .await
        .unwrap();
    let failed: Vec<_> = with
        .iter()
        .filter(|s| matches!(s.outcome, Outcome::Fail(_)))
        .map(|s| (s.name, format!("{:?}", s.outcome)))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    let without = check(&args(None)).await.unwrap();
    assert!(
        without
            .iter()
            .any(|s| matches!(s.outcome, Outcome::Fail(_)))
    );
}

/// A WebSocket opened at `url` with `token` that has sent `bind [id]`.
async fn bind(
    url: &str,
    token: &str,
    id: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket
        .send(Message::text(format!("bind {id}")))
        .await
        .unwrap();
    socket
}

/// Notifications go out without the subscriber's token, so a Subscription needs a grant
/// on every resource its criteria could match; its WebSocket is bound under the
/// grants of the token that opened it, and closed when that token expires.
async fn subscriptions_need_the_whole_criteria_type(s: &TestServer) {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let t = secured(s).await;
    let sub = json!({"resourceType": "Subscription", "status": "active", "reason": "r",
        "criteria": "Observation?code=http://loinc.org|8867-4", "channel": {"type": "websocket"}});
    let patient = t.issuer.token(
        "system/Subscription.cruds patient/Observation.rs",
        Some("p1"),
    );
    let refused = t.call(&patient, "POST", "Subscription", Some(&sub)).await;
    assert_eq!(
        refused.status.as_u16(),
        403,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    assert!(
        refused.outcome().contains("every Observation"),
        "{}",
        refused.outcome()
    );
    let created = t
        .expect(
            "system/Subscription.cruds system/Observation.rs",
            "POST",
            "Subscription",
            Some(&sub),
            201,
        )
        .await;
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let count = t
        .expect(
            "system/Subscription.rs",
            "GET",
            "Subscription?_summary=count",
            None,
            200,
        )
        .await;
    assert_eq!(count.json()["total"], 1, "the refused one was stored");
    let url = format!("ws://{}/fhir/websocket", t.server.addr);
    // No token: the upgrade is refused.
    assert!(
        tokio_tungstenite::connect_async(url.as_str())
            .await
            .is_err()
    );
    for (scope, answer) in [
        ("system/Subscription.rs", format!("bound {id}")),
        ("system/Observation.rs", "error ".to_owned()),
    ] {
        let mut socket = bind(&url, &t.issuer.token(scope, None), &id).await;
        let reply = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("an answer")
            .unwrap()
            .unwrap();
        let reply = reply.into_text().unwrap();
        assert!(reply.as_str().starts_with(&answer), "{scope}: {reply}");
    }
    // A bound socket ends with its token: closed as a policy violation once `exp` passes.
    let mut claims = t.issuer.claims("system/Subscription.rs", None);
    claims["exp"] = json!(now() + 2);
    let mut socket = bind(&url, &t.issuer.sign(&claims), &id).await;
    let mut heard = Vec::new();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(15), async {
        while let Some(Ok(message)) = socket.next().await {
            match message {
                Message::Close(frame) => return frame,
                other => heard.push(other.into_text().unwrap().as_str().to_owned()),
            }
        }
        None
    })
    .await
    .expect("the socket must be closed when its token expires")
    .expect("a close frame");
    assert_eq!(heard, [format!("bound {id}")]);
    assert_eq!(u16::from(closed.code), 1008, "{closed:?}");
    assert!(closed.reason.contains("expired"), "{closed:?}");
}
