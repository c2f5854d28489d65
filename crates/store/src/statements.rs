//! Every statement a release runs, for the schema-compatibility test: a snapshot of
//! this list is kept for each release in `compat/`, and every kept release's
//! statements must still prepare on the newest schema (rolling updates and rollback).

use crate::{Backend, HistoryQuery, HistoryScope};

/// Every statement this release runs on `backend`, with dynamic statements in their
/// fullest form. A snapshot of this list is kept for each release in `compat/`, and a
/// test checks that every kept release's statements still prepare on the newest schema.
pub fn statements(backend: Backend) -> Vec<String> {
    let full = HistoryQuery {
        since: Some(0),
        at: Some((0, 1)),
        before_seq: Some(1),
        limit: 1,
    };
    let (mut all, dialect) = match backend {
        Backend::Postgres => (crate::postgres::statements(), &crate::search_sql::POSTGRES),
        Backend::Sqlite => (crate::sqlite::statements(), &crate::search_sql::SQLITE),
    };
    let placeholder = dialect.placeholder;
    let sample = crate::search_sql::sample_query();
    all.push(crate::search_sql::page(dialect, &sample).0);
    all.push(crate::search_sql::count(dialect, &sample).0);
    all.extend(crate::search_sql::timeline_page(dialect, &sample).map(|s| s.0));
    all.extend(crate::search_sql::timeline_count(dialect, &sample).map(|s| s.0));
    let rid_only = crate::SearchQuery {
        timeline: sample.timeline.clone().map(|path| crate::TimelinePath {
            at_least: None,
            ..path
        }),
        filters: vec![sample.filters[0].clone()],
        sort: vec![sample.sort[0].clone()],
        ..sample.clone()
    };
    all.extend(crate::search_sql::timeline_page(dialect, &rid_only).map(|s| s.0));
    let own_rows = crate::SearchQuery {
        filters: vec![sample.filters[0].clone()],
        ..sample
    };
    all.push(crate::search_sql::count(dialect, &own_rows).0);
    let coded = crate::SearchQuery {
        filters: vec![crate::Filter::Has(crate::Rows {
            table: crate::Table::Token,
            keys: vec![1],
            conds: vec![crate::Cond::All(vec![
                crate::Cond::Cmp(
                    crate::Col::System,
                    crate::Op::Eq,
                    crate::Val::Text("s".into()),
                ),
                crate::Cond::Cmp(
                    crate::Col::Code,
                    crate::Op::Eq,
                    crate::Val::Text("c".into()),
                ),
            ])],
        })],
        ..own_rows
    };
    all.push(crate::search_sql::count(dialect, &coded).0);
    all.push(crate::search_sql::referenced(dialect, &[1], &[1]).0);
    all.push(crate::search_sql::fetch(dialect, &[("T".into(), "i".into())]).0);
    all.push(crate::sql::history(HistoryScope::Instance("T", "i"), &full, placeholder).0);
    all
}
