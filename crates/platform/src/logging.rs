//! The platform's logging model (P7): one JSON object per line on stdout with exactly
//! the fields `time`, `app`, `body`, `id`, `severity`, `subject` and `type`.
//!
//! - `time` is UTC with microseconds: `2026-11-22T10:15:30.123456Z`;
//! - `id` is the trace id of the request being served (see [`crate::trace`]), or this
//!   instance's id outside requests;
//! - `severity` maps ERROR→high, WARN→medium, INFO→low, DEBUG/TRACE→informational; an
//!   event may raise it to `critical` with a field `severity = "critical"`;
//! - `subject` is the module that logged; `type` is `alarm` for errors, `alert` for
//!   warnings and `event` otherwise, unless the event sets `log_type`;
//! - structured fields are appended to `body` as `key=value`;
//! - unless PHI logging is enabled, CPR-number patterns are masked everywhere.

use std::fmt::Write as _;
use std::io::Write as _;

use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

use crate::trace::TraceContext;

/// What the logger needs to know.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// An `EnvFilter` directive: `info`, `debug`, `ember_api=debug`, …
    pub filter: String,
    /// The `app` field.
    pub app: String,
    /// Whether personal data may appear unmasked.
    pub phi: bool,
}

/// Installs the global logger. Later calls do nothing.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_new(&settings.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let layer = P7Layer::new(settings, std::io::stdout);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init();
}

/// A `tracing` layer writing P7 lines to `writer`.
pub struct P7Layer<W> {
    app: String,
    phi: bool,
    instance: String,
    writer: W,
}

impl<W> P7Layer<W> {
    pub fn new(settings: &LogSettings, writer: W) -> Self {
        Self {
            app: settings.app.clone(),
            phi: settings.phi,
            instance: crate::trace::new_trace_id(),
            writer,
        }
    }
}

impl<S, W> Layer<S> for P7Layer<W>
where
    S: Subscriber,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = *meta.level();
        let severity = match fields.severity.as_deref() {
            Some("critical") => "critical",
            _ => match level {
                Level::ERROR => "high",
                Level::WARN => "medium",
                Level::INFO => "low",
                _ => "informational",
            },
        };
        let kind = match fields.log_type.as_deref() {
            Some(k @ ("alarm" | "alert" | "event" | "task")) => k.to_owned(),
            _ => match level {
                Level::ERROR => "alarm".to_owned(),
                Level::WARN => "alert".to_owned(),
                _ => "event".to_owned(),
            },
        };
        let mut body = fields.body;
        let mut subject = meta.target().to_owned();
        if !self.phi {
            body = mask_cpr(&body);
            subject = mask_cpr(&subject);
        }
        let id = TraceContext::current_id().unwrap_or_else(|| self.instance.clone());
        let line = json!({
            "time": timestamp(),
            "app": self.app,
            "body": body,
            "id": if self.phi { id } else { mask_cpr(&id) },
            "severity": severity,
            "subject": subject,
            "type": kind,
        });
        let mut text = line.to_string();
        text.push('\n');
        let _ = self.writer.make_writer().write_all(text.as_bytes());
    }
}

/// Collects an event's message and fields into a body text.
#[derive(Default)]
struct Fields {
    body: String,
    severity: Option<String>,
    log_type: Option<String>,
}

impl Fields {
    fn push(&mut self, field: &Field, value: &dyn std::fmt::Display) {
        match field.name() {
            "message" => {
                if self.body.is_empty() {
                    let _ = write!(self.body, "{value}");
                } else {
                    let rest = std::mem::take(&mut self.body);
                    let _ = write!(self.body, "{value} {rest}");
                }
            }
            "severity" => self.severity = Some(value.to_string()),
            "log_type" => self.log_type = Some(value.to_string()),
            name => {
                if !self.body.is_empty() {
                    self.body.push(' ');
                }
                let _ = write!(self.body, "{name}={value}");
            }
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, &value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field, &format_args!("{value:?}"));
    }
}

/// Now, as `yyyy-mm-ddThh:mm:ss.nnnnnnZ`.
fn timestamp() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// Masks Danish CPR numbers (`ddmmyy-xxxx` or `ddmmyyxxxx`, with a plausible day and
/// month, not part of a longer number) as `******-****` / `**********`.
pub fn mask_cpr(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let mut i = 0;
    while i + 10 <= b.len() {
        if (i > 0 && digit(i - 1)) || !(0..6).all(|k| digit(i + k)) {
            i += 1;
            continue;
        }
        let day = (b[i] - b'0') * 10 + (b[i + 1] - b'0');
        let month = (b[i + 2] - b'0') * 10 + (b[i + 3] - b'0');
        let plausible = (1..=31).contains(&day) && (1..=12).contains(&month);
        let tail = if b[i + 6] == b'-' { i + 7 } else { i + 6 };
        let end = tail + 4;
        if plausible && end <= b.len() && (tail..end).all(digit) && !digit(end) {
            for k in (i..i + 6).chain(tail..end) {
                out[k] = b'*';
            }
            i = end;
        } else {
            i += 1;
        }
    }
    // Only ASCII digits were replaced by ASCII, so the text is still valid UTF-8.
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn masks_cpr_numbers_only() {
        assert_eq!(mask_cpr("cpr 010203-1234 end"), "cpr ******-**** end");
        assert_eq!(mask_cpr("identifier=0102031234"), "identifier=**********");
        assert_eq!(
            mask_cpr("a 311299-0001,b 1505801234"),
            "a ******-****,b **********"
        );
        // Not plausible dates, or part of longer numbers: left alone.
        assert_eq!(mask_cpr("991399-1234"), "991399-1234");
        assert_eq!(mask_cpr("10102031234"), "10102031234");
        assert_eq!(mask_cpr("0102031234567"), "0102031234567");
        assert_eq!(mask_cpr("status=200 took 12ms"), "status=200 took 12ms");
        assert_eq!(mask_cpr("æøå 010203-1234"), "æøå ******-****");
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    fn capture(phi: bool, f: impl FnOnce()) -> Vec<serde_json::Value> {
        let buffer = Buffer::default();
        let settings = LogSettings {
            filter: "debug".into(),
            app: "ember-test".into(),
            phi,
        };
        let subscriber =
            tracing_subscriber::registry().with(P7Layer::new(&settings, buffer.clone()));
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn writes_exactly_the_p7_fields() {
        let lines = capture(false, || {
            tracing::info!(status = 200, "request done");
            tracing::error!(error = "boom", "failed");
            tracing::warn!("slow");
            tracing::debug!(log_type = "task", "job step");
            tracing::error!(severity = "critical", "database lost");
            tracing::info!(query = "identifier=0102031234", "search");
        });
        assert_eq!(lines.len(), 6);
        for line in &lines {
            let mut keys: Vec<&str> = line
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            keys.sort_unstable();
            assert_eq!(
                keys,
                ["app", "body", "id", "severity", "subject", "time", "type"]
            );
            let time = line["time"].as_str().unwrap();
            assert_eq!(time.len(), 27, "{time}");
            assert!(time.ends_with('Z') && time.as_bytes()[19] == b'.', "{time}");
            assert_eq!(line["app"], "ember-test");
        }
        let pick = |i: usize| {
            (
                lines[i]["severity"].as_str().unwrap(),
                lines[i]["type"].as_str().unwrap(),
            )
        };
        assert_eq!(pick(0), ("low", "event"));
        assert_eq!(lines[0]["body"], "request done status=200");
        assert_eq!(pick(1), ("high", "alarm"));
        assert_eq!(pick(2), ("medium", "alert"));
        assert_eq!(pick(3), ("informational", "task"));
        assert_eq!(pick(4), ("critical", "alarm"));
        assert_eq!(lines[5]["body"], "search query=identifier=**********");
        assert!(
            lines[0]["subject"]
                .as_str()
                .unwrap()
                .starts_with("ember_platform")
        );
    }

    #[test]
    fn phi_setting_keeps_cpr_numbers() {
        let lines = capture(true, || tracing::info!("patient 0102031234"));
        assert_eq!(lines[0]["body"], "patient 0102031234");
    }

    #[tokio::test]
    async fn uses_the_trace_id_of_the_request() {
        let ctx = TraceContext {
            trace_id: "463ac35c9f6413ad48485a3953bb6124".into(),
            headers: Vec::new(),
            parent_span_id: None,
        };
        let buffer = Buffer::default();
        let settings = LogSettings {
            filter: "info".into(),
            app: "a".into(),
            phi: false,
        };
        let subscriber =
            tracing_subscriber::registry().with(P7Layer::new(&settings, buffer.clone()));
        let _guard = tracing::subscriber::set_default(subscriber);
        ctx.scope(async { tracing::info!("inside") }).await;
        tracing::info!("outside");
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["id"], "463ac35c9f6413ad48485a3953bb6124");
        assert_ne!(lines[1]["id"], lines[0]["id"]);
    }
}
