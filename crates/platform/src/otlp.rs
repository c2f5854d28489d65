//! Span export over OTLP/HTTP with JSON encoding, on when `OPENTELEMETRY_COLLECTOR_URL`
//! is set. Every request becomes one server span in the trace it came with; spans
//! are batched and sent by a background task through the shared [`HttpClient`], and
//! dropped (never blocking a request) when the collector cannot keep up.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, header};
use http_body_util::Full;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::http_client::HttpClient;

/// One finished span.
#[derive(Debug, Clone)]
pub struct Span {
    /// 32 lower-case hex digits.
    pub trace_id: String,
    /// 16 lower-case hex digits.
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<(&'static str, Value)>,
    pub error: bool,
}

/// A handle to the background exporter. Cheap to clone.
#[derive(Clone)]
pub struct SpanExporter {
    tx: mpsc::Sender<Span>,
}

const QUEUE: usize = 8192;
const BATCH: usize = 512;

impl SpanExporter {
    /// Starts exporting to `collector` (e.g. `http://otel-collector:4318`; `/v1/traces`
    /// is appended unless the URL already ends with it).
    pub fn start(collector: &str, service: &str, client: HttpClient) -> Self {
        let url = if collector.trim_end_matches('/').ends_with("/v1/traces") {
            collector.to_owned()
        } else {
            format!("{}/v1/traces", collector.trim_end_matches('/'))
        };
        let (tx, mut rx) = mpsc::channel::<Span>(QUEUE);
        let service = service.to_owned();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            loop {
                let first = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await;
                match first {
                    Ok(Some(span)) => batch.push(span),
                    Ok(None) => {
                        flush(&client, &url, &service, &mut batch).await;
                        return;
                    }
                    Err(_) => {}
                }
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(span) => batch.push(span),
                        Err(_) => break,
                    }
                }
                flush(&client, &url, &service, &mut batch).await;
            }
        });
        Self { tx }
    }

    /// Queues a finished span; drops it when the queue is full.
    pub fn record(&self, span: Span) {
        let _ = self.tx.try_send(span);
    }
}

async fn flush(client: &HttpClient, url: &str, service: &str, batch: &mut Vec<Span>) {
    if batch.is_empty() {
        return;
    }
    let body = encode(service, batch).to_string();
    batch.clear();
    let Ok(request) = Request::post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
    else {
        return;
    };
    match client.send(request).await {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => tracing::warn!(
            status = r.status().as_u16(),
            "the OpenTelemetry collector refused spans"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "spans could not be sent to the OpenTelemetry collector")
        }
    }
}

fn nanos(t: SystemTime) -> String {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
        .to_string()
}

/// The OTLP/JSON `ExportTraceServiceRequest` for `spans`.
pub fn encode(service: &str, spans: &[Span]) -> Value {
    let spans: Vec<Value> = spans
        .iter()
        .map(|s| {
            let mut span = json!({
                "traceId": s.trace_id,
                "spanId": s.span_id,
                "name": s.name,
                "kind": 2,
                "startTimeUnixNano": nanos(s.start),
                "endTimeUnixNano": nanos(s.end),
                "attributes": s.attributes.iter().map(|(k, v)| json!({"key": k, "value": any_value(v)})).collect::<Vec<_>>(),
                "status": {"code": if s.error { 2 } else { 1 }},
            });
            if let Some(parent) = &s.parent_span_id {
                span["parentSpanId"] = json!(parent);
            }
            span
        })
        .collect();
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "ember", "version": env!("CARGO_PKG_VERSION")}, "spans": spans}],
    }]})
}

fn any_value(v: &Value) -> Value {
    match v {
        Value::Bool(b) => json!({"boolValue": b}),
        Value::Number(n) if n.is_i64() => json!({"intValue": n.to_string()}),
        Value::Number(n) => json!({"doubleValue": n}),
        Value::String(s) => json!({"stringValue": s}),
        other => json!({"stringValue": other.to_string()}),
    }
}

/// A new span id: 16 lower-case hex digits.
pub fn new_span_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}

/// A trace id OTLP accepts: the context's id when it is 32 hex digits, else a stable
/// 32-hex-digit form of it (B3 64-bit ids are left-padded; other ids are hashed).
pub fn otlp_trace_id(id: &str) -> String {
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return id.to_ascii_lowercase();
    }
    if id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return format!("{:0>32}", id.to_ascii_lowercase());
    }
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, id.as_bytes())
        .simple()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_otlp_json() {
        let start = UNIX_EPOCH + Duration::from_millis(1500);
        let span = Span {
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
            span_id: "00f067aa0ba902b7".into(),
            parent_span_id: Some("b7ad6b7169203331".into()),
            name: "GET /fhir/{type}/{id}".into(),
            start,
            end: start + Duration::from_millis(3),
            attributes: vec![
                ("http.response.status_code", json!(200)),
                ("http.route", json!("/fhir/{type}/{id}")),
            ],
            error: false,
        };
        let v = encode("ember-test", &[span]);
        let s = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(
            v["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"],
            "ember-test"
        );
        assert_eq!(s["traceId"], "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(s["parentSpanId"], "b7ad6b7169203331");
        assert_eq!(s["startTimeUnixNano"], "1500000000");
        assert_eq!(s["endTimeUnixNano"], "1503000000");
        assert_eq!(s["kind"], 2);
        assert_eq!(s["attributes"][0]["value"]["intValue"], "200");
        assert_eq!(new_span_id().len(), 16);
        assert_eq!(
            otlp_trace_id("a2fb4a1d1a96d312"),
            "0000000000000000a2fb4a1d1a96d312"
        );
        assert_eq!(otlp_trace_id("req-1").len(), 32);
        assert_eq!(otlp_trace_id("req-1"), otlp_trace_id("req-1"));
    }
}
