//! The token issuer of the tests is the benchmark's (`ember_bench::issuer`), with the
//! server settings that trust it.

use std::time::Duration;

pub use ember_bench::issuer::{Issuer, now, tampered};

/// Server settings that trust `issuer`, with key refreshes allowed at once.
pub fn settings(issuer: &Issuer) -> ember_auth::AuthSettings {
    let audience = ember_bench::issuer::AUDIENCE.into();
    let mut s = ember_auth::AuthSettings::new(vec![issuer.url.clone()], audience);
    s.refresh_min = Duration::ZERO;
    s.leeway = Duration::from_secs(5);
    s
}
