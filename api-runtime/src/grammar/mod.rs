//! The PostgREST URL grammar: query string and headers to a request AST.
//!
//! Pure parsing: nothing here knows the schema. Names are checked later by
//! `plan`. Every parser is bounded (input length, nesting depth) so that
//! hostile input is a 400, never a panic or a hang.

mod filter;
mod headers;
mod lexer;
mod payload;
mod query;
mod select;

pub use filter::{has_operator, parse_filter_value, pg_array_to_json};
pub use headers::{
    CountPreference, Preferences, RangeHeader, Resolution, ReturnPreference, parse_prefer, parse_range_header,
};
pub use payload::{Payload, PayloadError, parse_payload};
pub use query::parse_query;
pub use select::parse_select;

/// Nesting deeper than this (embeds, logic trees) is refused.
pub const MAX_DEPTH: usize = 32;
/// Query strings longer than this are refused.
pub const MAX_QUERY_LEN: usize = 32 * 1024;

/// A grammar error, status 400: PostgREST's PGRST100, or the more
/// specific code PostgREST gives the same failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct GrammarError {
    pub message: String,
    pub details: String,
    pub code: &'static str,
}

impl GrammarError {
    pub fn new(message: impl Into<String>, details: impl Into<String>) -> Self {
        GrammarError { message: message.into(), details: details.into(), code: "PGRST100" }
    }

    /// The same error under PostgREST's `code` for it.
    pub fn coded(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }
}

/// A column reference, possibly into a JSON value (`data->a->>b`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub json_path: Vec<JsonStep>,
}

impl Field {
    pub fn plain(name: impl Into<String>) -> Self {
        Field { name: name.into(), json_path: vec![] }
    }

    /// The JSON key PostgREST gives an unaliased field: the last path key
    /// that is not an array index (`data->0->a->>2` is `a`), else the
    /// column name (`data->>0` is `data`).
    pub fn default_label(&self) -> String {
        self.json_path
            .iter()
            .rev()
            .find_map(|step| match &step.key {
                JsonKey::Name(n) => Some(n.clone()),
                JsonKey::Index(_) => None,
            })
            .unwrap_or_else(|| self.name.clone())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonStep {
    /// `->>` (as text) rather than `->` (as JSON).
    pub as_text: bool,
    pub key: JsonKey,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonKey {
    Name(String),
    Index(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectItem {
    /// `*`: every column.
    Star,
    Column {
        field: Field,
        alias: Option<String>,
        cast: Option<String>,
    },
    Embed(Embed),
    /// `[alias:][field[::cast].]function()[::cast]`: `count()`,
    /// `amount.sum()`, `amount::int.avg()::text`.
    Aggregate {
        function: AggregateFunction,
        /// The aggregated column; none for `count()`, which counts rows.
        field: Option<Field>,
        input_cast: Option<String>,
        alias: Option<String>,
        result_cast: Option<String>,
    },
}

impl SelectItem {
    /// Whether this item, or one in an embed under it, is an aggregate
    /// function (`api.aggregates` allows them).
    pub fn uses_aggregates(&self) -> bool {
        match self {
            SelectItem::Aggregate { .. } => true,
            SelectItem::Embed(e) => e.select.iter().any(SelectItem::uses_aggregates),
            SelectItem::Star | SelectItem::Column { .. } => false,
        }
    }
}

/// The aggregate functions of `select`, as PostgREST offers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateFunction {
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

impl AggregateFunction {
    pub fn parse(name: &str) -> Option<AggregateFunction> {
        Some(match name {
            "count" => AggregateFunction::Count,
            "sum" => AggregateFunction::Sum,
            "avg" => AggregateFunction::Avg,
            "min" => AggregateFunction::Min,
            "max" => AggregateFunction::Max,
            _ => return None,
        })
    }

    /// The name in `select` and in SQL, and the default JSON key.
    pub fn name(self) -> &'static str {
        match self {
            AggregateFunction::Count => "count",
            AggregateFunction::Sum => "sum",
            AggregateFunction::Avg => "avg",
            AggregateFunction::Min => "min",
            AggregateFunction::Max => "max",
        }
    }
}

/// `alias:target!hint!inner(select)` or `...target(select)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Embed {
    pub target: String,
    pub alias: Option<String>,
    pub hint: Option<String>,
    /// `!inner`: parents without a matching child are dropped.
    pub inner: bool,
    /// `...target(cols)`: the embedded columns are spread into the parent.
    pub spread: bool,
    pub select: Vec<SelectItem>,
}

impl Embed {
    /// The JSON key and the embed-path segment: the alias, else the target.
    pub fn label(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.target)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    Like,
    Ilike,
    Match,
    Imatch,
    IsDistinct,
    /// Contains (`@>`).
    Cs,
    /// Contained in (`<@`).
    Cd,
    /// Overlaps (`&&`).
    Ov,
    Sl,
    Sr,
    Nxr,
    Nxl,
    Adj,
}

impl Operator {
    pub const ALL: &'static [(&'static str, Operator)] = &[
        ("eq", Operator::Eq),
        ("neq", Operator::Neq),
        ("gt", Operator::Gt),
        ("gte", Operator::Gte),
        ("lt", Operator::Lt),
        ("lte", Operator::Lte),
        ("like", Operator::Like),
        ("ilike", Operator::Ilike),
        ("match", Operator::Match),
        ("imatch", Operator::Imatch),
        ("isdistinct", Operator::IsDistinct),
        ("cs", Operator::Cs),
        ("cd", Operator::Cd),
        ("ov", Operator::Ov),
        ("sl", Operator::Sl),
        ("sr", Operator::Sr),
        ("nxr", Operator::Nxr),
        ("nxl", Operator::Nxl),
        ("adj", Operator::Adj),
    ];

    pub fn name(self) -> &'static str {
        Operator::ALL.iter().find(|(_, op)| *op == self).map(|(n, _)| *n).unwrap_or("?")
    }

    /// Operators that take `(any)` / `(all)` modifiers.
    pub fn quantifiable(self) -> bool {
        matches!(
            self,
            Operator::Eq
                | Operator::Neq
                | Operator::Gt
                | Operator::Gte
                | Operator::Lt
                | Operator::Lte
                | Operator::Like
                | Operator::Ilike
                | Operator::Match
                | Operator::Imatch
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantifier {
    Any,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsValue {
    Null,
    NotNull,
    True,
    False,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FtsKind {
    /// `to_tsquery`
    Fts,
    /// `plainto_tsquery`
    Plain,
    /// `phraseto_tsquery`
    Phrase,
    /// `websearch_to_tsquery`
    Websearch,
}

impl FtsKind {
    pub fn name(self) -> &'static str {
        match self {
            FtsKind::Fts => "fts",
            FtsKind::Plain => "plfts",
            FtsKind::Phrase => "phfts",
            FtsKind::Websearch => "wfts",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    Compare { op: Operator, value: String },
    Quantified { op: Operator, quantifier: Quantifier, values: Vec<String> },
    In(Vec<String>),
    Is(IsValue),
    Fts { kind: FtsKind, language: Option<String>, query: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub field: Field,
    pub negated: bool,
    pub operation: Operation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogicOp {
    And,
    Or,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Filter(Filter),
    Group { negated: bool, op: LogicOp, children: Vec<Condition> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nulls {
    First,
    Last,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderTerm {
    /// `rel(col)`: order by a column of a to-one embedded resource.
    pub relation: Option<String>,
    pub field: Field,
    pub direction: Option<Direction>,
    pub nulls: Option<Nulls>,
}

/// Labels from the root to an embedded resource (`items.order=...` is
/// `["items"]`); empty for the root.
pub type EmbedPath = Vec<String>;

/// Everything the query string says about a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiQuery {
    /// `select=`; `None` means every column.
    pub select: Option<Vec<SelectItem>>,
    /// Horizontal filters and logic trees, each at an embed path; all are
    /// combined with AND.
    pub conditions: Vec<(EmbedPath, Condition)>,
    pub order: Vec<(EmbedPath, Vec<OrderTerm>)>,
    pub limits: Vec<(EmbedPath, u64)>,
    pub offsets: Vec<(EmbedPath, u64)>,
    /// `columns=` (writes).
    pub columns: Option<Vec<String>>,
    /// `on_conflict=` (upserts).
    pub on_conflict: Option<Vec<String>>,
}

#[cfg(test)]
mod robustness {
    use super::*;

    /// A small deterministic generator (xorshift), so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Strings built from the grammar's own punctuation and keywords hit
    /// the parsers' edge cases far more often than random bytes would.
    fn hostile_input(rng: &mut Rng) -> String {
        const PIECES: &[&str] = &[
            "(",
            ")",
            "{",
            "}",
            ",",
            ".",
            ":",
            "::",
            "!",
            "\"",
            "\\",
            "->",
            "->>",
            "*",
            "...",
            "=",
            "&",
            "%",
            "+",
            "not.",
            "eq.",
            "in.",
            "is.",
            "or",
            "and",
            "like(any).",
            "fts(english).",
            "select",
            "order",
            "limit",
            "id",
            "a",
            "0",
            "-1",
            "é",
            " ",
            "inner",
            "nullslast",
            "desc",
        ];
        let len = (rng.next() % 40) as usize;
        (0..len).map(|_| PIECES[(rng.next() % PIECES.len() as u64) as usize]).collect()
    }

    #[test]
    fn hostile_input_never_panics() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let s = hostile_input(&mut rng);
            let _ = parse_select(&s);
            let _ = parse_filter_value(&s);
            let _ = parse_query(&s);
            let _ = parse_query(&format!("select={s}&{s}=eq.{s}&or=({s})&order={s}"));
            let _ = parse_prefer([s.as_str()]);
            let _ = parse_range_header(&s);
        }
    }

    #[test]
    fn wide_inputs_parse_in_linear_time() {
        // Thousands of items must not take quadratic time or blow the stack.
        let many = (0..5000).map(|i| format!("c{i}")).collect::<Vec<_>>().join(",");
        assert_eq!(parse_select(&many).unwrap().len(), 5000);
        let list = format!("in.({})", (0..5000).map(|i| i.to_string()).collect::<Vec<_>>().join(","));
        assert!(matches!(parse_filter_value(&list).unwrap().1, Operation::In(v) if v.len() == 5000));
        let tree = format!("({})", (0..2000).map(|i| format!("a.eq.{i}")).collect::<Vec<_>>().join(","));
        assert!(parse_query(&format!("or={tree}")).is_ok());
    }
}
