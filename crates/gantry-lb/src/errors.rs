//! The ELBv2 errors, and their wire codes in one place.

use gantry_aws::AwsError;

#[derive(Debug, thiserror::Error)]
pub enum LbError {
    /// The model's `ValidationError`: a parameter out of its constraints.
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    InvalidConfiguration(String),
    #[error("{0}")]
    OperationNotPermitted(String),
    #[error("One or more load balancers not found")]
    LoadBalancerNotFound,
    #[error("A load balancer with the same name '{0}' exists, but with different settings")]
    DuplicateLoadBalancerName(String),
    #[error("One or more target groups not found")]
    TargetGroupNotFound,
    #[error("A target group with the same name '{0}' exists, but with different settings")]
    DuplicateTargetGroupName(String),
    #[error("One or more listeners not found")]
    ListenerNotFound,
    #[error("A listener already exists on this port for this load balancer '{0}'")]
    DuplicateListener(String),
    #[error("One or more rules not found")]
    RuleNotFound,
    #[error("Priority '{0}' is currently in use")]
    PriorityInUse(u32),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("{0}")]
    InvalidTarget(String),
    #[error("{0}")]
    IncompatibleProtocols(String),
    #[error("{0}")]
    UnsupportedProtocol(String),
    #[error("{0}")]
    InvalidLoadBalancerAction(String),
    #[error("{0}")]
    TooManyTags(String),
    #[error("{0}")]
    DuplicateTagKeys(String),
    #[error("{0}")]
    TooMany(&'static str, String),
    #[error("Certificate '{0}' not found")]
    CertificateNotFound(String),
    #[error("SSL policy '{0}' not found")]
    SslPolicyNotFound(String),
    #[error("ALPN policy '{0}' not found")]
    AlpnPolicyNotFound(String),
    /// The port of a listener could not be opened on this machine.
    #[error("{0}")]
    PortUnavailable(String),
    #[error("the state store failed: {0}")]
    Store(#[from] gantry_store::StoreError),
}

pub type Result<T> = std::result::Result<T, LbError>;

impl From<LbError> for AwsError {
    fn from(e: LbError) -> AwsError {
        let code = match &e {
            LbError::Validation(_) => "ValidationError",
            LbError::InvalidConfiguration(_) | LbError::PortUnavailable(_) => {
                "InvalidConfigurationRequest"
            }
            LbError::OperationNotPermitted(_) => "OperationNotPermitted",
            LbError::LoadBalancerNotFound => "LoadBalancerNotFound",
            LbError::DuplicateLoadBalancerName(_) => "DuplicateLoadBalancerName",
            LbError::TargetGroupNotFound => "TargetGroupNotFound",
            LbError::DuplicateTargetGroupName(_) => "DuplicateTargetGroupName",
            LbError::ListenerNotFound => "ListenerNotFound",
            LbError::DuplicateListener(_) => "DuplicateListener",
            LbError::RuleNotFound => "RuleNotFound",
            LbError::PriorityInUse(_) => "PriorityInUse",
            LbError::ResourceInUse(_) => "ResourceInUse",
            LbError::InvalidTarget(_) => "InvalidTarget",
            LbError::IncompatibleProtocols(_) => "IncompatibleProtocols",
            LbError::UnsupportedProtocol(_) => "UnsupportedProtocol",
            LbError::InvalidLoadBalancerAction(_) => "InvalidLoadBalancerAction",
            LbError::TooManyTags(_) => "TooManyTags",
            LbError::DuplicateTagKeys(_) => "DuplicateTagKeys",
            LbError::TooMany(code, _) => code,
            LbError::CertificateNotFound(_) => "CertificateNotFound",
            LbError::SslPolicyNotFound(_) => "SSLPolicyNotFound",
            LbError::AlpnPolicyNotFound(_) => "ALPNPolicyNotFound",
            LbError::Store(_) => return AwsError::server("InternalFailure", e.to_string()),
        };
        AwsError::client(code, e.to_string())
    }
}

/// A `ValidationError` in AWS's words for one member.
pub fn invalid(member: &str, value: impl std::fmt::Display, constraint: &str) -> LbError {
    LbError::Validation(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
    ))
}
