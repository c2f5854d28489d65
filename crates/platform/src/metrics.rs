//! Prometheus metrics: request counts and latencies by route template and status,
//! database pool use, and cache hits. Rendered in the text format at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CardLabels {
    service: &'static str,
    card: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotificationLabels {
    channel: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeedbackLabels {
    service: &'static str,
    card: &'static str,
    outcome: &'static str,
}

/// How the database connection pool is used right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolUse {
    pub max: i64,
    pub open: i64,
    pub idle: i64,
    pub waiting: i64,
}

/// The metrics of one instance.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
    pool: Family<PoolLabels, Gauge>,
    cache: Family<CacheLabels, Counter>,
    cards: Family<CardLabels, Counter>,
    feedback: Family<FeedbackLabels, Counter>,
    notifications: Family<NotificationLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ember");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route template and status",
            requests.clone(),
        );
        let durations = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            // 0.25 ms to about 4 s.
            Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
        });
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method and route template",
            durations.clone(),
        );
        let pool = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Database connections by state (max, open, idle, waiting)",
            pool.clone(),
        );
        let cache = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_lookups",
            "Cache lookups by cache and result (hit, miss)",
            cache.clone(),
        );
        let cards = Family::<CardLabels, Counter>::default();
        registry.register(
            "cds_cards",
            "CDS Hooks cards returned, by service and card type",
            cards.clone(),
        );
        let feedback = Family::<FeedbackLabels, Counter>::default();
        registry.register(
            "cds_feedback",
            "CDS Hooks card outcomes (accepted, overridden) recorded, by service and card type",
            feedback.clone(),
        );
        let notifications = Family::<NotificationLabels, Counter>::default();
        registry.register(
            "subscription_notifications",
            "Subscription notifications by channel and outcome (delivered, retried, failed)",
            notifications.clone(),
        );
        Self {
            registry,
            requests,
            durations,
            pool,
            cache,
            cards,
            feedback,
            notifications,
        }
    }

    /// Records one finished request.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.durations
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// Records the pool's state (sampled when metrics are scraped).
    pub fn set_pool(&self, pool: PoolUse) {
        for (state, value) in [
            ("max", pool.max),
            ("open", pool.open),
            ("idle", pool.idle),
            ("waiting", pool.waiting),
        ] {
            self.pool.get_or_create(&PoolLabels { state }).set(value);
        }
    }

    /// Records a cache lookup.
    pub fn cache_lookup(&self, cache: &'static str, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.cache
            .get_or_create(&CacheLabels { cache, result })
            .inc();
    }

    /// Records a CDS Hooks card returned by `service`.
    pub fn cds_card(&self, service: &'static str, card: &'static str) {
        self.cards
            .get_or_create(&CardLabels { service, card })
            .inc();
    }

    /// Records the outcome of a CDS Hooks card, once per card and outcome.
    pub fn cds_feedback(&self, service: &'static str, card: &'static str, outcome: &'static str) {
        self.feedback
            .get_or_create(&FeedbackLabels {
                service,
                card,
                outcome,
            })
            .inc();
    }

    /// Records one attempt of a Subscription notification on `channel`: `delivered`,
    /// `retried` (it failed and will be tried again) or `failed` (for good).
    pub fn subscription_notification(&self, channel: &'static str, outcome: &'static str) {
        self.notifications
            .get_or_create(&NotificationLabels { channel, outcome })
            .inc();
    }

    /// The metrics in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_requests_pool_and_cache() {
        let m = Metrics::new();
        m.observe_request("GET", "/fhir/{type}/{id}", 200, 0.0012);
        m.observe_request("GET", "/fhir/{type}/{id}", 200, 0.0030);
        m.observe_request("GET", "/fhir/{type}/{id}", 404, 0.0010);
        m.set_pool(PoolUse {
            max: 16,
            open: 3,
            idle: 2,
            waiting: 0,
        });
        m.cache_lookup("search-parameters", true);
        m.subscription_notification("rest-hook", "retried");
        let text = m.render();
        assert!(
            text.contains(
                r#"ember_subscription_notifications_total{channel="rest-hook",outcome="retried"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"ember_http_requests_total{method="GET",route="/fhir/{type}/{id}",status="200"} 2"#), "{text}");
        assert!(text.contains(r#"ember_http_requests_total{method="GET",route="/fhir/{type}/{id}",status="404"} 1"#), "{text}");
        assert!(text.contains(r#"ember_http_request_duration_seconds_count{method="GET",route="/fhir/{type}/{id}"} 3"#), "{text}");
        assert!(
            text.contains(r#"ember_db_pool_connections{state="max"} 16"#),
            "{text}"
        );
        assert!(
            text.contains(r#"ember_cache_lookups_total{cache="search-parameters",result="hit"} 1"#),
            "{text}"
        );
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
    }
}
