//! Sending one notification of one subscription for one version ([`Notify::send`]):
//! the matching job sends at once, and the `subscription-notify` job retries one that
//! failed, until it is taken, at least once.
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
//! A subscription that is no longer active (or has ended) when its retry runs is not
//! notified.

use std::sync::Arc;

use bytes::Bytes;
use ember_fhir::instant;
use ember_platform::http_client::HttpClient;
use ember_platform::metrics::Metrics;
use ember_repo::{JobContext, JobError, JobHandler, JobRequest, Ran, Repo, RepoError};
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

/// One notification: of `subscription`, for one version of a resource, with an event
/// id derived from both, so it is the same on every retry and every instance.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    pub subscription: String,
    pub res_type: String,
    pub id: String,
    pub version: i64,
    pub event: String,
}

impl Event {
    pub fn new(subscription: &str, res_type: &str, id: &str, version: i64) -> Self {
        let key = Self::key_of(subscription, res_type, id, version);
        let event = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_URL,
            format!("urn:ember:{key}").as_bytes(),
        );
        Self {
            subscription: subscription.to_owned(),
            res_type: res_type.to_owned(),
            id: id.to_owned(),
            version,
            event: event.to_string(),
        }
    }

    fn key_of(subscription: &str, res_type: &str, id: &str, version: i64) -> String {
        format!("{NOTIFY_JOB}:{subscription}:{res_type}/{id}/{version}")
    }

    /// Its notification job, keyed by subscription and version, so a version is
    /// queued once per subscription however often it is matched.
    pub fn job(&self) -> JobRequest {
        JobRequest {
            kind: NOTIFY_JOB.to_owned(),
            payload: json!({
                "subscription": self.subscription,
                "type": self.res_type,
                "id": self.id,
                "version": self.version,
                "event": self.event,
            }),
            key: Some(Self::key_of(
                &self.subscription,
                &self.res_type,
                &self.id,
                self.version,
            )),
        }
    }

    fn of_job(job: &Job) -> Result<Self, JobError> {
        let payload = payload(job)?;
        let field = |name: &str| payload[name].as_str().unwrap_or_default().to_owned();
        Ok(Self {
            subscription: field("subscription"),
            res_type: field("type"),
            id: field("id"),
            version: payload["version"].as_i64().unwrap_or_default(),
            event: field("event"),
        })
    }
}

impl Notify {
    /// Counts a notification that will be tried again.
    pub fn retried(&self, subscription: &Subscription) {
        self.metrics
            .subscription_notification(subscription.channel.name(), "retried");
    }

    /// Sets `subscription` to `error` after its notification failed `tried` times, the
    /// last with `reason`; the reason it records.
    pub async fn give_up(
        &self,
        repo: &Repo,
        subscription: &Subscription,
        tried: i32,
        reason: &str,
    ) -> Result<String, JobError> {
        self.metrics
            .subscription_notification(subscription.channel.name(), "failed");
        let reason = format!("notification failed {tried} times; last: {reason}");
        set_error(repo, &subscription.id, &reason).await?;
        Ok(reason)
    }

    /// Sends `event` of `subscription` once: `Ok(Err(reason))` when the endpoint did
    /// not take it. `body` is the version's stored JSON when the caller has it at hand
    /// (a full payload reads it otherwise).
    pub async fn send(
        &self,
        repo: &Repo,
        subscription: &Subscription,
        event: &Event,
        body: Option<&str>,
    ) -> Result<Result<(), String>, JobError> {
        let channel = subscription.channel.name();
        let (endpoint, carries, headers) = match &subscription.channel {
            Channel::Websocket => {
                hub::publish(repo.store().as_ref(), &event.subscription, &event.event).await?;
                self.metrics.subscription_notification(channel, "delivered");
                return Ok(Ok(()));
            }
            Channel::RestHook {
                endpoint,
                payload,
                headers,
            } => (endpoint, *payload, headers),
        };
        let mut request = if carries == Payload::Empty {
            Request::builder()
                .method(Method::POST)
                .uri(endpoint.as_str())
                .body(Full::new(Bytes::new()))
        } else {
            let body = match body {
                Some(body) => body.to_owned(),
                None => {
                    let version = event.version.to_string();
                    repo.vread(&event.res_type, &event.id, &version).await?.body
                }
            };
            let (mime, body) = content(carries, body)?;
            let url = format!(
                "{}/{}/{}",
                endpoint.trim_end_matches('/'),
                event.res_type,
                event.id
            );
            Request::builder()
                .method(Method::PUT)
                .uri(url)
                .header(header::CONTENT_TYPE, mime)
                .body(Full::new(Bytes::from(body)))
        }
        .map_err(|e| JobError::Failed(format!("the endpoint is not a valid URL: {e}")))?;
        let sent = request.headers_mut();
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value),
            ) {
                sent.append(name, value);
            }
        }
        if let Ok(value) = http::HeaderValue::from_str(&event.event) {
            sent.insert(EVENT_HEADER, value);
        }
        Ok(match self.client.send(request).await {
            Ok(answer) if answer.status().is_success() => {
                self.metrics.subscription_notification(channel, "delivered");
                Ok(())
            }
            Ok(answer) => Err(format!("the endpoint answered {}", answer.status())),
            Err(e) => Err(e.to_string()),
        })
    }
}

#[async_trait::async_trait]
impl JobHandler for Notify {
    fn kind(&self) -> &'static str {
        NOTIFY_JOB
    }

    async fn run(&self, ctx: &JobContext, job: &Job) -> Result<Ran, JobError> {
        let event = Event::of_job(job)?;
        let repo = ctx.repo();
        let sid = &event.subscription;
        let subscription = match repo.read(SUBSCRIPTION, sid).await {
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
        let Err(reason) = self.send(repo, &subscription, &event, None).await? else {
            return Ok(Ran::Done(None));
        };
        // The matching job made the first attempt.
        let tried = job.attempts.saturating_add(1);
        if tried < max_attempts(repo) {
            self.retried(&subscription);
            return Err(JobError::Failed(reason));
        }
        let reason = self.give_up(repo, &subscription, tried, &reason).await?;
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

/// How often a notification is tried in all (`job_max_attempts`), the matching job's
/// first attempt included.
pub(crate) fn max_attempts(repo: &Repo) -> i32 {
    i32::try_from(repo.limits().job_max_attempts).unwrap_or(i32::MAX)
}
