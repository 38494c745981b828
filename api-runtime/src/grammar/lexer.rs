//! Small shared pieces of the grammar: top-level splitting and unquoting.

use super::{GrammarError, MAX_DEPTH};

/// Splits `s` on `sep` where it stands outside double quotes, parentheses
/// and braces. Fails on unbalanced brackets, an unterminated quote or
/// nesting deeper than [`MAX_DEPTH`].
pub(super) fn split_top_level<'a>(s: &'a str, sep: char, what: &str) -> Result<Vec<&'a str>, GrammarError> {
    let mut parts = Vec::new();
    let mut stack: Vec<char> = Vec::new();
    let mut start = 0;
    let mut chars = unquoted_chars(s);
    for (i, c) in chars.by_ref() {
        match c {
            '(' | '{' => {
                stack.push(c);
                if stack.len() > MAX_DEPTH {
                    return Err(GrammarError::new(
                        format!("failed to parse {what}"),
                        format!("nesting deeper than {MAX_DEPTH} levels"),
                    ));
                }
            }
            ')' | '}' => {
                let open = if c == ')' { '(' } else { '{' };
                if stack.pop() != Some(open) {
                    return Err(GrammarError::new(
                        format!("failed to parse {what} ({s})"),
                        format!("unexpected \"{c}\" at position {i}: brackets are unbalanced"),
                    ));
                }
            }
            c if c == sep && stack.is_empty() => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if chars.in_quotes {
        return Err(GrammarError::new(format!("failed to parse {what} ({s})"), "unterminated double quote"));
    }
    if let Some(open) = stack.last() {
        let close = if *open == '(' { ')' } else { '}' };
        return Err(GrammarError::new(
            format!("failed to parse {what} ({s})"),
            format!("missing \"{close}\": brackets are unbalanced"),
        ));
    }
    parts.push(&s[start..]);
    Ok(parts)
}

/// The characters of `s` that stand outside double-quoted sections (with
/// backslash escapes inside them), with their byte positions.
pub(super) fn unquoted_chars(s: &str) -> Unquoted<'_> {
    Unquoted { chars: s.char_indices(), in_quotes: false, escaped: false }
}

/// The iterator of [`unquoted_chars`]; `in_quotes` tells, once it is
/// done, whether a quote was left open.
pub(super) struct Unquoted<'a> {
    chars: std::str::CharIndices<'a>,
    pub in_quotes: bool,
    escaped: bool,
}

impl Iterator for Unquoted<'_> {
    type Item = (usize, char);

    fn next(&mut self) -> Option<(usize, char)> {
        for (i, c) in self.chars.by_ref() {
            if self.in_quotes {
                if self.escaped {
                    self.escaped = false;
                } else if c == '\\' {
                    self.escaped = true;
                } else if c == '"' {
                    self.in_quotes = false;
                }
            } else if c == '"' {
                self.in_quotes = true;
            } else {
                return Some((i, c));
            }
        }
        None
    }
}

/// The byte position of the quote closing the quoted section that `s`
/// starts with.
pub(super) fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return Some(i);
        }
    }
    None
}

/// `"a \"b\""` to `a "b"`; anything not wrapped in quotes is returned as is.
pub(super) fn unquote(s: &str) -> String {
    let Some(inner) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return s.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A comma-separated list inside `open`..`close` (`(a,b)`, `{a,b}`), with
/// each item unquoted. An empty list is allowed.
pub(super) fn bracketed_list(value: &str, open: char, close: char, what: &str) -> Result<Vec<String>, GrammarError> {
    let inner = value.strip_prefix(open).and_then(|v| v.strip_suffix(close)).ok_or_else(|| {
        GrammarError::new(
            format!("failed to parse {what} ({value})"),
            format!("expected a list in \"{open}\" and \"{close}\", like {open}1,2,\"a,b\"{close}"),
        )
    })?;
    // `in.()` and, as PostgREST reads it, `in.( )`: no values.
    if inner.trim().is_empty() {
        return Ok(vec![]);
    }
    Ok(split_top_level(inner, ',', what)?.into_iter().map(unquote).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_outside_quotes_and_brackets() {
        assert_eq!(
            split_top_level("a,b(c,d),\"e,f\",{g,h}", ',', "x").unwrap(),
            vec!["a", "b(c,d)", "\"e,f\"", "{g,h}"]
        );
        assert_eq!(split_top_level("", ',', "x").unwrap(), vec![""]);
    }

    #[test]
    fn an_empty_or_blank_list_has_no_values() {
        for empty in ["()", "( )", "(\t  )"] {
            assert_eq!(bracketed_list(empty, '(', ')', "filter").unwrap(), Vec::<String>::new(), "{empty:?}");
        }
        assert_eq!(bracketed_list("(\" \")", '(', ')', "filter").unwrap(), vec![" "]);
    }

    #[test]
    fn unbalanced_input_is_an_error() {
        assert!(split_top_level("a(b", ',', "x").is_err());
        assert!(split_top_level("a)b", ',', "x").is_err());
        assert!(split_top_level("a(b}", ',', "x").is_err());
        assert!(split_top_level("\"abc", ',', "x").is_err());
        let deep = "(".repeat(100) + &")".repeat(100);
        let err = split_top_level(&deep, ',', "x").unwrap_err();
        assert!(err.details.contains("nesting"));
    }

    #[test]
    fn unquotes_escapes() {
        assert_eq!(unquote(r#""a \"b\" \\ c""#), r#"a "b" \ c"#);
        assert_eq!(unquote("plain"), "plain");
        assert_eq!(bracketed_list("(1,\"a,b\",)", '(', ')', "x").unwrap(), vec!["1", "a,b", ""]);
        assert_eq!(bracketed_list("()", '(', ')', "x").unwrap(), Vec::<String>::new());
        assert!(bracketed_list("1,2", '(', ')', "x").is_err());
    }
}
