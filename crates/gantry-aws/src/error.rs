//! The AWS JSON error shape: status, `__type` code and message, rendered with the `x-amzn-ErrorType` header.

use axum::http::StatusCode;

/// An error as the client sees it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AwsError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl AwsError {
    pub fn new(
        status: StatusCode,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> AwsError {
        AwsError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// A 400 with the given code: the usual client error.
    pub fn client(code: impl Into<String>, message: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn invalid_parameter(message: impl Into<String>) -> AwsError {
        AwsError::client("InvalidParameterException", message)
    }

    pub fn serialization(message: impl Into<String>) -> AwsError {
        AwsError::client("SerializationException", message)
    }

    pub fn unknown_operation(op: &str) -> AwsError {
        AwsError::client(
            "UnknownOperationException",
            format!("Operation {op} is not supported by Gantry"),
        )
    }

    /// A 500 with the given code: the server's fault, worth a retry.
    pub fn server(code: impl Into<String>, message: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::INTERNAL_SERVER_ERROR, code, message)
    }

    pub fn internal(message: impl Into<String>) -> AwsError {
        AwsError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            message,
        )
    }
}
