//! SQL shared by both backends.

use crate::{HistoryQuery, HistoryScope};

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
