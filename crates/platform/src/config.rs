//! Configuration: every setting is a flag and an `EMBER_*` environment variable.

use std::net::SocketAddr;
use std::time::Duration;

/// Settings of `ember serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on.
    #[arg(long, env = "EMBER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// `postgres://user@host/db` for production, or `sqlite://path` for the embedded store.
    #[arg(
        long,
        env = "EMBER_DATABASE_URL",
        default_value = "sqlite://ember-data/ember.db",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Maximum database connections of this instance (SQLite: reader connections).
    #[arg(long, env = "EMBER_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: usize,

    /// How long a request waits for a database connection, in milliseconds.
    #[arg(long, env = "EMBER_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 5000)]
    pub db_acquire_timeout_ms: u64,

    /// Path prefix of the FHIR API.
    #[arg(long, env = "EMBER_BASE_PATH", default_value = "/fhir")]
    pub base_path: String,

    /// The public base URL of the FHIR API (e.g. `https://fhir.example.org/fhir`), used in
    /// every absolute URL Ember emits. Derived from the `Host` header when unset.
    #[arg(long, env = "EMBER_PUBLIC_BASE_URL")]
    pub public_base_url: Option<String>,

    /// Authentication: `required` or `disabled`. Unset: required when issuers are set;
    /// with none, open on a loopback listen address and refused on any other.
    #[arg(long, env = "EMBER_AUTH", value_parser = ["required", "disabled"])]
    pub auth: Option<String>,

    /// Trusted token issuers, comma-separated; each must be https (http only on a
    /// loopback host). Their keys are found through OpenID discovery.
    #[arg(long, env = "EMBER_AUTH_ISSUERS", default_value = "")]
    pub auth_issuers: String,

    /// The `aud` tokens must carry; defaults to EMBER_PUBLIC_BASE_URL.
    #[arg(long, env = "EMBER_AUTH_AUDIENCE")]
    pub auth_audience: Option<String>,

    /// RFC 7662 introspection endpoint for opaque (non-JWT) tokens; https (http only on
    /// a loopback host).
    #[arg(long, env = "EMBER_AUTH_INTROSPECTION_URL")]
    pub auth_introspection_url: Option<String>,

    /// The client id Ember authenticates with at the introspection endpoint.
    #[arg(long, env = "EMBER_AUTH_INTROSPECTION_CLIENT_ID")]
    pub auth_introspection_client_id: Option<String>,

    /// The client secret for the introspection endpoint (a secret: masked in
    /// --print-config).
    #[arg(
        long,
        env = "EMBER_AUTH_INTROSPECTION_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub auth_introspection_client_secret: Option<String>,

    /// Clock skew allowed on a token's `exp`, `nbf` and `iat`, in seconds.
    #[arg(long, env = "EMBER_AUTH_LEEWAY_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub auth_leeway_seconds: u64,

    /// Which claims carry the grants: `smart` (scope, patient, client_id) or `ehealth`
    /// (realm_access.roles, user_type, context).
    #[arg(long, env = "EMBER_AUTH_CLAIMS", default_value = "smart", value_parser = ["smart", "ehealth"])]
    pub auth_claims: String,

    /// The largest value of the key-value API (`/kv`), in bytes (413 beyond).
    #[arg(long, env = "EMBER_KV_MAX_BYTES", default_value_t = 65536, value_parser = clap::value_parser!(u64).range(1..=16_777_216))]
    pub kv_max_bytes: u64,

    /// The audit trail of the FHIR API: `off`, `log` (one event line per request) or
    /// `fhir` (AuditEvent resources, written in batches through the job queue).
    #[arg(long, env = "EMBER_AUDIT", default_value = "off", value_parser = ["off", "log", "fhir"])]
    pub audit: String,

    /// Browser origins allowed to call the API (CORS), comma-separated, e.g.
    /// `https://app.example.org`; empty allows none.
    #[arg(long, env = "EMBER_CORS_ORIGINS", default_value = "")]
    pub cors_origins: String,

    /// The CDS Hooks clients allowed to call the CDS services: comma-separated
    /// `issuer=JWKS-URL` pairs (several pairs of one issuer are its `jku` allow-list).
    /// Empty: the services answer only on a loopback listen address.
    #[arg(long, env = "EMBER_CDS_CLIENTS", default_value = "")]
    pub cds_clients: String,

    /// Reverse proxies (addresses or networks, comma-separated, e.g. `10.0.0.0/8`) whose
    /// `Forwarded` / `X-Forwarded-*` headers are believed when deriving the public URL.
    #[arg(long, env = "EMBER_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,

    /// Path of the liveness probe.
    #[arg(long, env = "EMBER_LIVENESS_PATH", default_value = "/livez", value_parser = probe_path)]
    pub liveness_path: String,

    /// Path of the readiness probe (readiness also answers at `/healthz`).
    #[arg(long, env = "EMBER_READINESS_PATH", default_value = "/readyz", value_parser = probe_path)]
    pub readiness_path: String,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "EMBER_MAX_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Deepest accepted JSON nesting.
    #[arg(long, env = "EMBER_MAX_JSON_DEPTH", default_value_t = 64)]
    pub max_json_depth: usize,

    /// Structural validation of every resource written: `strict` (every problem is an
    /// error), `lenient` (unknown elements and code bindings are warnings) or `off`.
    #[arg(long, env = "EMBER_VALIDATION", default_value = "strict", value_parser = ["strict", "lenient", "off"])]
    pub validation: String,

    /// Check every resource written against the profiles its `meta.profile` names that
    /// are stored on this server (a failing write is a 422); unknown profiles are not
    /// checked. Off by default: claims that were accepted before are not refused.
    #[arg(long, env = "EMBER_VALIDATE_PROFILES", default_value_t = false, action = clap::ArgAction::Set)]
    pub validate_profiles: bool,

    /// Most entries in a batch or transaction Bundle.
    #[arg(long, env = "EMBER_MAX_BUNDLE_ENTRIES", default_value_t = 10_000)]
    pub max_bundle_entries: usize,

    /// Largest page size a client may ask for with `_count`.
    #[arg(long, env = "EMBER_MAX_COUNT", default_value_t = 1000)]
    pub max_count: u32,

    /// Most resources one conditional delete (`DELETE [type]?search`) may remove; more
    /// matches are a 412 and nothing is deleted. 0 or 1: only single-match deletes.
    #[arg(long, env = "EMBER_MAX_CONDITIONAL_DELETE", default_value_t = 100)]
    pub max_conditional_delete: u32,

    /// Most codes one value set expansion may have (`$expand`, `$validate-code`); a
    /// larger one is a 422. Searches with `:in`, `:not-in`, `:below` and `:above` take
    /// at most a tenth of it (at least 100) codes, so their SQL stays bounded.
    #[arg(long, env = "EMBER_MAX_EXPANSION", default_value_t = 10000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_expansion: u32,

    /// How long a worker holds a background job (such as `$reindex`) without recording
    /// progress, in seconds; after that another instance resumes the job from its last
    /// recorded progress.
    #[arg(long, env = "EMBER_JOB_LEASE_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub job_lease_seconds: u64,

    /// Attempts of a failing background job before it is dead-lettered (and waits for
    /// a retry through the admin API).
    #[arg(long, env = "EMBER_JOB_MAX_ATTEMPTS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub job_max_attempts: u32,

    /// The pause before a failed background job's second attempt, in milliseconds; it
    /// doubles with every further attempt, up to an hour.
    #[arg(long, env = "EMBER_JOB_RETRY_BASE_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub job_retry_base_ms: u64,

    /// Background jobs one instance runs at once.
    #[arg(long, env = "EMBER_JOB_CONCURRENCY", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub job_concurrency: u64,

    /// How long the files of a Bulk Data `$export` are kept after it ends, in seconds.
    #[arg(long, env = "EMBER_EXPORT_EXPIRY_SECONDS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(60..=31_536_000))]
    pub export_expiry_seconds: u64,

    /// Most resources in one NDJSON file of a Bulk Data `$export`; a type with more
    /// gets several files.
    #[arg(long, env = "EMBER_EXPORT_FILE_RESOURCES", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub export_file_resources: u64,

    /// `system|code` of the coexistence tag put in `meta.tag` of every resource
    /// telemonitoring creates (triage results, Tasks, Communications); none when empty.
    #[arg(long, env = "EMBER_COEXISTENCE_TAG", default_value = "")]
    pub coexistence_tag: String,

    /// How often the missing-measurement check runs, in seconds (once per interval
    /// across all instances); 0 turns it off.
    #[arg(long, env = "EMBER_MISSING_CHECK_SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(0..=604_800))]
    pub missing_check_seconds: u64,

    /// Longest time one request may take, in milliseconds.
    #[arg(long, env = "EMBER_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,

    /// After SIGTERM: how long to keep serving while load balancers notice, in milliseconds.
    #[arg(long, env = "EMBER_SHUTDOWN_DELAY_MS", default_value_t = 2000)]
    pub shutdown_delay_ms: u64,

    /// After SIGTERM: the most time until exit, in milliseconds (kept under 10 s).
    #[arg(long, env = "EMBER_SHUTDOWN_GRACE_MS", default_value_t = 8000)]
    pub shutdown_grace_ms: u64,

    /// Name of this deployment, reported in logs.
    #[arg(long, env = "EMBER_APP_NAME", default_value = "ember")]
    pub app_name: String,

    /// Log filter (`info`, `debug`, `ember_api=debug`, …). DEBUG is off by default.
    #[arg(long, env = "EMBER_LOG", default_value = "info")]
    pub log: String,

    /// Allow personal data (names, CPR numbers, free text) in logs. Off by default;
    /// when off, CPR-number patterns are masked in every log field.
    #[arg(long, env = "EMBER_LOG_PHI", default_value_t = false, action = clap::ArgAction::Set)]
    pub log_phi: bool,

    /// OTLP/HTTP endpoint of an OpenTelemetry collector (e.g. `http://otel-collector:4318`):
    /// when set, every request is exported as a span.
    #[arg(long, env = "OPENTELEMETRY_COLLECTOR_URL")]
    pub opentelemetry_collector_url: Option<String>,

    /// Print the effective configuration (secrets masked) and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// A probe path: absolute, without spaces or a query.
fn probe_path(s: &str) -> Result<String, String> {
    let ok = s.starts_with('/') && s.len() > 1 && !s.contains(['?', '#', ' ', '{', '}']);
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!("{s:?} is not a path such as /readyz"))
    }
}

impl ServeConfig {
    pub fn db_acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.db_acquire_timeout_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn shutdown_delay(&self) -> Duration {
        Duration::from_millis(self.shutdown_delay_ms)
    }

    /// The shutdown grace, capped at 9.5 s so the platform's 10 s kill never comes first.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms.min(9500))
    }

    /// How to find the public base URL of the FHIR API; fails on a malformed proxy list.
    pub fn public_url(&self) -> Result<crate::public_url::PublicUrl, String> {
        Ok(crate::public_url::PublicUrl {
            configured: self
                .public_base_url
                .clone()
                .filter(|u| !u.trim().is_empty()),
            trusted: crate::public_url::parse_trusted(&self.trusted_proxies)
                .map_err(|e| format!("EMBER_TRUSTED_PROXIES: {e}"))?,
            base_path: self.normalized_base_path(),
        })
    }

    /// The base path normalized to `""` or `/segment…` without a trailing slash.
    /// The coexistence tag as `(system, code)`; `None` when unset, an error when it is
    /// not `system|code`.
    pub fn coexistence_tag(&self) -> Result<Option<(String, String)>, String> {
        let tag = self.coexistence_tag.trim();
        if tag.is_empty() {
            return Ok(None);
        }
        match tag.split_once('|') {
            Some((system, code))
                if !system.is_empty() && !code.is_empty() && !code.contains('|') =>
            {
                Ok(Some((system.to_owned(), code.to_owned())))
            }
            _ => Err(format!(
                "EMBER_COEXISTENCE_TAG must be system|code, not {tag:?}"
            )),
        }
    }

    pub fn normalized_base_path(&self) -> String {
        let trimmed = self.base_path.trim_matches('/');
        if trimmed.is_empty() {
            String::new()
        } else {
            format!("/{trimmed}")
        }
    }
}

/// `EMBER_*` variables read by Ember's tooling rather than by the binary: the test
/// harness and the code generator. They are allowed so that tests can start `ember`.
pub const TOOLING_ENV: &[&str] = &[
    "EMBER_TEST_DATABASE_URL",
    "EMBER_FHIR_PACKAGE",
    "EMBER_UPDATE_COMPAT",
];

/// Settings whose values are secrets: shown masked by `--print-config`.
const SECRET_ENV: &[&str] = &[
    "EMBER_DATABASE_URL",
    "EMBER_AUTH_INTROSPECTION_CLIENT_SECRET",
];

/// A configuration error found before start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "unknown configuration variable(s): {}; every EMBER_* variable must be a known setting (see `ember serve --help`)",
        .0.join(", ")
    )]
    UnknownVariables(Vec<String>),
}

/// Every `EMBER_*` environment variable the command line defines, across subcommands,
/// plus [`TOOLING_ENV`].
pub fn known_env(cmd: &clap::Command) -> std::collections::BTreeSet<String> {
    let mut names: std::collections::BTreeSet<String> =
        TOOLING_ENV.iter().map(|s| (*s).to_owned()).collect();
    collect_env(cmd, &mut names);
    names
}

fn collect_env(cmd: &clap::Command, names: &mut std::collections::BTreeSet<String>) {
    for arg in cmd.get_arguments() {
        if let Some(env) = arg.get_env().and_then(|e| e.to_str()) {
            names.insert(env.to_owned());
        }
    }
    for sub in cmd.get_subcommands() {
        collect_env(sub, names);
    }
}

/// Fails when the process environment holds an `EMBER_*` variable that is not in
/// `known`: a misspelt setting must not be silently ignored. Variables that Kubernetes
/// injects for Services whose name starts with `ember` are not settings and are allowed.
pub fn check_env(known: &std::collections::BTreeSet<String>) -> Result<(), ConfigError> {
    let unknown: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("EMBER_") && !known.contains(k) && !is_service_link(k))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::UnknownVariables(unknown))
    }
}

/// Whether `name` is one of the variables Kubernetes sets for a Service (docker-link
/// style): `X_SERVICE_HOST`, `X_SERVICE_PORT[_NAME]`, `X_PORT`, `X_PORT_<n>_<PROTO>[_PROTO|_PORT|_ADDR]`.
fn is_service_link(name: &str) -> bool {
    if name.ends_with("_SERVICE_HOST")
        || name.ends_with("_SERVICE_PORT")
        || name.contains("_SERVICE_PORT_")
    {
        return true;
    }
    if name.ends_with("_PORT") {
        return true;
    }
    let parts: Vec<&str> = name.split('_').collect();
    parts.windows(3).enumerate().any(|(i, w)| {
        w[0] == "PORT"
            && !w[1].is_empty()
            && w[1].bytes().all(|b| b.is_ascii_digit())
            && matches!(w[2], "TCP" | "UDP" | "SCTP")
            && match &parts[i + 3..] {
                [] => true,
                [last] => matches!(*last, "PROTO" | "PORT" | "ADDR"),
                _ => false,
            }
    })
}

/// The effective settings of a subcommand, one `NAME=value  (source)` line each, with
/// secrets masked.
pub fn describe(cmd: &clap::Command, matches: &clap::ArgMatches) -> String {
    let mut out = String::new();
    for arg in cmd.get_arguments() {
        let Some(env) = arg.get_env().and_then(|e| e.to_str()) else {
            continue;
        };
        let id = arg.get_id().as_str();
        let value = matches
            .get_raw(id)
            .map(|vals| {
                vals.map(|v| v.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let source = match matches.value_source(id) {
            Some(clap::parser::ValueSource::CommandLine) => "flag",
            Some(clap::parser::ValueSource::EnvVariable) => "environment",
            Some(clap::parser::ValueSource::DefaultValue) => "default",
            _ => "unset",
        };
        let shown = if !SECRET_ENV.contains(&env) {
            value
        } else if value.contains("://") {
            mask_url(&value)
        } else if value.is_empty() {
            value
        } else {
            "****".to_owned()
        };
        out.push_str(&format!("{env}={shown}  ({source})\n"));
    }
    out
}

/// Masks the password of a URL: `postgres://user:secret@host/db` → `postgres://user:****@host/db`.
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        // No credentials in the authority; a password may still be a query parameter.
        return mask_query_password(url);
    };
    let masked = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:****"),
        None => userinfo.to_owned(),
    };
    mask_query_password(&format!("{scheme}://{masked}@{host}"))
}

fn mask_query_password(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=****"),
            _ => kv.to_owned(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeConfig,
    }

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask_url("postgres://ember:s3cret@db:5432/ember"),
            "postgres://ember:****@db:5432/ember"
        );
        assert_eq!(
            mask_url("postgres://ember@db/ember"),
            "postgres://ember@db/ember"
        );
        assert_eq!(
            mask_url("postgres://db/ember?user=a&password=b"),
            "postgres://db/ember?user=a&password=****"
        );
        assert_eq!(
            mask_url("sqlite://ember-data/ember.db"),
            "sqlite://ember-data/ember.db"
        );
    }

    #[test]
    fn recognizes_kubernetes_service_links() {
        for link in [
            "EMBER_SERVICE_HOST",
            "EMBER_SERVICE_PORT",
            "EMBER_SERVICE_PORT_HTTP",
            "EMBER_PORT",
            "EMBER_PORT_8080_TCP",
            "EMBER_PORT_8080_TCP_ADDR",
            "EMBER_DB_PORT_5432_TCP_PROTO",
        ] {
            assert!(is_service_link(link), "{link}");
        }
        for setting in [
            "EMBER_LISTEN",
            "EMBER_DATABSE_URL",
            "EMBER_PORT_X",
            "EMBER_PORT_8080_TCP_OTHER",
            "EMBER_PORTS",
        ] {
            assert!(!is_service_link(setting), "{setting}");
        }
        // No real setting may look like a service link.
        let cmd = <Cli as CommandFactory>::command();
        assert!(known_env(&cmd).iter().all(|k| !is_service_link(k)));
    }

    #[test]
    fn the_coexistence_tag_is_system_bar_code() {
        let with = |tag: &str| ServeConfig {
            coexistence_tag: tag.into(),
            ..Cli::parse_from(["ember"]).serve
        };
        assert_eq!(with("").coexistence_tag(), Ok(None));
        assert_eq!(
            with("http://example.org/s|ember").coexistence_tag(),
            Ok(Some(("http://example.org/s".into(), "ember".into())))
        );
        for bad in ["ember", "|ember", "http://example.org/s|", "a|b|c"] {
            assert!(with(bad).coexistence_tag().is_err(), "{bad}");
        }
    }

    #[test]
    fn knows_every_setting_and_describes_it() {
        let cmd = Cli::command();
        let known = known_env(&cmd);
        for name in [
            "EMBER_LISTEN",
            "EMBER_DATABASE_URL",
            "EMBER_LOG_PHI",
            "EMBER_TEST_DATABASE_URL",
        ] {
            assert!(known.contains(name), "{name}");
        }
        let matches = cmd
            .clone()
            .try_get_matches_from([
                "ember",
                "--database-url",
                "postgres://u:pw@h/db",
                "--listen",
                "0.0.0.0:9000",
                "--auth-introspection-client-secret",
                "t0ps3cret",
            ])
            .unwrap();
        let text = describe(&cmd, &matches);
        assert!(
            text.contains("EMBER_AUTH_INTROSPECTION_CLIENT_SECRET=****  (flag)"),
            "{text}"
        );
        assert!(!text.contains("t0ps3cret"), "{text}");
        assert!(
            text.contains("EMBER_DATABASE_URL=postgres://u:****@h/db  (flag)"),
            "{text}"
        );
        assert!(text.contains("EMBER_LISTEN=0.0.0.0:9000  (flag)"), "{text}");
        assert!(
            text.contains("EMBER_MAX_BODY_BYTES=16777216  (default)"),
            "{text}"
        );
        assert!(!text.contains("pw"), "{text}");
        let parsed = Cli::from_arg_matches(&matches).unwrap();
        assert_eq!(parsed.serve.listen.port(), 9000);
    }
}
