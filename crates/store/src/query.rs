//! Search queries over the index tables, in terms of tables, keys and columns: the
//! store compiles them to SQL and knows nothing of FHIR search syntax.

/// An index table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    String,
    Token,
    Date,
    Number,
    Quantity,
    Reference,
    Uri,
}

impl Table {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::String => "idx_string",
            Table::Token => "idx_token",
            Table::Date => "idx_date",
            Table::Number => "idx_number",
            Table::Quantity => "idx_quantity",
            Table::Reference => "idx_reference",
            Table::Uri => "idx_uri",
        }
    }
}

/// A column of an index table (see [`crate::IndexRows`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    Norm,
    Exact,
    System,
    Code,
    Text,
    Lo,
    Hi,
    V,
    TargetType,
    TargetId,
    Url,
    Uri,
}

impl Col {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Col::Norm => "norm",
            Col::Exact => "exact",
            Col::System => "system",
            Col::Code => "code",
            Col::Text => "text",
            Col::Lo => "lo",
            Col::Hi => "hi",
            Col::V => "v",
            Col::TargetType => "target_type",
            Col::TargetId => "target_id",
            Col::Url => "url",
            Col::Uri => "uri",
        }
    }

    /// The kind of value the column holds.
    pub(crate) fn kind(self) -> ValKind {
        match self {
            Col::Lo | Col::Hi => ValKind::Int,
            Col::V => ValKind::Float,
            _ => ValKind::Text,
        }
    }
}

/// A bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Text(String),
    Int(i64),
    Float(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValKind {
    Text,
    Int,
    Float,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "<>",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// A condition on one index row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Cmp(Col, Op, Val),
    IsNull(Col),
    /// The column starts with the text.
    Prefix(Col, String),
    /// The column contains the text.
    Contains(Col, String),
    /// The column is a prefix of the text (uri `:above`).
    PrefixOf(Col, String),
    In(Col, Vec<Val>),
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
}

/// Index rows of one document: in `table`, under one of `keys`, meeting every cond.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    pub table: Table,
    pub keys: Vec<i64>,
    pub conds: Vec<Cond>,
}

/// A condition on a document.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// The document has a matching row.
    Has(Rows),
    /// The document has a matching row in each part, all with the same `grp`: the
    /// components of one composite value.
    Composite(Vec<Rows>),
    /// A reference row of the document (`refs`) points at a live document of
    /// `target_type` that meets every filter.
    Chain {
        refs: Rows,
        target_type: String,
        filters: Vec<Filter>,
    },
    /// A live document with a reference row in `refs` (keys of its own type) points at
    /// this document and meets every filter.
    Reverse {
        refs: Rows,
        filters: Vec<Filter>,
    },
    /// The document's id is one of these.
    Id(Vec<String>),
    /// The document's text of `kind` holds every one of the (folded) words.
    Text {
        kind: crate::TextKind,
        words: Vec<String>,
    },
    All(Vec<Filter>),
    Any(Vec<Filter>),
    Not(Box<Filter>),
}

/// What a search orders by.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    /// The smallest `asc` (ascending) or largest `desc` (descending) value of the
    /// document's rows; documents without rows sort last either way.
    Rows {
        table: Table,
        keys: Vec<i64>,
        asc: Col,
        desc: Col,
    },
    /// The rank of the document's token codes in `ranks` (the first is 0), lowest
    /// (ascending) or highest (descending) of its rows under `keys`: an order such as
    /// a value set's (`routine` < `urgent` < `asap` < `stat`) instead of the alphabet's.
    /// Documents without a ranked code sort last either way.
    Ranked { keys: Vec<i64>, ranks: Vec<String> },
    /// The document id.
    Id,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    pub key: SortKey,
    pub desc: bool,
}

/// A position between two results: the sort values and internal key of the result
/// next to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    pub values: Vec<Val>,
    pub rid: i64,
    /// Results before the position (a previous page) instead of after it.
    pub backward: bool,
}

/// A page of a search. Results are ordered by `sort`, then by the order documents were
/// first stored; live documents only.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// Document types searched (one for a type search).
    pub types: Vec<String>,
    pub filters: Vec<Filter>,
    pub sort: Vec<Sort>,
    pub cursor: Option<Cursor>,
    pub limit: u32,
    /// A faster way to the same documents; never changes the result.
    pub timeline: Option<TimelinePath>,
}

/// Timeline entries ([`crate::Timeline`]) that every document matching a query's
/// filters has: the caller vouches for that. The store may then start the search from
/// these entries, which are ordered by their sort values, instead of from a filter's
/// rows: a descending sort on [`TimelinePath::date_key`] or
/// [`TimelinePath::updated_key`] reads the entries in index order and stops after the
/// page. While documents written by an older release wait to be put into the timeline,
/// the store ignores the path.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelinePath {
    pub cmp: i64,
    pub p: i64,
    /// The entries' coded value (empty strings under a key without values).
    pub system: String,
    pub code: String,
    /// Only entries whose `at` is at least this (a lower bound the filters imply).
    pub at_least: Option<i64>,
    pub date_key: i64,
    pub updated_key: i64,
    /// The filters (indexes into [`SearchQuery::filters`]) that every entry on the path
    /// meets already; the store need not check them on entries it reads from the path.
    pub implied: Vec<usize>,
}

/// A live document found by a search.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub rid: i64,
    pub res_type: String,
    pub id: String,
    pub version: i64,
    pub last_updated: crate::Micros,
    pub body: String,
    /// Its sort values, in the order of [`SearchQuery::sort`] (for cursors).
    pub sort_values: Vec<Val>,
}

/// One page of hits, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Hits {
    pub hits: Vec<Hit>,
    /// More results lie beyond the page (after it, or before it for a backward cursor).
    pub more: bool,
}
