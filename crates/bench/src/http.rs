//! Minimal HTTP/1.1 client (one hyper connection per worker) and the
//! HTTP-ceiling server.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Upper bound for one request (connect + send + full body).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

const FHIR_JSON: &str = "application/fhir+json";

fn user_agent() -> String {
    format!("Ember-bench/{}", env!("CARGO_PKG_VERSION"))
}

/// Where the FHIR server lives.
#[derive(Debug, Clone)]
pub struct Target {
    /// Host for `TcpStream::connect` (IPv6 brackets removed).
    pub connect_host: String,
    pub port: u16,
    /// Value of the `Host` header.
    pub host_header: HeaderValue,
    /// Base path without trailing slash, e.g. `/fhir` (empty for root).
    pub base_path: String,
    pub user_agent: HeaderValue,
    /// `Authorization: Bearer …`, sent with every request when set.
    pub authorization: Option<HeaderValue>,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self> {
        let uri: http::Uri = url
            .trim()
            .parse()
            .with_context(|| format!("invalid --url {url:?}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => bail!(
                "--url {url:?}: https is not supported, the bench speaks plain HTTP/1.1 (put it behind http or use the server's http port)"
            ),
            _ => bail!(
                "--url {url:?} must be an absolute http:// URL, e.g. http://127.0.0.1:8080/fhir"
            ),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| anyhow!("--url {url:?} has no host"))?;
        let host = authority.host();
        let port = authority.port_u16().unwrap_or(80);
        let connect_host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let host_header = HeaderValue::from_str(authority.as_str())
            .with_context(|| format!("--url {url:?}: bad host"))?;
        let base_path = uri.path().trim_end_matches('/').to_owned();
        Ok(Self {
            connect_host,
            port,
            host_header,
            base_path,
            user_agent: HeaderValue::from_str(&user_agent())?,
            authorization: None,
        })
    }

    /// This target, with a bearer token on every request.
    pub fn with_bearer(mut self, token: Option<&str>) -> Result<Self> {
        self.authorization = token
            .map(|t| HeaderValue::from_str(&format!("Bearer {}", t.trim())))
            .transpose()
            .context("--bearer: not a valid header value")?;
        Ok(self)
    }

    /// `base_path` + `/` + `rest`.
    pub fn path(&self, rest: &str) -> String {
        format!("{}/{}", self.base_path, rest.trim_start_matches('/'))
    }

    pub fn describe(&self) -> String {
        format!("{}:{}", self.connect_host, self.port)
    }

    /// Where a URL the server named (a status or file URL) is sent: `None` and its path
    /// and query when it is on this target's host and port (or relative), else a target
    /// of its own (without the bearer token, which goes to this target only).
    pub fn locate(&self, url: &str) -> Result<(Option<Target>, String)> {
        let url = url.trim();
        if url.starts_with('/') {
            return Ok((None, url.to_owned()));
        }
        if !url.contains("://") {
            return Ok((None, self.path(url)));
        }
        let uri: http::Uri = url
            .parse()
            .with_context(|| format!("the server named an invalid URL {url:?}"))?;
        let path = uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        let same = uri.scheme_str() == Some("http")
            && uri.host().is_some_and(|h| {
                h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .eq_ignore_ascii_case(&self.connect_host)
            })
            && uri.port_u16().unwrap_or(80) == self.port;
        if same {
            return Ok((None, path));
        }
        let other = Target::parse(url)
            .with_context(|| format!("the server named {url:?}, which cannot be fetched"))?;
        Ok((Some(other), path))
    }
}

/// A completed HTTP exchange.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub location: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// A response header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One keep-alive HTTP/1.1 connection, reconnected on demand.
pub struct Conn {
    target: std::sync::Arc<Target>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub fn new(target: std::sync::Arc<Target>) -> Self {
        Self {
            target,
            sender: None,
        }
    }

    /// The server it talks to.
    pub fn target(&self) -> &Target {
        &self.target
    }

    async fn connect(target: &Target) -> Result<SendRequest<Full<Bytes>>> {
        let stream = TcpStream::connect((target.connect_host.as_str(), target.port))
            .await
            .with_context(|| format!("cannot connect to {}", target.describe()))?;
        stream.set_nodelay(true).context("setting TCP_NODELAY")?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake failed")?;
        tokio::spawn(async move {
            // Errors surface on the sender side; nothing to do here.
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// Makes sure a usable connection exists (a connection the server closed
    /// after the previous, successful exchange is replaced silently).
    async fn ready(&mut self) -> Result<&mut SendRequest<Full<Bytes>>> {
        let reusable = match self.sender.as_mut() {
            Some(s) if !s.is_closed() => s.ready().await.is_ok(),
            _ => false,
        };
        if !reusable {
            self.sender = None;
            let sender = tokio::time::timeout(REQUEST_TIMEOUT, Self::connect(&self.target))
                .await
                .map_err(|_| anyhow!("connect to {} timed out", self.target.describe()))??;
            self.sender = Some(sender);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| anyhow!("connection unavailable"))
    }

    /// Sends one request and reads the whole response. Transport failures
    /// return `Err` and drop the connection so the next call reconnects.
    pub async fn send(&mut self, method: Method, path: &str, body: Option<Bytes>) -> Result<Reply> {
        self.send_with(method, path, &[], body, REQUEST_TIMEOUT)
            .await
    }

    /// Like [`Conn::send`], with extra request headers and its own timeout.
    pub async fn send_with(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&'static str, &'static str)],
        body: Option<Bytes>,
        timeout: std::time::Duration,
    ) -> Result<Reply> {
        let result =
            tokio::time::timeout(timeout, self.send_inner(method, path, headers, body)).await;
        self.settle(result, timeout)
    }

    /// The result of a call bounded by `timeout`; a failed one drops the connection so
    /// the next call reconnects.
    fn settle<T>(
        &mut self,
        result: Result<Result<T>, tokio::time::error::Elapsed>,
        timeout: Duration,
    ) -> Result<T> {
        let e = match result {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => e,
            Err(_) => anyhow!("request timed out after {}s", timeout.as_secs()),
        };
        self.sender = None;
        Err(e)
    }

    async fn send_inner(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&'static str, &'static str)],
        body: Option<Bytes>,
    ) -> Result<Reply> {
        let resp = self.request(method, path, headers, body).await?;
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .context("reading response body")?
            .to_bytes();
        let location = parts
            .headers
            .get(header::LOCATION)
            .or_else(|| parts.headers.get("content-location"))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Reply {
            status: parts.status,
            location,
            headers: parts.headers,
            body,
        })
    }

    /// Sends one request and returns the response as soon as its head is in, within
    /// `timeout`; the caller reads the body (and bounds the time that takes). A
    /// transport failure drops the connection.
    pub async fn open(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&'static str, &'static str)],
        timeout: Duration,
    ) -> Result<Response<Incoming>> {
        let result = tokio::time::timeout(timeout, self.request(method, path, headers, None)).await;
        self.settle(result, timeout)
    }

    /// Sends one request; `headers` replace the default ones of the same name.
    async fn request(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&'static str, &'static str)],
        body: Option<Bytes>,
    ) -> Result<Response<Incoming>> {
        let host = self.target.host_header.clone();
        let ua = self.target.user_agent.clone();
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, host)
            .header(header::ACCEPT, FHIR_JSON)
            .header(header::USER_AGENT, ua);
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, FHIR_JSON);
        }
        if let Some(auth) = &self.target.authorization {
            builder = builder.header(header::AUTHORIZATION, auth.clone());
        }
        let mut req = builder
            .body(Full::new(body.unwrap_or_default()))
            .with_context(|| format!("building request for {path}"))?;
        for (name, value) in headers {
            req.headers_mut()
                .insert(*name, HeaderValue::from_static(value));
        }
        let sender = self.ready().await?;
        sender.send_request(req).await.context("request failed")
    }
}

/// Extracts `(type, id)` from a `Location` header such as
/// `http://h/fhir/Patient/123/_history/1`, `Patient/123` or `/fhir/Patient/123`.
pub fn parse_location(location: &str) -> Option<(String, String)> {
    let path = location.split(['?', '#']).next()?;
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let end = match segs.iter().rposition(|s| *s == "_history") {
        Some(pos) => pos,
        None => segs.len(),
    };
    if end < 2 {
        return None;
    }
    let (rtype, id) = (segs[end - 2], segs[end - 1]);
    let is_type = rtype.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && rtype.chars().all(|c| c.is_ascii_alphanumeric());
    if !is_type || id.contains(':') {
        return None;
    }
    Some((rtype.to_owned(), id.to_owned()))
}

/// Id of a created resource: Location header first, else the body's `id`.
pub fn created_id(reply: &Reply) -> Option<String> {
    if let Some((_, id)) = reply.location.as_deref().and_then(parse_location) {
        return Some(id);
    }
    let v: serde_json::Value = serde_json::from_slice(&reply.body).ok()?;
    v.get("id")?.as_str().map(str::to_owned)
}

/// Sees the head of each request a [`CeilingServer`] receives, before it answers.
pub type Observer = Arc<dyn Fn(&http::request::Parts) + Send + Sync>;

/// The HTTP-ceiling server: a minimal hyper server answering every request
/// with the same FHIR JSON body, on its own thread and 2-worker runtime. It also
/// serves as a receiver of notifications ([`CeilingServer::observing`]).
pub struct CeilingServer {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CeilingServer {
    pub fn start(body: Bytes) -> Result<Self> {
        Self::observing(body, Arc::new(|_: &http::request::Parts| {}))
    }

    /// A server that shows `observe` every request it receives.
    pub fn observing(body: Bytes, observe: Observer) -> Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .context("binding the HTTP-ceiling server on 127.0.0.1:0")?;
        listener
            .set_nonblocking(true)
            .context("setting the ceiling listener non-blocking")?;
        let addr = listener.local_addr().context("ceiling listener address")?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bench-ceiling")
            .enable_all()
            .build()
            .context("building the ceiling server runtime")?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("bench-ceiling-main".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            eprintln!("ceiling server: {e}");
                            return;
                        }
                    };
                    tokio::select! {
                        _ = rx => {}
                        _ = accept_loop(listener, body, observe) => {}
                    }
                });
                // Dropping the runtime here cancels open connections.
            })
            .context("spawning the ceiling server thread")?;
        Ok(Self {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}/fhir", self.addr)
    }
}

impl Drop for CeilingServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, body: Bytes, observe: Observer) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (body, observe) = (body.clone(), Arc::clone(&observe));
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let body = body.clone();
                let (head, incoming) = req.into_parts();
                observe(&head);
                async move {
                    // Read the request body to its end, so the connection can be reused.
                    let _ = incoming.collect().await;
                    let mut resp = hyper::Response::new(Full::new(body));
                    resp.headers_mut()
                        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_parsing() {
        let p = |s: &str| parse_location(s);
        let pair = |t: &str, i: &str| Some((t.to_owned(), i.to_owned()));
        assert_eq!(
            p("http://h:8080/fhir/Patient/123/_history/1"),
            pair("Patient", "123")
        );
        assert_eq!(
            p("http://h/fhir/Observation/abc-9"),
            pair("Observation", "abc-9")
        );
        assert_eq!(p("Patient/x1/_history/3"), pair("Patient", "x1"));
        assert_eq!(
            p("/baseR4/Condition/5?_format=json"),
            pair("Condition", "5")
        );
        assert_eq!(p("http://h/fhir/Patient/7/"), pair("Patient", "7"));
        assert_eq!(p("http://h/fhir/Patient"), None);
        assert_eq!(p(""), None);
        assert_eq!(p("Patient"), None);
    }

    #[test]
    fn created_id_falls_back_to_body() {
        let reply = Reply {
            status: StatusCode::CREATED,
            location: None,
            headers: HeaderMap::new(),
            body: Bytes::from_static(br#"{"resourceType":"Patient","id":"b7"}"#),
        };
        assert_eq!(created_id(&reply).as_deref(), Some("b7"));
        let reply = Reply {
            status: StatusCode::CREATED,
            location: Some("http://h/fhir/Patient/l1/_history/1".into()),
            headers: HeaderMap::new(),
            body: Bytes::from_static(br#"{"id":"b7"}"#),
        };
        assert_eq!(created_id(&reply).as_deref(), Some("l1"));
    }

    #[test]
    fn target_parsing() {
        let t = Target::parse("http://127.0.0.1:8080/fhir/").expect("valid");
        assert_eq!(t.port, 8080);
        assert_eq!(t.connect_host, "127.0.0.1");
        assert_eq!(t.path("Patient/1"), "/fhir/Patient/1");
        let t = Target::parse("http://[::1]/").expect("valid");
        assert_eq!(t.connect_host, "::1");
        assert_eq!(t.port, 80);
        assert_eq!(t.path("metadata"), "/metadata");
        assert!(Target::parse("https://x/fhir").is_err());
        let with = Target::parse("http://h/fhir")
            .and_then(|t| t.with_bearer(Some(" abc ")))
            .expect("valid");
        assert_eq!(
            with.authorization,
            Some(HeaderValue::from_static("Bearer abc"))
        );
        let bad = Target::parse("http://h/fhir").and_then(|t| t.with_bearer(Some("a\nb")));
        assert!(bad.is_err());
        assert!(Target::parse("localhost:8080").is_err());
    }
}
