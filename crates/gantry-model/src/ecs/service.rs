use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{PlacementConstraint, Tag, Unsupported};

pub mod service_status {
    pub const ACTIVE: &str = "ACTIVE";
    pub const DRAINING: &str = "DRAINING";
    pub const INACTIVE: &str = "INACTIVE";
}

pub mod deployment_status {
    pub const PRIMARY: &str = "PRIMARY";
    pub const ACTIVE: &str = "ACTIVE";
    pub const INACTIVE: &str = "INACTIVE";
}

pub mod rollout_state {
    pub const IN_PROGRESS: &str = "IN_PROGRESS";
    pub const COMPLETED: &str = "COMPLETED";
    pub const FAILED: &str = "FAILED";
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PlacementStrategy {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub field: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeploymentCircuitBreaker {
    pub enable: bool,
    pub rollback: bool,
    #[serde(flatten, skip_serializing)]
    pub unsupported: Unsupported,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeploymentConfiguration {
    pub deployment_circuit_breaker: Option<DeploymentCircuitBreaker>,
    pub maximum_percent: Option<i64>,
    pub minimum_healthy_percent: Option<i64>,
    pub strategy: Option<String>,
    #[serde(flatten, skip_serializing)]
    pub unsupported: Unsupported,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeploymentController {
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// One of a service's deployments, as DescribeServices shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Deployment {
    pub id: String,
    pub status: String,
    pub task_definition: String,
    pub desired_count: i64,
    pub pending_count: i64,
    pub running_count: i64,
    pub failed_tasks: i64,
    pub created_at: Option<f64>,
    pub updated_at: Option<f64>,
    pub launch_type: Option<String>,
    pub rollout_state: Option<String>,
    pub rollout_state_reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceEvent {
    pub id: String,
    pub created_at: Option<f64>,
    pub message: String,
}

/// A target group a service's tasks are registered with (`loadBalancers` of CreateService).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LoadBalancer {
    pub target_group_arn: Option<String>,
    pub load_balancer_name: Option<String>,
    pub container_name: Option<String>,
    pub container_port: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Service {
    pub service_arn: String,
    pub service_name: String,
    pub cluster_arn: String,
    pub load_balancers: Vec<LoadBalancer>,
    pub service_registries: Vec<Value>,
    pub status: String,
    pub desired_count: i64,
    pub running_count: i64,
    pub pending_count: i64,
    pub launch_type: Option<String>,
    pub task_definition: Option<String>,
    pub deployment_configuration: Option<DeploymentConfiguration>,
    pub network_configuration: Option<super::NetworkConfiguration>,
    pub deployments: Vec<Deployment>,
    pub events: Vec<ServiceEvent>,
    pub created_at: Option<f64>,
    pub current_service_deployment: Option<String>,
    pub placement_constraints: Vec<PlacementConstraint>,
    pub placement_strategy: Vec<PlacementStrategy>,
    pub health_check_grace_period_seconds: Option<i64>,
    pub scheduling_strategy: Option<String>,
    pub deployment_controller: Option<DeploymentController>,
    pub tags: Vec<Tag>,
    pub created_by: Option<String>,
    /// ECS spells it with a capital ECS on the wire (the older records were stored as `enableEcsManagedTags`).
    #[serde(rename = "enableECSManagedTags", alias = "enableEcsManagedTags")]
    pub enable_ecs_managed_tags: bool,
    pub propagate_tags: Option<String>,
    pub enable_execute_command: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceRevisionSummary {
    pub arn: Option<String>,
    pub requested_task_count: i64,
    pub running_task_count: i64,
    pub pending_task_count: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Rollback {
    pub reason: Option<String>,
    pub started_at: Option<f64>,
    pub service_revision_arn: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceDeploymentCircuitBreaker {
    pub status: Option<String>,
    pub failure_count: i64,
    pub threshold: i64,
}

/// A deployment as DescribeServiceDeployments shows it (the newer API over the same deployments).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceDeployment {
    pub service_deployment_arn: String,
    pub service_arn: String,
    pub cluster_arn: String,
    pub created_at: Option<f64>,
    pub started_at: Option<f64>,
    pub finished_at: Option<f64>,
    pub stopped_at: Option<f64>,
    pub updated_at: Option<f64>,
    pub source_service_revisions: Vec<ServiceRevisionSummary>,
    pub target_service_revision: Option<ServiceRevisionSummary>,
    pub status: String,
    pub status_reason: Option<String>,
    pub deployment_configuration: Option<DeploymentConfiguration>,
    pub rollback: Option<Rollback>,
    pub deployment_circuit_breaker: Option<ServiceDeploymentCircuitBreaker>,
}

/// ListServiceDeployments' summary of a deployment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceDeploymentBrief {
    pub service_deployment_arn: String,
    pub service_arn: String,
    pub cluster_arn: String,
    pub started_at: Option<f64>,
    pub created_at: Option<f64>,
    pub finished_at: Option<f64>,
    pub target_service_revision_arn: Option<String>,
    pub status: String,
    pub status_reason: Option<String>,
}
