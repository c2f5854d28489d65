//! The FHIR REST interactions, one module per interaction group. Each exposes
//! `routes()`, relative to the base path; [`router`](crate::router) composes them.

pub(crate) mod bundle;
pub(crate) mod capabilities;
pub(crate) mod conditional;
pub(crate) mod create;
pub(crate) mod delete;
pub(crate) mod history;
pub(crate) mod patch;
pub(crate) mod read;
pub(crate) mod search;
pub(crate) mod update;
