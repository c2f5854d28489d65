//! Compression, as the standard tower-http layers do it: responses are compressed with
//! gzip or Brotli when the client's `Accept-Encoding` asks and the body is over 1 KiB
//! (the 400 KB CapabilityStatement shrinks about tenfold); request bodies may come with
//! `Content-Encoding: gzip`, and the body-size limit applies to what they decompress to,
//! so a small bomb is a 413 like any other large body. Other content codings are a 415.

use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::decompression::RequestDecompressionLayer;

use crate::error::ApiError;

/// Bodies smaller than this go out as they are: compressing them saves too little.
const MIN_SIZE: u16 = 1024;

/// Compresses responses when the client asks for gzip or `br`. Level 4 of each: most of
/// the size gain of the default levels for a fraction of their time (Brotli's default,
/// 11, is meant for static files).
pub(crate) fn responses() -> CompressionLayer<impl Predicate> {
    CompressionLayer::new()
        .no_deflate()
        .no_zstd()
        .quality(CompressionLevel::Precise(4))
        .compress_when(SizeAbove::new(MIN_SIZE).and(NotForContentType::IMAGES))
}

/// Decompresses gzip request bodies on the way to the handlers.
pub(crate) fn requests() -> RequestDecompressionLayer {
    RequestDecompressionLayer::new()
        .no_deflate()
        .no_br()
        .no_zstd()
}

/// Refuses content codings other than `gzip` and `identity` with a 415
/// OperationOutcome, before [`requests`] would answer with an empty one.
pub(crate) async fn supported_encoding(request: Request, next: Next) -> Response {
    let unsupported = request
        .headers()
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .find(|c| c != "gzip" && c != "identity" && !c.is_empty());
    match unsupported {
        Some(coding) => ApiError::UnsupportedMediaType(format!(
            "Content-Encoding {coding:?} is not supported; send the body as it is or gzip it"
        ))
        .into_response(),
        None => next.run(request).await,
    }
}
