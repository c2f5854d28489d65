//! Profile validation over the StructureDefinitions stored on this server:
//! `$validate` against a `profile` parameter and the profiles a resource claims, and,
//! when [`crate::Limits::validate_profiles`] is on, every write whose `meta.profile`
//! names a stored profile (a [`WriteRule`], so creates, updates, patches, conditional
//! writes and Bundle entries are all checked, and a failing write stores nothing).
//!
//! The checks are [`ember_fhir::profile`]'s; this module finds the profiles (by
//! canonical URL, `url|version`, through the `url` index; compiled once and cached per
//! instance, emptied on every instance when a StructureDefinition is written) and
//! checks the bindings it returns against the value sets of [`crate::terminology`].
//! A profile claimed in `meta.profile` that the server does not hold is not checked
//! (R4 allows claims of unknown profiles); a `profile` parameter of `$validate` that it
//! does not hold is an error issue.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ember_fhir::outcome::Issue;
use ember_fhir::profile::{self, BindingCheck, Profile};
use ember_fhir::{IssueType, OperationOutcome, Severity};
use ember_platform::cache::{Invalidate, TtlCache};
use serde_json::Value;

use crate::commit::{AfterCommit, Stored as CommitStored, WriteRule, Written};
use crate::{Repo, RepoError, Result};

/// The bus message (and cache name) that empties the profile cache everywhere.
const MESSAGE: &str = "profiles";

/// Compiled profiles kept per instance.
const CAPACITY: u64 = 256;

/// How long an entry lives at most, should an invalidation be lost.
const TTL: Duration = Duration::from_secs(3600);

/// Most profiles one validation loads (the profile and those it refers to).
const MAX_PROFILES: usize = 64;

/// The `(system, code)` pairs of a value set, or why it cannot be expanded.
type Codes = std::result::Result<HashSet<(String, String)>, String>;

/// What a canonical URL names.
#[derive(Clone)]
enum Loaded {
    Found(Arc<Profile>),
    /// No stored StructureDefinition has that URL.
    Missing,
    /// A stored one that cannot be used (no snapshot): why.
    Unusable(String),
}

/// The compiled profiles of one repository, by canonical URL, with a generation that
/// every invalidation bumps.
pub(crate) struct Cache {
    compiled: TtlCache<Loaded>,
    generation: AtomicU64,
}

impl Default for Cache {
    fn default() -> Self {
        Self {
            compiled: TtlCache::new(MESSAGE, CAPACITY, TTL, None),
            generation: AtomicU64::new(0),
        }
    }
}

impl Invalidate for Cache {
    fn name(&self) -> &'static str {
        MESSAGE
    }

    fn invalidate(&self, _key: Option<&str>) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.compiled.invalidate(None);
    }
}

/// Empties the profile caches after every commit that writes a StructureDefinition,
/// here and, through the bus, on every other instance.
pub(crate) struct Invalidation;

#[async_trait]
impl AfterCommit for Invalidation {
    async fn after_commit(&self, repo: &Repo, stored: &CommitStored) {
        if !stored
            .versions
            .iter()
            .any(|(t, _, _)| t == "StructureDefinition")
        {
            return;
        }
        repo.profiles.invalidate(None);
        repo.tell_others(MESSAGE).await;
    }
}

/// Checks each written resource against the stored profiles its `meta.profile` names,
/// when [`crate::Limits::validate_profiles`] is on.
pub(crate) struct Rule;

#[async_trait]
impl WriteRule for Rule {
    async fn check(&self, repo: &Repo, written: &Written<'_>) -> Result<()> {
        if !repo.limits.validate_profiles {
            return Ok(());
        }
        let Some(body) = written.body.filter(|b| b.contains("\"profile\"")) else {
            return Ok(());
        };
        let Ok(resource) = serde_json::from_str::<Value>(body) else {
            return Ok(());
        };
        let mut outcome = OperationOutcome::default();
        for url in claimed(&resource) {
            match repo.load_profile(&url).await? {
                Loaded::Missing => {}
                Loaded::Unusable(why) => return Err(RepoError::Unprocessable(why)),
                Loaded::Found(p) => outcome
                    .issues
                    .extend(repo.check_profile(&resource, &p).await?.issues),
            }
        }
        if ember_fhir::validate::has_errors(&outcome) {
            outcome
                .issues
                .retain(|i| i.severity != Severity::Information);
            return Err(RepoError::Invalidated(outcome));
        }
        Ok(())
    }
}

/// The canonical URLs in `meta.profile`.
fn claimed(resource: &Value) -> Vec<String> {
    resource
        .pointer("/meta/profile")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A core resource definition (`http://hl7.org/fhir/StructureDefinition/Patient`):
/// as a target profile it only names a type, so it is not loaded.
fn core_resource(url: &str) -> bool {
    url.strip_prefix("http://hl7.org/fhir/StructureDefinition/")
        .is_some_and(ember_fhir::is_resource_type)
}

fn issue(severity: Severity, code: IssueType, diagnostics: String) -> Issue {
    Issue {
        severity,
        code,
        diagnostics,
        expression: Vec::new(),
    }
}

impl Repo {
    /// `$validate` with profiles: the structural issues (strict), then the issues of
    /// `requested` (unknown: an error issue) and of each stored profile the resource
    /// claims (unknown ones: a warning that they were not checked).
    pub async fn validate_with_profiles(
        &self,
        resource: &Value,
        requested: Option<&str>,
    ) -> Result<OperationOutcome> {
        let mut outcome = self.validate(resource);
        let mut urls: Vec<(String, bool)> = Vec::new();
        if let Some(url) = requested {
            urls.push((url.to_owned(), true));
        }
        for url in claimed(resource) {
            if !urls.iter().any(|(u, _)| *u == url) {
                urls.push((url, false));
            }
        }
        for (url, asked) in urls {
            match self.load_profile(&url).await? {
                Loaded::Found(p) => outcome
                    .issues
                    .extend(self.check_profile(resource, &p).await?.issues),
                Loaded::Unusable(why) => return Err(RepoError::Unprocessable(why)),
                Loaded::Missing if asked => outcome.issues.push(issue(
                    Severity::Error,
                    IssueType::NotFound,
                    format!("the profile {url} is not known on this server"),
                )),
                Loaded::Missing => outcome.issues.push(issue(
                    Severity::Warning,
                    IssueType::NotSupported,
                    format!(
                        "the claimed profile {url} is not known on this server and was not checked"
                    ),
                )),
            }
        }
        Ok(outcome)
    }

    /// The profile `url` names, compiled (cached).
    async fn load_profile(&self, url: &str) -> Result<Loaded> {
        if let Some(found) = self.profiles.compiled.get(url) {
            return Ok(found);
        }
        let since = self.profiles.generation.load(Ordering::SeqCst);
        let loaded = match self.canonical_resource("StructureDefinition", url).await? {
            None => Loaded::Missing,
            Some((_, sd)) => match Profile::compile(&sd) {
                Ok(p) => Loaded::Found(Arc::new(p)),
                Err(e) => Loaded::Unusable(e.to_string()),
            },
        };
        if self.profiles.generation.load(Ordering::SeqCst) == since {
            self.profiles.compiled.insert(url, loaded.clone());
        }
        Ok(loaded)
    }

    /// The issues of `resource` against `p`: the profiles it refers to are loaded
    /// first, and the bindings it returns checked after.
    async fn check_profile(&self, resource: &Value, p: &Arc<Profile>) -> Result<OperationOutcome> {
        let mut known: HashMap<String, Arc<Profile>> = HashMap::new();
        known.insert(p.url.clone(), p.clone());
        let mut seen: HashSet<String> = HashSet::new();
        let mut queue: Vec<String> = p.referenced().map(str::to_owned).collect();
        while let Some(url) = queue.pop() {
            if core_resource(&url) || !seen.insert(url.clone()) || seen.len() > MAX_PROFILES {
                continue;
            }
            if let Loaded::Found(other) = self.load_profile(&url).await? {
                queue.extend(other.referenced().map(str::to_owned));
                known.insert(url, other);
            }
        }
        let report = profile::validate(resource, p, &known);
        let mut outcome = report.outcome;
        outcome
            .issues
            .extend(self.check_bindings(&report.bindings).await?);
        Ok(outcome)
    }

    /// The issues of binding checks: each value set expanded once (stored, or of the
    /// R4 tables); one that cannot be expanded leaves its bindings unchecked (a warning).
    async fn check_bindings(&self, checks: &[BindingCheck]) -> Result<Vec<Issue>> {
        let mut expansions: HashMap<&str, Codes> = HashMap::new();
        let mut issues = Vec::new();
        for check in checks {
            if !expansions.contains_key(check.value_set.as_str()) {
                let codes = self.codes_of(&check.value_set).await?;
                expansions.insert(&check.value_set, codes);
            }
            let found = match &expansions[check.value_set.as_str()] {
                Ok(codes) => Ok(check.codes.iter().any(|(system, code)| match system {
                    Some(s) => codes.contains(&(s.clone(), code.clone())),
                    None => codes.iter().any(|(_, c)| c == code),
                })),
                Err(why) => Err(why.clone()),
            };
            issues.extend(profile::binding_issue(check, found));
        }
        Ok(issues)
    }

    /// `(system, code)` of the value set `url` (`url|version`; the R4 tables by `url`
    /// alone), or why it cannot be expanded. Storage failures are errors.
    async fn codes_of(&self, url: &str) -> Result<Codes> {
        let mut result = self.expansion_of(url, 0).await;
        if let (Err(RepoError::NotFound(_)), Some((plain, _))) = (&result, url.split_once('|')) {
            result = self.expansion_of(plain, 0).await;
        }
        match result {
            Ok(e) => Ok(Ok(e
                .concepts
                .iter()
                .map(|c| (c.system.clone(), c.code.clone()))
                .collect())),
            Err(e @ RepoError::Store(_)) => Err(e),
            Err(e) => Ok(Err(e.to_string())),
        }
    }
}
