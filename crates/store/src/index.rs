//! Index rows: the typed values of a document's search parameters, stored beside its
//! current version and replaced with every write.

/// The stable key of a named index within a document type (`key("Patient", "name")`).
///
/// FNV-1a over `scope`, a dot and `name`. Keys are stored, so the function never
/// changes. With a few thousand keys a 64-bit collision is practically impossible.
pub fn key(scope: &str, name: &str) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for b in scope
        .bytes()
        .chain(std::iter::once(b'.'))
        .chain(name.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(PRIME);
    }
    h as i64
}

/// All index rows of one document version. Empty for a deletion.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexRows {
    pub strings: Vec<StringRow>,
    pub tokens: Vec<TokenRow>,
    pub dates: Vec<DateRow>,
    pub numbers: Vec<NumberRow>,
    pub quantities: Vec<QuantityRow>,
    pub references: Vec<ReferenceRow>,
    pub uris: Vec<UriRow>,
    pub texts: Vec<TextRow>,
    /// The document's entries in patient timelines.
    pub timeline: Timeline,
}

impl IndexRows {
    /// How many rows in all tables.
    pub fn len(&self) -> usize {
        self.strings.len()
            + self.tokens.len()
            + self.dates.len()
            + self.numbers.len()
            + self.quantities.len()
            + self.references.len()
            + self.uris.len()
            + self.texts.len()
            + self.timeline.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a row sits: the index key and, for a component of a composite value, the
/// number shared by the components of that value (0 otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slot {
    pub p: i64,
    pub grp: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StringRow {
    pub slot: Slot,
    /// Case- and accent-folded form, for prefix and substring matching.
    pub norm: String,
    pub exact: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TokenRow {
    pub slot: Slot,
    pub system: Option<String>,
    pub code: Option<String>,
    /// Folded display text, for `:text`.
    pub text: Option<String>,
}

/// A half-open range of microseconds `[lo, hi)`; open ends are `i64::MIN`/`i64::MAX`.
#[derive(Debug, Clone, PartialEq)]
pub struct DateRow {
    pub slot: Slot,
    pub lo: i64,
    pub hi: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NumberRow {
    pub slot: Slot,
    pub v: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QuantityRow {
    pub slot: Slot,
    pub system: Option<String>,
    pub code: Option<String>,
    pub v: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceRow {
    pub slot: Slot,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UriRow {
    pub slot: Slot,
    pub uri: String,
}

/// What a full-text row holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// The narrative (`_text`).
    Narrative = 0,
    /// Every string of the resource (`_content`).
    Content = 1,
}

/// Folded words of one kind of text of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct TextRow {
    pub kind: TextKind,
    pub doc: String,
}

/// A document's entries in the timelines of the compartments it belongs to
/// (`idx_timeline`): an access path for searches pinned to one compartment, ordered by
/// date without reading the rest of its history.
///
/// Every entry of a document carries the same two sort values, which the store
/// computes from the document's date rows: `at`, the latest end (`hi`) of the date rows
/// under [`Timeline::date_key`], and `updated`, the latest end of those under
/// [`Timeline::updated_key`]; `i64::MIN` when there are none. They equal the values a
/// descending sort on those keys orders by, so a timeline scan in index order is a
/// search in sort order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    pub date_key: i64,
    pub updated_key: i64,
    /// Unique per document (the store drops repeats).
    pub entries: Vec<TimelineEntry>,
}

/// One entry: the document in compartment `cmp` under key `p`, with a coded value of
/// that key, or empty strings under a key without values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TimelineEntry {
    /// The compartment's key ([`key`]`("Patient", id)`).
    pub cmp: i64,
    pub p: i64,
    pub system: String,
    pub code: String,
}

impl Timeline {
    /// The sort values `(at, updated)` of the document of `rows`.
    pub(crate) fn sort_values(&self, rows: &IndexRows) -> (i64, i64) {
        let latest = |key: i64| {
            rows.dates
                .iter()
                .filter(|d| d.slot.p == key)
                .map(|d| d.hi)
                .max()
                .unwrap_or(i64::MIN)
        };
        (latest(self.date_key), latest(self.updated_key))
    }

    /// The entries without repeats, in their first order.
    pub(crate) fn unique_entries(&self) -> Vec<&TimelineEntry> {
        let mut seen = std::collections::HashSet::new();
        self.entries.iter().filter(|e| seen.insert(*e)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_distinct() {
        // Stored in databases: these values must never change.
        assert_eq!(key("Patient", "name"), 1_921_818_930_565_394_003);
        assert_eq!(key("Observation", "code"), 3_714_067_686_926_401_168);
        assert_ne!(key("Patient", "name"), key("Practitioner", "name"));
        assert_ne!(key("Patient", "name"), key("Patient.name", ""));
    }
}
