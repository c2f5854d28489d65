//! The FHIR operations Ember serves, one module per operation, each exposing
//! `routes()` relative to the base path.

pub(crate) mod everything;
pub(crate) mod expand;
pub(crate) mod export;
pub(crate) mod lookup;
mod params;
pub(crate) mod reindex;
pub(crate) mod submit_measurement;
pub(crate) mod validate;
pub(crate) mod validate_code;
