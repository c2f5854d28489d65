//! Run-time search parameters: the `SearchParameter` resources stored on this server.
//!
//! A stored SearchParameter with status `active` or `draft`, a `code`, a `type` other
//! than composite or special, an `expression` and one or more `base` types (`Resource`
//! and `DomainResource` stand for every type they cover) makes `code` searchable on its
//! base types: writes index it ([`crate::indexer::index_rows`]) and searches find it
//! (`search::filter::param`). Other SearchParameters (retired, composite, special,
//! without expression) are stored and ignored.
//!
//! Rules checked when a SearchParameter is written (422 otherwise): the code is a plain
//! name (`[A-Za-z0-9][A-Za-z0-9_-]*`), the expression parses, and the code does not
//! redefine a built-in parameter of a base type; the built-in's own definition (same
//! `url`) is accepted and changes nothing. When two stored SearchParameters define the
//! same code on one type, the one stored first (lowest internal key) is used.
//!
//! [`SearchParams`] holds the current definitions of one repository, each expression
//! compiled once. It is loaded at start-up, reloaded after every commit that writes a
//! SearchParameter (an after-commit hook, [`Reload`], so the next request sees it), and
//! on every other instance through the store's bus: the message `search-parameters` (or
//! [`ember_store::RESYNC`]) reloads it. Reloads swap an immutable snapshot; compiled
//! parameters whose definition did not change are kept, so nothing grows per update.
//! Indexing and search parsing take the [`Snapshot`] they use explicitly.
//!
//! Index rows of a parameter that is removed stay until the document is written again
//! or reindexed (`$reindex`); nothing searches them.
//!
//! Ember also defines a few parameters R4 lacks and its features need ([`OWN`], such
//! as `Communication?about=`); they are part of every snapshot, as if stored first.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use ember_fhir::definitions::{self, SearchParamType};
use ember_fhir::index::AdHocParam;
use ember_store::{Store, StoreError};
use serde_json::Value;

use crate::commit::{AfterCommit, Stored as CommitStored};
use crate::{Repo, RepoError};

/// The bus message that makes every instance reload its run-time parameters.
pub(crate) const MESSAGE: &str = "search-parameters";

/// The resource type that defines run-time parameters.
pub(crate) const SEARCH_PARAMETER: &str = "SearchParameter";

/// One run-time parameter on one resource type.
#[derive(Debug)]
pub(crate) struct RuntimeParam {
    pub url: String,
    pub param: AdHocParam,
    /// Reference targets (`SearchParameter.target`).
    pub targets: Vec<String>,
}

impl RuntimeParam {
    pub fn code(&self) -> &str {
        self.param.code()
    }

    pub fn kind(&self) -> SearchParamType {
        self.param.kind()
    }
}

/// The run-time parameters at one moment, by resource type (sorted by code).
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    by_type: HashMap<String, Vec<Arc<RuntimeParam>>>,
}

impl Snapshot {
    pub fn get(&self, res_type: &str, code: &str) -> Option<&Arc<RuntimeParam>> {
        let params = self.by_type.get(res_type)?;
        params
            .binary_search_by(|p| p.code().cmp(code))
            .ok()
            .map(|i| &params[i])
    }

    pub fn of_type(&self, res_type: &str) -> &[Arc<RuntimeParam>] {
        self.by_type.get(res_type).map_or(&[], Vec::as_slice)
    }

    fn len(&self) -> usize {
        self.by_type.values().map(Vec::len).sum()
    }
}

/// Ember's own search parameters, beyond R4's: `(base, code, type, expression)`.
/// Their canonical URL is `http://ember.dev/fhir/SearchParameter/{base}-{code}`.
pub(crate) const OWN: &[(&str, &str, &str, &str)] = &[
    // What a notification is about (a Task, a result): R4 has no parameter for it.
    ("Communication", "about", "reference", "Communication.about"),
];

/// [`OWN`], by type.
fn own_params() -> HashMap<String, Vec<Arc<RuntimeParam>>> {
    let mut by_type: HashMap<String, Vec<Arc<RuntimeParam>>> = HashMap::new();
    for (base, code, kind_code, expression) in OWN {
        let param = kind(kind_code)
            .ok_or_else(|| format!("unknown type {kind_code}"))
            .and_then(|k| AdHocParam::new(base, code, k, expression));
        // A test checks every entry compiles.
        let Ok(param) = param else { continue };
        by_type
            .entry((*base).to_owned())
            .or_default()
            .push(Arc::new(RuntimeParam {
                url: format!("http://ember.dev/fhir/SearchParameter/{base}-{code}"),
                param,
                targets: Vec::new(),
            }));
    }
    by_type
}

/// The run-time parameters of a repository. Clones share them.
#[derive(Clone, Default)]
pub struct SearchParams {
    inner: Arc<Inner>,
}

struct Inner {
    current: RwLock<Arc<Snapshot>>,
    /// Serializes reloads, so an older load never replaces a newer one.
    reload: tokio::sync::Mutex<()>,
}

impl Default for Inner {
    fn default() -> Self {
        let mut by_type = own_params();
        for params in by_type.values_mut() {
            params.sort_by(|a, b| a.code().cmp(b.code()));
        }
        Self {
            current: RwLock::new(Arc::new(Snapshot { by_type })),
            reload: Default::default(),
        }
    }
}

impl std::fmt::Debug for SearchParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchParams")
            .field("count", &self.snapshot().len())
            .finish()
    }
}

/// Documents read per page while loading.
const PAGE: u32 = 500;

impl SearchParams {
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.inner
            .current
            .read()
            .map(|s| Arc::clone(&s))
            .unwrap_or_default()
    }

    /// How many (type, code) pairs are defined at run time.
    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads every stored SearchParameter and replaces the definitions.
    pub async fn reload(&self, store: &dyn Store) -> Result<usize, StoreError> {
        let _one = self.inner.reload.lock().await;
        let old = self.snapshot();
        let mut by_type = own_params();
        let mut after = 0;
        loop {
            let docs = store
                .live_documents(Some(SEARCH_PARAMETER), after, PAGE)
                .await?;
            for doc in &docs {
                let Ok(body) = serde_json::from_str::<Value>(&doc.body) else {
                    continue;
                };
                let def = match definition(&body) {
                    Ok(Some(def)) => def,
                    Ok(None) => continue,
                    Err(e) => {
                        // Checked on write; possible only for data written before.
                        tracing::warn!(id = doc.id, error = e, "SearchParameter ignored");
                        continue;
                    }
                };
                for ty in &def.types {
                    let params = by_type.entry(ty.clone()).or_default();
                    if params.iter().any(|p| p.code() == def.code) {
                        tracing::warn!(
                            id = doc.id,
                            code = def.code,
                            res_type = ty,
                            "another SearchParameter already defines this code; ignored"
                        );
                        continue;
                    }
                    let reused = old
                        .get(ty, &def.code)
                        .filter(|p| {
                            p.kind() == def.kind
                                && p.param.expression() == def.expression
                                && p.url == def.url
                                && p.targets == def.targets
                        })
                        .cloned();
                    let param = match reused {
                        Some(p) => p,
                        None => match AdHocParam::new(ty, &def.code, def.kind, &def.expression) {
                            Ok(param) => Arc::new(RuntimeParam {
                                url: def.url.clone(),
                                param,
                                targets: def.targets.clone(),
                            }),
                            Err(e) => {
                                tracing::warn!(id = doc.id, error = e, "SearchParameter ignored");
                                continue;
                            }
                        },
                    };
                    params.push(param);
                }
            }
            match docs.last() {
                Some(last) if docs.len() == PAGE as usize => after = last.rid,
                _ => break,
            }
        }
        for params in by_type.values_mut() {
            params.sort_by(|a, b| a.code().cmp(b.code()));
        }
        let snapshot = Arc::new(Snapshot { by_type });
        let n = snapshot.len();
        if let Ok(mut current) = self.inner.current.write() {
            *current = snapshot;
        }
        Ok(n)
    }
}

/// What a SearchParameter resource defines at run time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Definition {
    /// The concrete resource types it applies to, built-in redefinitions left out.
    pub types: Vec<String>,
    pub code: String,
    pub kind: SearchParamType,
    pub expression: String,
    pub targets: Vec<String>,
    pub url: String,
}

fn kind(s: &str) -> Option<SearchParamType> {
    Some(match s {
        "number" => SearchParamType::Number,
        "date" => SearchParamType::Date,
        "string" => SearchParamType::String,
        "token" => SearchParamType::Token,
        "reference" => SearchParamType::Reference,
        "composite" => SearchParamType::Composite,
        "quantity" => SearchParamType::Quantity,
        "uri" => SearchParamType::Uri,
        "special" => SearchParamType::Special,
        _ => return None,
    })
}

fn strings(body: &Value, key: &str) -> Vec<String> {
    body.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// The concrete types a `base` entry stands for.
fn base_types(base: &str) -> Vec<String> {
    let all = ember_fhir::resource_types();
    match base {
        "Resource" => all.iter().map(|t| (*t).to_owned()).collect(),
        "DomainResource" => all
            .iter()
            .filter(|t| definitions::is_a(t, "DomainResource"))
            .map(|t| (*t).to_owned())
            .collect(),
        t if ember_fhir::is_resource_type(t) => vec![t.to_owned()],
        _ => Vec::new(),
    }
}

fn valid_code(code: &str) -> bool {
    let mut chars = code.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// What `body` (a SearchParameter) defines: `Ok(None)` when it defines nothing
/// searchable (another status, a composite or special type, no expression); an error
/// when it breaks a rule of the module documentation.
pub(crate) fn definition(body: &Value) -> Result<Option<Definition>, String> {
    let get = |k: &str| body.get(k).and_then(Value::as_str);
    if !matches!(get("status"), Some("active" | "draft")) {
        return Ok(None);
    }
    let (Some(code), Some(kind), Some(expression)) = (
        get("code"),
        get("type").and_then(kind),
        get("expression").filter(|e| !e.trim().is_empty()),
    ) else {
        return Ok(None);
    };
    if matches!(kind, SearchParamType::Composite | SearchParamType::Special) {
        return Ok(None);
    }
    if !valid_code(code) {
        return Err(format!(
            "the code {code:?} cannot be searched: use letters, digits, '-' and '_', starting with a letter or digit"
        ));
    }
    let url = get("url").unwrap_or_default().to_owned();
    let mut types = Vec::new();
    for base in strings(body, "base") {
        for ty in base_types(&base) {
            if let Some(builtin) = definitions::search_param(&ty, code) {
                if builtin.url == url {
                    continue;
                }
                return Err(format!(
                    "{ty} already has the built-in search parameter {code:?} ({}); a SearchParameter may not redefine it",
                    builtin.url
                ));
            }
            if !types.contains(&ty) {
                types.push(ty);
            }
        }
    }
    if let Some(ty) = types.first() {
        AdHocParam::new(ty, code, kind, expression)?;
    }
    Ok(Some(Definition {
        types,
        code: code.to_owned(),
        kind,
        expression: expression.to_owned(),
        targets: strings(body, "target"),
        url,
    }))
}

/// Checks a SearchParameter about to be written (422 when it breaks a rule).
pub(crate) fn check(body: &Value) -> Result<(), RepoError> {
    if body.get("resourceType").and_then(Value::as_str) != Some(SEARCH_PARAMETER) {
        return Ok(());
    }
    definition(body)
        .map(|_| ())
        .map_err(|e| RepoError::Unprocessable(format!("SearchParameter: {e}")))
}

/// Reloads the run-time parameters after every commit that writes a SearchParameter,
/// before the commit returns, and tells the other instances.
pub(crate) struct Reload;

#[async_trait::async_trait]
impl AfterCommit for Reload {
    async fn after_commit(&self, repo: &Repo, stored: &CommitStored) {
        if !stored
            .versions
            .iter()
            .any(|(t, _, _)| t == SEARCH_PARAMETER)
        {
            return;
        }
        if let Err(e) = repo.load_search_params().await {
            tracing::error!(error = %e, "cannot reload the run-time search parameters");
        }
        repo.tell_others(MESSAGE).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sp(code: &str, base: &[&str], expression: &str) -> Value {
        json!({"resourceType": "SearchParameter", "url": format!("http://x/{code}"),
            "name": code, "status": "active", "description": "d", "code": code,
            "base": base, "type": "token", "expression": expression})
    }

    #[test]
    fn ember_s_own_parameters_compile_and_are_always_there() {
        let own = own_params();
        assert_eq!(own.values().map(Vec::len).sum::<usize>(), OWN.len());
        let params = SearchParams::default();
        let about = params.snapshot();
        let about = about
            .get("Communication", "about")
            .expect("Communication?about");
        assert_eq!(about.kind(), SearchParamType::Reference);
    }

    #[test]
    fn definitions_and_rules() {
        let d = definition(&sp("eye", &["Patient", "Person"], "Patient.gender"))
            .unwrap()
            .unwrap();
        assert_eq!(d.types, ["Patient", "Person"]);
        let err = definition(&sp("gender", &["Patient"], "Patient.gender")).unwrap_err();
        assert!(err.contains("built-in"), "{err}");
        assert!(definition(&sp("_x", &["Patient"], "Patient.gender")).is_err());
        assert!(definition(&sp("x", &["Patient"], "Patient.(")).is_err());
        let mut retired = sp("gender", &["Patient"], "Patient.gender");
        retired["status"] = json!("retired");
        assert_eq!(definition(&retired).unwrap(), None);
        // The built-in's own definition is no redefinition.
        let mut own = sp("gender", &["Patient"], "Patient.gender");
        own["url"] = json!("http://hl7.org/fhir/SearchParameter/individual-gender");
        assert!(definition(&own).unwrap().unwrap().types.is_empty());
        assert!(check(&sp("gender", &["Patient"], "Patient.gender")).is_err());
        assert!(check(&json!({"resourceType": "Patient"})).is_ok());
    }
}
