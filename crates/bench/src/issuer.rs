//! A token issuer for tests and benchmarks (`ember bench-issuer`): an ES256 key made at
//! start, OpenID discovery and the JWKS served over HTTP, keys that can be rotated, and
//! tokens minted (or forged, for the tests of token faults) on demand.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use serde_json::{Value, json};

/// The audience the test server accepts, and the benchmark's default.
pub const AUDIENCE: &str = "https://ember.test/fhir";

struct SigningKey {
    kid: String,
    secret: p256::SecretKey,
}

/// The credentials the issuer's introspection endpoint accepts.
pub const INTROSPECTION_CLIENT: (&str, &str) = ("ember", "s3cret");

/// Opaque tokens the issuer handed out, with their claims.
type Opaque = Arc<Mutex<std::collections::HashMap<String, Value>>>;

/// A running issuer.
pub struct Issuer {
    pub url: String,
    keys: Arc<Mutex<Vec<SigningKey>>>,
    opaque: Opaque,
    task: tokio::task::JoinHandle<()>,
}

fn new_key() -> SigningKey {
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    SigningKey {
        kid: uuid::Uuid::new_v4().to_string(),
        secret: p256::SecretKey::from_slice(&bytes).expect("a P-256 key"),
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn jwk(key: &SigningKey) -> Value {
    let point = key.secret.public_key().to_encoded_point(false);
    json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": key.kid,
        "x": b64(point.x().expect("x")), "y": b64(point.y().expect("y")),
    })
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

impl Issuer {
    /// An issuer on an ephemeral loopback port.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0")
            .await
            .expect("bind a loopback port")
    }

    /// An issuer listening on `addr`; its URL is `http://{addr}/realms/test`.
    pub async fn start_on(addr: &str) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let url = format!("http://{}/realms/test", listener.local_addr()?);
        let keys = Arc::new(Mutex::new(vec![new_key()]));
        let discovery = json!({
            "issuer": url,
            "jwks_uri": format!("{url}/jwks"),
            "authorization_endpoint": format!("{url}/authorize"),
            "token_endpoint": format!("{url}/token"),
        });
        let served = keys.clone();
        let opaque: Opaque = Arc::default();
        let known = opaque.clone();
        let app = Router::new()
            .route(
                "/realms/test/introspect",
                axum::routing::post(
                    move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                        let known = known.clone();
                        let form: Vec<(String, String)> = form_urlencoded::parse(&body)
                            .map(|(k, v)| (k.into_owned(), v.into_owned()))
                            .collect();
                        async move { introspect(&known, &headers, &form) }
                    },
                ),
            )
            .route(
                "/realms/test/.well-known/openid-configuration",
                get(move || {
                    let discovery = discovery.clone();
                    async move { axum::Json(discovery) }
                }),
            )
            .route(
                "/realms/test/jwks",
                get(move || {
                    let keys: Vec<Value> = served.lock().unwrap().iter().map(jwk).collect();
                    async move { axum::Json(json!({"keys": keys})) }
                }),
            );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Issuer {
            url,
            keys,
            opaque,
            task,
        })
    }

    /// Replaces the signing key: the JWKS serves only the new one from now on.
    pub fn rotate(&self) {
        *self.keys.lock().unwrap() = vec![new_key()];
    }

    /// Valid claims for `scope`, with a patient context when given.
    pub fn claims(&self, scope: &str, patient: Option<&str>) -> Value {
        let mut claims = json!({
            "iss": self.url, "aud": AUDIENCE, "sub": "user-1", "client_id": "test-app",
            "iat": now(), "exp": now() + 300, "scope": scope,
        });
        if let Some(p) = patient {
            claims["patient"] = json!(p);
        }
        claims
    }

    /// An opaque token (not a JWT) that the introspection endpoint answers with
    /// `claims`.
    pub fn opaque(&self, claims: &Value) -> String {
        let token = format!("opaque-{}", uuid::Uuid::new_v4().simple());
        self.opaque
            .lock()
            .unwrap()
            .insert(token.clone(), claims.clone());
        token
    }

    /// Forgets an opaque token (as if it were revoked).
    pub fn revoke(&self, token: &str) {
        self.opaque.lock().unwrap().remove(token);
    }

    /// `claims` signed with the current key.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with(claims, |_| {})
    }

    /// `claims` signed with the current key, under a header `edit` may change (its
    /// `kid`, `jku` or `typ`).
    pub fn sign_with(&self, claims: &Value, edit: impl FnOnce(&mut Header)) -> String {
        let keys = self.keys.lock().unwrap();
        let key = keys.last().expect("a key");
        let der = key.secret.to_pkcs8_der().expect("pkcs8");
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(key.kid.clone());
        edit(&mut header);
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(der.as_bytes()))
            .expect("sign")
    }

    /// The URL of the issuer's JWKS.
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.url)
    }

    /// A token for `scope`.
    pub fn token(&self, scope: &str, patient: Option<&str>) -> String {
        self.sign(&self.claims(scope, patient))
    }

    /// `claims` signed with HMAC, using the issuer's public key (as its JWK text) as the
    /// secret: the classic algorithm confusion.
    pub fn sign_hmac_with_public_key(&self, claims: &Value) -> String {
        let keys = self.keys.lock().unwrap();
        let key = keys.last().expect("a key");
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        let secret = jwk(key).to_string();
        jsonwebtoken::encode(
            &header,
            claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("sign")
    }

    /// `claims` with `alg: none` and no signature.
    pub fn unsigned(&self, claims: &Value) -> String {
        let header = json!({"alg": "none", "typ": "JWT"});
        format!(
            "{}.{}.",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        )
    }
}

/// The RFC 7662 answer about the form's `token`, for the client of
/// [`INTROSPECTION_CLIENT`] only.
fn introspect(
    known: &Opaque,
    headers: &axum::http::HeaderMap,
    form: &[(String, String)],
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (id, secret) = INTROSPECTION_CLIENT;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    );
    let authorized = headers
        .get(axum::http::header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == expected.as_bytes());
    if !authorized {
        return axum::http::StatusCode::UNAUTHORIZED.into_response();
    }
    let token = form.iter().find(|(k, _)| k == "token").map(|(_, v)| v);
    let answer = match token.and_then(|t| known.lock().unwrap().get(t).cloned()) {
        Some(mut claims) => {
            claims["active"] = json!(true);
            claims
        }
        None => json!({"active": false}),
    };
    axum::Json(answer).into_response()
}

/// `token` with its payload replaced by `claims` and the signature kept.
pub fn tampered(token: &str, claims: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!(
        "{}.{}.{}",
        parts[0],
        b64(claims.to_string().as_bytes()),
        parts[2]
    )
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Arguments of `ember bench-issuer`.
#[derive(clap::Args, Debug, Clone)]
pub struct IssuerArgs {
    /// Address to serve discovery and the JWKS on
    #[arg(long, default_value = "127.0.0.1:18111")]
    pub listen: String,
    /// The `aud` of the token
    #[arg(long, default_value = AUDIENCE)]
    pub audience: String,
    /// The `scope` of the token
    #[arg(long, default_value = "user/*.*")]
    pub scope: String,
    /// Lifetime of the token, in seconds
    #[arg(long, default_value_t = 3600)]
    pub lifetime: u64,
}

/// `ember bench-issuer`: serves an issuer until stopped, after printing its URL and a
/// token (one per line) for a benchmark.
pub async fn run(args: IssuerArgs) -> anyhow::Result<()> {
    let issuer = Issuer::start_on(&args.listen).await?;
    let mut claims = issuer.claims(&args.scope, None);
    claims["aud"] = json!(args.audience);
    claims["exp"] = json!(now() + args.lifetime);
    println!("{}", issuer.url);
    println!("{}", issuer.sign(&claims));
    tokio::signal::ctrl_c().await?;
    Ok(())
}
