//! Compression: responses in gzip or Brotli when the client asks and the body is big
//! enough, gzip request bodies, and the body-size limit on what they decompress to.

use std::io::{Read, Write};

use bytes::Bytes;
use serde_json::{Value, json};

use super::put;
use crate::common::{Resp, TestServer, TestSettings, expect, expect_outcome};

both_stores!(
    big_responses_are_compressed_when_asked,
    gzip_request_bodies_are_accepted,
    a_gzip_bomb_is_413_and_stores_nothing,
);

fn gzip(data: &[u8]) -> Bytes {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    Bytes::from(e.finish().unwrap())
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn unbrotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(data, 4096)
        .read_to_end(&mut out)
        .unwrap();
    out
}

async fn get_encoded(s: &TestServer, path: &str, accept: &str) -> Resp {
    s.send("GET", path, &[("accept-encoding", accept)], None)
        .await
}

async fn big_responses_are_compressed_when_asked(s: &TestServer) {
    let plain = s.get("metadata").await;
    expect(&plain, 200);
    assert_eq!(plain.header("content-encoding"), None);
    let statement: Value = plain.json();
    assert_eq!(statement["resourceType"], "CapabilityStatement");
    for (accept, coding) in [("gzip", "gzip"), ("br", "br"), ("gzip;q=0.5, br", "br")] {
        let resp = get_encoded(s, "metadata", accept).await;
        expect(&resp, 200);
        assert_eq!(resp.header("content-encoding"), Some(coding), "{accept}");
        assert!(
            resp.body.len() * 4 < plain.body.len(),
            "{accept}: {} compressed bytes of {}",
            resp.body.len(),
            plain.body.len()
        );
        let body = match coding {
            "gzip" => gunzip(&resp.body),
            _ => unbrotli(&resp.body),
        };
        assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), statement);
    }
    // Small bodies go out as they are, and so does everything for a client that asks
    // for no coding Ember speaks.
    expect(&put(s, "Patient", "small", json!({})).await, 201);
    let small = get_encoded(s, "Patient/small", "gzip, br").await;
    expect(&small, 200);
    assert_eq!(small.header("content-encoding"), None);
    assert_eq!(small.json()["id"], "small");
    let other = get_encoded(s, "metadata", "compress").await;
    expect(&other, 200);
    assert_eq!(other.header("content-encoding"), None);
    assert_eq!(other.json()["resourceType"], "CapabilityStatement");
}

async fn gzip_request_bodies_are_accepted(s: &TestServer) {
    let patient = json!({"resourceType": "Patient", "name": [{"family": "Gzip"}]});
    let body = gzip(patient.to_string().as_bytes());
    let headers = [
        ("content-type", "application/fhir+json"),
        ("content-encoding", "gzip"),
    ];
    let created = s
        .http
        .try_send_bytes("POST", "Patient", &headers, Some(body))
        .await
        .unwrap();
    expect(&created, 201);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let read = s.get(&format!("Patient/{id}")).await;
    assert_eq!(read.json()["name"][0]["family"], "Gzip");
    // Bytes that are not gzip are a 400; a coding Ember does not speak is a 415.
    let broken = s
        .http
        .try_send_bytes(
            "POST",
            "Patient",
            &headers,
            Some(Bytes::from_static(b"not gzip")),
        )
        .await
        .unwrap();
    expect_outcome(&broken, 400);
    let compress = [
        ("content-type", "application/fhir+json"),
        ("content-encoding", "compress"),
    ];
    let other = s
        .http
        .try_send_bytes(
            "POST",
            "Patient",
            &compress,
            Some(Bytes::from(patient.to_string())),
        )
        .await
        .unwrap();
    expect_outcome(&other, 415);
}

async fn a_gzip_bomb_is_413_and_stores_nothing(s: &TestServer) {
    let small = TestServer::start_with(
        s.backend,
        TestSettings {
            max_body_bytes: 64 * 1024,
            ..Default::default()
        },
    )
    .await;
    // 8 MiB of JSON that gzip turns into a few kilobytes.
    let text = "0".repeat(8 * 1024 * 1024);
    let bomb = json!({"resourceType": "Patient", "id": "bomb", "name": [{"text": text}]});
    let body = gzip(bomb.to_string().as_bytes());
    assert!(body.len() < 64 * 1024, "{} bytes", body.len());
    let headers = [
        ("content-type", "application/fhir+json"),
        ("content-encoding", "gzip"),
    ];
    let resp = small
        .http
        .try_send_bytes("PUT", "Patient/bomb", &headers, Some(body))
        .await
        .unwrap();
    expect_outcome(&resp, 413);
    expect_outcome(&small.get("Patient/bomb").await, 404);
    let count = small.get("Patient?_summary=count").await;
    expect(&count, 200);
    assert_eq!(count.json()["total"], 0);
}
