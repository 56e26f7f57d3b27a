//! The ECR API's errors, and their one mapping to the AWS JSON error shape.

use gantry_aws::AwsError;

use crate::RegistryError;

#[derive(Debug, thiserror::Error)]
pub enum EcrError {
    #[error(
        "The repository with name '{name}' does not exist in the registry with id '{registry}'"
    )]
    RepositoryNotFound { name: String, registry: String },
    #[error(
        "The repository with name '{name}' already exists in the registry with id '{registry}'"
    )]
    RepositoryAlreadyExists { name: String, registry: String },
    #[error("The repository with name '{name}' in registry with id '{registry}' cannot be deleted because it still contains images")]
    RepositoryNotEmpty { name: String, registry: String },
    #[error("The image with imageId {image} does not exist within the repository with name '{name}' in the registry with id '{registry}'")]
    ImageNotFound {
        image: String,
        name: String,
        registry: String,
    },
    #[error("Image with digest '{digest}' and tag '{tag}' already exists in the repository with name '{name}' in registry with id '{registry}'")]
    ImageAlreadyExists {
        digest: String,
        tag: String,
        name: String,
        registry: String,
    },
    #[error("The image tag '{tag}' already exists in the '{name}' repository and cannot be overwritten because the repository is immutable.")]
    ImageTagAlreadyExists { tag: String, name: String },
    #[error("The digest '{given}' does not match the digest of the manifest, '{actual}'")]
    ImageDigestDoesNotMatch { given: String, actual: String },
    #[error("The image manifest references layers that are not in the repository: {0}")]
    LayersNotFound(String),
    #[error("The image manifest references images that are not in the repository: {0}")]
    ReferencedImagesNotFound(String),
    #[error("Lifecycle policy does not exist for the repository with name '{name}' in the registry with id '{registry}'")]
    LifecyclePolicyNotFound { name: String, registry: String },
    #[error("There is no lifecycle policy preview for the repository with name '{name}' in the registry with id '{registry}'")]
    LifecyclePolicyPreviewNotFound { name: String, registry: String },
    #[error("Repository policy does not exist for the repository with name '{name}' in the registry with id '{registry}'")]
    RepositoryPolicyNotFound { name: String, registry: String },
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    InvalidTagParameter(String),
    #[error("{0}")]
    TooManyTags(String),
    #[error("Operation {0} is not supported by Gantry")]
    UnknownOperation(String),
    #[error(transparent)]
    Request(AwsError),
    #[error("registry: {0}")]
    Registry(#[from] RegistryError),
}

impl From<EcrError> for AwsError {
    fn from(e: EcrError) -> AwsError {
        let message = e.to_string();
        let code = match e {
            EcrError::RepositoryNotFound { .. } => "RepositoryNotFoundException",
            EcrError::RepositoryAlreadyExists { .. } => "RepositoryAlreadyExistsException",
            EcrError::RepositoryNotEmpty { .. } => "RepositoryNotEmptyException",
            EcrError::ImageNotFound { .. } => "ImageNotFoundException",
            EcrError::ImageAlreadyExists { .. } => "ImageAlreadyExistsException",
            EcrError::ImageTagAlreadyExists { .. } => "ImageTagAlreadyExistsException",
            EcrError::ImageDigestDoesNotMatch { .. } => "ImageDigestDoesNotMatchException",
            EcrError::LayersNotFound(_) => "LayersNotFoundException",
            EcrError::ReferencedImagesNotFound(_) => "ReferencedImagesNotFoundException",
            EcrError::LifecyclePolicyNotFound { .. } => "LifecyclePolicyNotFoundException",
            EcrError::LifecyclePolicyPreviewNotFound { .. } => {
                "LifecyclePolicyPreviewNotFoundException"
            }
            EcrError::RepositoryPolicyNotFound { .. } => "RepositoryPolicyNotFoundException",
            EcrError::InvalidParameter(_) => "InvalidParameterException",
            EcrError::InvalidTagParameter(_) => "InvalidTagParameterException",
            EcrError::TooManyTags(_) => "TooManyTagsException",
            EcrError::UnknownOperation(op) => return AwsError::unknown_operation(&op),
            EcrError::Request(e) => return e,
            EcrError::Registry(RegistryError::ManifestInvalid(m)) => {
                return AwsError::invalid_parameter(format!(
                    "Invalid parameter: the image manifest is invalid: {m}"
                ))
            }
            EcrError::Registry(RegistryError::ManifestTooLarge { limit }) => {
                return AwsError::invalid_parameter(format!(
                    "Invalid parameter: the image manifest is larger than {limit} bytes"
                ))
            }
            EcrError::Registry(RegistryError::Conflict) => {
                return AwsError::server("ServerException", "Concurrent change; try again")
            }
            EcrError::Registry(_) => {
                tracing::error!(error = %message, "ECR storage failure");
                return AwsError::server("ServerException", "The service failed; try again");
            }
        };
        AwsError::client(code, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_to_model_codes() {
        let e = AwsError::from(EcrError::RepositoryNotFound {
            name: "web".into(),
            registry: "000000000000".into(),
        });
        assert_eq!(e.code, "RepositoryNotFoundException");
        assert_eq!(e.status.as_u16(), 400);
        assert!(e.message.contains("'web'"));
        let e = AwsError::from(EcrError::Registry(RegistryError::Io(
            std::io::Error::other("disk"),
        )));
        assert_eq!(
            (e.code.as_str(), e.status.as_u16()),
            ("ServerException", 500)
        );
        assert_eq!(
            AwsError::from(EcrError::InvalidParameter("x".into())).code,
            "InvalidParameterException"
        );
        let e = AwsError::from(EcrError::LifecyclePolicyNotFound {
            name: "web".into(),
            registry: "000000000000".into(),
        });
        assert_eq!(
            (e.code.as_str(), e.status.as_u16()),
            ("LifecyclePolicyNotFoundException", 400)
        );
    }
}
