//! The integration tests, one binary: the real HTTP server on both stores (in this
//! process) and the real `ember` binary (as processes). Modules are named by FHIR
//! interaction (`rest::update`, `conditional::delete`) and by search feature
//! (`search::date`, `search::include`); `common` is the harness.

#[macro_use]
mod common;

mod auth;
mod cds;
mod conditional;
mod dataset;
mod examples;
mod export;
mod export_command;
mod import;
mod instances;
mod jobs;
mod kv;
mod platform;
mod profiles;
mod reindex;
mod rest;
mod search;
mod subscriptions;
mod telemonitoring;
mod terminology;
