//! ECS errors and their one mapping to the wire.

use gantry_aws::AwsError;
use gantry_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EcsError {
    #[error("Cluster not found.")]
    ClusterNotFound,
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    Client(String),
    #[error("The Cluster cannot be deleted while Tasks are active.")]
    ClusterContainsTasks,
    #[error("The Cluster cannot be deleted while Container Instances are active or draining.")]
    ClusterContainsContainerInstances,
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("Service not found.")]
    ServiceNotFound,
    #[error("Service was not ACTIVE.")]
    ServiceNotActive,
    #[error("{0}")]
    TargetNotFound(String),
    #[error("You can apply up to 10 custom attributes for each resource.")]
    AttributeLimitExceeded,
    #[error("{0} is not supported by Gantry")]
    Unsupported(String),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("internal storage error: {0}")]
    Store(#[from] StoreError),
}

pub type Result<T> = std::result::Result<T, EcsError>;

impl From<EcsError> for AwsError {
    fn from(e: EcsError) -> AwsError {
        let message = e.to_string();
        match e {
            EcsError::ClusterNotFound => AwsError::client("ClusterNotFoundException", message),
            EcsError::InvalidParameter(_) => AwsError::invalid_parameter(message),
            EcsError::Client(_) => AwsError::client("ClientException", message),
            EcsError::ClusterContainsTasks => {
                AwsError::client("ClusterContainsTasksException", message)
            }
            EcsError::ClusterContainsContainerInstances => {
                AwsError::client("ClusterContainsContainerInstancesException", message)
            }
            EcsError::ResourceNotFound(_) => AwsError::client("ResourceNotFoundException", message),
            EcsError::ServiceNotFound => AwsError::client("ServiceNotFoundException", message),
            EcsError::ServiceNotActive => AwsError::client("ServiceNotActiveException", message),
            EcsError::TargetNotFound(_) => AwsError::client("TargetNotFoundException", message),
            EcsError::AttributeLimitExceeded => {
                AwsError::client("AttributeLimitExceededException", message)
            }
            EcsError::Unsupported(_) => AwsError::client("UnsupportedFeatureException", message),
            EcsError::Aws(a) => a,
            EcsError::Store(_) => AwsError::server("ServerException", message),
        }
    }
}

pub(crate) fn invalid(msg: impl Into<String>) -> EcsError {
    EcsError::InvalidParameter(msg.into())
}

/// Refuses members of the botocore shape that Gantry does not implement, naming the first one.
pub(crate) fn reject_unsupported(
    where_: &str,
    members: &gantry_model::ecs::Unsupported,
) -> Result<()> {
    match members.keys().next() {
        Some(k) if where_.is_empty() => Err(EcsError::Unsupported(k.clone())),
        Some(k) => Err(EcsError::Unsupported(format!("{where_}.{k}"))),
        None => Ok(()),
    }
}
