//! The auth settings and the start-up rule: with trusted issuers every request needs a
//! verified token; with none, Ember runs open only on a loopback address (a laptop) or
//! when `EMBER_AUTH=disabled` says so explicitly; anywhere else it refuses to start.
//! Also the CDS clients (`EMBER_CDS_CLIENTS`) trusted to call the CDS Hooks services.

use std::net::SocketAddr;
use std::time::Duration;

use ember_platform::http_client::secure_or_loopback;

use crate::claims::ClaimModel;

/// How tokens are checked once auth is on.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Trusted issuers (`iss`), without a trailing slash.
    pub issuers: Vec<String>,
    /// The accepted `aud`.
    pub audience: String,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Which claims carry the scopes, the patient and the roles.
    pub claims: ClaimModel,
    /// Least time between two fetches of one issuer's keys for an unknown `kid`.
    pub refresh_min: Duration,
    /// How long fetched keys are used before they are fetched again.
    pub keys_ttl: Duration,
    /// RFC 7662 introspection of opaque tokens, when configured.
    pub introspection: Option<Introspection>,
}

/// An RFC 7662 introspection endpoint and Ember's credentials there.
#[derive(Clone)]
pub struct Introspection {
    pub url: String,
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for Introspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspection")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"****")
            .finish()
    }
}

impl AuthSettings {
    /// Settings for `issuers` and `audience` with the defaults: 60 s leeway, the SMART
    /// claims, a refresh at most every 10 s, keys kept for an hour.
    pub fn new(issuers: Vec<String>, audience: String) -> Self {
        Self {
            issuers,
            audience,
            leeway: Duration::from_secs(60),
            claims: ClaimModel::Smart,
            refresh_min: Duration::from_secs(10),
            keys_ttl: Duration::from_secs(3600),
            introspection: None,
        }
    }
}

/// What start-up decided.
#[derive(Debug, Clone)]
pub enum Posture {
    /// Every request to the API needs a verified bearer token.
    Enforced(AuthSettings),
    /// No issuers, and a loopback listen address: open, with a warning at start.
    OpenOnLoopback,
    /// `EMBER_AUTH=disabled`: open, with a warning at every start.
    Disabled,
}

/// The raw settings, as configured.
#[derive(Debug, Clone, Default)]
pub struct Input<'a> {
    /// `EMBER_AUTH`: `required`, `disabled` or unset.
    pub mode: Option<&'a str>,
    /// `EMBER_AUTH_ISSUERS`, comma-separated.
    pub issuers: &'a str,
    /// `EMBER_AUTH_AUDIENCE`.
    pub audience: Option<&'a str>,
    /// The configured public base URL of the FHIR API, the audience's default.
    pub public_fhir_base: Option<String>,
    pub listen: Option<SocketAddr>,
    pub leeway: Duration,
    /// `EMBER_AUTH_CLAIMS`: `smart` or `ehealth`.
    pub claims: &'a str,
    /// `EMBER_AUTH_INTROSPECTION_URL`, `…_CLIENT_ID`, `…_CLIENT_SECRET`.
    pub introspection_url: Option<&'a str>,
    pub introspection_client_id: Option<&'a str>,
    pub introspection_client_secret: Option<&'a str>,
}

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthConfigError {
    #[error("EMBER_AUTH must be required or disabled, not {0:?}")]
    Mode(String),
    #[error("EMBER_AUTH_CLAIMS must be smart or ehealth, not {0:?}")]
    Claims(String),
    #[error(
        "no EMBER_AUTH_ISSUERS are set and Ember listens on {0}, which is not a loopback \
         address: set the trusted issuers, or EMBER_AUTH=disabled to run without \
         authentication"
    )]
    OpenOnNetwork(SocketAddr),
    #[error("EMBER_AUTH=required needs EMBER_AUTH_ISSUERS")]
    RequiredWithoutIssuers,
    #[error("EMBER_AUTH=disabled contradicts EMBER_AUTH_ISSUERS; set one of them")]
    DisabledWithIssuers,
    #[error("the issuer {0:?} must be an https URL (http only on a loopback host)")]
    Issuer(String),
    #[error("set EMBER_AUTH_AUDIENCE or EMBER_PUBLIC_BASE_URL: tokens are checked for it")]
    NoAudience,
    #[error(
        "EMBER_AUTH_INTROSPECTION_URL must be https (http only on a loopback host) and needs \
         EMBER_AUTH_INTROSPECTION_CLIENT_ID and EMBER_AUTH_INTROSPECTION_CLIENT_SECRET"
    )]
    Introspection,
    #[error("EMBER_CDS_CLIENTS: {0:?} is not an issuer=JWKS-URL pair")]
    CdsClient(String),
    #[error("EMBER_CDS_CLIENTS: the JWKS URL {0:?} must be https (http only on a loopback host)")]
    CdsJwks(String),
}

/// Applies the start-up rule to the configured settings.
pub fn posture(input: &Input<'_>) -> Result<Posture, AuthConfigError> {
    let disabled = match input.mode.map(str::trim).filter(|m| !m.is_empty()) {
        None | Some("required") => false,
        Some("disabled") => true,
        Some(other) => return Err(AuthConfigError::Mode(other.to_owned())),
    };
    let claims = match input.claims.trim() {
        "" | "smart" => ClaimModel::Smart,
        "ehealth" => ClaimModel::Ehealth,
        other => return Err(AuthConfigError::Claims(other.to_owned())),
    };
    let issuers: Vec<String> = input
        .issuers
        .split(',')
        .map(|i| i.trim().trim_end_matches('/'))
        .filter(|i| !i.is_empty())
        .map(str::to_owned)
        .collect();
    let some = |v: Option<&str>| {
        v.map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let introspection = match (
        some(input.introspection_url),
        some(input.introspection_client_id),
        some(input.introspection_client_secret),
    ) {
        (None, None, None) => None,
        (Some(url), Some(client_id), Some(client_secret)) if secure_or_loopback(&url) => {
            Some(Introspection {
                url,
                client_id,
                client_secret,
            })
        }
        _ => return Err(AuthConfigError::Introspection),
    };
    if issuers.is_empty() && introspection.is_none() {
        return match (disabled, input.mode.is_some_and(|m| m.trim() == "required")) {
            (true, _) => Ok(Posture::Disabled),
            (false, true) => Err(AuthConfigError::RequiredWithoutIssuers),
            (false, false) => match input.listen {
                Some(addr) if !addr.ip().is_loopback() => Err(AuthConfigError::OpenOnNetwork(addr)),
                _ => Ok(Posture::OpenOnLoopback),
            },
        };
    }
    if disabled {
        return Err(AuthConfigError::DisabledWithIssuers);
    }
    if let Some(bad) = issuers.iter().find(|i| !secure_or_loopback(i)) {
        return Err(AuthConfigError::Issuer(bad.clone()));
    }
    let audience = input
        .audience
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .or_else(|| input.public_fhir_base.clone())
        .ok_or(AuthConfigError::NoAudience)?;
    let mut settings = AuthSettings::new(issuers, audience);
    settings.leeway = input.leeway;
    settings.claims = claims;
    settings.introspection = introspection;
    Ok(Posture::Enforced(settings))
}

/// A CDS client (an EHR calling Ember's CDS Hooks services): its issuer (`iss`), and the
/// JWKS URLs its tokens may be verified with (its `jku` allow-list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdsClient {
    /// Compared exactly with `iss`, without a trailing slash.
    pub issuer: String,
    pub jwks: Vec<String>,
}

/// Parses `EMBER_CDS_CLIENTS`: comma-separated `issuer=JWKS-URL` pairs, split at the first
/// `=` followed by `http`; pairs naming one issuer add to its list of JWKS URLs.
pub fn cds_clients(raw: &str) -> Result<Vec<CdsClient>, AuthConfigError> {
    let mut clients: Vec<CdsClient> = Vec::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let split = pair
            .match_indices('=')
            .map(|(at, _)| at)
            .find(|&at| pair[at + 1..].trim_start().starts_with("http"));
        let Some(at) = split else {
            return Err(AuthConfigError::CdsClient(pair.to_owned()));
        };
        let issuer = pair[..at].trim().trim_end_matches('/');
        let url = pair[at + 1..].trim();
        if issuer.is_empty() {
            return Err(AuthConfigError::CdsClient(pair.to_owned()));
        }
        if !secure_or_loopback(url) {
            return Err(AuthConfigError::CdsJwks(url.to_owned()));
        }
        let index = match clients.iter().position(|c| c.issuer == issuer) {
            Some(index) => index,
            None => {
                clients.push(CdsClient {
                    issuer: issuer.to_owned(),
                    jwks: Vec::new(),
                });
                clients.len() - 1
            }
        };
        let jwks = &mut clients[index].jwks;
        if !jwks.iter().any(|u| u == url) {
            jwks.push(url.to_owned());
        }
    }
    Ok(clients)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(mode: Option<&'a str>, issuers: &'a str, listen: &str) -> Input<'a> {
        Input {
            mode,
            issuers,
            audience: Some("https://fhir.example.org/fhir"),
            listen: Some(listen.parse().unwrap()),
            ..Default::default()
        }
    }

    #[test]
    fn open_only_on_loopback_or_when_disabled() {
        let loopback = posture(&input(None, "", "127.0.0.1:8080"));
        assert!(matches!(loopback, Ok(Posture::OpenOnLoopback)));
        let v6 = posture(&input(None, "", "[::1]:8080"));
        assert!(matches!(v6, Ok(Posture::OpenOnLoopback)));
        let network = posture(&input(None, "", "0.0.0.0:8080"));
        assert!(matches!(network, Err(AuthConfigError::OpenOnNetwork(_))));
        let disabled = posture(&input(Some("disabled"), "", "0.0.0.0:8080"));
        assert!(matches!(disabled, Ok(Posture::Disabled)));
        let required = posture(&input(Some("required"), "", "127.0.0.1:8080"));
        assert_eq!(
            required.unwrap_err(),
            AuthConfigError::RequiredWithoutIssuers
        );
        let both = posture(&input(Some("disabled"), "https://idp", "0.0.0.0:8080"));
        assert_eq!(both.unwrap_err(), AuthConfigError::DisabledWithIssuers);
        let odd = posture(&input(Some("maybe"), "", "127.0.0.1:8080"));
        assert!(matches!(odd, Err(AuthConfigError::Mode(_))));
    }

    #[test]
    fn issuers_must_be_https_except_on_loopback() {
        for ok in [
            "https://idp.example.org/realms/x/",
            "http://127.0.0.1:9000",
            "http://localhost:9000/realms/x",
            "http://[::1]:9000",
        ] {
            let Ok(Posture::Enforced(s)) = posture(&input(None, ok, "0.0.0.0:8080")) else {
                panic!("{ok}");
            };
            assert!(!s.issuers[0].ends_with('/'));
        }
        for bad in [
            "http://idp.example.org",
            "ftp://x",
            "idp.example.org",
            "http://127.0.0.1.example.org",
        ] {
            let got = posture(&input(None, bad, "0.0.0.0:8080"));
            assert!(matches!(got, Err(AuthConfigError::Issuer(_))), "{bad}");
        }
    }

    #[test]
    fn introspection_needs_its_credentials() {
        let mut i = input(None, "", "0.0.0.0:8080");
        i.introspection_url = Some("https://idp/introspect");
        assert_eq!(posture(&i).unwrap_err(), AuthConfigError::Introspection);
        i.introspection_client_id = Some("ember");
        i.introspection_client_secret = Some("s3cret");
        let Ok(Posture::Enforced(s)) = posture(&i) else {
            panic!("introspection alone enforces tokens")
        };
        assert!(!format!("{s:?}").contains("s3cret"));
        i.introspection_url = Some("http://idp/introspect");
        assert_eq!(posture(&i).unwrap_err(), AuthConfigError::Introspection);
    }

    #[test]
    fn cds_clients_are_issuer_jwks_pairs() {
        assert_eq!(cds_clients("").unwrap(), vec![]);
        assert_eq!(cds_clients(" , ").unwrap(), vec![]);
        let got = cds_clients(
            " https://ehr.example.org/ = https://ehr.example.org/.well-known/jwks.json ,\
             urn:ehr:b=http://127.0.0.1:9000/jwks,\
             https://ehr.example.org=https://keys.example.org/jwks?x=1",
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                CdsClient {
                    issuer: "https://ehr.example.org".into(),
                    jwks: vec![
                        "https://ehr.example.org/.well-known/jwks.json".into(),
                        "https://keys.example.org/jwks?x=1".into(),
                    ],
                },
                CdsClient {
                    issuer: "urn:ehr:b".into(),
                    jwks: vec!["http://127.0.0.1:9000/jwks".into()],
                },
            ]
        );
    }

    #[test]
    fn cds_clients_split_at_the_first_equals_before_http() {
        let got = cds_clients("https://ehr/?tenant=a=https://ehr/jwks").unwrap();
        assert_eq!(got[0].issuer, "https://ehr/?tenant=a");
        assert_eq!(got[0].jwks, vec!["https://ehr/jwks".to_owned()]);
        // A repeated pair adds nothing.
        let got = cds_clients("a=https://k/jwks,a=https://k/jwks").unwrap();
        assert_eq!(got[0].jwks.len(), 1);
    }

    #[test]
    fn cds_clients_refuse_malformed_pairs_and_insecure_urls() {
        for bad in [
            "https://ehr.example.org",
            "https://ehr.example.org=",
            "=https://ehr.example.org/jwks",
            " / =https://ehr.example.org/jwks",
            "ehr=ftp://ehr.example.org/jwks",
        ] {
            let got = cds_clients(bad);
            assert!(matches!(got, Err(AuthConfigError::CdsClient(_))), "{bad}");
        }
        for bad in [
            "ehr=http://ehr.example.org/jwks",
            "ehr=https://",
            "ehr=httpx://ehr.example.org/jwks",
        ] {
            let got = cds_clients(bad);
            assert!(matches!(got, Err(AuthConfigError::CdsJwks(_))), "{bad}");
        }
        let message = cds_clients("ehr=http://ehr.example.org/jwks")
            .unwrap_err()
            .to_string();
        assert!(message.contains("EMBER_CDS_CLIENTS"), "{message}");
    }

    #[test]
    fn the_audience_defaults_to_the_public_base() {
        let mut i = input(None, "https://idp", "0.0.0.0:8080");
        i.audience = None;
        assert_eq!(posture(&i).unwrap_err(), AuthConfigError::NoAudience);
        i.public_fhir_base = Some("https://ember.example.org/fhir".into());
        let Ok(Posture::Enforced(s)) = posture(&i) else {
            panic!()
        };
        assert_eq!(s.audience, "https://ember.example.org/fhir");
    }
}
