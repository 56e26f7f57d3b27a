//! The EC2 errors of the VPC subset, and their wire codes in one place.

use gantry_aws::AwsError;

#[derive(Debug, thiserror::Error)]
pub enum VpcError {
    #[error("The parameter {0} is required.")]
    MissingParameter(&'static str),
    #[error("{0}")]
    InvalidParameterValue(String),
    #[error("{0}")]
    InvalidParameterCombination(String),
    #[error("The vpc ID '{0}' does not exist")]
    VpcNotFound(String),
    #[error("The subnet ID '{0}' does not exist")]
    SubnetNotFound(String),
    #[error("The security group '{0}' does not exist")]
    GroupNotFound(String),
    #[error("The security group '{0}' does not exist in VPC '{1}'")]
    GroupNameNotFound(String, String),
    #[error("The security group '{0}' already exists for VPC '{1}'")]
    GroupDuplicate(String, String),
    #[error("The security group name '{0}' is reserved")]
    GroupReserved(String),
    #[error("The CIDR '{0}' is invalid.")]
    VpcRange(String),
    #[error("The CIDR '{0}' is invalid.")]
    SubnetRange(String),
    #[error("The CIDR '{0}' conflicts with another subnet")]
    SubnetConflict(String),
    #[error("the specified rule \"{0}\" already exists")]
    PermissionDuplicate(String),
    #[error("The specified rule does not exist in this security group.")]
    PermissionNotFound,
    #[error("The {0} '{1}' has dependencies and cannot be deleted.")]
    DependencyViolation(&'static str, String),
    #[error("the specified group: \"{0}\" name: \"default\" cannot be deleted by a user")]
    CannotDeleteDefaultGroup(String),
    #[error("Value ({0}) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: {1}.")]
    InvalidAvailabilityZone(String, String),
    #[error("The ID '{0}' is not valid")]
    InvalidId(String),
    /// ECS's placement reason when a task's subnet has no address left.
    #[error("There are not enough free addresses in subnet '{0}' to satisfy the requested number of instances.")]
    InsufficientFreeAddresses(String),
    #[error("The maximum number of Tags for a resource has been reached.")]
    TagLimitExceeded,
    #[error("Request would have succeeded, but DryRun flag is set.")]
    DryRun,
    #[error("the state store failed: {0}")]
    Store(#[from] gantry_store::StoreError),
}

pub type Result<T> = std::result::Result<T, VpcError>;

impl From<VpcError> for AwsError {
    fn from(e: VpcError) -> AwsError {
        let code = match &e {
            VpcError::MissingParameter(_) => "MissingParameter",
            VpcError::InvalidParameterValue(_) => "InvalidParameterValue",
            VpcError::InvalidParameterCombination(_) => "InvalidParameterCombination",
            VpcError::VpcNotFound(_) => "InvalidVpcID.NotFound",
            VpcError::SubnetNotFound(_) => "InvalidSubnetID.NotFound",
            VpcError::GroupNotFound(_) | VpcError::GroupNameNotFound(..) => "InvalidGroup.NotFound",
            VpcError::GroupDuplicate(..) => "InvalidGroup.Duplicate",
            VpcError::GroupReserved(_) => "InvalidGroup.Reserved",
            VpcError::VpcRange(_) => "InvalidVpc.Range",
            VpcError::SubnetRange(_) => "InvalidSubnet.Range",
            VpcError::SubnetConflict(_) => "InvalidSubnet.Conflict",
            VpcError::PermissionDuplicate(_) => "InvalidPermission.Duplicate",
            VpcError::PermissionNotFound => "InvalidPermission.NotFound",
            VpcError::DependencyViolation(..) => "DependencyViolation",
            VpcError::CannotDeleteDefaultGroup(_) => "CannotDelete",
            VpcError::InvalidAvailabilityZone(..) => "InvalidParameterValue",
            VpcError::InvalidId(_) => "InvalidID",
            VpcError::TagLimitExceeded => "TagLimitExceeded",
            VpcError::InsufficientFreeAddresses(_) => "InsufficientFreeAddressesInSubnet",
            // EC2 answers a dry run that would have succeeded with a 412.
            VpcError::DryRun => {
                return AwsError::with_status(412, "DryRunOperation", e.to_string())
            }
            VpcError::Store(_) => return AwsError::server("InternalError", e.to_string()),
        };
        AwsError::client(code, e.to_string())
    }
}
