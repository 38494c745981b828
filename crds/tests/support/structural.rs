//! What the API server does to a custom resource with a structural OpenAPI v3
//! schema before its CEL rules run, for the subset of keywords a CRD uses:
//!
//! 1. [`apply_defaults`]: a `null` the schema does not allow is dropped (or
//!    replaced by the default); missing fields get their `default`, also
//!    inside defaults just applied.
//! 2. [`validate`]: `type` (and `x-kubernetes-int-or-string`), `nullable`,
//!    `required`, `enum`, `minimum`/`maximum`, `minLength`/`maxLength`,
//!    `minItems`/`maxItems`, `pattern`, `format: date-time`, `properties`,
//!    `additionalProperties` and `items`. An unknown field is an error, as
//!    with `kubectl apply`'s strict field validation.
//!
//! Messages follow the API server's wording. Regular expressions and
//! timestamps are checked by the CEL engine's `matches` and `timestamp`,
//! which use RE2 syntax and RFC 3339 like the API server.

use std::fmt;

use kube::core::cel::cel::{Context, Program, Value as Cel};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Type,
    Required,
    Unknown,
    Enum,
    Bounds,
    Pattern,
    Format,
}

#[derive(Debug, Clone)]
pub struct Error {
    pub path: String,
    pub kind: Kind,
    pub message: String,
}

impl Error {
    /// The API server skips CEL rules when the object has errors like these
    /// ("some validation rules were not checked because the object was
    /// invalid").
    pub fn blocks_cel(&self) -> bool {
        matches!(self.kind, Kind::Type | Kind::Enum)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Drops disallowed nulls and fills in defaults, in place.
pub fn apply_defaults(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(fields) => {
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (name, property) in properties {
                    let nullable = property.get("nullable") == Some(&Value::Bool(true));
                    match fields.get(name) {
                        Some(Value::Null) if nullable => {}
                        Some(Value::Null) | None => match property.get("default") {
                            Some(default) => {
                                fields.insert(name.clone(), default.clone());
                            }
                            None => {
                                fields.remove(name);
                            }
                        },
                        Some(_) => {}
                    }
                }
                for (name, field) in fields.iter_mut() {
                    if let Some(property) = properties.get(name) {
                        apply_defaults(property, field);
                    }
                }
            } else if let Some(values) = schema.get("additionalProperties").filter(|s| s.is_object()) {
                fields.values_mut().for_each(|field| apply_defaults(values, field));
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                items.iter_mut().for_each(|value| apply_defaults(item, value));
            }
        }
        _ => {}
    }
}

/// Every violation of the schema in `value` (defaults already applied).
pub fn validate(schema: &Value, value: &Value) -> Vec<Error> {
    let mut errors = Vec::new();
    check(schema, value, "", &mut errors);
    errors
}

fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<Error>) {
    let mut fail = |kind, message: String| errors.push(Error { path: path.to_string(), kind, message });
    let int_or_string = schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let nullable = schema.get("nullable") == Some(&Value::Bool(true));
    let type_ok = match (schema.get("type").and_then(Value::as_str), value) {
        (_, Value::Null) => nullable,
        _ if int_or_string => value.is_string() || is_integer(value),
        (None, _) => true,
        (Some("integer"), value) => is_integer(value),
        (Some("number"), Value::Number(_))
        | (Some("string"), Value::String(_))
        | (Some("boolean"), Value::Bool(_))
        | (Some("array"), Value::Array(_))
        | (Some("object"), Value::Object(_)) => true,
        _ => false,
    };
    if !type_ok {
        let expected = if int_or_string { "integer or string" } else { schema["type"].as_str().unwrap_or("?") };
        let got = json_type(value);
        return fail(
            Kind::Type,
            format!("Invalid value: \"{got}\": {path} in body must be of type {expected}: \"{got}\""),
        );
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let allowed: Vec<String> = allowed.iter().map(Value::to_string).collect();
        fail(Kind::Enum, format!("Unsupported value: {value}: supported values: {}", allowed.join(", ")));
    }
    let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
    match value {
        Value::Number(number) => {
            let n = number.as_f64().unwrap_or(f64::NAN);
            if let Some(min) = bound("minimum")
                && n < min
            {
                fail(
                    Kind::Bounds,
                    format!("Invalid value: {value}: {path} in body should be greater than or equal to {min}"),
                );
            }
            if let Some(max) = bound("maximum")
                && n > max
            {
                fail(
                    Kind::Bounds,
                    format!("Invalid value: {value}: {path} in body should be less than or equal to {max}"),
                );
            }
        }
        Value::String(s) => {
            let len = s.chars().count() as f64;
            if let Some(min) = bound("minLength")
                && len < min
            {
                fail(
                    Kind::Bounds,
                    format!("Invalid value: {value}: {path} in body should be at least {min} chars long"),
                );
            }
            if let Some(max) = bound("maxLength")
                && len > max
            {
                fail(Kind::Bounds, format!("Too long: may not be more than {max} bytes"));
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
                && !cel_check("value.matches(pattern)", s, pattern)
            {
                fail(Kind::Pattern, format!("Invalid value: {value}: {path} in body should match '{pattern}'"));
            }
            if schema.get("format").and_then(Value::as_str) == Some("date-time")
                && !cel_check("timestamp(value) == timestamp(value)", s, "")
            {
                fail(
                    Kind::Format,
                    format!("Invalid value: {value}: {path} in body must be of type date-time: {value}"),
                );
            }
        }
        Value::Array(items) => {
            let len = items.len() as f64;
            if let Some(min) = bound("minItems")
                && len < min
            {
                fail(Kind::Bounds, format!("Invalid value: {len}: {path} in body should have at least {min} items"));
            }
            if let Some(max) = bound("maxItems")
                && len > max
            {
                fail(Kind::Bounds, format!("Too many: {len}: must have at most {max} items"));
            }
            if let Some(item) = schema.get("items") {
                for (i, value) in items.iter().enumerate() {
                    check(item, value, &format!("{path}[{i}]"), errors);
                }
            }
        }
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let required = schema.get("required").and_then(Value::as_array).into_iter().flatten();
            for name in required.filter_map(Value::as_str) {
                if !fields.contains_key(name) {
                    let path = join(path, name);
                    errors.push(Error { path, kind: Kind::Required, message: "Required value".into() });
                }
            }
            let values = schema.get("additionalProperties").filter(|s| s.is_object());
            for (name, field) in fields {
                let path = join(path, name);
                match properties.and_then(|p| p.get(name)).or(values) {
                    Some(schema) => check(schema, field, &path, errors),
                    None => {
                        errors.push(Error { message: format!("unknown field \"{path}\""), path, kind: Kind::Unknown })
                    }
                }
            }
        }
        _ => {}
    }
}

fn is_integer(value: &Value) -> bool {
    value.as_i64().is_some() || value.as_u64().is_some()
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_string() } else { format!("{path}.{name}") }
}

/// Evaluates a boolean CEL expression over `value` and `pattern`; an
/// evaluation error (a bad timestamp) counts as false.
fn cel_check(expression: &str, value: &str, pattern: &str) -> bool {
    let program = Program::compile(expression).expect("the checker's own CEL compiles");
    let mut context = Context::default();
    context.add_variable_from_value("value", value.to_string());
    context.add_variable_from_value("pattern", pattern.to_string());
    matches!(program.execute(&context), Ok(Cel::Bool(true)))
}
