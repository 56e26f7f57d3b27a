//! DescribeAccountLimits and DescribeSSLPolicies: what Gantry enforces, and the TLS policies it knows.

use serde::Deserialize;
use serde_json::{json, Value};

use super::actions::MAX_FORWARD_TARGET_GROUPS;
use super::page::page;
use super::rules::MAX_RULES;
use super::targets::MAX_TARGETS;
use super::validate::MAX_TAGS;
use crate::errors::{LbError, Result};

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct LimitsInput {
    pub marker: Option<String>,
    pub page_size: Option<u32>,
}

pub fn describe_account_limits(input: LimitsInput) -> Result<Value> {
    let limits: Vec<(&str, String)> = vec![
        ("application-load-balancers", "254".into()),
        ("network-load-balancers", "254".into()),
        ("target-groups", "3000".into()),
        (
            "targets-per-application-load-balancer",
            MAX_TARGETS.to_string(),
        ),
        ("targets-per-network-load-balancer", MAX_TARGETS.to_string()),
        ("listeners-per-application-load-balancer", "50".into()),
        ("listeners-per-network-load-balancer", "50".into()),
        ("rules-per-application-load-balancer", MAX_RULES.to_string()),
        (
            "target-groups-per-action-on-application-load-balancer",
            MAX_FORWARD_TARGET_GROUPS.to_string(),
        ),
        (
            "target-groups-per-action-on-network-load-balancer",
            "1".into(),
        ),
        ("tags-per-resource", MAX_TAGS.to_string()),
    ];
    let p = page(limits, input.marker.as_deref(), input.page_size)?;
    let list: Vec<Value> = p
        .items
        .iter()
        .map(|(n, m)| json!({"Name": n, "Max": m}))
        .collect();
    Ok(json!({"Limits": list, "NextMarker": p.next_marker}))
}

/// (name, protocols) of the TLS policies an HTTPS listener may name.
pub const SSL_POLICIES: &[(&str, &[&str])] = &[
    (
        "ELBSecurityPolicy-TLS13-1-2-2021-06",
        &["TLSv1.2", "TLSv1.3"],
    ),
    (
        "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
        &["TLSv1.2", "TLSv1.3"],
    ),
    ("ELBSecurityPolicy-TLS13-1-3-2021-06", &["TLSv1.3"]),
    ("ELBSecurityPolicy-2016-08", &["TLSv1.2"]),
    ("ELBSecurityPolicy-TLS-1-2-2017-01", &["TLSv1.2"]),
    ("ELBSecurityPolicy-FS-1-2-Res-2020-10", &["TLSv1.2"]),
];

const CIPHERS_12: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
];
const CIPHERS_13: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct PoliciesInput {
    pub names: Option<Vec<String>>,
    pub marker: Option<String>,
    pub page_size: Option<u32>,
    pub load_balancer_type: Option<String>,
}

pub fn describe_ssl_policies(input: PoliciesInput) -> Result<Value> {
    let names = input.names.unwrap_or_default();
    for n in &names {
        if !SSL_POLICIES.iter().any(|(p, _)| p == n) {
            return Err(LbError::SslPolicyNotFound(n.clone()));
        }
    }
    let chosen: Vec<&(&str, &[&str])> = SSL_POLICIES
        .iter()
        .filter(|(p, _)| names.is_empty() || names.iter().any(|n| n == p))
        .collect();
    let p = page(chosen, input.marker.as_deref(), input.page_size)?;
    let list: Vec<Value> = p
        .items
        .iter()
        .map(|(name, protocols)| {
            let mut ciphers: Vec<&str> = Vec::new();
            if protocols.contains(&"TLSv1.3") {
                ciphers.extend(CIPHERS_13);
            }
            if protocols.contains(&"TLSv1.2") {
                ciphers.extend(CIPHERS_12);
            }
            let ciphers: Vec<Value> = ciphers.iter().enumerate().map(|(i, c)| json!({"Name": c, "Priority": i + 1})).collect();
            json!({"Name": name, "SslProtocols": protocols, "Ciphers": ciphers, "SupportedLoadBalancerTypes": ["application", "network"]})
        })
        .collect();
    Ok(json!({"SslPolicies": list, "NextMarker": p.next_marker}))
}
