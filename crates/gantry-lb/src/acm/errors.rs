//! The ACM errors, and their wire codes in one place.

use gantry_aws::AwsError;

#[derive(Debug, thiserror::Error)]
pub enum AcmError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("String '{0}' is not a valid ARN")]
    InvalidArn(String),
    #[error("Could not find certificate {0}.")]
    NotFound(String),
    #[error("Certificate {0} is in use by {1}")]
    InUse(String, String),
    #[error("{0}")]
    InvalidTag(String),
    #[error("{0}")]
    TooManyTags(String),
    #[error("{0}")]
    InvalidArgs(String),
    #[error("{0}")]
    InvalidDomainValidationOptions(String),
    #[error("{0}")]
    Internal(String),
    #[error("the state store failed: {0}")]
    Store(#[from] gantry_store::StoreError),
}

impl From<AcmError> for AwsError {
    fn from(e: AcmError) -> AwsError {
        let code = match &e {
            AcmError::Validation(_) => "ValidationException",
            AcmError::InvalidParameter(_) => "InvalidParameterException",
            AcmError::InvalidArn(_) => "InvalidArnException",
            AcmError::NotFound(_) => "ResourceNotFoundException",
            AcmError::InUse(..) => "ResourceInUseException",
            AcmError::InvalidTag(_) => "InvalidTagException",
            AcmError::TooManyTags(_) => "TooManyTagsException",
            AcmError::InvalidArgs(_) => "InvalidArgsException",
            AcmError::InvalidDomainValidationOptions(_) => {
                "InvalidDomainValidationOptionsException"
            }
            AcmError::Internal(_) | AcmError::Store(_) => {
                return AwsError::server("InternalFailure", e.to_string())
            }
        };
        AwsError::client(code, e.to_string())
    }
}
