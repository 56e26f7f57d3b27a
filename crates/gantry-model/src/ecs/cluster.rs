use serde::{Deserialize, Serialize};

use super::Tag;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterSetting {
    pub name: Option<String>,
    pub value: Option<String>,
}

/// One capacity provider of a strategy: `base` tasks at least on it, then `weight` shares of the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CapacityProviderStrategyItem {
    pub capacity_provider: String,
    pub weight: Option<i64>,
    pub base: Option<i64>,
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
    pub default_capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    pub configuration: Option<serde_json::Value>,
    pub statistics: Vec<super::KeyValuePair>,
}
