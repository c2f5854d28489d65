//! Trace context: the tracing headers of an incoming request, carried through the
//! work done for it, copied verbatim onto every outgoing call, and used as the log `id`.

use http::{HeaderMap, HeaderName, HeaderValue};

/// The headers copied from an incoming request to every outgoing call made for it
/// (Istio/B3, W3C Trace Context, OpenTracing, and the platform's audit header).
pub const PROPAGATED: &[&str] = &[
    "x-request-id",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
    "x-ot-span-context",
    "traceparent",
    "tracestate",
    "x-audit-restriction-levels",
];

/// The trace context of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace id: from B3 (multi- or single-header), `traceparent` or `x-request-id`,
    /// or newly generated when none came in.
    pub trace_id: String,
    /// The incoming propagated headers, verbatim.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The caller's span id (B3 or W3C), the parent of the span of this request.
    pub parent_span_id: Option<String>,
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

impl TraceContext {
    /// Reads the trace context of an incoming request.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let propagated: Vec<(HeaderName, HeaderValue)> = PROPAGATED
            .iter()
            .flat_map(|name| {
                headers
                    .get_all(*name)
                    .iter()
                    .map(move |v| (HeaderName::from_static(name), v.clone()))
            })
            .collect();
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let trace_id = get("x-b3-traceid")
            .filter(|id| is_hex_id(id))
            .map(str::to_owned)
            .or_else(|| {
                get("b3")
                    .and_then(|b3| b3.split('-').next())
                    .filter(|id| is_hex_id(id))
                    .map(str::to_owned)
            })
            .or_else(|| {
                get("traceparent")
                    .and_then(|tp| tp.split('-').nth(1))
                    .filter(|id| id.len() == 32 && is_hex_id(id))
                    .map(str::to_owned)
            })
            .or_else(|| {
                get("x-request-id")
                    .filter(|id| !id.is_empty() && id.len() <= 128)
                    .map(sanitize)
            })
            .unwrap_or_else(new_trace_id);
        let span = |id: &str| (id.len() == 16 && is_hex_id(id)).then(|| id.to_ascii_lowercase());
        let parent_span_id = get("x-b3-spanid")
            .and_then(span)
            .or_else(|| get("b3").and_then(|b3| b3.split('-').nth(1)).and_then(span))
            .or_else(|| {
                get("traceparent")
                    .and_then(|tp| tp.split('-').nth(2))
                    .and_then(span)
            });
        Self {
            trace_id,
            headers: propagated,
            parent_span_id,
        }
    }

    /// Runs `fut` with this context as the current one.
    pub async fn scope<F: std::future::Future>(self, fut: F) -> F::Output {
        CURRENT.scope(self, fut).await
    }

    /// The context of the request being served, if any.
    pub fn current() -> Option<TraceContext> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// The trace id of the request being served, if any.
    pub fn current_id() -> Option<String> {
        CURRENT.try_with(|c| c.trace_id.clone()).ok()
    }

    /// This context as JSON text, to carry it to work done later (a job).
    pub fn to_carrier(&self) -> String {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
            .collect();
        serde_json::json!({
            "id": self.trace_id,
            "headers": headers,
            "parent": self.parent_span_id,
        })
        .to_string()
    }

    /// The context [`TraceContext::to_carrier`] wrote; `None` when the text is not one.
    pub fn from_carrier(text: &str) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        let trace_id = value.get("id")?.as_str()?.to_owned();
        let headers = value
            .get("headers")?
            .as_array()?
            .iter()
            .filter_map(|pair| {
                let name = HeaderName::from_bytes(pair.get(0)?.as_str()?.as_bytes()).ok()?;
                let value = HeaderValue::from_str(pair.get(1)?.as_str()?).ok()?;
                Some((name, value))
            })
            .collect();
        let parent_span_id = value
            .get("parent")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        Some(Self {
            trace_id,
            headers,
            parent_span_id,
        })
    }
}

/// A new 128-bit trace id in lower-case hex, as B3 and W3C use.
pub fn new_trace_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn is_hex_id(id: &str) -> bool {
    (16..=32).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_hexdigit())
        && id.bytes().any(|b| b != b'0')
}

/// Keeps a client-supplied request id printable and short.
fn sanitize(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(128)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn reads_b3_multi_single_and_w3c() {
        let multi = TraceContext::from_headers(&headers(&[
            ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
            ("x-b3-spanid", "a2fb4a1d1a96d312"),
            ("x-b3-sampled", "1"),
            ("user-agent", "x"),
        ]));
        assert_eq!(multi.trace_id, "463ac35c9f6413ad48485a3953bb6124");
        assert_eq!(multi.parent_span_id.as_deref(), Some("a2fb4a1d1a96d312"));
        assert_eq!(multi.headers.len(), 3);
        let single = TraceContext::from_headers(&headers(&[(
            "b3",
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1",
        )]));
        assert_eq!(single.trace_id, "80f198ee56343ba864fe8b2a57d3eff7");
        let w3c = TraceContext::from_headers(&headers(&[(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )]));
        assert_eq!(w3c.trace_id, "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(w3c.parent_span_id.as_deref(), Some("b7ad6b7169203331"));
    }

    #[test]
    fn generates_an_id_when_none_comes_in() {
        let a = TraceContext::from_headers(&HeaderMap::new());
        let b = TraceContext::from_headers(&HeaderMap::new());
        assert_eq!(a.trace_id.len(), 32);
        assert_ne!(a.trace_id, b.trace_id);
        let bogus = TraceContext::from_headers(&headers(&[("x-b3-traceid", "not-hex")]));
        assert_eq!(bogus.trace_id.len(), 32);
        assert_ne!(bogus.trace_id, "not-hex");
    }

    #[test]
    fn a_carrier_keeps_the_id_and_headers() {
        let ctx = TraceContext::from_headers(&headers(&[
            ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
            ("x-b3-spanid", "a2fb4a1d1a96d312"),
        ]));
        let back = TraceContext::from_carrier(&ctx.to_carrier()).unwrap();
        assert_eq!(back, ctx);
        let generated = TraceContext::from_headers(&HeaderMap::new());
        assert_eq!(
            TraceContext::from_carrier(&generated.to_carrier())
                .unwrap()
                .trace_id,
            generated.trace_id
        );
        assert_eq!(TraceContext::from_carrier("{}"), None);
    }

    #[tokio::test]
    async fn is_current_inside_its_scope_only() {
        assert_eq!(TraceContext::current_id(), None);
        let ctx = TraceContext::from_headers(&headers(&[("x-request-id", "abc")]));
        let seen = ctx.scope(async { TraceContext::current_id() }).await;
        assert_eq!(seen.as_deref(), Some("abc"));
    }
}
