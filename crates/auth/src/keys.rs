//! The signing keys of each trusted issuer: its JWKS, found through OpenID discovery
//! (`{issuer}/.well-known/openid-configuration` → `jwks_uri`), cached for a while, and
//! fetched again (at most once per `refresh_min`) when a token names a key not yet
//! known, so a key rotation is picked up without a restart. A store can also be keyed
//! by JWKS URLs read directly, as for the CDS clients.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ember_platform::http_client::HttpClient;
use http_body_util::Full;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use tokio::sync::Mutex;

/// Why no key could be found.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyError {
    #[error("the issuer is not trusted")]
    UnknownIssuer,
    #[error("the issuer has no key {0:?} for this algorithm")]
    UnknownKey(String),
    #[error("the issuer's keys could not be fetched: {0}")]
    Fetch(String),
}

/// One verification key of an issuer.
struct Key {
    kid: Option<String>,
    /// The algorithm the JWKS binds the key to, when it says.
    alg: Option<Algorithm>,
    key: Arc<DecodingKey>,
}

#[derive(Default)]
struct IssuerKeys {
    /// The issuer's OpenID discovery document, once fetched.
    discovery: Option<Value>,
    jwks_uri: Option<String>,
    keys: Vec<Key>,
    fetched: Option<Instant>,
}

/// The keys of every trusted issuer.
pub struct KeyStore {
    client: HttpClient,
    refresh_min: Duration,
    ttl: Duration,
    issuers: HashMap<String, Mutex<IssuerKeys>>,
}

impl KeyStore {
    pub fn new(
        client: HttpClient,
        issuers: &[String],
        refresh_min: Duration,
        ttl: Duration,
    ) -> Self {
        Self {
            client,
            refresh_min,
            ttl,
            issuers: issuers
                .iter()
                .map(|i| (i.clone(), Mutex::new(IssuerKeys::default())))
                .collect(),
        }
    }

    /// A store whose entries are JWKS URLs, each read directly (no discovery); its
    /// [`key`](Self::key) takes the URL in place of an issuer.
    pub fn from_jwks_urls(
        client: HttpClient,
        urls: &[String],
        refresh_min: Duration,
        ttl: Duration,
    ) -> Self {
        let mut store = Self::new(client, urls, refresh_min, ttl);
        for (url, state) in &mut store.issuers {
            state.get_mut().jwks_uri = Some(url.clone());
        }
        store
    }

    /// The key of `issuer` that verifies a token signed with `alg` under `kid`.
    pub async fn key(
        &self,
        issuer: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<DecodingKey>, KeyError> {
        let state = self
            .issuers
            .get(issuer)
            .or_else(|| self.issuers.get(issuer.trim_end_matches('/')))
            .ok_or(KeyError::UnknownIssuer)?;
        let mut state = state.lock().await;
        let stale = state.fetched.is_none_or(|t| t.elapsed() >= self.ttl);
        if stale {
            self.refresh(issuer, &mut state).await?;
        }
        if let Some(key) = find(&state.keys, kid, alg) {
            return Ok(key);
        }
        // A key not seen yet: the issuer may have rotated its keys.
        if !stale
            && state
                .fetched
                .is_some_and(|t| t.elapsed() >= self.refresh_min)
        {
            self.refresh(issuer, &mut state).await?;
            if let Some(key) = find(&state.keys, kid, alg) {
                return Ok(key);
            }
        }
        Err(KeyError::UnknownKey(kid.unwrap_or("(none)").to_owned()))
    }

    /// Fetches the issuer's keys; on failure the keys fetched before stay in use.
    async fn refresh(&self, issuer: &str, state: &mut IssuerKeys) -> Result<(), KeyError> {
        let fetched = async {
            let jwks_uri = match &state.jwks_uri {
                Some(uri) => uri.clone(),
                None => {
                    let doc = self.discover(issuer).await?;
                    let uri = doc
                        .get("jwks_uri")
                        .and_then(Value::as_str)
                        .ok_or_else(|| KeyError::Fetch(format!("{issuer}: no jwks_uri")))?
                        .to_owned();
                    state.jwks_uri = Some(uri.clone());
                    state.discovery = Some(doc);
                    uri
                }
            };
            let jwks = self.get_json(&jwks_uri).await?;
            Ok::<_, KeyError>(parse_jwks(&jwks))
        }
        .await;
        state.fetched = Some(Instant::now());
        match fetched {
            Ok(keys) => {
                state.keys = keys;
                Ok(())
            }
            Err(e) if !state.keys.is_empty() => {
                tracing::warn!(issuer, error = %e, "keeping the keys fetched before");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The OpenID discovery document of `issuer` (fetched once, then kept).
    pub async fn discovery(&self, issuer: &str) -> Result<Value, KeyError> {
        let state = self.issuers.get(issuer).ok_or(KeyError::UnknownIssuer)?;
        let mut state = state.lock().await;
        if let Some(doc) = &state.discovery {
            return Ok(doc.clone());
        }
        let doc = self.discover(issuer).await?;
        state.discovery = Some(doc.clone());
        Ok(doc)
    }

    async fn discover(&self, issuer: &str) -> Result<Value, KeyError> {
        self.get_json(&format!("{issuer}/.well-known/openid-configuration"))
            .await
    }

    async fn get_json(&self, url: &str) -> Result<Value, KeyError> {
        let request = http::Request::get(url)
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| KeyError::Fetch(format!("{url}: {e}")))?;
        let response = self
            .client
            .send(request)
            .await
            .map_err(|e| KeyError::Fetch(format!("{url}: {e}")))?;
        if !response.status().is_success() {
            return Err(KeyError::Fetch(format!("{url}: {}", response.status())));
        }
        serde_json::from_slice(response.body())
            .map_err(|e| KeyError::Fetch(format!("{url}: not JSON: {e}")))
    }
}

/// The signature keys of a JWKS; keys of other uses, symmetric keys and keys this
/// server cannot use are skipped.
fn parse_jwks(jwks: &Value) -> Vec<Key> {
    let items = jwks.get("keys").and_then(Value::as_array);
    items
        .into_iter()
        .flatten()
        .filter_map(|raw| serde_json::from_value::<Jwk>(raw.clone()).ok())
        .filter(|jwk| {
            jwk.common
                .public_key_use
                .as_ref()
                .is_none_or(|u| *u == PublicKeyUse::Signature)
        })
        .filter_map(|jwk| {
            let key = DecodingKey::from_jwk(&jwk).ok()?;
            let alg = match jwk.common.key_algorithm {
                Some(a) => Some(Algorithm::from_str(&a.to_string()).ok()?),
                None => None,
            };
            if alg.is_some_and(|a| !ALLOWED.contains(&a)) || !is_asymmetric(&key) {
                return None;
            }
            Some(Key {
                kid: jwk.common.key_id,
                alg,
                key: Arc::new(key),
            })
        })
        .collect()
}

/// The algorithms tokens may be signed with: no `none`, no HMAC.
pub const ALLOWED: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::PS256,
];

fn is_asymmetric(key: &DecodingKey) -> bool {
    use jsonwebtoken::AlgorithmFamily;
    matches!(key.family(), AlgorithmFamily::Rsa | AlgorithmFamily::Ec)
}

/// Whether `key` can verify `alg`.
fn fits(key: &Key, alg: Algorithm) -> bool {
    use jsonwebtoken::AlgorithmFamily;
    let family = match alg {
        Algorithm::ES256 | Algorithm::ES384 => AlgorithmFamily::Ec,
        _ => AlgorithmFamily::Rsa,
    };
    key.key.family() == family && key.alg.is_none_or(|a| a == alg)
}

fn find(keys: &[Key], kid: Option<&str>, alg: Algorithm) -> Option<Arc<DecodingKey>> {
    let mut fitting = keys.iter().filter(|k| fits(k, alg));
    match kid {
        Some(kid) => fitting.find(|k| k.kid.as_deref() == Some(kid)),
        // Without a kid, only an unambiguous key will do.
        None => {
            let first = fitting.next()?;
            fitting.next().is_none().then_some(first)
        }
    }
    .map(|k| k.key.clone())
}
