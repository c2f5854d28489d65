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
