//! The key-value store: small byte values with a media type under `(namespace, key)`,
//! versioned (compare-and-swap on the version), with an optional expiry. An expired
//! entry is invisible from its expiry on, and [`Kv::kv_purge`] removes it.

use async_trait::async_trait;

use crate::{Micros, Result};

/// A stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    pub value: Vec<u8>,
    pub media_type: String,
    /// 1 for a new key, one more with every write.
    pub version: i64,
    pub expires_at: Option<Micros>,
    pub updated_at: Micros,
}

/// One key of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvItem {
    pub key: String,
    pub media_type: String,
    pub version: i64,
    /// The value's length in bytes.
    pub size: i64,
    pub expires_at: Option<Micros>,
}

/// What a write expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvExpect {
    /// Anything: create or replace.
    Any,
    /// No live entry (`If-None-Match: *`).
    Absent,
    /// The live entry at this version (`If-Match`).
    Version(i64),
}

/// A write.
#[derive(Debug, Clone, Copy)]
pub struct KvPut<'a> {
    pub namespace: &'a str,
    pub key: &'a str,
    pub value: &'a [u8],
    pub media_type: &'a str,
    pub expires_at: Option<Micros>,
    pub now: Micros,
    pub expect: KvExpect,
}

/// The key-value store.
#[async_trait]
pub trait Kv: Send + Sync {
    /// The entry live at `now`.
    async fn kv_get(&self, namespace: &str, key: &str, now: Micros) -> Result<Option<KvEntry>>;

    /// Writes `put`; its new version, or `None` when the expectation does not hold.
    async fn kv_put(&self, put: KvPut<'_>) -> Result<Option<i64>>;

    /// Deletes the entry live at `now` (at `version`, when given); whether one was.
    async fn kv_delete(
        &self,
        namespace: &str,
        key: &str,
        version: Option<i64>,
        now: Micros,
    ) -> Result<bool>;

    /// The live keys of `namespace` that start with `prefix`, in order, at most `limit`.
    async fn kv_list(
        &self,
        namespace: &str,
        prefix: &str,
        now: Micros,
        limit: u32,
    ) -> Result<Vec<KvItem>>;

    /// Removes the entries expired by `now`; how many.
    async fn kv_purge(&self, now: Micros) -> Result<u64>;
}

/// The statements, in the backend's placeholder style (`$n` or `?n`).
pub(crate) struct KvSql {
    pub get: String,
    pub put_any: String,
    pub put_absent: String,
    pub put_version: String,
    pub delete: String,
    pub list: String,
    pub purge: String,
}

impl KvSql {
    /// The statements with placeholders `p(n)` and `length` the byte length of a value.
    pub(crate) fn new(p: fn(usize) -> String, length: &str) -> Self {
        let live = |now: usize| format!("(expires_at IS NULL OR expires_at > {})", p(now));
        let insert = format!(
            "INSERT INTO kv (namespace, key, value, media_type, version, expires_at, updated_at)
             VALUES ({}, {}, {}, {}, 1, {}, {})
             ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,
                 media_type = excluded.media_type, expires_at = excluded.expires_at,
                 updated_at = excluded.updated_at,",
            p(1),
            p(2),
            p(3),
            p(4),
            p(5),
            p(6)
        );
        // An expired entry counts as absent: writing over it starts again at version 1.
        let expired = format!("kv.expires_at IS NOT NULL AND kv.expires_at <= {}", p(6));
        Self {
            get: format!(
                "SELECT value, media_type, version, expires_at, updated_at FROM kv
                 WHERE namespace = {} AND key = {} AND {}",
                p(1),
                p(2),
                live(3)
            ),
            put_any: format!(
                "{insert} version = CASE WHEN {expired} THEN 1 ELSE kv.version + 1 END
                 RETURNING version"
            ),
            put_absent: format!("{insert} version = 1 WHERE {expired} RETURNING version"),
            put_version: format!(
                "UPDATE kv SET value = {}, media_type = {}, version = version + 1,
                     expires_at = {}, updated_at = {}
                 WHERE namespace = {} AND key = {} AND version = {} AND {}
                 RETURNING version",
                p(3),
                p(4),
                p(5),
                p(6),
                p(1),
                p(2),
                p(7),
                live(6)
            ),
            delete: format!(
                "DELETE FROM kv WHERE namespace = {} AND key = {}
                     AND (CAST({} AS BIGINT) IS NULL OR version = {}) AND {}
                 RETURNING version",
                p(1),
                p(2),
                p(3),
                p(3),
                live(4)
            ),
            list: format!(
                "SELECT key, media_type, version, {length}(value), expires_at FROM kv
                 WHERE namespace = {} AND substr(key, 1, length(CAST({} AS TEXT))) = {} AND {}
                 ORDER BY key LIMIT {}",
                p(1),
                p(2),
                p(2),
                live(3),
                p(4)
            ),
            purge: format!(
                "DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= {}",
                p(1)
            ),
        }
    }

    /// The write statement for `expect`, and the version it binds last (as `p(7)`),
    /// after namespace, key, value, media type, expiry and now.
    pub(crate) fn put(&self, expect: KvExpect) -> (&str, Option<i64>) {
        match expect {
            KvExpect::Any => (&self.put_any, None),
            KvExpect::Absent => (&self.put_absent, None),
            KvExpect::Version(v) => (&self.put_version, Some(v)),
        }
    }

    pub(crate) fn all(&self) -> Vec<String> {
        vec![
            self.get.clone(),
            self.put_any.clone(),
            self.put_absent.clone(),
            self.put_version.clone(),
            self.delete.clone(),
            self.list.clone(),
            self.purge.clone(),
        ]
    }
}
