//! CORS for browser apps (SMART apps, web pages) from the origins of
//! `EMBER_CORS_ORIGINS`: tower-http's layer answers preflights before authentication
//! (a preflight carries no token) and marks the answers to allowed origins, with any
//! request header the page asks for and credentials allowed (never to other origins).

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

/// The response headers a browser app may read.
const RESPONSE_HEADERS: [HeaderName; 6] = [
    header::LOCATION,
    header::ETAG,
    header::LAST_MODIFIED,
    header::CONTENT_LOCATION,
    header::WWW_AUTHENTICATE,
    HeaderName::from_static("x-request-id"),
];

/// The CORS layer for `origins`; `None` when there are none (no CORS headers at all).
pub(crate) fn layer(origins: &[String]) -> Option<CorsLayer> {
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim().trim_end_matches('/')).ok())
        .collect();
    if allowed.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(allowed))
            .allow_methods([
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            // Any header the page asks for (client libraries add their own, such as
            // `x-medplum`), and credentials: only ever for the listed origins.
            .allow_headers(AllowHeaders::mirror_request())
            .allow_credentials(true)
            .expose_headers(RESPONSE_HEADERS)
            .max_age(Duration::from_secs(600)),
    )
}
