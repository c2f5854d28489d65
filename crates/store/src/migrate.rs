//! The schema history of each backend, applied in order and recorded in `ember_schema`.
//!
//! Migrations follow expand/contract: a migration never breaks the queries of the
//! previous release, so old and new instances can run side by side during a rollout.

/// One schema step: a monotonically increasing number, a name and the SQL to run.
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub(crate) const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "resources",
        sql: include_str!("../migrations/postgres/0001_resources.sql"),
    },
    Migration {
        version: 2,
        name: "search_index",
        sql: include_str!("../migrations/postgres/0002_search_index.sql"),
    },
    Migration {
        version: 3,
        name: "reindex_jobs",
        sql: include_str!("../migrations/postgres/0003_reindex_jobs.sql"),
    },
    Migration {
        version: 4,
        name: "token_counts",
        sql: include_str!("../migrations/postgres/0004_token_counts.sql"),
    },
    Migration {
        version: 5,
        name: "timeline",
        sql: include_str!("../migrations/postgres/0005_timeline.sql"),
    },
    Migration {
        version: 6,
        name: "jobs",
        sql: include_str!("../migrations/postgres/0006_jobs.sql"),
    },
    Migration {
        version: 7,
        name: "kv",
        sql: include_str!("../migrations/postgres/0007_kv.sql"),
    },
    Migration {
        version: 8,
        name: "kv_lz4",
        sql: include_str!("../migrations/postgres/0008_kv_lz4.sql"),
    },
    Migration {
        version: 9,
        name: "token_counts_first",
        sql: include_str!("../migrations/postgres/0009_token_counts_first.sql"),
    },
];

pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "resources",
        sql: include_str!("../migrations/sqlite/0001_resources.sql"),
    },
    Migration {
        version: 2,
        name: "search_index",
        sql: include_str!("../migrations/sqlite/0002_search_index.sql"),
    },
    Migration {
        version: 3,
        name: "reindex_jobs",
        sql: include_str!("../migrations/sqlite/0003_reindex_jobs.sql"),
    },
    Migration {
        version: 4,
        name: "token_counts",
        sql: include_str!("../migrations/sqlite/0004_token_counts.sql"),
    },
    Migration {
        version: 5,
        name: "timeline",
        sql: include_str!("../migrations/sqlite/0005_timeline.sql"),
    },
    Migration {
        version: 6,
        name: "jobs",
        sql: include_str!("../migrations/sqlite/0006_jobs.sql"),
    },
    Migration {
        version: 7,
        name: "kv",
        sql: include_str!("../migrations/sqlite/0007_kv.sql"),
    },
    Migration {
        version: 8,
        name: "token_counts_first",
        sql: include_str!("../migrations/sqlite/0008_token_counts_first.sql"),
    },
];

/// The table that records applied migrations; identical on both backends.
pub(crate) const SCHEMA_TABLE: &str = "CREATE TABLE IF NOT EXISTS ember_schema (
    version    BIGINT PRIMARY KEY,
    name       TEXT   NOT NULL,
    applied_at BIGINT NOT NULL
)";

pub(crate) fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
