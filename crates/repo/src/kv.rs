//! The key-value API's domain: small, non-clinical application settings (never
//! clinical data: nothing here is validated, indexed, versioned as history or audited
//! as patient data). Names are checked and sizes limited; expired entries are
//! invisible from their expiry on, and the background maintenance of every instance
//! removes them.

use std::time::Duration;

use ember_fhir::instant;
use ember_store::{KvEntry, KvExpect, KvItem, KvPut};

use crate::{Repo, RepoError, Result};

/// The longest expiry: a year.
pub const MAX_TTL: Duration = Duration::from_secs(366 * 24 * 3600);

/// Most keys one listing returns.
pub const MAX_LIST: u32 = 1000;

/// A namespace: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub fn check_namespace(ns: &str) -> Result<()> {
    let ok = (1..=64).contains(&ns.len())
        && ns
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(RepoError::Invalid(format!(
            "{:?} is not a namespace: 1 to 64 of A-Z, a-z, 0-9, '.', '_' and '-'",
            ns.escape_debug().to_string()
        )))
    }
}

/// A key: 1 to 512 of `A-Z a-z 0-9 . _ - ~ : /`, not starting or ending with `/`
/// and with no empty segment.
pub fn check_key(key: &str) -> Result<()> {
    let ok = (1..=512).contains(&key.len())
        && key.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'~' | b':' | b'/')
        })
        && key.split('/').all(|segment| !segment.is_empty());
    if ok {
        Ok(())
    } else {
        Err(RepoError::Invalid(format!(
            "{:?} is not a key: 1 to 512 of A-Z, a-z, 0-9, '.', '_', '-', '~', ':' and '/' (no empty segment)",
            key.escape_debug().to_string()
        )))
    }
}

impl Repo {
    /// The live entry of `namespace`/`key`.
    pub async fn kv_get(&self, namespace: &str, key: &str) -> Result<KvEntry> {
        check_namespace(namespace)?;
        check_key(key)?;
        self.store
            .kv_get(namespace, key, instant::now())
            .await?
            .ok_or_else(|| RepoError::NotFound(format!("the key {namespace}/{key}")))
    }

    /// Writes a value; its new version (1 when the key is new). A failed expectation
    /// is a 412; a value over `max_bytes` a 413.
    #[allow(clippy::too_many_arguments)]
    pub async fn kv_put(
        &self,
        namespace: &str,
        key: &str,
        value: &[u8],
        media_type: &str,
        ttl: Option<Duration>,
        expect: KvExpect,
        max_bytes: usize,
    ) -> Result<i64> {
        check_namespace(namespace)?;
        check_key(key)?;
        if value.len() > max_bytes {
            return Err(RepoError::TooLarge(format!(
                "the value has {} bytes; at most {max_bytes} are accepted (EMBER_KV_MAX_BYTES)",
                value.len()
            )));
        }
        if ember_fhir::control_char(media_type).is_some() || media_type.len() > 255 {
            return Err(RepoError::Invalid("the media type is not valid".into()));
        }
        let ttl = match ttl {
            Some(t) if t.is_zero() || t > MAX_TTL => {
                return Err(RepoError::Invalid(format!(
                    "ttl must be from 1 to {} seconds",
                    MAX_TTL.as_secs()
                )));
            }
            other => other,
        };
        let now = instant::now();
        let put = KvPut {
            namespace,
            key,
            value,
            media_type,
            expires_at: ttl.map(|t| now + t.as_micros() as i64),
            now,
            expect,
        };
        self.store.kv_put(put).await?.ok_or_else(|| {
            RepoError::Precondition(match expect {
                KvExpect::Absent => format!("the key {namespace}/{key} exists (If-None-Match: *)"),
                _ => format!("the key {namespace}/{key} is not at the version of If-Match"),
            })
        })
    }

    /// Deletes a value (at `version`, when given): 404 when there is none, 412 when it
    /// is at another version.
    pub async fn kv_delete(&self, namespace: &str, key: &str, version: Option<i64>) -> Result<()> {
        check_namespace(namespace)?;
        check_key(key)?;
        let now = instant::now();
        if self.store.kv_delete(namespace, key, version, now).await? {
            return Ok(());
        }
        match self.store.kv_get(namespace, key, now).await? {
            Some(_) => Err(RepoError::Precondition(format!(
                "the key {namespace}/{key} is not at the version of If-Match"
            ))),
            None => Err(RepoError::NotFound(format!("the key {namespace}/{key}"))),
        }
    }

    /// The live keys of `namespace` starting with `prefix`, in order.
    pub async fn kv_list(&self, namespace: &str, prefix: &str, limit: u32) -> Result<Vec<KvItem>> {
        check_namespace(namespace)?;
        if ember_fhir::control_char(prefix).is_some() {
            return Err(RepoError::Invalid(
                "prefix: control characters are not allowed".into(),
            ));
        }
        let limit = limit.clamp(1, MAX_LIST);
        Ok(self
            .store
            .kv_list(namespace, prefix, instant::now(), limit)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["app", "my-app.v2", "A_b"] {
            assert!(check_namespace(ok).is_ok(), "{ok}");
        }
        let long = "x".repeat(65);
        for bad in ["", "a/b", "a b", "a\0", long.as_str(), "é"] {
            assert!(check_namespace(bad).is_err(), "{bad:?}");
        }
        for ok in ["theme", "ui/colors/dark", "user:42~x"] {
            assert!(check_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/a", "a/", "a//b", "a b", "a\u{1}", "a?b"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }
}
