//! Request headers that belong to the grammar: `Prefer` and `Range`.

use super::GrammarError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountPreference {
    Exact,
    Planned,
    Estimated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnPreference {
    Minimal,
    HeadersOnly,
    Representation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    MergeDuplicates,
    IgnoreDuplicates,
}

/// Parsed `Prefer` headers. Unknown preferences are ignored unless
/// `handling=strict` is given, as RFC 7240 and PostgREST do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preferences {
    pub count: Option<CountPreference>,
    pub return_: Option<ReturnPreference>,
    pub resolution: Option<Resolution>,
    pub missing_default: Option<bool>,
    pub strict: Option<bool>,
    pub tx_rollback: Option<bool>,
    pub max_affected: Option<u64>,
    /// `params=single-object`: a function's only json parameter takes the
    /// whole body.
    pub single_object_params: Option<bool>,
    /// `timezone=America/Los_Angeles`: the zone timestamps with a zone are
    /// written in. Checked by the database, not here.
    pub timezone: Option<String>,
}

impl Preferences {
    /// The `Preference-Applied` value for the preferences this request
    /// honoured, in PostgREST's order (resolution, missing, return, params,
    /// count, tx, handling, timezone, then max-affected, which is echoed
    /// only under `handling=strict`, where it is enforced); `None` when
    /// empty.
    pub fn applied(&self) -> Option<String> {
        let mut out: Vec<String> = Vec::new();
        let mut push = |token: &str| out.push(token.to_string());
        if let Some(r) = self.resolution {
            push(match r {
                Resolution::MergeDuplicates => "resolution=merge-duplicates",
                Resolution::IgnoreDuplicates => "resolution=ignore-duplicates",
            });
        }
        if let Some(default) = self.missing_default {
            push(if default { "missing=default" } else { "missing=null" });
        }
        if let Some(r) = self.return_ {
            push(match r {
                ReturnPreference::Minimal => "return=minimal",
                ReturnPreference::HeadersOnly => "return=headers-only",
                ReturnPreference::Representation => "return=representation",
            });
        }
        if let Some(true) = self.single_object_params {
            push("params=single-object");
        }
        if let Some(c) = self.count {
            push(match c {
                CountPreference::Exact => "count=exact",
                CountPreference::Planned => "count=planned",
                CountPreference::Estimated => "count=estimated",
            });
        }
        if let Some(rb) = self.tx_rollback {
            push(if rb { "tx=rollback" } else { "tx=commit" });
        }
        if let Some(s) = self.strict {
            push(if s { "handling=strict" } else { "handling=lenient" });
        }
        if let Some(z) = &self.timezone {
            push(&format!("timezone={z}"));
        }
        if let (Some(m), Some(true)) = (self.max_affected, self.strict) {
            push(&format!("max-affected={m}"));
        }
        (!out.is_empty()).then(|| out.join(", "))
    }
}

/// Parses every `Prefer` header value of a request (comma-separated
/// tokens; several headers allowed).
pub fn parse_prefer<'a>(headers: impl IntoIterator<Item = &'a str>) -> Result<Preferences, GrammarError> {
    let mut p = Preferences::default();
    let mut unknown = Vec::new();
    for header in headers {
        for token in header.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            // As in PostgREST, the first of a kind wins.
            fn first<T>(slot: &mut Option<T>, value: T) {
                slot.get_or_insert(value);
            }
            match token {
                "count=exact" => first(&mut p.count, CountPreference::Exact),
                "count=planned" => first(&mut p.count, CountPreference::Planned),
                "count=estimated" => first(&mut p.count, CountPreference::Estimated),
                "return=minimal" => first(&mut p.return_, ReturnPreference::Minimal),
                "return=headers-only" => first(&mut p.return_, ReturnPreference::HeadersOnly),
                "return=representation" => first(&mut p.return_, ReturnPreference::Representation),
                "resolution=merge-duplicates" => first(&mut p.resolution, Resolution::MergeDuplicates),
                "resolution=ignore-duplicates" => first(&mut p.resolution, Resolution::IgnoreDuplicates),
                "missing=default" => first(&mut p.missing_default, true),
                "missing=null" => first(&mut p.missing_default, false),
                "handling=strict" => first(&mut p.strict, true),
                "handling=lenient" => first(&mut p.strict, false),
                "tx=rollback" => first(&mut p.tx_rollback, true),
                "tx=commit" => first(&mut p.tx_rollback, false),
                "params=single-object" => first(&mut p.single_object_params, true),
                t if t.starts_with("timezone=") && t.len() > "timezone=".len() => {
                    first(&mut p.timezone, t["timezone=".len()..].to_string())
                }
                t if t.starts_with("max-affected=") => match t["max-affected=".len()..].parse() {
                    Ok(n) => first(&mut p.max_affected, n),
                    Err(_) => unknown.push(t.to_string()),
                },
                t => unknown.push(t.to_string()),
            }
        }
    }
    if p.strict == Some(true) && !unknown.is_empty() {
        return Err(GrammarError::new(
            "Invalid preferences given with handling=strict",
            format!("Invalid preferences: {}", unknown.join(", ")),
        )
        .coded("PGRST122"));
    }
    Ok(p)
}

/// `Range: 0-24` (optionally `items=0-24`): first row and, if given, last
/// row, both inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeHeader {
    pub first: u64,
    pub last: Option<u64>,
}

/// `None` for a header that is not an item range (ignored, as PostgREST
/// does); an error for a range whose end is before its start.
pub fn parse_range_header(value: &str) -> Result<Option<RangeHeader>, GrammarError> {
    let v = value.trim();
    let v = v.strip_prefix("items=").unwrap_or(v);
    let Some((a, b)) = v.split_once('-') else { return Ok(None) };
    let Ok(first) = a.trim().parse::<u64>() else { return Ok(None) };
    let last = match b.trim() {
        "" => None,
        b => match b.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => return Ok(None),
        },
    };
    if let Some(l) = last
        && l < first
    {
        return Err(GrammarError::new(
            "Requested range not satisfiable",
            format!("the Range header {value:?} ends before it starts"),
        ));
    }
    Ok(Some(RangeHeader { first, last }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefer_tokens_and_applied_echo() {
        let p = parse_prefer(["count=exact, return=representation", "max-affected=5,foo=bar"]).unwrap();
        assert_eq!(p.count, Some(CountPreference::Exact));
        assert_eq!(p.return_, Some(ReturnPreference::Representation));
        assert_eq!(p.max_affected, Some(5));
        // PostgREST's order; max-affected only when strict (enforced).
        assert_eq!(p.applied().unwrap(), "return=representation, count=exact");
        let p =
            parse_prefer(["max-affected=5, tx=rollback, handling=strict, resolution=merge-duplicates, missing=null"]);
        assert_eq!(
            p.unwrap().applied().unwrap(),
            "resolution=merge-duplicates, missing=null, tx=rollback, handling=strict, max-affected=5"
        );
        assert_eq!(parse_prefer([""]).unwrap().applied(), None);
        // The first of a kind wins, across headers too.
        let p = parse_prefer(["tx=commit, tx=rollback", "return=minimal", "return=representation"]).unwrap();
        assert_eq!((p.tx_rollback, p.return_), (Some(false), Some(ReturnPreference::Minimal)));
    }

    #[test]
    fn a_time_zone_is_taken_as_written_and_echoed() {
        let p = parse_prefer(["timezone=America/Los_Angeles"]).unwrap();
        assert_eq!(p.timezone.as_deref(), Some("America/Los_Angeles"));
        assert_eq!(p.applied().as_deref(), Some("timezone=America/Los_Angeles"));
        assert_eq!(parse_prefer(["timezone="]).unwrap().timezone, None, "an empty zone is no preference");
        assert!(parse_prefer(["handling=strict, timezone="]).is_err());
    }

    #[test]
    fn strict_handling_refuses_unknown_preferences() {
        let e = parse_prefer(["handling=strict, count=sometimes"]).unwrap_err();
        assert!(e.details.contains("count=sometimes"));
        assert_eq!(e.code, "PGRST122", "PostgREST's code for it");
        assert!(parse_prefer(["handling=lenient, count=sometimes"]).is_ok());
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range_header("0-24").unwrap(), Some(RangeHeader { first: 0, last: Some(24) }));
        assert_eq!(parse_range_header("items=10-").unwrap(), Some(RangeHeader { first: 10, last: None }));
        assert_eq!(parse_range_header("bytes").unwrap(), None);
        assert_eq!(parse_range_header("a-b").unwrap(), None);
        assert!(parse_range_header("5-1").is_err());
    }
}
