//! Compiles [`SearchQuery`]s to SQL for either backend.
//!
//! Every query starts from the table of live documents (`b`: `rid`, `res_type`,
//! `res_id`) and turns each [`Filter`] into an `EXISTS` over an index table correlated
//! on the document's `rid`. Sort values are correlated `min`/`max` subqueries, and
//! paging is keyset paging on the sort values and `rid`, so a page boundary never
//! moves when documents are added or removed elsewhere.

use crate::query::{
    Col, Cond, Cursor, Filter, Hit, Hits, Rows, SearchQuery, Sort, SortKey, TimelinePath, Val,
    ValKind,
};
use crate::sql::Arg;

/// What differs between the backends.
pub(crate) struct Dialect {
    pub placeholder: fn(usize) -> String,
    /// The table of document keys: `rid`, `res_type`, `res_id`.
    pub docs: &'static str,
    /// The condition that keeps live documents of alias `{}` (may be empty).
    pub live: fn(&str) -> String,
    /// The function `f(haystack, needle)` that is > 0 when needle occurs.
    pub position: &'static str,
    /// The documents (`rid`) whose text of a kind (0, 1) matches the words bound at
    /// the placeholder: `text_match(kind, placeholder)`, and how the words are bound.
    pub text_match: fn(i32, &str) -> String,
    pub text_query: fn(&[String]) -> String,
    /// Joins the current row `r` (`resources`) of the document whose key is `s.rid`.
    pub current_of_rid: &'static str,
    /// Appended to an index table's text when it is compared with a documents-table
    /// column, and the other way round: PostgreSQL uses an index only for a
    /// comparison in the index's collation (index text is "C", document keys are in
    /// the database default; equal either way, the bytes decide).
    pub as_doc_key: &'static str,
    pub as_index_text: &'static str,
    /// Ends every correlated `EXISTS` so that it stays a check per candidate. PostgreSQL
    /// otherwise turns it into a semi-join, and with the estimates of a generic plan it
    /// may read all of one filter's rows for each candidate of another (`OFFSET 0` keeps
    /// the subquery as it is written).
    pub fence: &'static str,
    /// A value column of an index row in a correlated check, as an expression no value
    /// index can serve: the check then finds the candidate's rows by `(rid, p)` instead
    /// of scanning one value's rows for `rid` (which a generic plan's average estimates
    /// may prefer, and which reads every document with a common value).
    pub opaque: fn(&str, ValKind) -> String,
    /// The smallest integer as a literal, written as the timeline's partial indexes
    /// (migration 0005) write it.
    pub int_min: &'static str,
}

pub(crate) const POSTGRES: Dialect = Dialect {
    placeholder: crate::sql::pg_placeholder,
    docs: "resources",
    live: |a| format!(" AND NOT {a}.deleted"),
    position: "strpos",
    text_match: |kind, q| {
        format!(
            "SELECT rid FROM idx_text WHERE kind = {kind} AND tsv @@ plainto_tsquery('simple', {q})"
        )
    },
    text_query: |words| words.join(" "),
    current_of_rid: "resources r ON r.rid = s.rid",
    as_doc_key: " COLLATE \"default\"",
    as_index_text: " COLLATE \"C\"",
    fence: " OFFSET 0",
    opaque: |col, kind| match kind {
        ValKind::Text => format!("({col} || '')"),
        ValKind::Int | ValKind::Float => format!("({col} + 0)"),
    },
    int_min: "'-9223372036854775808'::bigint",
};

pub(crate) const SQLITE: Dialect = Dialect {
    placeholder: crate::sql::sqlite_placeholder,
    docs: "resource_keys",
    live: |_| String::new(),
    position: "instr",
    text_match: |kind, q| {
        format!("SELECT rowid / 2 FROM idx_text WHERE idx_text MATCH {q} AND rowid % 2 = {kind}")
    },
    // Each word quoted: FTS5 syntax in the input stays literal.
    text_query: |words| {
        words
            .iter()
            .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" ")
    },
    current_of_rid: "resource_keys k ON k.rid = s.rid
         JOIN resources r ON r.res_type = k.res_type AND r.res_id = k.res_id",
    as_doc_key: "",
    as_index_text: "",
    fence: "",
    // SQLite plans correlated checks by the candidate's key already.
    opaque: |col, _| col.to_owned(),
    int_min: "-9223372036854775808",
};

/// The largest character: a prefix followed by it bounds every string with that prefix.
const TEXT_MAX: &str = "\u{10FFFF}";

/// Columns of a page query: `rid, res_type, res_id, version, last_updated, body`, then
/// one per sort key. The query's timeline path is not used (see [`timeline_page`]).
pub(crate) fn page(d: &Dialect, q: &SearchQuery) -> (String, Vec<Arg>) {
    let mut b = Builder::new(d);
    let sql = b.page(q, None);
    (sql, b.args)
}

/// The page query driven from the query's timeline path, when it has one: a first
/// column `stale` (whether documents of an older release wait to be put into the
/// timeline, which makes the path incomplete), then the columns of [`page`]. Both come
/// from one statement, so they agree. There is always a row: when no document matches,
/// its other columns are NULL.
pub(crate) fn timeline_page(d: &Dialect, q: &SearchQuery) -> Option<(String, Vec<Arg>)> {
    let path = q.timeline.as_ref()?;
    let mut b = Builder::new(d);
    let inner = b.page(q, Some(path));
    let sql = format!(
        "SELECT t.stale, w.* FROM (SELECT {STALE} AS stale) t LEFT JOIN ({inner}) w ON 1 = 1
         ORDER BY {}",
        order(q, "w.")
    );
    Some((sql, b.args))
}

/// Whether documents wait to be put into the timeline.
const STALE: &str = "EXISTS (SELECT 1 FROM timeline_stale)";

/// The order of a page's rows, with `of` before each column name.
fn order(q: &SearchQuery, of: &str) -> String {
    let backward = q.cursor.as_ref().is_some_and(|c| c.backward);
    let mut order = String::new();
    for (i, s) in q.sort.iter().enumerate() {
        let desc = s.desc != backward;
        order.push_str(&format!("{of}k{i} {}, ", if desc { "DESC" } else { "ASC" }));
    }
    order.push_str(&format!(
        "{of}rid {}",
        if backward { "DESC" } else { "ASC" }
    ));
    order
}

/// `SELECT count(*)` of the documents a query matches (its sort and cursor ignored).
/// The query's timeline path is not used (see [`timeline_count`]).
///
/// A query for exactly one coded token value reads the count kept on write. Otherwise,
/// when a positive filter on the document's own index rows exists and no filter needs
/// the document's id or type, the count is driven from that index instead of from
/// every document of the type.
pub(crate) fn count(d: &Dialect, q: &SearchQuery) -> (String, Vec<Arg>) {
    let mut b = Builder::new(d);
    if let Some((p, system, code)) = coded_value(q) {
        // Kept on write by triggers on `idx_token` (migration 0004).
        let (p, system, code) = (
            b.bind(Arg::Int(p)),
            b.bind(Arg::Text(system)),
            b.bind(Arg::Text(code)),
        );
        let sql = format!(
            "SELECT CAST(COALESCE(sum(n), 0) AS BIGINT) FROM idx_token_counts
             WHERE p = {p} AND code = {code} AND system = {system}"
        );
        return (sql, b.args);
    }
    let driver = driver(&q.filters);
    let own_rows = driver
        .filter(|i| matches!(q.filters[*i], Filter::Has(_)) && q.filters.iter().all(uses_rid_only));
    if let Some(i) = own_rows {
        let Filter::Has(rows) = &q.filters[i] else {
            unreachable!("own_rows keeps a Has")
        };
        // `DISTINCT` in a subquery rather than `count(DISTINCT …)`: the index returns
        // the rows of one value in `rid` order, so PostgreSQL can skip duplicates
        // without sorting (which spills to disk beyond `work_mem`).
        let mut sql = format!(
            "SELECT count(*) FROM (SELECT DISTINCT a.rid FROM {} a WHERE {}",
            rows.table.name(),
            b.rows_where(rows, "a")
        );
        for (j, f) in q.filters.iter().enumerate() {
            if j != i {
                let f = b.filter(f, "a");
                sql.push_str(&format!(" AND {f}"));
            }
        }
        sql.push_str(") n");
        return (sql, b.args);
    }
    let (from, filter) = b.sources(q);
    let sql = format!("SELECT count(*) FROM {from} WHERE {filter}");
    (sql, b.args)
}

/// The count driven from the query's timeline path, when it has one: `stale` (see
/// [`timeline_page`]) and the count, from one statement. A document has at most one
/// entry on a path, so the entries are counted as they are.
pub(crate) fn timeline_count(d: &Dialect, q: &SearchQuery) -> Option<(String, Vec<Arg>)> {
    let path = q.timeline.as_ref()?;
    let mut b = Builder::new(d);
    let (from, filter, _) = b.timeline_sources(q, path, false);
    let sql = format!("SELECT {STALE}, (SELECT count(*) FROM {from} WHERE {filter})");
    Some((sql, b.args))
}

/// `(p, system, code)` when the query is exactly one coded token value
/// (`param=system|code`): its count is kept in `idx_token_counts`.
fn coded_value(q: &SearchQuery) -> Option<(i64, String, String)> {
    let [Filter::Has(rows)] = q.filters.as_slice() else {
        return None;
    };
    let ([p], crate::query::Table::Token) = (rows.keys.as_slice(), rows.table) else {
        return None;
    };
    // The conditions, through single-value ORs and ANDs, must be exactly
    // `system = … AND code = …`.
    fn leaves<'c>(c: &'c Cond, out: &mut Vec<&'c Cond>) -> bool {
        match c {
            Cond::Any(cs) if cs.len() == 1 => leaves(&cs[0], out),
            Cond::All(cs) => cs.iter().all(|c| leaves(c, out)),
            Cond::Cmp(_, crate::query::Op::Eq, Val::Text(_)) => {
                out.push(c);
                true
            }
            _ => false,
        }
    }
    let mut eqs = Vec::new();
    if !rows.conds.iter().all(|c| leaves(c, &mut eqs)) {
        return None;
    }
    let value = |col| {
        let mut found = eqs.iter().filter_map(|c| match c {
            Cond::Cmp(c, _, Val::Text(v)) if *c == col => Some(v.clone()),
            _ => None,
        });
        found.next().filter(|_| found.next().is_none())
    };
    match (eqs.len(), value(Col::System), value(Col::Code)) {
        (2, Some(system), Some(code)) => Some((*p, system, code)),
        _ => None,
    }
}

/// The filter that should drive a search: the positive top-level filter likely to
/// match the fewest documents (a reference to one document, then a code or a
/// reverse chain from documents that reference one document, then a string or uri,
/// then a range). Starting from its index rows keeps the plan independent of table
/// statistics, which are stale right after bulk loads.
fn driver(filters: &[Filter]) -> Option<usize> {
    if filters.iter().any(|f| matches!(f, Filter::Id(_))) {
        // The primary key finds the documents: several ids drive through it where the
        // types are known ([`several_ids`]), one is left to the planner.
        return None;
    }
    filters
        .iter()
        .enumerate()
        .filter_map(|(i, f)| rank(f).map(|r| (r, i)))
        .min()
        .map(|(_, i)| i)
}

/// The top-level filter that names several ids (`_id=a,b,…`), which then drives a
/// search of known types through the primary key. Left to the planner, a generic plan
/// (which knows neither the ids nor the page size) walked every document of the type in
/// page order until it had found them all: 22 ms for 20 new Tasks among 7,585, against
/// 0.3 ms through the key. One id needs no help: the planner expects one row.
fn several_ids(filters: &[Filter]) -> Option<usize> {
    filters
        .iter()
        .position(|f| matches!(f, Filter::Id(ids) if ids.len() > 1))
}

/// How selective a filter is as a [`driver`], lower is better; `None` when it cannot
/// drive.
fn rank(f: &Filter) -> Option<u8> {
    match f {
        Filter::Has(rows) => {
            let eq = |col| {
                rows.conds.iter().any(|c| match c {
                    Cond::Cmp(c, crate::query::Op::Eq, _) => *c == col,
                    Cond::Any(cs) | Cond::All(cs) => cs.iter().any(|c| match c {
                        Cond::Cmp(c, crate::query::Op::Eq, _) => *c == col,
                        // A code list (`:in`, `:below`) is as selective as one code.
                        Cond::All(cs) => cs.iter().any(|c| {
                            matches!(c, Cond::Cmp(c, crate::query::Op::Eq, _) | Cond::In(c, _) if *c == col)
                        }),
                        _ => false,
                    }),
                    _ => false,
                })
            };
            Some(match rows.table {
                crate::query::Table::Reference if eq(Col::TargetId) => 0,
                crate::query::Table::Token if eq(Col::Code) => 1,
                crate::query::Table::String | crate::query::Table::Uri => 2,
                _ => 3,
            })
        }
        // Only a reverse chain whose own driver references one document is narrow
        // enough: `_has:CareTeam:subject:participant=Practitioner/1` finds a handful of
        // CareTeams, while `_has:Observation:subject:code=…` would find most patients.
        Filter::Reverse { filters, .. } => driver(filters)
            .and_then(|i| rank(&filters[i]))
            .filter(|r| *r == 0)
            .map(|_| 1),
        _ => None,
    }
}

/// Whether a filter refers to its document by `rid` alone.
fn uses_rid_only(f: &Filter) -> bool {
    match f {
        Filter::Has(_) | Filter::Composite(_) | Filter::Chain { .. } => true,
        Filter::Text { .. } => true,
        Filter::Reverse { .. } | Filter::Id(_) => false,
        Filter::All(fs) | Filter::Any(fs) => fs.iter().all(uses_rid_only),
        Filter::Not(f) => uses_rid_only(f),
    }
}

/// The targets (`target_type`, `target_id`) of the reference rows under `keys` of the
/// documents `rids`. (`p + 0` keeps SQLite on the `(rid, p)` index: a page has few
/// documents, while one key can have a million rows.)
pub(crate) fn referenced(d: &Dialect, rids: &[i64], keys: &[i64]) -> (String, Vec<Arg>) {
    let mut b = Builder::new(d);
    let rids = b.list(rids.iter().map(|r| Arg::Int(*r)));
    let keys = b.list(keys.iter().map(|k| Arg::Int(*k)));
    let sql = format!(
        "SELECT DISTINCT target_type, target_id FROM idx_reference
         WHERE rid IN ({rids}) AND p + 0 IN ({keys}) AND target_type IS NOT NULL AND target_id IS NOT NULL"
    );
    (sql, b.args)
}

/// Live documents by type and id, in no particular order; missing ones are left out.
pub(crate) fn fetch(d: &Dialect, docs: &[(String, String)]) -> (String, Vec<Arg>) {
    let mut b = Builder::new(d);
    // One `IN` list per type, so both backends look the ids up in the key index.
    let mut by_type: Vec<(&str, Vec<&str>)> = Vec::new();
    for (t, id) in docs {
        match by_type.iter_mut().find(|(bt, _)| bt == t) {
            Some((_, ids)) => ids.push(id),
            None => by_type.push((t, vec![id])),
        }
    }
    let mut pairs = Vec::with_capacity(by_type.len());
    for (t, ids) in by_type {
        let t = b.bind(Arg::Text(t.to_owned()));
        let ids = b.list(ids.into_iter().map(|i| Arg::Text(i.to_owned())));
        pairs.push(format!("(k.res_type = {t} AND k.res_id IN ({ids}))"));
    }
    let live = (d.live)("k");
    let sql = format!(
        "SELECT k.rid, k.res_type, k.res_id, v.version, v.last_updated, v.body
         FROM {docs} k
         JOIN resources r ON r.res_type = k.res_type AND r.res_id = k.res_id
         JOIN resource_versions v ON v.res_type = r.res_type AND v.res_id = r.res_id AND v.version = r.version
         WHERE ({pairs}){live}",
        docs = d.docs,
        pairs = if pairs.is_empty() {
            "1 = 0".to_owned()
        } else {
            pairs.join(" OR ")
        },
    );
    (sql, b.args)
}

/// Accumulates bind values and fresh aliases while SQL is written.
struct Builder<'d> {
    d: &'d Dialect,
    args: Vec<Arg>,
    aliases: usize,
}

impl<'d> Builder<'d> {
    fn new(d: &'d Dialect) -> Self {
        Self {
            d,
            args: Vec::new(),
            aliases: 0,
        }
    }

    fn bind(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        (self.d.placeholder)(self.args.len())
    }

    fn val(&mut self, v: &Val) -> String {
        self.bind(match v {
            Val::Text(t) => Arg::Text(t.clone()),
            Val::Int(i) => Arg::Int(*i),
            Val::Float(f) => Arg::Float(*f),
        })
    }

    fn list(&mut self, args: impl Iterator<Item = Arg>) -> String {
        let items: Vec<String> = args.map(|a| self.bind(a)).collect();
        if items.is_empty() {
            "NULL".to_owned()
        } else {
            items.join(", ")
        }
    }

    fn alias(&mut self, prefix: &str) -> String {
        self.aliases += 1;
        format!("{prefix}{}", self.aliases)
    }

    /// The page query of [`page`], driven from `path` when given.
    fn page(&mut self, q: &SearchQuery, path: Option<&TimelinePath>) -> String {
        let by_id = q.sort.iter().any(|s| matches!(s.key, SortKey::Id));
        // The timeline columns name the sort values of the documents on the path.
        let (from, filter, tl) = match path {
            Some(path) => {
                let (from, filter, tl) = self.timeline_sources(q, path, by_id);
                (from, filter, Some((tl, path)))
            }
            None => {
                let (from, filter) = self.sources(q);
                (from, filter, None)
            }
        };
        let mut keys = String::new();
        for (i, s) in q.sort.iter().enumerate() {
            let expr = match tl.and_then(|(tl, path)| timeline_column(s, path).map(|c| (tl, c))) {
                Some((tl, col)) => format!("{tl}.{col}"),
                None => self.sort_expr(s),
            };
            keys.push_str(&format!(", {expr} AS k{i}"));
        }
        let keyset = match &q.cursor {
            Some(c) => format!(" WHERE {}", self.keyset(&q.sort, c)),
            None => String::new(),
        };
        let limit = self.bind(Arg::Int(i64::from(q.limit) + 1));
        let key_cols: String = (0..q.sort.len()).map(|i| format!(", s.k{i}")).collect();
        format!(
            "SELECT s.rid, r.res_type, r.res_id, v.version, v.last_updated, v.body{key_cols}
             FROM (SELECT * FROM (SELECT b.rid{keys} FROM {from} WHERE {filter}) f{keyset}
                   ORDER BY {inner} LIMIT {limit}) s
             JOIN {current}
             JOIN resource_versions v ON v.res_type = r.res_type AND v.res_id = r.res_id AND v.version = r.version
             ORDER BY {outer}",
            current = self.d.current_of_rid,
            inner = order(q, ""),
            outer = order(q, "s."),
        )
    }

    /// The `FROM` and `WHERE` of the documents `b` on a timeline path that match every
    /// filter, and the alias of the entries. The entries alone are the documents when
    /// every filter refers to them by `rid` and the caller needs no more (`need_id`
    /// false); otherwise the documents table joins them as `b`, with the entries as `tl`.
    fn timeline_sources(
        &mut self,
        q: &SearchQuery,
        path: &TimelinePath,
        need_id: bool,
    ) -> (String, String, &'static str) {
        let checked = || {
            q.filters
                .iter()
                .enumerate()
                .filter(|(i, _)| !path.implied.contains(i))
                .map(|(_, f)| f)
        };
        let docs_too = need_id || !checked().all(uses_rid_only);
        let tl = if docs_too { "tl" } else { "b" };
        let cmp = self.bind(Arg::Int(path.cmp));
        let p = self.bind(Arg::Int(path.p));
        let code = self.bind(Arg::Text(path.code.clone()));
        let system = self.bind(Arg::Text(path.system.clone()));
        let mut sql = format!(
            "{tl}.cmp = {cmp} AND {tl}.p = {p} AND {tl}.code = {code} AND {tl}.system = {system}"
        );
        // Names the index of the ordering to read (see migration 0005).
        let column = match q.sort.first().and_then(|s| timeline_column(s, path)) {
            Some("updated") => "updated",
            _ => "at",
        };
        sql.push_str(&format!(" AND {tl}.{column} >= {}", self.d.int_min));
        if let Some(at) = path.at_least {
            let at = self.bind(Arg::Int(at));
            sql.push_str(&format!(" AND {tl}.at >= {at}"));
        }
        let from = if docs_too {
            let types = self.list(q.types.iter().map(|t| Arg::Text(t.clone())));
            sql.push_str(&format!(
                " AND b.res_type IN ({types}){}",
                (self.d.live)("b")
            ));
            format!("idx_timeline tl JOIN {} b ON b.rid = tl.rid", self.d.docs)
        } else {
            "idx_timeline b".to_owned()
        };
        for f in checked() {
            let f = self.filter(f, "b");
            sql.push_str(&format!(" AND {f}"));
        }
        (from, sql, tl)
    }

    /// The `FROM` and `WHERE` of the documents `b` of the query's types that match:
    /// `b.rid` always, and `b.res_id` when the sort needs it.
    fn sources(&mut self, q: &SearchQuery) -> (String, String) {
        let by_id = q.sort.iter().any(|s| matches!(s.key, SortKey::Id));
        let (from, filter) = self.matching(&q.filters, "b", Some(&q.types), by_id);
        let filter = filter.strip_prefix(" AND ").unwrap_or("1 = 1").to_owned();
        (from, filter)
    }

    /// The `FROM` of the live documents, alias `doc`, of one of `types` (any when
    /// `None`) for which all `filters` hold, and the conditions to add to its `WHERE`
    /// (each starting with ` AND `). Driven from the rows of the
    /// [`driver`] filter when there is one.
    ///
    /// When every filter refers to the document by `rid` and the caller needs no more
    /// (`need_id` false), `doc` is the driver's `rid`s alone: index rows exist only for
    /// live documents, under keys of their own type, so the table of documents is not
    /// read at all until the page is cut.
    fn matching(
        &mut self,
        filters: &[Filter],
        doc: &str,
        types: Option<&[String]>,
        need_id: bool,
    ) -> (String, String) {
        let docs = self.d.docs;
        let driver = driver(filters).or_else(|| types.and(several_ids(filters)));
        let mut reads_docs = true;
        let from = match driver.map(|i| &filters[i]) {
            Some(Filter::Id(ids)) => {
                // Fenced, so that the page's order cannot lead PostgreSQL to walk all
                // documents of the type in that order, checking ids on the way.
                let types = self.list(
                    types
                        .unwrap_or_default()
                        .iter()
                        .map(|t| Arg::Text(t.clone())),
                );
                let ids = self.list(ids.iter().map(|i| Arg::Text(i.clone())));
                format!(
                    "(SELECT * FROM {docs} WHERE res_type IN ({types}) AND res_id IN ({ids}){}) {doc}",
                    self.d.fence
                )
            }
            Some(Filter::Has(rows)) if !need_id && filters.iter().all(uses_rid_only) => {
                let cond = self.rows_where(rows, doc);
                reads_docs = false;
                format!(
                    "(SELECT DISTINCT {doc}.rid FROM {} {doc} WHERE {cond}) {doc}",
                    rows.table.name(),
                )
            }
            Some(Filter::Has(rows)) => {
                let d = self.alias("d");
                let cond = self.rows_where(rows, &d);
                format!(
                    "(SELECT DISTINCT {d}.rid FROM {} {d} WHERE {cond}) {d}x JOIN {docs} {doc} ON {doc}.rid = {d}x.rid",
                    rows.table.name(),
                )
            }
            Some(Filter::Reverse { refs, filters }) => {
                // The documents referenced by the matching sources.
                let s = self.alias("s");
                let a = self.alias("r");
                let (src_from, src_filter) = self.matching(filters, &s, None, false);
                let cond = self.rows_where(refs, &a);
                format!(
                    "(SELECT DISTINCT {a}.target_type, {a}.target_id FROM {src_from} JOIN idx_reference {a} ON {a}.rid = {s}.rid
                      WHERE {cond}{src_filter}) {a}x
                     JOIN {docs} {doc} ON {doc}.res_type = {a}x.target_type{k} AND {doc}.res_id = {a}x.target_id{k}",
                    k = self.d.as_doc_key,
                )
            }
            _ => format!("{docs} {doc}"),
        };
        let mut sql = String::new();
        if reads_docs {
            // The documents table is read: keep its live rows of the types.
            if let Some(types) = types {
                let types = self.list(types.iter().map(|t| Arg::Text(t.clone())));
                sql.push_str(&format!(" AND {doc}.res_type IN ({types})"));
            }
            sql.push_str(&(self.d.live)(doc));
        }
        for (i, f) in filters.iter().enumerate() {
            if Some(i) != driver {
                let f = self.filter(f, doc);
                sql.push_str(&format!(" AND {f}"));
            }
        }
        (from, sql)
    }

    /// A boolean SQL expression: `f` holds for the document of alias `cur`.
    fn filter(&mut self, f: &Filter, cur: &str) -> String {
        match f {
            Filter::Has(rows) => {
                let a = self.alias("i");
                let cond = self.probe_where(rows, &a);
                format!(
                    "EXISTS (SELECT 1 FROM {} {a} WHERE {a}.rid = {cur}.rid AND {cond}{})",
                    rows.table.name(),
                    self.d.fence
                )
            }
            Filter::Composite(parts) => {
                let mut from = Vec::new();
                let mut conds = Vec::new();
                let mut first: Option<String> = None;
                for rows in parts {
                    let a = self.alias("c");
                    from.push(format!("{} {a}", rows.table.name()));
                    conds.push(self.probe_where(rows, &a));
                    match &first {
                        None => {
                            conds.push(format!("{a}.rid = {cur}.rid"));
                            first = Some(a);
                        }
                        Some(f) => conds.push(format!("{a}.rid = {f}.rid AND {a}.grp = {f}.grp")),
                    }
                }
                format!(
                    "EXISTS (SELECT 1 FROM {} WHERE {}{})",
                    from.join(", "),
                    conds.join(" AND "),
                    self.d.fence
                )
            }
            Filter::Chain {
                refs,
                target_type,
                filters,
            } => {
                let a = self.alias("r");
                let t = self.alias("t");
                let cond = self.probe_where(refs, &a);
                let ty = self.bind(Arg::Text(target_type.clone()));
                let mut sql = format!(
                    "EXISTS (SELECT 1 FROM idx_reference {a} JOIN {docs} {t} ON {t}.res_type = {ty} AND {t}.res_id = {a}.target_id{k}{live}
                     WHERE {a}.rid = {cur}.rid AND {cond} AND {a}.target_type{k} = {t}.res_type",
                    docs = self.d.docs,
                    k = self.d.as_doc_key,
                    live = (self.d.live)(&t),
                );
                for f in filters {
                    let f = self.filter(f, &t);
                    sql.push_str(&format!(" AND {f}"));
                }
                sql.push_str(self.d.fence);
                sql.push(')');
                sql
            }
            Filter::Reverse { refs, filters } => {
                let a = self.alias("r");
                let s = self.alias("s");
                let cond = self.rows_where(refs, &a);
                let mut sql = format!(
                    "EXISTS (SELECT 1 FROM idx_reference {a} JOIN {docs} {s} ON {s}.rid = {a}.rid{live}
                     WHERE {cond} AND {a}.target_type = {cur}.res_type{c} AND {a}.target_id = {cur}.res_id{c}",
                    docs = self.d.docs,
                    c = self.d.as_index_text,
                    live = (self.d.live)(&s),
                );
                for f in filters {
                    let f = self.filter(f, &s);
                    sql.push_str(&format!(" AND {f}"));
                }
                sql.push_str(self.d.fence);
                sql.push(')');
                sql
            }
            Filter::Id(ids) => {
                let ids = self.list(ids.iter().map(|i| Arg::Text(i.clone())));
                format!("{cur}.res_id IN ({ids})")
            }
            Filter::Text { kind, words } => {
                let q = self.bind(Arg::Text((self.d.text_query)(words)));
                format!("{cur}.rid IN ({})", (self.d.text_match)(*kind as i32, &q))
            }
            Filter::All(fs) if fs.is_empty() => "1 = 1".to_owned(),
            Filter::Any(fs) if fs.is_empty() => "1 = 0".to_owned(),
            Filter::All(fs) => {
                let parts: Vec<String> = fs.iter().map(|f| self.filter(f, cur)).collect();
                format!("({})", parts.join(" AND "))
            }
            Filter::Any(fs) => {
                let parts: Vec<String> = fs.iter().map(|f| self.filter(f, cur)).collect();
                format!("({})", parts.join(" OR "))
            }
            Filter::Not(f) => format!("NOT {}", self.filter(f, cur)),
        }
    }

    /// The key and row conditions of `rows` on alias `a`, for an index lookup by value.
    fn rows_where(&mut self, rows: &Rows, a: &str) -> String {
        self.rows_cond(rows, a, false)
    }

    /// The key and row conditions of `rows` on alias `a`, for a check of a candidate's
    /// own rows (alias `a` correlated on `rid`): value columns are [`Dialect::opaque`].
    fn probe_where(&mut self, rows: &Rows, a: &str) -> String {
        self.rows_cond(rows, a, true)
    }

    fn rows_cond(&mut self, rows: &Rows, a: &str, probe: bool) -> String {
        let keys = self.list(rows.keys.iter().map(|k| Arg::Int(*k)));
        let mut sql = if rows.keys.len() == 1 {
            format!("{a}.p = {keys}")
        } else {
            format!("{a}.p IN ({keys})")
        };
        for c in &rows.conds {
            let c = self.cond(c, a, probe);
            sql.push_str(&format!(" AND {c}"));
        }
        sql
    }

    fn cond(&mut self, c: &Cond, a: &str, probe: bool) -> String {
        let column = |col: &Col| {
            let plain = format!("{a}.{}", col.name());
            if probe {
                (self.d.opaque)(&plain, col.kind())
            } else {
                plain
            }
        };
        match c {
            Cond::Cmp(col, op, v) => {
                let col = column(col);
                let v = self.val(v);
                format!("{col} {} {v}", op.sql())
            }
            Cond::IsNull(col) => format!("{} IS NULL", column(col)),
            Cond::Prefix(col, s) => {
                let col = column(col);
                let lo = self.bind(Arg::Text(s.clone()));
                let hi = self.bind(Arg::Text(format!("{s}{TEXT_MAX}")));
                format!("({col} >= {lo} AND {col} < {hi})")
            }
            Cond::Contains(col, s) => {
                let col = column(col);
                let s = self.bind(Arg::Text(s.clone()));
                format!("{}({col}, {s}) > 0", self.d.position)
            }
            Cond::PrefixOf(col, s) => {
                let col = column(col);
                let s = self.bind(Arg::Text(s.clone()));
                format!("substr({s}, 1, length({col})) = {col}")
            }
            Cond::In(col, vals) => {
                let col = column(col);
                let items: Vec<String> = vals.iter().map(|v| self.val(v)).collect();
                if items.is_empty() {
                    "1 = 0".to_owned()
                } else {
                    format!("{col} IN ({})", items.join(", "))
                }
            }
            Cond::All(cs) if cs.is_empty() => "1 = 1".to_owned(),
            Cond::Any(cs) if cs.is_empty() => "1 = 0".to_owned(),
            Cond::All(cs) => {
                let parts: Vec<String> = cs.iter().map(|c| self.cond(c, a, probe)).collect();
                format!("({})", parts.join(" AND "))
            }
            Cond::Any(cs) => {
                let parts: Vec<String> = cs.iter().map(|c| self.cond(c, a, probe)).collect();
                format!("({})", parts.join(" OR "))
            }
            Cond::Not(c) => format!("NOT ({})", self.cond(c, a, probe)),
        }
    }

    /// The sort value of the document `b`, never NULL: missing values sort last.
    fn sort_expr(&mut self, s: &Sort) -> String {
        match &s.key {
            SortKey::Id => "b.res_id".to_owned(),
            SortKey::Rows {
                table,
                keys,
                asc,
                desc,
            } => {
                let (col, agg) = if s.desc {
                    (*desc, "max")
                } else {
                    (*asc, "min")
                };
                let last = self.val(&last_value(col.kind(), s.desc));
                let keys = self.list(keys.iter().map(|k| Arg::Int(*k)));
                format!(
                    "COALESCE((SELECT {agg}(x.{col}) FROM {table} x WHERE x.rid = b.rid AND x.p IN ({keys})), {last})",
                    col = col.name(),
                    table = table.name(),
                )
            }
            SortKey::Ranked { keys, ranks } => {
                let agg = if s.desc { "max" } else { "min" };
                let last = self.val(&last_value(ValKind::Int, s.desc));
                let keys = self.list(keys.iter().map(|k| Arg::Int(*k)));
                let mut case = String::from("CASE x.code");
                for (rank, code) in ranks.iter().enumerate() {
                    let code = self.bind(Arg::Text(code.clone()));
                    case.push_str(&format!(" WHEN {code} THEN CAST({rank} AS BIGINT)"));
                }
                case.push_str(" END");
                format!(
                    "COALESCE((SELECT {agg}({case}) FROM {table} x WHERE x.rid = b.rid AND x.p IN ({keys})), {last})",
                    table = crate::query::Table::Token.name(),
                )
            }
        }
    }

    /// Rows strictly after (or before, for a backward cursor) the cursor position. The
    /// first sort value is also bounded on its own (`k0 >= v AND (…)`), which an index
    /// in sort order can start from.
    fn keyset(&mut self, sort: &[Sort], c: &Cursor) -> String {
        let rid = self.bind(Arg::Int(c.rid));
        let mut sql = format!("rid {} {rid}", if c.backward { "<" } else { ">" });
        let mut bound = None;
        for (i, s) in sort.iter().enumerate().rev() {
            let Some(v) = c.values.get(i) else { continue };
            let v = self.val(v);
            let after = s.desc == c.backward;
            let op = if after { ">" } else { "<" };
            sql = format!("(k{i} {op} {v} OR (k{i} = {v} AND {sql}))");
            bound = Some(format!("k{i} {op}= {v}"));
        }
        match bound {
            Some(bound) => format!("{bound} AND {sql}"),
            None => sql,
        }
    }
}

/// The value that sorts after every real one in the given direction.
fn last_value(kind: ValKind, desc: bool) -> Val {
    match (kind, desc) {
        (ValKind::Text, false) => Val::Text(TEXT_MAX.to_owned()),
        (ValKind::Text, true) => Val::Text(String::new()),
        (ValKind::Int, false) => Val::Int(i64::MAX),
        (ValKind::Int, true) => Val::Int(i64::MIN),
        (ValKind::Float, false) => Val::Float(f64::MAX),
        (ValKind::Float, true) => Val::Float(f64::MIN),
    }
}

/// The timeline column that holds the value of sort key `s` for the documents on
/// `path`: a descending sort on the date rows of the path's date or updated key.
fn timeline_column(s: &Sort, path: &TimelinePath) -> Option<&'static str> {
    let SortKey::Rows {
        table: crate::query::Table::Date,
        keys,
        desc: Col::Hi,
        ..
    } = &s.key
    else {
        return None;
    };
    match keys.as_slice() {
        [k] if s.desc && *k == path.date_key => Some("at"),
        [k] if s.desc && *k == path.updated_key => Some("updated"),
        _ => None,
    }
}

/// The kinds of the sort values of a query, to read them back.
pub(crate) fn sort_kinds(sort: &[Sort]) -> Vec<ValKind> {
    sort.iter()
        .map(|s| match &s.key {
            SortKey::Id => ValKind::Text,
            SortKey::Ranked { .. } => ValKind::Int,
            SortKey::Rows { asc, desc, .. } => {
                if s.desc {
                    desc.kind()
                } else {
                    asc.kind()
                }
            }
        })
        .collect()
}

/// Cuts the `limit + 1` rows of a page query to the page, in result order.
pub(crate) fn into_page(mut hits: Vec<Hit>, q: &SearchQuery) -> Hits {
    let limit = q.limit as usize;
    let more = hits.len() > limit;
    hits.truncate(limit);
    if q.cursor.as_ref().is_some_and(|c| c.backward) {
        hits.reverse();
    }
    Hits { hits, more }
}

/// A query using every kind of filter, condition and sort: the fullest forms of the
/// dynamic search statements, for the schema-compatibility snapshot.
pub(crate) fn sample_query() -> SearchQuery {
    use crate::query::{Op, Table};
    let rows = |table, conds| Rows {
        table,
        keys: vec![1, 2],
        conds,
    };
    let text = |s: &str| Val::Text(s.to_owned());
    let conds = vec![
        Cond::Cmp(Col::Code, Op::Eq, text("c")),
        Cond::IsNull(Col::System),
        Cond::Prefix(Col::Text, "t".into()),
        Cond::Contains(Col::Text, "t".into()),
        Cond::PrefixOf(Col::System, "s".into()),
        Cond::In(Col::Code, vec![text("a"), text("b")]),
        Cond::Any(vec![Cond::Not(Box::new(Cond::IsNull(Col::Code)))]),
    ];
    SearchQuery {
        types: vec!["T".into()],
        filters: vec![
            Filter::Has(rows(Table::Token, conds)),
            Filter::Composite(vec![
                rows(Table::Token, vec![]),
                rows(
                    Table::Quantity,
                    vec![Cond::Cmp(Col::V, Op::Gt, Val::Float(1.0))],
                ),
            ]),
            Filter::Chain {
                refs: rows(Table::Reference, vec![]),
                target_type: "U".into(),
                filters: vec![Filter::Has(rows(Table::String, vec![]))],
            },
            Filter::Reverse {
                refs: rows(Table::Reference, vec![]),
                filters: vec![Filter::Id(vec!["i".into()])],
            },
            Filter::Not(Box::new(Filter::Any(vec![Filter::Has(rows(
                Table::Date,
                vec![Cond::Cmp(Col::Lo, Op::Ge, Val::Int(0))],
            ))]))),
            Filter::Text {
                kind: crate::TextKind::Content,
                words: vec!["w".into()],
            },
        ],
        sort: vec![
            Sort {
                key: SortKey::Rows {
                    table: Table::Date,
                    keys: vec![3],
                    asc: Col::Lo,
                    desc: Col::Hi,
                },
                desc: true,
            },
            Sort {
                key: SortKey::Ranked {
                    keys: vec![4],
                    ranks: vec!["a".into(), "b".into()],
                },
                desc: true,
            },
            Sort {
                key: SortKey::Id,
                desc: false,
            },
        ],
        cursor: Some(Cursor {
            values: vec![Val::Int(0), Val::Int(1), text("i")],
            rid: 1,
            backward: false,
        }),
        limit: 10,
        timeline: Some(TimelinePath {
            cmp: 1,
            p: 2,
            system: "s".into(),
            code: "c".into(),
            at_least: Some(0),
            date_key: 3,
            updated_key: 4,
            implied: vec![],
        }),
    }
}
