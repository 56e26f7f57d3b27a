//! Fixed-response actions: the response a rule returns itself, and the checks on it.

use serde::{Deserialize, Serialize};

use super::error::RuleError;

/// FixedResponseActionConfig `ContentType` valid values.
pub const FIXED_RESPONSE_CONTENT_TYPES: [&str; 5] = [
    "text/plain",
    "text/css",
    "text/html",
    "application/javascript",
    "application/json",
];
/// FixedResponseActionConfig `MessageBody`: "Maximum length of 1024."
pub const MAX_FIXED_RESPONSE_BODY_LENGTH: usize = 1024;

/// A fixed-response action's configuration, shaped like the wire's FixedResponseActionConfig.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FixedResponse {
    /// Three digits, `2XX`, `4XX` or `5XX`.
    pub status_code: String,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub message_body: Option<String>,
}

impl FixedResponse {
    /// [`validate_fixed_response`] as a method.
    pub fn validate(&self) -> Result<(), RuleError> {
        validate_fixed_response(self)
    }

    /// The status as a number, once validated.
    pub fn status(&self) -> Option<u16> {
        valid_status(&self.status_code)
            .then(|| self.status_code.parse().ok())
            .flatten()
    }
}

/// The model's pattern `^(2|4|5)\d\d$`.
fn valid_status(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 3
        && matches!(b[0], b'2' | b'4' | b'5')
        && b[1].is_ascii_digit()
        && b[2].is_ascii_digit()
}

pub fn validate_fixed_response(response: &FixedResponse) -> Result<(), RuleError> {
    if !valid_status(&response.status_code) {
        return Err(RuleError::InvalidFixedResponseStatusCode(
            response.status_code.clone(),
        ));
    }
    if let Some(content_type) = &response.content_type {
        if !FIXED_RESPONSE_CONTENT_TYPES.contains(&content_type.as_str()) {
            return Err(RuleError::InvalidFixedResponseContentType(
                content_type.clone(),
            ));
        }
    }
    // The API's length constraint counts characters; for the usual ASCII body that is its size in bytes.
    if let Some(body) = &response.message_body {
        if body.chars().count() > MAX_FIXED_RESPONSE_BODY_LENGTH {
            return Err(RuleError::FixedResponseBodyTooLong {
                max: MAX_FIXED_RESPONSE_BODY_LENGTH,
            });
        }
    }
    Ok(())
}
