//! SQL shared by both backends, and the list of every statement a release runs (for
//! the schema-compatibility test).

use crate::{Backend, HistoryQuery, HistoryScope};

/// A bind value of a dynamically built statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
    Float(f64),
}

/// Whether a history row brought its document into existence: the first version, or
/// the one after a deletion.
const CREATED: &str = "(v.version = 1 OR EXISTS (SELECT 1 FROM resource_versions p
    WHERE p.res_type = v.res_type AND p.res_id = v.res_id AND p.version = v.version - 1 AND p.body IS NULL))";

/// The history query for `scope` and `q`, with `placeholder(n)` writing the n-th bind
/// parameter (`$n` or `?n`).
pub(crate) fn history(
    scope: HistoryScope<'_>,
    q: &HistoryQuery,
    placeholder: fn(usize) -> String,
) -> (String, Vec<Arg>) {
    let mut sql = format!(
        "SELECT v.seq, v.res_type, v.res_id, v.version, v.last_updated, v.change, v.body, {CREATED}
         FROM resource_versions v WHERE 1 = 1"
    );
    let mut args = Vec::new();
    let mut push = |clause: &str, arg: Arg| {
        args.push(arg);
        sql.push_str(&clause.replace('?', &placeholder(args.len())));
    };
    match scope {
        HistoryScope::System => {}
        HistoryScope::Type(t) => push(" AND v.res_type = ?", Arg::Text(t.to_owned())),
        HistoryScope::Instance(t, id) => {
            push(" AND v.res_type = ?", Arg::Text(t.to_owned()));
            push(" AND v.res_id = ?", Arg::Text(id.to_owned()));
        }
    }
    if let Some(since) = q.since {
        push(" AND v.last_updated >= ?", Arg::Int(since));
    }
    if let Some((start, end)) = q.at {
        push(" AND v.last_updated < ?", Arg::Int(end));
        push(
            " AND COALESCE((SELECT n.last_updated FROM resource_versions n
                WHERE n.res_type = v.res_type AND n.res_id = v.res_id
                  AND n.version = v.version + 1), 9223372036854775807) > ?",
            Arg::Int(start),
        );
    }
    if let Some(before) = q.before_seq {
        push(" AND v.seq < ?", Arg::Int(before));
    }
    push(" ORDER BY v.seq DESC LIMIT ?", Arg::Int(i64::from(q.limit)));
    (sql, args)
}

pub(crate) fn pg_placeholder(n: usize) -> String {
    format!("${n}")
}

pub(crate) fn sqlite_placeholder(n: usize) -> String {
    format!("?{n}")
}

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
    all.push(history(HistoryScope::Instance("T", "i"), &full, placeholder).0);
    all
}
