//! The ELBv2 resources in their wire shapes (botocore `elbv2` 2015-12-01, PascalCase), as they are stored and
//! answered, and the records that keep what Gantry needs beside them (attributes, tags, targets, the address a
//! load balancer listens on).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoadBalancerState {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoadBalancerAddress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AvailabilityZone {
    pub zone_name: String,
    pub subnet_id: String,
    /// The address the load balancer is reached at in the zone; filled when answering, from the record's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_addresses: Option<Vec<LoadBalancerAddress>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoadBalancer {
    pub load_balancer_arn: String,
    #[serde(rename = "DNSName")]
    pub dns_name: String,
    pub canonical_hosted_zone_id: String,
    /// ISO 8601, as the Query protocol writes timestamps.
    pub created_time: String,
    pub load_balancer_name: String,
    pub scheme: String,
    pub vpc_id: String,
    pub state: LoadBalancerState,
    #[serde(rename = "Type")]
    pub kind: String,
    pub availability_zones: Vec<AvailabilityZone>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<Vec<String>>,
    pub ip_address_type: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Matcher {
    #[serde(default)]
    pub http_code: Option<String>,
    #[serde(default)]
    pub grpc_code: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetGroup {
    pub target_group_arn: String,
    pub target_group_name: String,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub vpc_id: Option<String>,
    #[serde(default)]
    pub health_check_protocol: Option<String>,
    #[serde(default)]
    pub health_check_port: Option<String>,
    pub health_check_enabled: bool,
    pub health_check_interval_seconds: u32,
    pub health_check_timeout_seconds: u32,
    pub healthy_threshold_count: u32,
    pub unhealthy_threshold_count: u32,
    #[serde(default)]
    pub health_check_path: Option<String>,
    #[serde(default)]
    pub matcher: Option<Matcher>,
    pub load_balancer_arns: Vec<String>,
    pub target_type: String,
    #[serde(default)]
    pub protocol_version: Option<String>,
    pub ip_address_type: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetGroupTuple {
    #[serde(default)]
    pub target_group_arn: Option<String>,
    #[serde(default)]
    pub weight: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetGroupStickinessConfig {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub duration_seconds: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ForwardActionConfig {
    #[serde(default)]
    pub target_groups: Option<Vec<TargetGroupTuple>>,
    #[serde(default)]
    pub target_group_stickiness_config: Option<TargetGroupStickinessConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RedirectActionConfig {
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub port: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub query: Option<String>,
    pub status_code: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FixedResponseActionConfig {
    #[serde(default)]
    pub message_body: Option<String>,
    pub status_code: String,
    #[serde(default)]
    pub content_type: Option<String>,
}

/// One action of a listener or rule. The authenticate and JWT actions are refused on input, so they never get here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Action {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(default)]
    pub target_group_arn: Option<String>,
    #[serde(default)]
    pub order: Option<u32>,
    #[serde(default)]
    pub redirect_config: Option<RedirectActionConfig>,
    #[serde(default)]
    pub fixed_response_config: Option<FixedResponseActionConfig>,
    #[serde(default)]
    pub forward_config: Option<ForwardActionConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Certificate {
    #[serde(default)]
    pub certificate_arn: Option<String>,
    #[serde(default)]
    pub is_default: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Listener {
    pub listener_arn: String,
    pub load_balancer_arn: String,
    pub port: u16,
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificates: Option<Vec<Certificate>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_policy: Option<String>,
    pub default_actions: Vec<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpn_policy: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostHeaderConditionConfig {
    #[serde(default)]
    pub values: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HttpHeaderConditionConfig {
    #[serde(default)]
    pub http_header_name: Option<String>,
    #[serde(default)]
    pub values: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueryStringKeyValuePair {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueryStringConditionConfig {
    #[serde(default)]
    pub values: Option<Vec<QueryStringKeyValuePair>>,
}

/// A rule condition as on the wire: either the legacy `Values` (host-header and path-pattern only) or the
/// field's own config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuleCondition {
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub values: Option<Vec<String>>,
    #[serde(default)]
    pub host_header_config: Option<HostHeaderConditionConfig>,
    #[serde(default)]
    pub path_pattern_config: Option<HostHeaderConditionConfig>,
    #[serde(default)]
    pub http_header_config: Option<HttpHeaderConditionConfig>,
    #[serde(default)]
    pub query_string_config: Option<QueryStringConditionConfig>,
    #[serde(default)]
    pub http_request_method_config: Option<HostHeaderConditionConfig>,
    #[serde(default)]
    pub source_ip_config: Option<HostHeaderConditionConfig>,
    /// Regex matching is not supported; a request that sends it is refused before anything is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex_values: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Rule {
    pub rule_arn: String,
    /// A number as text, or `default`.
    pub priority: String,
    pub conditions: Vec<RuleCondition>,
    pub actions: Vec<Action>,
    pub is_default: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetDescription {
    pub id: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub availability_zone: Option<String>,
}

// --- records: what the store keeps --------------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancerRecord {
    pub load_balancer: LoadBalancer,
    /// Every attribute of the load balancer's type, defaults filled in.
    pub attributes: BTreeMap<String, String>,
    pub tags: Vec<Tag>,
    /// The address its listeners bind.
    pub address: String,
}

/// A registered target. It leaves the record once its deregistration delay is over (or its last connection ended).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetRecord {
    pub id: String,
    pub port: u16,
    #[serde(default)]
    pub availability_zone: Option<String>,
    /// Epoch seconds.
    pub registered_at: f64,
    /// Epoch seconds at which DeregisterTargets was called, while it drains.
    #[serde(default)]
    pub deregistered_at: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetGroupRecord {
    pub target_group: TargetGroup,
    pub attributes: BTreeMap<String, String>,
    pub tags: Vec<Tag>,
    pub targets: Vec<TargetRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListenerRecord {
    pub listener: Listener,
    pub tags: Vec<Tag>,
    /// The id in the ARN of the listener's default rule, which carries the listener's default actions.
    pub default_rule_id: String,
    /// Tags of the default rule.
    #[serde(default)]
    pub default_rule_tags: Vec<Tag>,
    /// The certificates AddListenerCertificates gave besides the default one, chosen by SNI.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_certificates: Vec<String>,
}

impl ListenerRecord {
    /// The ARNs of every certificate the listener serves, the default first.
    pub fn certificate_arns(&self) -> impl Iterator<Item = &str> {
        self.listener
            .certificates
            .iter()
            .flatten()
            .filter_map(|c| c.certificate_arn.as_deref())
            .chain(self.extra_certificates.iter().map(String::as_str))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleRecord {
    pub rule: Rule,
    pub tags: Vec<Tag>,
}

/// A target group's targets that `target` matches: the same id and port.
pub fn same_target(a: &TargetRecord, id: &str, port: u16) -> bool {
    a.id == id && a.port == port
}
