//! Who is calling and what they may do: bearer tokens verified against the keys of
//! trusted issuers, and SMART App Launch scopes turned into decisions. Knows nothing of
//! HTTP serving or of FHIR REST; `api` applies it to requests.
//!
//! - [`settings`]: `EMBER_AUTH*` and the start-up rule (open, refused, or enforced), and
//!   `EMBER_CDS_CLIENTS`;
//! - [`keys`]: each issuer's signing keys, found through OpenID discovery (or at a
//!   configured JWKS URL), cached, and refreshed (rate-limited) when a token names a key
//!   not yet known;
//! - [`token`]: JWT verification (asymmetric algorithms only), RFC 7662 introspection of
//!   opaque tokens, and a cache of verified tokens until they expire;
//! - [`claims`]: the claims of a verified token mapped to a [`Principal`] (the SMART
//!   mapping, or the Danish eHealth one);
//! - [`scopes`]: SMART v1 and v2 scopes, and the decision for one resource type and
//!   action;
//! - [`cds_client`]: the JWTs CDS clients (EHRs) sign for each CDS Hooks call.

pub mod cds_client;
pub mod claims;
pub mod keys;
pub mod scopes;
pub mod settings;
pub mod token;

pub use cds_client::{CdsCaller, CdsTokenError, CdsVerifier};
pub use claims::{ClaimModel, Principal, UserType};
pub use scopes::{Action, Decision, Scope};
pub use settings::{AuthConfigError, AuthSettings, CdsClient, Introspection, Posture};
pub use token::{TokenError, Verifier};
