//! Verification of the JWT a CDS client (an EHR) signs for each CDS Hooks 2.0 call
//! ("Trusting CDS Clients"): `typ` JWT, a `kid`, an [`ALLOWED`] algorithm, a configured
//! issuer, a key from one of that issuer's JWKS URLs (the `jku`, when given, must be one
//! of them), `aud` the endpoint called, and a short life (`iat`, `exp`, `jti`). Nothing is
//! cached: each token is for one call, and the caller checks `jti` against replays.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use ember_platform::http_client::HttpClient;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

use crate::keys::{ALLOWED, KeyError, KeyStore};
use crate::settings::CdsClient;

/// Why a CDS client's token was refused. The messages never contain the token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CdsTokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm {0} is not accepted")]
    Algorithm(String),
    #[error("the token's header must have typ JWT")]
    Type,
    #[error("the token's header names no key (kid)")]
    NoKeyId,
    #[error("the token's issuer is not a known CDS client")]
    Issuer,
    #[error("the token's jku {0:?} is not one of its issuer's JWKS URLs")]
    Jku(String),
    #[error("{0}")]
    Key(#[from] KeyError),
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token is for another endpoint")]
    Audience,
    #[error("the token has expired")]
    Expired,
    #[error("the token was issued in the future")]
    IssuedInFuture,
    #[error("the token lives longer (exp - iat) than {0} seconds")]
    Lifetime(u64),
    #[error("the token has no valid {0} claim")]
    MissingClaim(&'static str),
    #[error("the token is not valid: {0}")]
    Invalid(String),
}

/// The CDS client a verified token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdsCaller {
    pub issuer: String,
    pub subject: Option<String>,
    pub tenant: Option<String>,
    /// For the caller's replay check.
    pub jti: String,
    /// `exp`, in seconds since the epoch.
    pub expires: u64,
}

/// Verifies CDS clients' tokens against the keys at their configured JWKS URLs.
pub struct CdsVerifier {
    clients: Vec<CdsClient>,
    keys: KeyStore,
    leeway: Duration,
    max_lifetime: Duration,
}

impl CdsVerifier {
    /// A verifier for `clients` that fetches keys with `client`; 60 s leeway, tokens
    /// living at most 5 minutes.
    pub fn new(clients: Vec<CdsClient>, client: HttpClient) -> Self {
        let mut urls: Vec<String> = clients.iter().flat_map(|c| c.jwks.clone()).collect();
        urls.sort();
        urls.dedup();
        let keys = KeyStore::from_jwks_urls(
            client,
            &urls,
            Duration::from_secs(10),
            Duration::from_secs(3600),
        );
        Self {
            clients,
            keys,
            leeway: Duration::from_secs(60),
            max_lifetime: Duration::from_secs(300),
        }
    }

    /// The same verifier with another clock leeway and longest token life.
    pub fn with_limits(mut self, leeway: Duration, max_lifetime: Duration) -> Self {
        self.leeway = leeway;
        self.max_lifetime = max_lifetime;
        self
    }

    /// Whether no CDS client is configured.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Verifies the JWT an EHR signs for one CDS Hooks call to `endpoint` (the exact URL
    /// called).
    pub async fn verify(&self, token: &str, endpoint: &str) -> Result<CdsCaller, CdsTokenError> {
        // `none` and algorithms unknown to the JWT library fail to decode.
        let header = decode_header(token).map_err(|_| match header_alg(token) {
            Some(alg) if alg.parse::<Algorithm>().is_ok_and(|a| ALLOWED.contains(&a)) => {
                CdsTokenError::Malformed
            }
            Some(alg) => CdsTokenError::Algorithm(alg.chars().take(16).collect()),
            None => CdsTokenError::Malformed,
        })?;
        if !ALLOWED.contains(&header.alg) {
            return Err(CdsTokenError::Algorithm(format!("{:?}", header.alg)));
        }
        if !header
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("JWT"))
        {
            return Err(CdsTokenError::Type);
        }
        let kid = header.kid.as_deref().ok_or(CdsTokenError::NoKeyId)?;
        // The issuer picks the keys; its claim is trusted only once the signature is.
        let unverified = jsonwebtoken::dangerous::insecure_decode::<Value>(token)
            .map_err(|_| CdsTokenError::Malformed)?;
        let issuer = unverified
            .claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or(CdsTokenError::Issuer)?;
        let trusted = issuer.trim_end_matches('/');
        let client = self
            .clients
            .iter()
            .find(|c| c.issuer == trusted)
            .ok_or(CdsTokenError::Issuer)?;
        let key = match &header.jku {
            Some(jku) if client.jwks.contains(jku) => {
                self.keys.key(jku, Some(kid), header.alg).await?
            }
            Some(jku) => return Err(CdsTokenError::Jku(jku.clone())),
            None => self.first_key(&client.jwks, kid, header.alg).await?,
        };
        let validation = self.validation(header.alg, issuer, endpoint);
        let claims = decode::<Value>(token, &key, &validation)
            .map_err(refusal)?
            .claims;
        self.caller(&client.issuer, &claims)
    }

    /// The key under `kid` at the first of `urls` that has it.
    async fn first_key(
        &self,
        urls: &[String],
        kid: &str,
        alg: Algorithm,
    ) -> Result<Arc<DecodingKey>, KeyError> {
        let mut error = KeyError::UnknownKey(kid.to_owned());
        for url in urls {
            match self.keys.key(url, Some(kid), alg).await {
                Ok(key) => return Ok(key),
                // A URL that could not be read may be the one with the key: say so.
                Err(e) if !matches!(error, KeyError::Fetch(_)) => error = e,
                Err(_) => {}
            }
        }
        Err(error)
    }

    /// Signature, `aud`, `iss` and `exp` (and `nbf`, when given) checks for `alg`.
    fn validation(&self, alg: Algorithm, issuer: &str, endpoint: &str) -> Validation {
        let mut validation = Validation::new(alg);
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_audience(&[endpoint]);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation
    }

    /// The caller of verified `claims`, once `iat`, the token's life and `jti` are
    /// checked.
    fn caller(&self, issuer: &str, claims: &Value) -> Result<CdsCaller, CdsTokenError> {
        let number = |name: &'static str| {
            claims
                .get(name)
                .and_then(Value::as_u64)
                .ok_or(CdsTokenError::MissingClaim(name))
        };
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let (issued, expires) = (number("iat")?, number("exp")?);
        let now = jsonwebtoken::get_current_timestamp();
        if issued > now.saturating_add(self.leeway.as_secs()) {
            return Err(CdsTokenError::IssuedInFuture);
        }
        let max = self.max_lifetime.as_secs();
        if expires.saturating_sub(issued) > max {
            return Err(CdsTokenError::Lifetime(max));
        }
        let jti = text("jti")
            .filter(|j| !j.is_empty())
            .ok_or(CdsTokenError::MissingClaim("jti"))?;
        Ok(CdsCaller {
            issuer: issuer.to_owned(),
            subject: text("sub"),
            tenant: text("tenant"),
            jti,
            expires,
        })
    }
}

/// The refusal for a failed [`decode`].
fn refusal(error: jsonwebtoken::errors::Error) -> CdsTokenError {
    match error.into_kind() {
        ErrorKind::InvalidSignature => CdsTokenError::Signature,
        ErrorKind::InvalidAudience => CdsTokenError::Audience,
        ErrorKind::ExpiredSignature => CdsTokenError::Expired,
        ErrorKind::MissingRequiredClaim(c) | ErrorKind::InvalidClaimFormat(c) => match c.as_str() {
            "exp" => CdsTokenError::MissingClaim("exp"),
            "aud" => CdsTokenError::MissingClaim("aud"),
            "iss" => CdsTokenError::MissingClaim("iss"),
            _ => CdsTokenError::Invalid(format!("the {c} claim is not valid")),
        },
        ErrorKind::ImmatureSignature => CdsTokenError::Invalid("it is not valid yet".into()),
        other => CdsTokenError::Invalid(format!("{other:?}")),
    }
}

/// The `alg` a token's header names, read without the JWT library (which refuses
/// algorithms it does not know, `none` among them).
fn header_alg(token: &str) -> Option<String> {
    let encoded = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()?;
    let header: Value = serde_json::from_slice(&bytes).ok()?;
    header.get("alg")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use jsonwebtoken::{EncodingKey, Header, encode, get_current_timestamp};
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const ISSUER: &str = "https://ehr.example.org";
    const ENDPOINT: &str = "https://ember.test/cds-services/patient-risk";

    /// A fixed test key: its signing key, and its public JWK.
    struct Signer {
        kid: &'static str,
        alg: Algorithm,
        key: EncodingKey,
        jwk: Value,
    }

    /// The test keys of `testdata/cds-keys.json` (made once with openssl, for tests only).
    fn signer(name: &str, alg: Algorithm, kid: &'static str) -> Signer {
        let all: Value = serde_json::from_str(include_str!("../testdata/cds-keys.json")).unwrap();
        let der = |field: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(all[name][field].as_str().unwrap())
                .unwrap()
        };
        let key = match name {
            "rs" => EncodingKey::from_rsa_der(&der("pkcs1")),
            _ => EncodingKey::from_ec_der(&der("pkcs8")),
        };
        let mut jwk = all[name]["jwk"].clone();
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        Signer { kid, alg, key, jwk }
    }

    fn es256() -> Signer {
        signer("es256", Algorithm::ES256, "ec-256")
    }

    fn es384() -> Signer {
        signer("es384", Algorithm::ES384, "ec-384")
    }

    fn rs(alg: Algorithm) -> Signer {
        signer("rs", alg, "rsa")
    }

    fn header(signer: &Signer) -> Header {
        let mut header = Header::new(signer.alg);
        header.kid = Some(signer.kid.to_owned());
        header
    }

    fn sign(signer: &Signer, header: &Header, claims: &Value) -> String {
        encode(header, claims, &signer.key).unwrap()
    }

    fn claims() -> Value {
        let now = get_current_timestamp();
        json!({
            "iss": ISSUER, "aud": ENDPOINT, "sub": "cds-client-1", "tenant": "tenant-a",
            "iat": now, "exp": now + 300, "jti": "e0b1c9a2-5f0e-4c4e-9d55-0d0e6c0c6a11",
        })
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// JWKS served over plain HTTP on loopback: `/a` (ES256 and RSA keys), `/b` (ES384)
    /// and `/c` (ES256, on no allow-list); GETs are counted per path.
    struct Server {
        base: String,
        fetches: Arc<Mutex<HashMap<String, usize>>>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Server {
        async fn start() -> Self {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let routes: Arc<HashMap<&str, Value>> = Arc::new(HashMap::from([
                (
                    "/a",
                    json!({"keys": [es256().jwk, rs(Algorithm::RS256).jwk]}),
                ),
                ("/b", json!({"keys": [es384().jwk]})),
                ("/c", json!({"keys": [es256().jwk]})),
            ]));
            let fetches = Arc::new(Mutex::new(HashMap::new()));
            let counted = fetches.clone();
            let task = tokio::spawn(async move {
                loop {
                    let Ok((mut socket, _)) = listener.accept().await else {
                        return;
                    };
                    let routes = routes.clone();
                    let counted = counted.clone();
                    tokio::spawn(async move {
                        let mut head = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                            match socket.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => head.extend_from_slice(&buf[..n]),
                            }
                        }
                        let head = String::from_utf8_lossy(&head);
                        let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
                        *counted.lock().unwrap().entry(path.clone()).or_insert(0) += 1;
                        let (status, body) = match routes.get(path.as_str()) {
                            Some(jwks) => ("200 OK", jwks.to_string()),
                            None => ("404 Not Found", "{}".to_owned()),
                        };
                        let response = format!(
                            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
                             content-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = socket.write_all(response.as_bytes()).await;
                    });
                }
            });
            Self {
                base,
                fetches,
                task,
            }
        }

        fn url(&self, path: &str) -> String {
            format!("{}{path}", self.base)
        }

        fn fetches(&self, path: &str) -> usize {
            self.fetches.lock().unwrap().get(path).copied().unwrap_or(0)
        }

        /// A verifier trusting [`ISSUER`] with the keys at `/a` and `/b`.
        fn verifier(&self) -> CdsVerifier {
            let clients = vec![CdsClient {
                issuer: ISSUER.to_owned(),
                jwks: vec![self.url("/a"), self.url("/b")],
            }];
            CdsVerifier::new(clients, HttpClient::new("test", Duration::from_secs(5)))
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    /// Why `token` is refused; the message must not contain it.
    async fn refused(verifier: &CdsVerifier, token: &str) -> CdsTokenError {
        let error = verifier.verify(token, ENDPOINT).await.unwrap_err();
        assert!(
            token.is_empty() || !error.to_string().contains(token),
            "{error}"
        );
        error
    }

    #[tokio::test]
    async fn accepts_a_good_token() {
        let server = Server::start().await;
        let verifier = server.verifier();
        assert!(!verifier.is_empty());
        let claims = claims();
        let es = es256();
        let caller = verifier
            .verify(&sign(&es, &header(&es), &claims), ENDPOINT)
            .await
            .unwrap();
        assert_eq!(
            caller,
            CdsCaller {
                issuer: ISSUER.to_owned(),
                subject: Some("cds-client-1".into()),
                tenant: Some("tenant-a".into()),
                jti: "e0b1c9a2-5f0e-4c4e-9d55-0d0e6c0c6a11".into(),
                expires: claims["exp"].as_u64().unwrap(),
            }
        );
        // Not cached: the same token verifies again, from the keys already fetched.
        assert!(
            verifier
                .verify(&sign(&es, &header(&es), &claims), ENDPOINT)
                .await
                .is_ok()
        );
        assert_eq!(server.fetches("/a"), 1);
    }

    #[tokio::test]
    async fn accepts_every_allowed_family_from_any_of_the_issuers_urls() {
        let server = Server::start().await;
        let verifier = server.verifier();
        for signer in [
            es384(),
            rs(Algorithm::RS256),
            rs(Algorithm::RS384),
            rs(Algorithm::PS256),
        ] {
            let token = sign(&signer, &header(&signer), &claims());
            let got = verifier.verify(&token, ENDPOINT).await;
            assert!(got.is_ok(), "{:?}: {got:?}", signer.alg);
        }
        // The ES384 key is at `/b`: found after `/a` had no such kid.
        assert_eq!(server.fetches("/b"), 1);
    }

    #[tokio::test]
    async fn accepts_typ_in_any_case_an_issuer_with_a_slash_and_an_audience_array() {
        let server = Server::start().await;
        let verifier = server.verifier();
        let es = es256();
        let mut lower = header(&es);
        lower.typ = Some("jwt".into());
        assert!(
            verifier
                .verify(&sign(&es, &lower, &claims()), ENDPOINT)
                .await
                .is_ok()
        );
        let mut c = claims();
        c["iss"] = json!(format!("{ISSUER}/"));
        c["aud"] = json!(["https://other.test/cds-services/x", ENDPOINT]);
        let caller = verifier
            .verify(&sign(&es, &header(&es), &c), ENDPOINT)
            .await;
        assert_eq!(caller.unwrap().issuer, ISSUER);
    }

    #[tokio::test]
    async fn refuses_another_audience() {
        let server = Server::start().await;
        let verifier = server.verifier();
        let es = es256();
        let token = sign(&es, &header(&es), &claims());
        let error = verifier
            .verify(&token, "https://ember.test/cds-services/other")
            .await
            .unwrap_err();
        assert!(matches!(error, CdsTokenError::Audience), "{error}");
        let mut c = claims();
        c["aud"] = json!(format!("{ENDPOINT}/"));
        let error = refused(&verifier, &sign(&es, &header(&es), &c)).await;
        assert!(matches!(error, CdsTokenError::Audience), "{error}");
        c.as_object_mut().unwrap().remove("aud");
        let error = refused(&verifier, &sign(&es, &header(&es), &c)).await;
        assert!(
            matches!(error, CdsTokenError::MissingClaim("aud")),
            "{error}"
        );
    }

    #[tokio::test]
    async fn refuses_tokens_out_of_their_time() {
        let server = Server::start().await;
        let verifier = server.verifier();
        let es = es256();
        let now = get_current_timestamp();
        let with = |iat: Option<u64>, exp: Option<u64>| {
            let mut c = claims();
            let o = c.as_object_mut().unwrap();
            o.remove("iat");
            o.remove("exp");
            if let Some(iat) = iat {
                o.insert("iat".into(), json!(iat));
            }
            if let Some(exp) = exp {
                o.insert("exp".into(), json!(exp));
            }
            sign(&es, &header(&es), &c)
        };
        let expired = refused(&verifier, &with(Some(now - 400), Some(now - 100))).await;
        assert!(matches!(expired, CdsTokenError::Expired), "{expired}");
        let long = refused(&verifier, &with(Some(now), Some(now + 301))).await;
        assert!(matches!(long, CdsTokenError::Lifetime(300)), "{long}");
        let future = refused(&verifier, &with(Some(now + 120), Some(now + 300))).await;
        assert!(matches!(future, CdsTokenError::IssuedInFuture), "{future}");
        let no_iat = refused(&verifier, &with(None, Some(now + 300))).await;
        assert!(
            matches!(no_iat, CdsTokenError::MissingClaim("iat")),
            "{no_iat}"
        );
        let no_exp = refused(&verifier, &with(Some(now), None)).await;
        assert!(
            matches!(no_exp, CdsTokenError::MissingClaim("exp")),
            "{no_exp}"
        );
        // Within the leeway, a slightly early `iat` and a just-past `exp` still pass.
        let skewed = with(Some(now + 30), Some(now + 300));
        assert!(verifier.verify(&skewed, ENDPOINT).await.is_ok());
        let just_past = with(Some(now - 200), Some(now - 30));
        assert!(verifier.verify(&just_past, ENDPOINT).await.is_ok());
    }

    #[tokio::test]
    async fn the_limits_can_be_changed() {
        let server = Server::start().await;
        let verifier = server
            .verifier()
            .with_limits(Duration::ZERO, Duration::from_secs(60));
        let es = es256();
        let long = refused(&verifier, &sign(&es, &header(&es), &claims())).await;
        assert!(matches!(long, CdsTokenError::Lifetime(60)), "{long}");
        let now = get_current_timestamp();
        let mut c = claims();
        c["iat"] = json!(now + 5);
        c["exp"] = json!(now + 60);
        let future = refused(&verifier, &sign(&es, &header(&es), &c)).await;
        assert!(matches!(future, CdsTokenError::IssuedInFuture), "{future}");
    }

    #[tokio::test]
    async fn refuses_a_token_without_jti() {
        let server = Server::start().await;
        let verifier = server.verifier();
        let es = es256();
        let mut c = claims();
        c["jti"] = json!("");
        let empty = refused(&verifier, &sign(&es, &header(&es), &c)).await;
        assert!(
            matches!(empty, CdsTokenError::MissingClaim("jti")),
            "{empty}"
        );
        c.as_object_mut().unwrap().remove("jti");
        let missing = refused(&verifier, &sign(&es, &header(&es), &c)).await;
        assert!(
            matches!(missing, CdsTokenError::MissingClaim("jti")),
            "{missing}"
        );
    }

    #[tokio::test]
    async fn refuses_a_header_without_typ_jwt_or_kid() {
        let server = Server::start().await;
        let verifier = server.verifier();
        let es = es256();
        let mut h = header(&es);
        h.typ = Some("at+jwt".into());
        let typ = refused(&verifier, &sign(&es, &h, &claims())).await;
        assert!(matches!(typ, CdsTokenError::Type), "{typ}");
        h.typ = None;
        let typ = refused(&verifier, &sign(&es, &h, &claims())).await;
        assert!(matches!(typ, CdsTokenError::Type), "{typ}");
        let mut h = header(&es);
        h.kid = None;
        let kid = refused(&verifier, &sign(&es, &h, &claims())).await;
        assert!(matches!(kid, CdsTokenError::NoKeyId), "{kid}");
    }

    #[tokio::test]
    async fn an_unknown_kid_refreshes_once_then_fails() {
        let server = Server::start().await;
        let verifier = server.verifier();
        let es = es256();
        let mut h = header(&es);
        h.kid = Some("rotated-away".into());
        let token = sign(&es, &h, &claims());
        let error = refused(&verifier, &token).await;
        assert!(
            matches!(&error, CdsTokenError::Key(KeyError::UnknownKey(k)) if k == "rotated-away"),
            "{error}"
        );
        assert_eq!((server.fetches("/a"), server.fetches("/b")), (1, 1));
        // Within the refresh interval, no fetch again.
        let again = refused(&verifier, &token).await;
        assert!(
            matches!(again, CdsTokenError::Key(KeyError::UnknownKey(_))),
            "{again}"
        );
        assert_eq!((server.fetches("/a"), server.fetches("/b")), (1, 1));
    }

    #[tokio::test]
    async fn jku_must_be_on_the_issuers_list_and_picks_the_keys() {
        let server = Server::start().await;
        let verifier = server.verifier();
        let es = es256();
        let mut h = header(&es);
        h.jku = Some(server.url("/c"));
        let off = refused(&verifier, &sign(&es, &h, &claims())).await;
        assert!(
            matches!(&off, CdsTokenError::Jku(u) if *u == server.url("/c")),
            "{off}"
        );
        assert_eq!(
            server.fetches("/c"),
            0,
            "a jku off the list is never fetched"
        );
        // On the list: the key comes from that URL only.
        let p384 = es384();
        let mut h = header(&p384);
        h.jku = Some(server.url("/b"));
        let caller = verifier.verify(&sign(&p384, &h, &claims()), ENDPOINT).await;
        assert_eq!(caller.unwrap().issuer, ISSUER);
        assert_eq!(server.fetches("/a"), 0);
        h.jku = Some(server.url("/a"));
        let elsewhere = refused(&verifier, &sign(&p384, &h, &claims())).await;
        assert!(
            matches!(elsewhere, CdsTokenError::Key(KeyError::UnknownKey(_))),
            "{elsewhere}"
        );
    }

    #[tokio::test]
    async fn refuses_alg_none_and_hmac() {
        let server = Server::start().await;
        let verifier = server.verifier();
        let none = format!(
            "{}.{}.",
            b64(json!({"alg": "none", "typ": "JWT", "kid": "ec-256"})
                .to_string()
                .as_bytes()),
            b64(claims().to_string().as_bytes())
        );
        let error = refused(&verifier, &none).await;
        assert!(
            matches!(&error, CdsTokenError::Algorithm(a) if a == "none"),
            "{error}"
        );
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("ec-256".into());
        let secret = EncodingKey::from_secret(es256().jwk.to_string().as_bytes());
        let hmac = encode(&h, &claims(), &secret).unwrap();
        let error = refused(&verifier, &hmac).await;
        assert!(
            matches!(&error, CdsTokenError::Algorithm(a) if a == "HS256"),
            "{error}"
        );
        assert_eq!(server.fetches("/a"), 0);
    }

    #[tokio::test]
    async fn refuses_unknown_issuers_forged_signatures_and_garbage() {
        let server = Server::start().await;
        let verifier = server.verifier();
        let es = es256();
        let mut c = claims();
        c["iss"] = json!("https://other-ehr.example.org");
        let other = refused(&verifier, &sign(&es, &header(&es), &c)).await;
        assert!(matches!(other, CdsTokenError::Issuer), "{other}");
        c.as_object_mut().unwrap().remove("iss");
        let none = refused(&verifier, &sign(&es, &header(&es), &c)).await;
        assert!(matches!(none, CdsTokenError::Issuer), "{none}");
        // The payload swapped under a valid signature.
        let good = sign(&es, &header(&es), &claims());
        let mut forged_claims = claims();
        forged_claims["sub"] = json!("someone-else");
        let parts: Vec<&str> = good.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64(forged_claims.to_string().as_bytes()),
            parts[2]
        );
        let error = refused(&verifier, &forged).await;
        assert!(matches!(error, CdsTokenError::Signature), "{error}");
        for garbage in ["", "not-a-jwt", "a.b.c", "eyJhbGciOiJFUzI1NiJ9.e30"] {
            let error = refused(&verifier, garbage).await;
            assert!(
                matches!(error, CdsTokenError::Malformed),
                "{garbage}: {error}"
            );
        }
    }

    #[test]
    fn no_clients_is_empty() {
        let verifier =
            CdsVerifier::new(Vec::new(), HttpClient::new("test", Duration::from_secs(1)));
        assert!(verifier.is_empty());
    }
}
