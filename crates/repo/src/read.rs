//! Single-resource reads: read and vread.

use ember_store::Current;

use crate::write::Stored;
use crate::{Repo, RepoError, Result, check_id, check_type};

impl Repo {
    /// The current version of a resource.
    pub async fn read(&self, res_type: &str, id: &str) -> Result<Stored> {
        check_type(res_type)?;
        check_id(id)?;
        let reference = format!("{res_type}/{id}");
        match self.store.read(res_type, id).await? {
            None => Err(RepoError::NotFound(reference)),
            Some(Current { deleted: true, .. }) | Some(Current { body: None, .. }) => {
                Err(RepoError::Gone(reference))
            }
            Some(Current {
                version,
                last_updated,
                body: Some(body),
                ..
            }) => {
                crate::access::check_read(res_type, id, &body)?;
                Ok(Stored {
                    res_type: res_type.to_owned(),
                    id: id.to_owned(),
                    version,
                    last_updated,
                    body,
                    created: false,
                })
            }
        }
    }

    /// One version of a resource.
    pub async fn vread(&self, res_type: &str, id: &str, version: &str) -> Result<Stored> {
        check_type(res_type)?;
        check_id(id)?;
        let reference = format!("{res_type}/{id}/_history/{version}");
        let Some(n) = version.parse::<i64>().ok().filter(|v| *v > 0) else {
            return Err(RepoError::NotFound(reference));
        };
        match self.store.vread(res_type, id, n).await? {
            None => Err(RepoError::NotFound(reference)),
            Some(v) => match v.body {
                None => Err(RepoError::Gone(reference)),
                Some(body) => {
                    crate::access::check_read(res_type, id, &body)?;
                    Ok(Stored {
                        res_type: v.res_type,
                        id: v.id,
                        version: v.version,
                        last_updated: v.last_updated,
                        body,
                        created: false,
                    })
                }
            },
        }
    }
}

/// `_summary` (`true`, `text`, `data`, `false`) and `_elements` on a read or vread: the
/// stored JSON text subsetted and tagged SUBSETTED, as a search entry would be; `None`
/// when neither asks for anything.
pub fn subset_read(body: &str, pairs: &[(String, String)]) -> Result<Option<String>> {
    use crate::search::Summary;
    let mut summary = None;
    let mut elements = Vec::new();
    for (name, value) in pairs {
        match name.as_str() {
            "_summary" => {
                summary = match value.as_str() {
                    "true" => Some(Summary::True),
                    "text" => Some(Summary::Text),
                    "data" => Some(Summary::Data),
                    "false" => None,
                    _ => {
                        return Err(RepoError::Invalid(format!(
                            "_summary: {value:?} is not true, text, data or false (count is for searches)"
                        )));
                    }
                }
            }
            "_elements" => {
                elements = value
                    .split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            _ => {}
        }
    }
    if summary.is_none() && elements.is_empty() {
        return Ok(None);
    }
    let mut resource: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| RepoError::Unprocessable(format!("the stored resource is not JSON: {e}")))?;
    crate::search::shape(&mut resource, summary, &elements);
    Ok(Some(resource.to_string()))
}
