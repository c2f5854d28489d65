//! Parsing request bodies into JSON resources, within limits.

use serde_json::Value;

/// Why a body is not an acceptable JSON resource.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    #[error("the body is not valid JSON: {0}")]
    Syntax(String),
    #[error("the JSON nests deeper than {0} levels")]
    TooDeep(usize),
    #[error("the body must be a JSON object")]
    NotAnObject,
    #[error("the resource has no resourceType")]
    MissingResourceType,
    #[error("unknown resource type {0:?}")]
    UnknownResourceType(String),
}

/// Parses `bytes` as a JSON object with a known `resourceType`, nesting at most `max_depth`.
pub fn parse_resource(bytes: &[u8], max_depth: usize) -> Result<Value, BodyError> {
    let value = parse_json(bytes, max_depth)?;
    check_resource(&value)?;
    Ok(value)
}

/// Parses `bytes` as JSON nesting at most `max_depth` levels.
pub fn parse_json(bytes: &[u8], max_depth: usize) -> Result<Value, BodyError> {
    // serde_json stops at 128 levels by itself; anything that parses is walked once more.
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        if e.to_string().contains("recursion limit") {
            BodyError::TooDeep(max_depth)
        } else {
            BodyError::Syntax(e.to_string())
        }
    })?;
    if depth(&value) > max_depth {
        return Err(BodyError::TooDeep(max_depth));
    }
    Ok(value)
}

/// Checks that `value` is an object with a known `resourceType`.
pub fn check_resource(value: &Value) -> Result<(), BodyError> {
    let obj = value.as_object().ok_or(BodyError::NotAnObject)?;
    match obj.get("resourceType") {
        Some(Value::String(t)) if crate::is_resource_type(t) => Ok(()),
        Some(Value::String(t)) => Err(BodyError::UnknownResourceType(t.clone())),
        Some(other) => Err(BodyError::UnknownResourceType(other.to_string())),
        None => Err(BodyError::MissingResourceType),
    }
}

/// The nesting depth of a JSON value: scalars are 0, `{}` and `[]` are 1.
pub fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_resources_and_rejects_the_rest() {
        assert!(parse_resource(br#"{"resourceType":"Patient"}"#, 8).is_ok());
        assert!(matches!(parse_resource(b"{", 8), Err(BodyError::Syntax(_))));
        assert_eq!(parse_resource(b"[]", 8), Err(BodyError::NotAnObject));
        assert_eq!(
            parse_resource(b"{}", 8),
            Err(BodyError::MissingResourceType)
        );
        assert_eq!(
            parse_resource(br#"{"resourceType":"Nope"}"#, 8),
            Err(BodyError::UnknownResourceType("Nope".into()))
        );
        let deep = format!("{}{}", "[".repeat(10), "]".repeat(10));
        assert_eq!(parse_json(deep.as_bytes(), 9), Err(BodyError::TooDeep(9)));
        assert!(parse_json(deep.as_bytes(), 10).is_ok());
        let very_deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        assert_eq!(
            parse_json(very_deep.as_bytes(), 64),
            Err(BodyError::TooDeep(64))
        );
    }
}
