use serde::{Deserialize, Serialize};

use super::{Attribute, Resource, Tag};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VersionInfo {
    pub agent_version: Option<String>,
    pub agent_hash: Option<String>,
    pub docker_version: Option<String>,
}

/// A container instance as stored. `remainingResources`, the task counts and `agentConnected` are derived when
/// described.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerInstance {
    pub container_instance_arn: String,
    pub ec2_instance_id: Option<String>,
    pub version: i64,
    pub version_info: VersionInfo,
    pub remaining_resources: Vec<Resource>,
    pub registered_resources: Vec<Resource>,
    pub status: String,
    pub status_reason: Option<String>,
    pub agent_connected: bool,
    pub running_tasks_count: i64,
    pub pending_tasks_count: i64,
    pub attributes: Vec<Attribute>,
    pub registered_at: Option<f64>,
    pub attachments: Vec<serde_json::Value>,
    pub tags: Vec<Tag>,
}

impl ContainerInstance {
    pub fn id(&self) -> &str {
        self.container_instance_arn.rsplit('/').next().unwrap_or("")
    }

    pub fn registered(&self, name: &str) -> Option<&Resource> {
        self.registered_resources.iter().find(|r| r.name == name)
    }
}
