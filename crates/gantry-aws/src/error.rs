//! The AWS error: status, code and message, rendered by each protocol in its own shape (JSON `__type` with the
//! `x-amzn-ErrorType` header, Query `<ErrorResponse>`).

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

    /// An error with a status given by its number (for crates that do not depend on `http`); an invalid number is a
    /// 500.
    pub fn with_status(
        status: u16,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> AwsError {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        AwsError::new(status, code, message)
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

    /// Query protocol: an `Action` the service does not have, in the wording of AWS's Query services.
    pub fn invalid_action(action: &str, version: Option<&str>) -> AwsError {
        AwsError::client(
            "InvalidAction",
            format!(
                "Could not find operation {action} for version {}",
                version.unwrap_or("NO_VERSION_SPECIFIED")
            ),
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
