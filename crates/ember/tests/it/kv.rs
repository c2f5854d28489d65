//! The key-value API on both stores, behind authentication: versions and conditional
//! writes, the size limit, expiry, listing, bad names, and namespace isolation.

use serde_json::Value;

use crate::common::issuer::{Issuer, settings};
use crate::common::{Resp, TestServer, TestSettings};

both_stores!(
    values_are_versioned_and_conditional,
    namespaces_are_isolated
);

struct Kv {
    server: TestServer,
    token: String,
}

async fn kv_server(s: &TestServer, scope: &str) -> (Kv, Issuer) {
    let issuer = Issuer::start().await;
    let server = TestServer::start_with(
        s.backend,
        TestSettings {
            auth: Some(settings(&issuer)),
            ..Default::default()
        },
    )
    .await;
    let token = issuer.token(scope, None);
    (Kv { server, token }, issuer)
}

impl Kv {
    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Resp {
        let auth = format!("Bearer {}", self.token);
        let mut all = vec![("authorization", auth.as_str())];
        all.extend_from_slice(headers);
        let url = format!("http://{}/kv/{path}", self.server.addr);
        self.server.send(method, &url, &all, body).await
    }
}

fn status(resp: &Resp) -> u16 {
    resp.status.as_u16()
}

async fn values_are_versioned_and_conditional(s: &TestServer) {
    let (kv, _issuer) = kv_server(s, "openid").await;
    let json = [("content-type", "application/json")];
    // Create, read, replace.
    let created = kv
        .send("PUT", "test-app/ui/theme", &json, Some(r#"{"dark":true}"#))
        .await;
    assert_eq!(status(&created), 201);
    assert_eq!(created.header("etag"), Some("\"1\""));
    let read = kv.send("GET", "test-app/ui/theme", &[], None).await;
    assert_eq!(status(&read), 200);
    assert_eq!(read.header("content-type"), Some("application/json"));
    assert_eq!(read.header("etag"), Some("\"1\""));
    assert_eq!(&read.body[..], br#"{"dark":true}"#);
    let replaced = kv.send("PUT", "test-app/ui/theme", &json, Some("{}")).await;
    assert_eq!(
        (status(&replaced), replaced.header("etag")),
        (200, Some("\"2\""))
    );
    // Compare-and-swap and create-only.
    let stale = kv
        .send(
            "PUT",
            "test-app/ui/theme",
            &[("if-match", "\"1\"")],
            Some("x"),
        )
        .await;
    assert_eq!(status(&stale), 412);
    assert!(stale.outcome().contains("If-Match"));
    let fresh = kv
        .send(
            "PUT",
            "test-app/ui/theme",
            &[("if-match", "W/\"2\"")],
            Some("x"),
        )
        .await;
    assert_eq!((status(&fresh), fresh.header("etag")), (200, Some("\"3\"")));
    let again = kv
        .send(
            "PUT",
            "test-app/ui/theme",
            &[("if-none-match", "*")],
            Some("y"),
        )
        .await;
    assert_eq!(status(&again), 412);
    let only = kv
        .send(
            "PUT",
            "test-app/ui/font",
            &[("if-none-match", "*"), ("content-type", "text/plain")],
            Some("mono"),
        )
        .await;
    assert_eq!(status(&only), 201);
    let read = kv.send("GET", "test-app/ui/font", &[], None).await;
    assert_eq!(read.header("content-type"), Some("text/plain"));
    // The size limit (1 KiB in the tests), and nothing stored.
    let big = "x".repeat(1025);
    assert_eq!(
        status(&kv.send("PUT", "test-app/big", &[], Some(&big)).await),
        413
    );
    assert_eq!(
        status(&kv.send("GET", "test-app/big", &[], None).await),
        404
    );
    let just = "x".repeat(1024);
    assert_eq!(
        status(&kv.send("PUT", "test-app/big", &[], Some(&just)).await),
        201
    );
    // Listing by prefix.
    let list = kv.send("GET", "test-app?prefix=ui/", &[], None).await;
    assert_eq!(status(&list), 200);
    let keys: Vec<String> = list.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys, ["ui/font", "ui/theme"]);
    assert_eq!(list.json()["keys"][1]["version"], 3);
    // Deletes: If-Match, then gone.
    let wrong = kv
        .send(
            "DELETE",
            "test-app/ui/theme",
            &[("if-match", "\"1\"")],
            None,
        )
        .await;
    assert_eq!(status(&wrong), 412);
    let gone = kv
        .send(
            "DELETE",
            "test-app/ui/theme",
            &[("if-match", "\"3\"")],
            None,
        )
        .await;
    assert_eq!(status(&gone), 204);
    assert_eq!(
        status(&kv.send("GET", "test-app/ui/theme", &[], None).await),
        404
    );
    assert_eq!(
        status(&kv.send("DELETE", "test-app/ui/theme", &[], None).await),
        404
    );
    // Expiry: invisible from its time on.
    let expiring = kv
        .send("PUT", "test-app/session?ttl=1", &[], Some("s"))
        .await;
    assert_eq!(status(&expiring), 201);
    let listed = kv
        .send("GET", "test-app?prefix=session", &[], None)
        .await
        .json();
    assert!(listed["keys"][0]["expires"].is_string(), "{listed}");
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(
        status(&kv.send("GET", "test-app/session", &[], None).await),
        404
    );
    assert_eq!(
        status(
            &kv.send("PUT", "test-app/session?ttl=0", &[], Some("s"))
                .await
        ),
        400
    );
    assert_eq!(
        status(
            &kv.send("PUT", "test-app/session?ttl=x", &[], Some("s"))
                .await
        ),
        400
    );
    // Bad names and headers are 400s with an OperationOutcome.
    for (method, path, headers) in [
        ("PUT", "test-app/a%20b", vec![]),
        ("PUT", "test-app/a%00b", vec![]),
        ("GET", "test-app/a//b", vec![]),
        ("PUT", "test-app/ok", vec![("if-match", "nonsense")]),
        ("PUT", "test-app/ok", vec![("if-none-match", "\"1\"")]),
        ("GET", "test-app?prefix=%00", vec![]),
    ] {
        let resp = kv.send(method, path, &headers, Some("v")).await;
        assert_eq!(status(&resp), 400, "{method} {path}");
        assert!(!resp.outcome().is_empty());
    }
    // No token: 401.
    let url = format!("http://{}/kv/test-app/ui/font", kv.server.addr);
    assert_eq!(kv.server.get(&url).await.status.as_u16(), 401);
}

async fn namespaces_are_isolated(s: &TestServer) {
    let (kv, issuer) = kv_server(s, "ember-kv:shared").await;
    assert_eq!(
        status(&kv.send("PUT", "test-app/k", &[], Some("own")).await),
        201
    );
    assert_eq!(
        status(&kv.send("PUT", "shared/k", &[], Some("shared")).await),
        201
    );
    for (method, path) in [
        ("PUT", "other/k"),
        ("GET", "other/k"),
        ("DELETE", "other/k"),
        ("GET", "other"),
    ] {
        let resp = kv.send(method, path, &[], Some("x")).await;
        assert_eq!(status(&resp), 403, "{method} {path}");
    }
    // Another client sees neither the first one's namespace nor, without the scope,
    // the shared one.
    let mut claims = issuer.claims("openid", None);
    claims["client_id"] = Value::from("other");
    let other = Kv {
        token: issuer.sign(&claims),
        server: kv.server,
    };
    assert_eq!(
        status(&other.send("GET", "test-app/k", &[], None).await),
        403
    );
    assert_eq!(status(&other.send("GET", "shared/k", &[], None).await), 403);
    assert_eq!(status(&other.send("GET", "other/k", &[], None).await), 404);
    assert_eq!(
        status(&other.send("PUT", "other/k", &[], Some("mine")).await),
        201
    );
}
