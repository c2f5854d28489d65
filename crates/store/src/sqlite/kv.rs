//! The key-value store on SQLite: reads on the readers, writes on the single writer.

use std::sync::LazyLock;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, sqlite_err};
use crate::kv::KvSql;
use crate::{Kv, KvEntry, KvItem, KvPut, Micros, Result};

static SQL: LazyLock<KvSql> = LazyLock::new(|| KvSql::new(|n| format!("?{n}"), "length"));

pub(super) fn statements() -> Vec<String> {
    SQL.all()
}

#[async_trait]
impl Kv for SqliteStore {
    async fn kv_get(&self, namespace: &str, key: &str, now: Micros) -> Result<Option<KvEntry>> {
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        self.readers
            .run(move |conn| {
                conn.prepare_cached(&SQL.get)
                    .and_then(|mut s| {
                        s.query_row(params![namespace, key, now], |r| {
                            Ok(KvEntry {
                                value: r.get(0)?,
                                media_type: r.get(1)?,
                                version: r.get(2)?,
                                expires_at: r.get(3)?,
                                updated_at: r.get(4)?,
                            })
                        })
                        .optional()
                    })
                    .map_err(sqlite_err)
            })
            .await
    }

    async fn kv_put(&self, put: KvPut<'_>) -> Result<Option<i64>> {
        let (namespace, key) = (put.namespace.to_owned(), put.key.to_owned());
        let (value, media_type) = (put.value.to_vec(), put.media_type.to_owned());
        let (expires_at, now, expect) = (put.expires_at, put.now, put.expect);
        self.writer
            .run(move |conn| {
                let (sql, version) = SQL.put(expect);
                let mut params: Vec<&dyn rusqlite::ToSql> =
                    vec![&namespace, &key, &value, &media_type, &expires_at, &now];
                if let Some(v) = &version {
                    params.push(v);
                }
                conn.prepare_cached(sql)
                    .and_then(|mut s| s.query_row(&*params, |r| r.get(0)).optional())
                    .map_err(sqlite_err)
            })
            .await
    }

    async fn kv_delete(
        &self,
        namespace: &str,
        key: &str,
        version: Option<i64>,
        now: Micros,
    ) -> Result<bool> {
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        self.writer
            .run(move |conn| {
                conn.prepare_cached(&SQL.delete)
                    .and_then(|mut s| {
                        s.query_row(params![namespace, key, version, now], |r| {
                            r.get::<_, i64>(0)
                        })
                        .optional()
                    })
                    .map(|row| row.is_some())
                    .map_err(sqlite_err)
            })
            .await
    }

    async fn kv_list(
        &self,
        namespace: &str,
        prefix: &str,
        now: Micros,
        limit: u32,
    ) -> Result<Vec<KvItem>> {
        let (namespace, prefix) = (namespace.to_owned(), prefix.to_owned());
        self.readers
            .run(move |conn| {
                let mut stmt = conn.prepare_cached(&SQL.list).map_err(sqlite_err)?;
                stmt.query_map(params![namespace, prefix, now, limit], |r| {
                    Ok(KvItem {
                        key: r.get(0)?,
                        media_type: r.get(1)?,
                        version: r.get(2)?,
                        size: r.get(3)?,
                        expires_at: r.get(4)?,
                    })
                })
                .and_then(Iterator::collect)
                .map_err(sqlite_err)
            })
            .await
    }

    async fn kv_purge(&self, now: Micros) -> Result<u64> {
        self.writer
            .run(move |conn| {
                conn.prepare_cached(&SQL.purge)
                    .and_then(|mut s| s.execute([now]))
                    .map(|n| n as u64)
                    .map_err(sqlite_err)
            })
            .await
    }
}
