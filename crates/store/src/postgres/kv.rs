//! The key-value store on PostgreSQL: one statement per call.

use std::sync::LazyLock;

use async_trait::async_trait;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{PgStore, pg_err};
use crate::kv::KvSql;
use crate::{Kv, KvEntry, KvItem, KvPut, Micros, Result};

static SQL: LazyLock<KvSql> = LazyLock::new(|| KvSql::new(|n| format!("${n}"), "octet_length"));

pub(super) fn statements() -> Vec<String> {
    SQL.all()
}

#[async_trait]
impl Kv for PgStore {
    async fn kv_get(&self, namespace: &str, key: &str, now: Micros) -> Result<Option<KvEntry>> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(&SQL.get).await.map_err(pg_err)?;
        let row = client
            .query_opt(&stmt, &[&namespace, &key, &now])
            .await
            .map_err(pg_err)?;
        Ok(row.map(|r: Row| KvEntry {
            value: r.get(0),
            media_type: r.get(1),
            version: r.get(2),
            expires_at: r.get(3),
            updated_at: r.get(4),
        }))
    }

    async fn kv_put(&self, put: KvPut<'_>) -> Result<Option<i64>> {
        let client = self.client().await?;
        let (sql, version) = SQL.put(put.expect);
        let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &put.namespace,
            &put.key,
            &put.value,
            &put.media_type,
            &put.expires_at,
            &put.now,
        ];
        if let Some(v) = &version {
            params.push(v);
        }
        let row = client.query_opt(&stmt, &params).await.map_err(pg_err)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn kv_delete(
        &self,
        namespace: &str,
        key: &str,
        version: Option<i64>,
        now: Micros,
    ) -> Result<bool> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(&SQL.delete).await.map_err(pg_err)?;
        let row = client
            .query_opt(&stmt, &[&namespace, &key, &version, &now])
            .await
            .map_err(pg_err)?;
        Ok(row.is_some())
    }

    async fn kv_list(
        &self,
        namespace: &str,
        prefix: &str,
        now: Micros,
        limit: u32,
    ) -> Result<Vec<KvItem>> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(&SQL.list).await.map_err(pg_err)?;
        let limit = i64::from(limit);
        let rows = client
            .query(&stmt, &[&namespace, &prefix, &now, &limit])
            .await
            .map_err(pg_err)?;
        Ok(rows
            .iter()
            .map(|r| KvItem {
                key: r.get(0),
                media_type: r.get(1),
                version: r.get(2),
                size: i64::from(r.get::<_, i32>(3)),
                expires_at: r.get(4),
            })
            .collect())
    }

    async fn kv_purge(&self, now: Micros) -> Result<u64> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(&SQL.purge).await.map_err(pg_err)?;
        client.execute(&stmt, &[&now]).await.map_err(pg_err)
    }
}
