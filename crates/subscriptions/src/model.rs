//! A `Subscription` resource as Ember reads it: the criteria as a type and search
//! parameters, the channel, and what makes one acceptable.

use ember_fhir::instant::{self, Micros};
use serde_json::Value;

/// The MIME type of a full-resource payload in JSON.
pub const FHIR_JSON: &str = "application/fhir+json";
/// The MIME type of a full-resource payload in XML.
pub const FHIR_XML: &str = "application/fhir+xml";

/// What a rest-hook notification carries (`Subscription.channel.payload`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// Nothing: the notification only says that something matched.
    Empty,
    /// The resource as `application/fhir+json`.
    Json,
    /// The resource as `application/fhir+xml`.
    Xml,
}

impl Payload {
    /// Reads `channel.payload`: empty, or a FHIR JSON or XML MIME type (with or
    /// without `fhir+`, parameters such as `charset` ignored).
    fn parse(mime: Option<&str>) -> Result<Self, String> {
        let Some(mime) = mime.map(str::trim).filter(|m| !m.is_empty()) else {
            return Ok(Self::Empty);
        };
        let essence = mime.split(';').next().unwrap_or_default().trim();
        match essence.to_ascii_lowercase().as_str() {
            "application/fhir+json" | "application/json" => Ok(Self::Json),
            "application/fhir+xml" | "application/xml" => Ok(Self::Xml),
            _ => Err(format!(
                "Subscription.channel.payload must be empty (a notification without content), {FHIR_JSON} or {FHIR_XML}, not {mime:?}"
            )),
        }
    }
}

/// `Subscription.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Requested,
    Active,
    Error,
    Off,
}

impl Status {
    fn parse(code: &str) -> Option<Self> {
        match code {
            "requested" => Some(Self::Requested),
            "active" => Some(Self::Active),
            "error" => Some(Self::Error),
            "off" => Some(Self::Off),
            _ => None,
        }
    }
}

/// Where and how notifications go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    /// `rest-hook`: a `POST` to `endpoint` without a body, or with a JSON or XML
    /// payload a `PUT` of the resource to `[endpoint]/[type]/[id]`; `headers` are
    /// sent with each.
    RestHook {
        endpoint: String,
        payload: Payload,
        headers: Vec<(String, String)>,
    },
    /// `websocket`: `ping [id]` to the clients bound to the subscription.
    Websocket,
}

impl Channel {
    /// The channel type, as a metric label.
    pub fn name(&self) -> &'static str {
        match self {
            Channel::RestHook { .. } => "rest-hook",
            Channel::Websocket => "websocket",
        }
    }
}

/// A Subscription that Ember can serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub status: Status,
    /// The resource type of the criteria.
    pub res_type: String,
    /// The criteria's search parameters (none: every resource of the type).
    pub params: Vec<(String, String)>,
    pub channel: Channel,
    /// `Subscription.end`: no notifications after it.
    pub end: Option<Micros>,
}

impl Subscription {
    /// Reads a Subscription; the error says what Ember cannot serve in it. The
    /// criteria's parameters are checked against the search parser separately
    /// (`Repo::check_criteria`), the endpoint's URL rule too.
    pub fn parse(resource: &Value) -> Result<Self, String> {
        let id = resource["id"].as_str().unwrap_or_default().to_owned();
        let status = resource["status"]
            .as_str()
            .and_then(Status::parse)
            .ok_or("Subscription.status must be requested, active, error or off")?;
        let criteria = resource["criteria"]
            .as_str()
            .ok_or("Subscription.criteria is required")?;
        let (res_type, params) = criteria_of(criteria)?;
        let end = match resource["end"].as_str() {
            Some(end) => Some(
                instant::parse_range(end)
                    .map(|(start, _)| start)
                    .ok_or_else(|| format!("Subscription.end {end:?} is not an instant"))?,
            ),
            None => None,
        };
        Ok(Self {
            id,
            status,
            res_type,
            params,
            channel: channel_of(&resource["channel"])?,
            end,
        })
    }

    /// Whether notifications go out for it at `now`.
    pub fn is_live(&self, now: Micros) -> bool {
        self.status == Status::Active && self.end.is_none_or(|end| now < end)
    }
}

/// `Type?param=value&…` (or `Type` alone) as the type and its decoded parameters.
pub fn criteria_of(criteria: &str) -> Result<(String, Vec<(String, String)>), String> {
    let criteria = criteria.trim();
    let (res_type, query) = criteria.split_once('?').unwrap_or((criteria, ""));
    if !ember_fhir::is_resource_type(res_type) {
        return Err(format!(
            "Subscription.criteria must be a search of one resource type, as Type?param=value (e.g. Task?status=requested); {res_type:?} is not a resource type"
        ));
    }
    let params = form_urlencoded_pairs(query);
    Ok((res_type.to_owned(), params))
}

fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    ember_repo::parse_condition(&format!("?{query}"))
}

/// `Subscription.channel`.
fn channel_of(channel: &Value) -> Result<Channel, String> {
    let kind = channel["type"]
        .as_str()
        .ok_or("Subscription.channel.type is required")?;
    match kind {
        "rest-hook" => {
            let endpoint = channel["endpoint"]
                .as_str()
                .filter(|e| !e.trim().is_empty())
                .ok_or("a rest-hook Subscription needs channel.endpoint")?
                .trim()
                .to_owned();
            if !ember_platform::http_client::secure_or_loopback(&endpoint) {
                return Err(format!(
                    "Subscription.channel.endpoint must be an https URL (http only to a loopback host): {endpoint:?}"
                ));
            }
            let payload = Payload::parse(channel["payload"].as_str())?;
            let headers = channel["header"]
                .as_array()
                .map(|h| h.iter().map(header_of).collect::<Result<Vec<_>, _>>())
                .transpose()?
                .unwrap_or_default();
            Ok(Channel::RestHook {
                endpoint,
                payload,
                headers,
            })
        }
        "websocket" => Ok(Channel::Websocket),
        "email" | "sms" | "message" => Err(format!(
            "Subscription.channel.type {kind} is not supported by this server; use rest-hook or websocket"
        )),
        other => Err(format!(
            "Subscription.channel.type {other:?} is unknown; use rest-hook or websocket"
        )),
    }
}

/// One `channel.header`: `Name: value`, a valid HTTP header.
fn header_of(header: &Value) -> Result<(String, String), String> {
    let text = header.as_str().unwrap_or_default();
    let problem =
        || format!("Subscription.channel.header {text:?} must be an HTTP header, as Name: value");
    let (name, value) = text.split_once(':').ok_or_else(problem)?;
    let (name, value) = (name.trim(), value.trim());
    if http::HeaderName::from_bytes(name.as_bytes()).is_err()
        || http::HeaderValue::from_str(value).is_err()
    {
        return Err(problem());
    }
    Ok((name.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sub(channel: Value) -> Value {
        json!({"resourceType": "Subscription", "id": "s1", "status": "requested",
            "reason": "r", "criteria": "Task?priority=asap&status=requested", "channel": channel})
    }

    #[test]
    fn reads_a_rest_hook_with_full_payload_and_headers() {
        let s = Subscription::parse(&sub(json!({"type": "rest-hook",
            "endpoint": "https://example.org/hook", "payload": "application/fhir+json",
            "header": ["Authorization: Bearer abc"]})))
        .unwrap();
        assert_eq!(s.res_type, "Task");
        assert_eq!(
            s.params,
            vec![
                ("priority".into(), "asap".into()),
                ("status".into(), "requested".into())
            ]
        );
        assert_eq!(
            s.channel,
            Channel::RestHook {
                endpoint: "https://example.org/hook".into(),
                payload: Payload::Json,
                headers: vec![("Authorization".into(), "Bearer abc".into())],
            }
        );
        assert_eq!(s.status, Status::Requested);
        assert!(!s.is_live(0));
    }

    #[test]
    fn reads_the_payload_types() {
        for (mime, payload) in [
            (None, Payload::Empty),
            (Some(" "), Payload::Empty),
            (Some("application/fhir+json"), Payload::Json),
            (Some("application/json; charset=utf-8"), Payload::Json),
            (Some("application/fhir+xml"), Payload::Xml),
            (Some("Application/XML"), Payload::Xml),
        ] {
            assert_eq!(Payload::parse(mime), Ok(payload), "{mime:?}");
        }
        assert!(Payload::parse(Some("text/csv")).is_err());
    }

    #[test]
    fn refuses_what_it_cannot_serve() {
        for (channel, needle) in [
            (json!({"type": "rest-hook"}), "endpoint"),
            (
                json!({"type": "rest-hook", "endpoint": "http://example.org/h"}),
                "https",
            ),
            (
                json!({"type": "rest-hook", "endpoint": "https://x/h", "payload": "text/plain"}),
                "payload",
            ),
            (
                json!({"type": "rest-hook", "endpoint": "https://x/h", "header": ["nocolon"]}),
                "header",
            ),
            (json!({"type": "email", "endpoint": "mailto:a@b"}), "email"),
            (json!({"type": "sms"}), "not supported"),
            (json!({"type": "carrier-pigeon"}), "unknown"),
        ] {
            let e = Subscription::parse(&sub(channel.clone())).unwrap_err();
            assert!(e.contains(needle), "{channel}: {e}");
        }
        let mut bad = sub(json!({"type": "websocket"}));
        bad["criteria"] = json!("Nonsense?x=1");
        assert!(Subscription::parse(&bad).unwrap_err().contains("Nonsense"));
    }

    #[test]
    fn http_is_for_loopback_only_and_end_stops_it() {
        let mut s = sub(json!({"type": "rest-hook", "endpoint": "http://127.0.0.1:9/h"}));
        s["status"] = json!("active");
        s["end"] = json!("2020-01-01T00:00:00Z");
        let s = Subscription::parse(&s).unwrap();
        assert_eq!(s.params.len(), 2);
        assert!(!s.is_live(instant::now()));
        let open = Subscription {
            end: None,
            ..s.clone()
        };
        assert!(open.is_live(instant::now()));
    }
}
