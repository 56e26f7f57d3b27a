//! The crate's errors and their one mapping to the wire (`__type` codes of the botocore model).

use gantry_aws::AwsError;
use gantry_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error("The specified log group does not exist.")]
    GroupNotFound,
    #[error("The specified log stream does not exist.")]
    StreamNotFound,
    #[error("The specified log group already exists")]
    GroupExists,
    #[error("The specified log stream already exists")]
    StreamExists,
    /// A resource named by ARN that is not a log group of this account and region.
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    InvalidParameter(String),
    /// A request the model allows but the resource's state refuses (deletion protection).
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    TooManyTags(String),
    /// The resource kept changing under us; the client may retry.
    #[error(
        "Multiple concurrent requests to update the same resource were in conflict; try again"
    )]
    Conflict,
    #[error("Operation {0} is not supported by Gantry")]
    UnknownOperation(String),
    /// A request that could not be decoded (already in its wire form).
    #[error("{0}")]
    Request(AwsError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The event storage failed (disk, corruption, a crashed worker).
    #[error("log storage: {0}")]
    Storage(String),
}

impl LogsError {
    pub(crate) fn invalid(message: impl Into<String>) -> LogsError {
        LogsError::InvalidParameter(message.into())
    }

    pub(crate) fn storage(e: impl std::fmt::Display) -> LogsError {
        LogsError::Storage(e.to_string())
    }

    /// Whether the same call may succeed later unchanged (storage trouble, contention), as opposed to a request
    /// that is wrong or names something missing. For callers such as the agent protocol that must say so.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            LogsError::Store(_) | LogsError::Storage(_) | LogsError::Conflict
        )
    }
}

impl From<LogsError> for AwsError {
    fn from(e: LogsError) -> AwsError {
        let message = e.to_string();
        match e {
            LogsError::GroupNotFound
            | LogsError::StreamNotFound
            | LogsError::ResourceNotFound(_) => {
                AwsError::client("ResourceNotFoundException", message)
            }
            LogsError::GroupExists | LogsError::StreamExists => {
                AwsError::client("ResourceAlreadyExistsException", message)
            }
            LogsError::InvalidParameter(_) => AwsError::invalid_parameter(message),
            LogsError::Validation(_) => AwsError::client("ValidationException", message),
            LogsError::TooManyTags(_) => AwsError::client("TooManyTagsException", message),
            LogsError::Conflict => AwsError::client("OperationAbortedException", message),
            LogsError::UnknownOperation(op) => AwsError::unknown_operation(&op),
            LogsError::Request(e) => e,
            LogsError::Store(_) | LogsError::Storage(_) => {
                tracing::error!(error = %message, "logs storage failure");
                let mut e = AwsError::internal("The service is unavailable; try again");
                e.code = "ServiceUnavailableException".into();
                e
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_to_model_codes() {
        let e = AwsError::from(LogsError::GroupNotFound);
        assert_eq!(e.code, "ResourceNotFoundException");
        assert_eq!(e.message, "The specified log group does not exist.");
        assert_eq!(
            AwsError::from(LogsError::StreamExists).code,
            "ResourceAlreadyExistsException"
        );
        assert_eq!(
            AwsError::from(LogsError::invalid("x")).code,
            "InvalidParameterException"
        );
        let e = AwsError::from(LogsError::storage("disk"));
        assert_eq!(e.code, "ServiceUnavailableException");
        assert!(e.status.is_server_error());
        assert!(!e.message.contains("disk"));
        assert!(LogsError::storage("disk").is_retryable());
        assert!(!LogsError::GroupNotFound.is_retryable());
    }
}
