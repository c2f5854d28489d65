//! The token issuer of the tests is the benchmark's (`ember_bench::issuer`), with the
//! server settings that trust it.

use std::time::Duration;

pub use ember_bench::issuer::{INTROSPECTION_CLIENT, Issuer, now, tampered};

/// Server settings that trust `issuer`, with key refreshes allowed at once.
pub fn settings(issuer: &Issuer) -> ember_auth::AuthSettings {
    let audience = ember_bench::issuer::AUDIENCE.into();
    let mut s = ember_auth::AuthSettings::new(vec![issuer.url.clone()], audience);
    s.refresh_min = Duration::ZERO;
    s.leeway = Duration::from_secs(5);
    s
}

/// [`settings`], with the issuer's introspection endpoint for opaque tokens.
pub fn with_introspection(issuer: &Issuer) -> ember_auth::AuthSettings {
    let (client_id, client_secret) = INTROSPECTION_CLIENT;
    let mut s = settings(issuer);
    s.introspection = Some(ember_auth::Introspection {
        url: format!("{}/introspect", issuer.url),
        client_id: client_id.into(),
        client_secret: client_secret.into(),
    });
    s
}
