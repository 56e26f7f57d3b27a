use serde::{Deserialize, Serialize};

use super::{KeyValuePair, Tag};

pub mod status {
    pub const PROVISIONING: &str = "PROVISIONING";
    pub const PENDING: &str = "PENDING";
    pub const ACTIVATING: &str = "ACTIVATING";
    pub const RUNNING: &str = "RUNNING";
    pub const DEACTIVATING: &str = "DEACTIVATING";
    pub const STOPPING: &str = "STOPPING";
    pub const DEPROVISIONING: &str = "DEPROVISIONING";
    pub const STOPPED: &str = "STOPPED";

    /// The order of the lifecycle, so that a report never moves a task backwards.
    pub fn rank(status: &str) -> u8 {
        match status {
            PROVISIONING => 0,
            PENDING => 1,
            ACTIVATING => 2,
            RUNNING => 3,
            DEACTIVATING => 4,
            STOPPING => 5,
            DEPROVISIONING => 6,
            STOPPED => 7,
            _ => 0,
        }
    }
}

pub mod stop_code {
    pub const TASK_FAILED_TO_START: &str = "TaskFailedToStart";
    pub const ESSENTIAL_CONTAINER_EXITED: &str = "EssentialContainerExited";
    pub const USER_INITIATED: &str = "UserInitiated";
    pub const SERVICE_SCHEDULER_INITIATED: &str = "ServiceSchedulerInitiated";
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NetworkBinding {
    #[serde(rename = "bindIP")]
    pub bind_ip: Option<String>,
    pub container_port: Option<i64>,
    pub host_port: Option<i64>,
    pub protocol: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Container {
    pub container_arn: Option<String>,
    pub task_arn: Option<String>,
    pub name: Option<String>,
    pub image: Option<String>,
    pub image_digest: Option<String>,
    pub runtime_id: Option<String>,
    pub last_status: Option<String>,
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
    pub network_bindings: Vec<NetworkBinding>,
    pub network_interfaces: Vec<serde_json::Value>,
    pub health_status: Option<String>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub memory_reservation: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerOverride {
    pub name: Option<String>,
    pub command: Option<Vec<String>>,
    pub environment: Option<Vec<KeyValuePair>>,
    pub cpu: Option<i64>,
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    #[serde(flatten, skip_serializing)]
    pub unsupported: super::Unsupported,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskOverride {
    pub container_overrides: Vec<ContainerOverride>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub execution_role_arn: Option<String>,
    pub task_role_arn: Option<String>,
    #[serde(flatten, skip_serializing)]
    pub unsupported: super::Unsupported,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Task {
    pub task_arn: String,
    pub cluster_arn: String,
    pub task_definition_arn: String,
    pub container_instance_arn: Option<String>,
    pub availability_zone: Option<String>,
    pub containers: Vec<Container>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub created_at: Option<f64>,
    pub desired_status: String,
    pub last_status: String,
    pub enable_execute_command: bool,
    pub execution_stopped_at: Option<f64>,
    pub group: Option<String>,
    pub health_status: Option<String>,
    pub launch_type: Option<String>,
    pub overrides: TaskOverride,
    pub pull_started_at: Option<f64>,
    pub pull_stopped_at: Option<f64>,
    pub started_at: Option<f64>,
    pub started_by: Option<String>,
    pub stop_code: Option<String>,
    pub stopped_at: Option<f64>,
    pub stopped_reason: Option<String>,
    pub stopping_at: Option<f64>,
    pub connectivity: Option<String>,
    pub connectivity_at: Option<f64>,
    pub tags: Vec<Tag>,
    pub attributes: Vec<super::Attribute>,
    pub attachments: Vec<serde_json::Value>,
    pub version: i64,
}

impl Task {
    /// The 32-hex id at the end of the ARN.
    pub fn id(&self) -> &str {
        self.task_arn.rsplit('/').next().unwrap_or("")
    }

    pub fn is_stopped(&self) -> bool {
        self.last_status == status::STOPPED
    }

    pub fn container(&self, name: &str) -> Option<&Container> {
        self.containers
            .iter()
            .find(|c| c.name.as_deref() == Some(name))
    }
}
