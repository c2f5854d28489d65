//! The one HTTP client for every outgoing call. It copies the trace headers of the
//! request being served verbatim (P8) and identifies Ember with `User-Agent` (P9). It
//! speaks `https` (rustls with the Mozilla root certificates, TLS 1.2 and 1.3) and plain
//! `http`.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::trace::TraceContext;

/// Why an outgoing call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the call failed: {0}")]
    Transport(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
}

/// A shared, cheaply cloneable HTTP client.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    user_agent: HeaderValue,
    timeout: Duration,
    max_body: usize,
}

impl HttpClient {
    /// A client that sends `User-Agent: Ember/<version> (<app_name>)`.
    pub fn new(app_name: &str, timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        // The https connector hands `https` URLs to the TCP connector as well.
        connector.enforce_http(false);
        // rustls is built with the ring provider only, so its default is ring.
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let agent = format!("Ember/{} ({})", env!("CARGO_PKG_VERSION"), app_name);
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            user_agent: HeaderValue::from_str(&agent)
                .unwrap_or_else(|_| HeaderValue::from_static("Ember")),
            timeout,
            max_body: 16 * 1024 * 1024,
        }
    }

    /// Sends `request` with the identity and trace headers, and reads the whole answer.
    pub async fn send(
        &self,
        mut request: Request<Full<Bytes>>,
    ) -> Result<Response<Bytes>, ClientError> {
        let headers = request.headers_mut();
        headers.insert(header::USER_AGENT, self.user_agent.clone());
        if let Some(context) = TraceContext::current() {
            for (name, value) in context.headers {
                headers.append(name, value);
            }
        }
        let call = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| ClientError::Transport(e.to_string()))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, self.max_body)
                .collect()
                .await
                .map_err(|_| ClientError::TooLarge(self.max_body))?
                .to_bytes();
            Ok(Response::from_parts(parts, body))
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| ClientError::Timeout(self.timeout))?
    }
}

/// `https://…`, or `http://` to a loopback host: where Ember may send credentials.
pub fn secure_or_loopback(url: &str) -> bool {
    if url.starts_with("https://") {
        return url.len() > "https://".len();
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot echo server: answers 200 and returns the request head it received.
    async fn echo_once() -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await
                .unwrap();
            String::from_utf8_lossy(&head).to_lowercase()
        });
        (url, task)
    }

    #[tokio::test]
    async fn propagates_every_trace_header_and_identifies_itself() {
        let (url, seen) = echo_once().await;
        let mut incoming = HeaderMap::new();
        for name in crate::trace::PROPAGATED {
            incoming.insert(
                HeaderName::from_static(name),
                HeaderValue::from_str(&format!("v-{name}")).unwrap(),
            );
        }
        incoming.insert("authorization", HeaderValue::from_static("Bearer secret"));
        let context = TraceContext::from_headers(&incoming);
        let client = HttpClient::new("telemed-test", Duration::from_secs(5));
        let request = Request::get(&url).body(Full::new(Bytes::new())).unwrap();
        let response = context.scope(client.send(request)).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.body().as_ref(), b"ok");
        let head = seen.await.unwrap();
        for name in crate::trace::PROPAGATED {
            assert!(
                head.contains(&format!("{name}: v-{name}")),
                "{name} missing in {head}"
            );
        }
        assert!(
            head.contains(&format!(
                "user-agent: ember/{} (telemed-test)",
                env!("CARGO_PKG_VERSION")
            )),
            "{head}"
        );
        assert!(
            !head.contains("authorization"),
            "incoming credentials must not leak: {head}"
        );
    }

    #[tokio::test]
    async fn times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let _hold = tokio::spawn(async move {
            let (_socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
        });
        let client = HttpClient::new("t", Duration::from_millis(200));
        let err = client
            .send(Request::get(&url).body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Timeout(_)), "{err}");
    }

    #[tokio::test]
    async fn speaks_tls_to_https_urls() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/", listener.local_addr().unwrap());
        let first = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 3];
            socket.read_exact(&mut buf).await.unwrap();
            buf
        });
        let client = HttpClient::new("t", Duration::from_millis(500));
        let request = Request::get(&url).body(Full::new(Bytes::new())).unwrap();
        // The peer is no TLS server, so the call fails; what it received is a TLS
        // handshake record (0x16, version 3.x), not a plain HTTP request.
        assert!(client.send(request).await.is_err());
        let head = first.await.unwrap();
        assert_eq!(head[0], 0x16, "{head:?}");
        assert_eq!(head[1], 0x03, "{head:?}");
    }
}
