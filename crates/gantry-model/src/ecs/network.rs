use serde::{Deserialize, Serialize};

/// `networkConfiguration` of RunTask, CreateService and a service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NetworkConfiguration {
    pub awsvpc_configuration: Option<AwsVpcConfiguration>,
    #[serde(flatten, skip_serializing)]
    pub unsupported: super::Unsupported,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AwsVpcConfiguration {
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    /// `ENABLED` or `DISABLED`.
    pub assign_public_ip: Option<String>,
    #[serde(flatten, skip_serializing)]
    pub unsupported: super::Unsupported,
}

/// The network interface of an awsvpc task, as the server made it at placement: what the task's attachment shows
/// and what the agent needs to give the task its address.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskNetwork {
    /// The id of the task's `ElasticNetworkInterface` attachment.
    pub attachment_id: String,
    pub network_interface_id: String,
    pub subnet_id: String,
    pub vpc_id: String,
    /// The subnet's CIDR block: the agent makes the subnet's network on the host with it.
    pub subnet_cidr: String,
    pub private_ipv4_address: String,
    pub mac_address: String,
    pub private_dns_name: String,
    pub security_groups: Vec<String>,
}
