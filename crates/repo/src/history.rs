//! The history interaction at instance, type and system level.

use ember_fhir::instant::{self, Micros};
use ember_store::{Change, HistoryQuery, HistoryRow};
use serde_json::{Value, json};

use crate::write::etag;
use crate::{Repo, RepoError, Result, check_id, check_type};

/// Which resources a history request covers.
#[derive(Debug, Clone, Copy)]
pub enum HistoryScope<'a> {
    System,
    Type(&'a str),
    Instance(&'a str, &'a str),
}

/// The parameters of a history request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryParams {
    /// `_since`: versions written at or after this instant.
    pub since: Option<(String, Micros)>,
    /// `_at`: versions current at some point in the period the value stands for.
    pub at: Option<(String, (Micros, Micros))>,
    /// `_count`: the page size.
    pub count: u32,
    /// The paging cursor of a `next` link.
    pub cursor: Option<i64>,
}

/// The paging cursor's parameter name. Its value is opaque to clients.
const CURSOR: &str = "_cursor";

impl HistoryParams {
    /// Reads the history parameters from a query string's pairs; other parameters are ignored.
    pub fn parse(pairs: &[(String, String)], repo: &Repo) -> Result<Self> {
        crate::check_controls(pairs)?;
        let limits = repo.limits();
        let mut params = HistoryParams {
            count: limits.default_count,
            ..Default::default()
        };
        for (name, value) in pairs {
            match name.as_str() {
                "_since" => {
                    let (start, _) = instant::parse_range(value).ok_or_else(|| {
                        RepoError::Invalid(format!("_since: {value:?} is not a FHIR instant"))
                    })?;
                    params.since = Some((value.clone(), start));
                }
                "_at" => {
                    let range = instant::parse_range(value).ok_or_else(|| {
                        RepoError::Invalid(format!("_at: {value:?} is not a FHIR date or dateTime"))
                    })?;
                    params.at = Some((value.clone(), range));
                }
                "_count" => {
                    let n: u32 = value.parse().map_err(|_| {
                        RepoError::Invalid(format!("_count: {value:?} is not a whole number"))
                    })?;
                    params.count = n.min(limits.max_count);
                }
                CURSOR => {
                    params.cursor = Some(value.parse().map_err(|_| {
                        RepoError::Invalid(format!("{CURSOR}: {value:?} is not a valid cursor"))
                    })?);
                }
                _ => {}
            }
        }
        Ok(params)
    }

    /// This request's query string in canonical form, with the given cursor.
    fn query(&self, cursor: Option<i64>) -> String {
        let mut parts = Vec::new();
        if let Some((s, _)) = &self.since {
            parts.push(format!("_since={}", encode(s)));
        }
        if let Some((s, _)) = &self.at {
            parts.push(format!("_at={}", encode(s)));
        }
        parts.push(format!("_count={}", self.count));
        if let Some(c) = cursor {
            parts.push(format!("{CURSOR}={c}"));
        }
        parts.join("&")
    }
}

/// Percent-encodes the characters of a date value that are not safe in a query.
fn encode(s: &str) -> String {
    s.replace('%', "%25")
        .replace('+', "%2B")
        .replace(':', "%3A")
}

/// One page of history, newest first.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    pub rows: Vec<HistoryRow>,
    /// The cursor of the next page, when there is one.
    pub next: Option<i64>,
}

impl Repo {
    /// One page of the history of `scope`.
    pub async fn history(
        &self,
        scope: HistoryScope<'_>,
        params: &HistoryParams,
    ) -> Result<HistoryPage> {
        let store_scope = match scope {
            HistoryScope::System => ember_store::HistoryScope::System,
            HistoryScope::Type(t) => {
                check_type(t)?;
                crate::access::check(t, crate::access::Need::Search)?;
                ember_store::HistoryScope::Type(t)
            }
            HistoryScope::Instance(t, id) => {
                check_type(t)?;
                check_id(id)?;
                crate::access::check(t, crate::access::Need::Read)?;
                if self.store.read(t, id).await?.is_none() {
                    return Err(RepoError::NotFound(format!("{t}/{id}")));
                }
                ember_store::HistoryScope::Instance(t, id)
            }
        };
        let query = HistoryQuery {
            since: params.since.as_ref().map(|(_, m)| *m),
            at: params.at.as_ref().map(|(_, r)| *r),
            before_seq: params.cursor,
            limit: params.count + 1,
        };
        let mut rows = if params.count == 0 {
            Vec::new()
        } else {
            self.store.history(store_scope, &query).await?
        };
        let next = if rows.len() > params.count as usize {
            rows.truncate(params.count as usize);
            rows.last().map(|r| r.seq)
        } else {
            None
        };
        // Versions the caller could not read directly are left out (deletions carry
        // no body and stay).
        rows.retain(|r| {
            r.version
                .body
                .as_deref()
                .is_none_or(|b| crate::access::readable(&r.version.res_type, b))
        });
        Ok(HistoryPage { rows, next })
    }
}

/// The `history` Bundle of a page. `endpoint` is the absolute URL of the history
/// endpoint (without query); `base` is the server's FHIR base URL.
pub fn history_bundle(
    page: &HistoryPage,
    params: &HistoryParams,
    base: &str,
    endpoint: &str,
) -> Value {
    let mut links = vec![
        json!({"relation": "self", "url": format!("{endpoint}?{}", params.query(params.cursor))}),
    ];
    if let Some(next) = page.next {
        links.push(
            json!({"relation": "next", "url": format!("{endpoint}?{}", params.query(Some(next)))}),
        );
    }
    let entries: Vec<Value> = page
        .rows
        .iter()
        .map(|row| history_entry(row, base))
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "history",
        "link": links,
        "entry": entries,
    })
}

fn history_entry(row: &HistoryRow, base: &str) -> Value {
    let v = &row.version;
    let (method, url, status) = match v.change {
        Change::Create => ("POST", v.res_type.clone(), "201 Created"),
        Change::Update => (
            "PUT",
            format!("{}/{}", v.res_type, v.id),
            if row.created { "201 Created" } else { "200 OK" },
        ),
        Change::Patch => ("PATCH", format!("{}/{}", v.res_type, v.id), "200 OK"),
        Change::Delete => (
            "DELETE",
            format!("{}/{}", v.res_type, v.id),
            "204 No Content",
        ),
    };
    let mut entry = serde_json::Map::new();
    entry.insert(
        "fullUrl".into(),
        json!(format!("{base}/{}/{}", v.res_type, v.id)),
    );
    if let Some(resource) = v
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str::<Value>(b).ok())
    {
        entry.insert("resource".into(), resource);
    }
    entry.insert("request".into(), json!({"method": method, "url": url}));
    entry.insert(
        "response".into(),
        json!({
            "status": status,
            "etag": etag(v.version),
            "lastModified": instant::format_instant(v.last_updated),
        }),
    );
    Value::Object(entry)
}
