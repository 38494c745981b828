//! Request bodies of writes: one JSON object or an array of objects.

use serde_json::{Map, Value};

/// A body that is not JSON or not objects: PostgREST's PGRST102, 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PayloadError {
    pub message: String,
    pub details: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    pub rows: Vec<Map<String, Value>>,
    /// The body was an array (the response then is one too).
    pub is_array: bool,
}

pub fn parse_payload(body: &[u8]) -> Result<Payload, PayloadError> {
    let err = |message: &str, details: String| PayloadError { message: message.into(), details };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(err("Empty or invalid json", "the request body is empty; send a JSON object or array".into()));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| err("Empty or invalid json", e.to_string()))?;
    match value {
        Value::Object(row) => Ok(Payload { rows: vec![row], is_array: false }),
        Value::Array(items) => {
            let mut rows = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    Value::Object(row) => rows.push(row),
                    other => {
                        return Err(err("All array items must be objects", format!("item {i} is {}", kind_of(&other))));
                    }
                }
            }
            Ok(Payload { rows, is_array: true })
        }
        other => Err(err("Expected a JSON object or array of objects", format!("got {}", kind_of(&other)))),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_and_arrays() {
        let p = parse_payload(br#"{"a": 1}"#).unwrap();
        assert!(!p.is_array);
        assert_eq!(p.rows.len(), 1);
        let p = parse_payload(br#"[{"a": 1}, {"a": 2}]"#).unwrap();
        assert!(p.is_array);
        assert_eq!(p.rows.len(), 2);
        assert!(parse_payload(b"[]").unwrap().rows.is_empty());
    }

    #[test]
    fn bad_bodies_say_why() {
        assert!(parse_payload(b"").unwrap_err().details.contains("empty"));
        assert!(parse_payload(b"{\"a\": ").is_err());
        assert!(parse_payload(b"[1, 2]").unwrap_err().details.contains("item 0 is a number"));
        assert!(parse_payload(b"\"x\"").is_err());
    }
}
