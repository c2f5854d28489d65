//! The `subscription-notify` job: one notification of one subscription for one
//! version, at least once.
//!
//! - `rest-hook`: with an empty payload a `POST` to the endpoint without a body; with
//!   `application/fhir+json` or `application/fhir+xml` a `PUT` of the version in that
//!   format to `[endpoint]/[type]/[id]` (R4: the endpoint is then a service base). Each carries the channel's headers and
//!   [`EVENT_HEADER`], the event id, the same on every retry, so a receiver can drop
//!   repeats. Sent with the platform's client, in the trace context of the write that
//!   caused it. A failure (no answer, or not 2xx) is retried by the job queue with
//!   exponential backoff; after the last attempt (`job_max_attempts`) the
//!   Subscription's `status` becomes `error` with the reason in `error`.
//! - `websocket`: the event goes on the store's bus, so every instance pings its
//!   clients bound to the subscription ([`crate::hub`]).
//!
//! A subscription that is no longer active (or has ended) when its notification runs
//! is not notified.

use std::sync::Arc;

use bytes::Bytes;
use ember_fhir::instant;
use ember_platform::http_client::HttpClient;
use ember_platform::metrics::Metrics;
use ember_repo::{JobContext, JobError, JobHandler, Ran, RepoError};
use ember_store::Job;
use http::{Method, Request, header};
use http_body_util::Full;
use serde_json::{Value, json};

use crate::matching::{payload, set_error};
use crate::model::{Channel, FHIR_JSON, FHIR_XML, Payload, Subscription};
use crate::{NOTIFY_JOB, SUBSCRIPTION, hub};

/// The header that carries a notification's event id.
pub const EVENT_HEADER: &str = "x-ember-event-id";

/// Sends notifications.
pub(crate) struct Notify {
    pub client: HttpClient,
    pub metrics: Arc<Metrics>,
}

#[async_trait::async_trait]
impl JobHandler for Notify {
    fn kind(&self) -> &'static str {
        NOTIFY_JOB
    }

    async fn run(&self, ctx: &JobContext, job: &Job) -> Result<Ran, JobError> {
        let payload = payload(job)?;
        let field = |name: &str| payload[name].as_str().unwrap_or_default().to_owned();
        let (sid, res_type, id, event) = (
            field("subscription"),
            field("type"),
            field("id"),
            field("event"),
        );
        let version = payload["version"].as_i64().unwrap_or_default();
        let repo = ctx.repo();
        let subscription = match repo.read(SUBSCRIPTION, &sid).await {
            Ok(stored) => serde_json::from_str::<Value>(&stored.body)
                .ok()
                .and_then(|r| Subscription::parse(&r).ok()),
            Err(RepoError::NotFound(_) | RepoError::Gone(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let Some(subscription) = subscription.filter(|s| s.is_live(instant::now())) else {
            return Ok(Ran::Done(Some(
                json!({"skipped": "the subscription is not active"}),
            )));
        };
        let channel = subscription.channel.name();
        let (endpoint, carries, headers) = match subscription.channel {
            Channel::Websocket => {
                hub::publish(repo.store().as_ref(), &sid, &event).await?;
                self.metrics.subscription_notification(channel, "delivered");
                return Ok(Ran::Done(None));
            }
            Channel::RestHook {
                endpoint,
                payload,
                headers,
            } => (endpoint, payload, headers),
        };
        let mut request = if carries == Payload::Empty {
            Request::builder()
                .method(Method::POST)
                .uri(endpoint.as_str())
                .body(Full::new(Bytes::new()))
        } else {
            let stored = repo.vread(&res_type, &id, &version.to_string()).await?;
            let (mime, body) = content(carries, stored.body)?;
            let url = format!("{}/{res_type}/{id}", endpoint.trim_end_matches('/'));
            Request::builder()
                .method(Method::PUT)
                .uri(url)
                .header(header::CONTENT_TYPE, mime)
                .body(Full::new(Bytes::from(body)))
        }
        .map_err(|e| JobError::Failed(format!("the endpoint is not a valid URL: {e}")))?;
        let sent = request.headers_mut();
        for (name, value) in &headers {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value),
            ) {
                sent.append(name, value);
            }
        }
        if let Ok(value) = http::HeaderValue::from_str(&event) {
            sent.insert(EVENT_HEADER, value);
        }
        let reason = match self.client.send(request).await {
            Ok(answer) if answer.status().is_success() => {
                self.metrics.subscription_notification(channel, "delivered");
                return Ok(Ran::Done(None));
            }
            Ok(answer) => format!("the endpoint answered {}", answer.status()),
            Err(e) => e.to_string(),
        };
        let max = i32::try_from(repo.limits().job_max_attempts).unwrap_or(i32::MAX);
        if job.attempts < max {
            self.metrics.subscription_notification(channel, "retried");
            return Err(JobError::Failed(reason));
        }
        self.metrics.subscription_notification(channel, "failed");
        let reason = format!("notification failed {} times; last: {reason}", job.attempts);
        set_error(repo, &sid, &reason).await?;
        Ok(Ran::Done(Some(json!({"error": reason}))))
    }
}

/// The MIME type and body of a full payload of the stored JSON `body`.
fn content(payload: Payload, body: String) -> Result<(&'static str, String), JobError> {
    if payload != Payload::Xml {
        return Ok((FHIR_JSON, body));
    }
    let resource: Value = serde_json::from_str(&body)
        .map_err(|e| JobError::Failed(format!("the stored version is not JSON: {e}")))?;
    let xml = ember_fhir::xml::to_xml(&resource, false)
        .map_err(|e| JobError::Failed(format!("the version cannot be written as XML: {e}")))?;
    Ok((FHIR_XML, xml))
}
