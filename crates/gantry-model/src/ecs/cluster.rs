use serde::{Deserialize, Serialize};

use super::Tag;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterSetting {
    pub name: Option<String>,
    pub value: Option<String>,
}

/// A cluster as stored. The counts are derived when described, never stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Cluster {
    pub cluster_arn: String,
    pub cluster_name: String,
    pub status: String,
    pub registered_container_instances_count: i64,
    pub running_tasks_count: i64,
    pub pending_tasks_count: i64,
    pub active_services_count: i64,
    pub settings: Vec<ClusterSetting>,
    pub tags: Vec<Tag>,
    pub capacity_providers: Vec<String>,
    pub default_capacity_provider_strategy: Vec<serde_json::Value>,
    pub configuration: Option<serde_json::Value>,
    pub statistics: Vec<super::KeyValuePair>,
}
