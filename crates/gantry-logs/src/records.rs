//! What the store keeps of a log group and a log stream, and their ARNs. Events and per-stream counters (first and
//! last event, stored bytes, the agent's cursor) live in the event storage, beside the events they describe.

use std::collections::BTreeMap;

use gantry_model::Scope;
use gantry_store::KeyValue;
use serde::{Deserialize, Serialize};

use crate::LogsError;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GroupRecord {
    pub name: String,
    /// Epoch milliseconds.
    pub creation_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_in_days: Option<i32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_group_class: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deletion_protection: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StreamRecord {
    pub name: String,
    pub creation_time: i64,
    /// The stream's id in the event storage: fresh for every creation, so a stream deleted and created again
    /// never sees the events of its predecessor.
    pub id: u64,
}

impl GroupRecord {
    /// The retention cutoff at `now_ms`: events older than this are expired.
    pub fn cutoff(&self, now_ms: i64) -> Option<i64> {
        self.retention_in_days
            .map(|d| now_ms.saturating_sub(i64::from(d) * 86_400_000))
    }
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(kv: &KeyValue) -> Result<T, LogsError> {
    serde_json::from_slice(&kv.value)
        .map_err(|e| LogsError::Storage(format!("corrupt record at {}: {e}", kv.key)))
}

pub(crate) fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    gantry_model::json::to_vec(record)
}

/// `arn:aws:logs:{region}:{account}:log-group:{name}` (the `logGroupArn`).
pub(crate) fn group_arn(scope: &Scope, group: &str) -> String {
    scope.arn("logs", &format!("log-group:{group}"))
}

/// `...:log-group:{name}:*` (the `arn` of DescribeLogGroups).
pub(crate) fn group_arn_wildcard(scope: &Scope, group: &str) -> String {
    format!("{}:*", group_arn(scope, group))
}

pub(crate) fn stream_arn(scope: &Scope, group: &str, stream: &str) -> String {
    format!("{}:log-stream:{stream}", group_arn(scope, group))
}

/// A fresh, non-zero stream id.
pub(crate) fn new_stream_id() -> u64 {
    let (a, b) = uuid::Uuid::new_v4().as_u64_pair();
    match a ^ b {
        0 => 1,
        id => id,
    }
}
