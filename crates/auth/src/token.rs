//! Bearer token verification: a JWT signed by a trusted issuer with one of the
//! [`ALLOWED`](crate::keys::ALLOWED) algorithms (never `none` or HMAC), with `iss`,
//! `aud`, `exp`, `nbf` and `iat` checked within the configured leeway. A verified token
//! is cached until it expires, so later requests with it cost a map lookup. A token that
//! is not a JWT goes to the RFC 7662 introspection endpoint, when one is configured.

use std::sync::Arc;
use std::time::Duration;

use ember_platform::http_client::HttpClient;
use jsonwebtoken::{Validation, decode, decode_header, get_current_timestamp};
use serde_json::Value;

use crate::claims::Principal;
use crate::keys::{ALLOWED, KeyError, KeyStore};
use crate::settings::{AuthSettings, Introspection};

/// Why a token was refused. The messages never contain the token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm {0} is not accepted")]
    Algorithm(String),
    #[error("the token's issuer is not trusted")]
    Issuer,
    #[error("{0}")]
    Key(#[from] KeyError),
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("the token is not active")]
    Inactive,
    #[error("the token could not be introspected: {0}")]
    Introspection(String),
}

/// Verifies tokens against the keys of the trusted issuers.
pub struct Verifier {
    settings: AuthSettings,
    keys: KeyStore,
    client: HttpClient,
    verified: moka::sync::Cache<String, Arc<Principal>>,
}

impl Verifier {
    /// A verifier that fetches keys with `client`.
    pub fn new(settings: AuthSettings, client: HttpClient) -> Self {
        let keys = KeyStore::new(
            client.clone(),
            &settings.issuers,
            settings.refresh_min,
            settings.keys_ttl,
        );
        Self {
            settings,
            keys,
            client,
            verified: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(3600))
                .build(),
        }
    }

    /// Asks the RFC 7662 endpoint about an opaque token. An active token's answer is
    /// read like a JWT's claims; it is cached until its `exp`, at most five minutes.
    async fn introspect(
        &self,
        endpoint: &Introspection,
        token: &str,
        now: u64,
    ) -> Result<Arc<Principal>, TokenError> {
        use base64::Engine;
        let form: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        let credentials = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", endpoint.client_id, endpoint.client_secret));
        let request = http::Request::post(&endpoint.url)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::AUTHORIZATION, format!("Basic {credentials}"))
            .body(http_body_util::Full::new(bytes::Bytes::from(form)))
            .map_err(|e| TokenError::Introspection(e.to_string()))?;
        let response = self
            .client
            .send(request)
            .await
            .map_err(|e| TokenError::Introspection(e.to_string()))?;
        if !response.status().is_success() {
            return Err(TokenError::Introspection(format!(
                "the endpoint answered {}",
                response.status()
            )));
        }
        let mut claims: Value = serde_json::from_slice(response.body())
            .map_err(|_| TokenError::Introspection("the answer is not JSON".into()))?;
        if claims.get("active") != Some(&Value::Bool(true)) {
            return Err(TokenError::Inactive);
        }
        let leeway = self.settings.leeway.as_secs();
        let exp = claims.get("exp").and_then(Value::as_u64);
        if exp.is_some_and(|exp| exp.saturating_add(leeway) <= now) {
            return Err(TokenError::Invalid("it has expired".into()));
        }
        if let Some(aud) = claims.get("aud") {
            let audience = &self.settings.audience;
            let ours = match aud {
                Value::String(a) => a == audience,
                Value::Array(all) => all.iter().any(|a| a.as_str() == Some(audience)),
                _ => false,
            };
            if !ours {
                return Err(TokenError::Invalid("it is for another audience".into()));
            }
        }
        // Cached until its expiry, and never longer than five minutes, so a revoked
        // token stops working soon.
        claims["exp"] = Value::from(exp.unwrap_or(u64::MAX).min(now + 300));
        let principal = Arc::new(Principal::from_claims(&claims, self.settings.claims));
        self.verified.insert(token.to_owned(), principal.clone());
        Ok(principal)
    }

    /// The SMART configuration (`/.well-known/smart-configuration`): the first
    /// issuer's endpoints from its discovery document, and what Ember supports.
    pub async fn smart_configuration(&self) -> Result<Value, KeyError> {
        let issuer = self
            .settings
            .issuers
            .first()
            .ok_or(KeyError::UnknownIssuer)?;
        let doc = self.keys.discovery(issuer).await?;
        let mut out = serde_json::json!({
            "issuer": doc.get("issuer").cloned().unwrap_or_else(|| issuer.clone().into()),
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": [
                "openid", "fhirUser", "launch/patient", "offline_access",
                "patient/*.cruds", "user/*.cruds", "system/*.cruds",
                "patient/*.read", "user/*.read", "system/*.read",
            ],
            "capabilities": [
                "launch-standalone", "client-public", "client-confidential-symmetric",
                "client-confidential-asymmetric", "context-standalone-patient",
                "permission-patient", "permission-user", "permission-v1", "permission-v2",
                "sso-openid-connect",
            ],
        });
        for name in [
            "jwks_uri",
            "authorization_endpoint",
            "token_endpoint",
            "token_endpoint_auth_methods_supported",
            "introspection_endpoint",
            "revocation_endpoint",
            "userinfo_endpoint",
        ] {
            if let Some(v) = doc.get(name) {
                out[name] = v.clone();
            }
        }
        Ok(out)
    }

    /// The caller a token stands for, or why it is refused.
    pub async fn verify(&self, token: &str) -> Result<Arc<Principal>, TokenError> {
        let now = get_current_timestamp();
        if let Some(principal) = self.verified.get(token) {
            if now
                < principal
                    .expires
                    .saturating_add(self.settings.leeway.as_secs())
            {
                return Ok(principal);
            }
            self.verified.invalidate(token);
        }
        let header = match decode_header(token) {
            Ok(header) => header,
            // Not a JWT: an opaque token, for the introspection endpoint to judge.
            Err(_) => match &self.settings.introspection {
                Some(endpoint) => return self.introspect(endpoint, token, now).await,
                None => return Err(TokenError::Malformed),
            },
        };
        if !ALLOWED.contains(&header.alg) {
            return Err(TokenError::Algorithm(format!("{:?}", header.alg)));
        }
        // The issuer picks the keys; its claim is trusted only once the signature is.
        let unverified = jsonwebtoken::dangerous::insecure_decode::<Value>(token)
            .map_err(|_| TokenError::Malformed)?;
        let issuer = unverified
            .claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or(TokenError::Issuer)?;
        let trusted = issuer.trim_end_matches('/');
        if !self.settings.issuers.iter().any(|i| i == trusted) {
            return Err(TokenError::Issuer);
        }
        let key = self
            .keys
            .key(trusted, header.kid.as_deref(), header.alg)
            .await?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.settings.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_audience(&[&self.settings.audience]);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = decode::<Value>(token, &key, &validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        let issued = data.claims.get("iat").and_then(Value::as_u64);
        if issued.is_some_and(|iat| iat > now + self.settings.leeway.as_secs()) {
            return Err(TokenError::Invalid("it was issued in the future".into()));
        }
        let principal = Arc::new(Principal::from_claims(&data.claims, self.settings.claims));
        self.verified.insert(token.to_owned(), principal.clone());
        Ok(principal)
    }
}
