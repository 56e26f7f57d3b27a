//! Decoding JSON request bodies into typed inputs, with AWS-shaped errors.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::AwsError;

/// Parses a request body. An empty body counts as `{}`, as the SDKs send for operations without input.
pub fn parse_input<T: DeserializeOwned>(body: &[u8]) -> Result<T, AwsError> {
    let body = if body.iter().all(|b| b.is_ascii_whitespace()) {
        b"{}".as_slice()
    } else {
        body
    };
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| AwsError::serialization(format!("Malformed JSON: {e}")))?;
    if !value.is_object() {
        return Err(AwsError::serialization(
            "The request body must be a JSON object",
        ));
    }
    serde_json::from_value(value).map_err(|e| {
        let msg = e.to_string();
        if let Some(field) = msg.strip_prefix("missing field ") {
            AwsError::invalid_parameter(format!("Missing required parameter {field}"))
        } else {
            AwsError::serialization(format!("Invalid request: {msg}"))
        }
    })
}

/// A required member: absent or empty is an `InvalidParameterException`, as AWS answers.
pub fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, AwsError> {
    match value.as_deref() {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(AwsError::invalid_parameter(format!(
            "{name} is required and may not be empty"
        ))),
    }
}

/// Building responses from serializable values without nulls.
pub trait ResponseExt {
    fn to_response(&self) -> Value;
}

impl<T: serde::Serialize> ResponseExt for T {
    fn to_response(&self) -> Value {
        gantry_model::json::to_value(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct In {
        name: String,
        count: Option<i64>,
    }

    #[test]
    fn maps_errors() {
        assert_eq!(
            parse_input::<In>(b"{").unwrap_err().code,
            "SerializationException"
        );
        assert_eq!(
            parse_input::<In>(b"[1]").unwrap_err().code,
            "SerializationException"
        );
        assert_eq!(
            parse_input::<In>(b"{}").unwrap_err().code,
            "InvalidParameterException"
        );
        assert_eq!(
            parse_input::<In>(br#"{"name": 3}"#).unwrap_err().code,
            "SerializationException"
        );
        assert_eq!(
            parse_input::<In>(br#"{"name": "a", "count": "x"}"#)
                .unwrap_err()
                .code,
            "SerializationException"
        );
        assert!(parse_input::<In>(br#"{"name": "a"}"#).is_ok());
    }
}
