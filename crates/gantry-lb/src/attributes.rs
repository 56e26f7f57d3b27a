//! Load balancer and target group attributes: the keys each type has, their defaults, and what a value must be.
//! Unknown keys are refused, as ELBv2 does; keys Gantry accepts but does not act on (access logs, WAF) are kept
//! and answered as given.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::errors::{LbError, Result};

#[derive(Debug, Clone, Copy)]
enum Kind {
    Bool,
    /// An integer within the range.
    Int(i64, i64),
    OneOf(&'static [&'static str]),
    Text,
}

/// (key, default, kind) of an application load balancer.
const APPLICATION: &[(&str, &str, Kind)] = &[
    ("access_logs.s3.enabled", "false", Kind::Bool),
    ("access_logs.s3.bucket", "", Kind::Text),
    ("access_logs.s3.prefix", "", Kind::Text),
    ("client_keep_alive.seconds", "3600", Kind::Int(60, 604800)),
    ("connection_logs.s3.enabled", "false", Kind::Bool),
    ("connection_logs.s3.bucket", "", Kind::Text),
    ("connection_logs.s3.prefix", "", Kind::Text),
    ("deletion_protection.enabled", "false", Kind::Bool),
    ("idle_timeout.timeout_seconds", "60", Kind::Int(1, 4000)),
    ("ipv6.deny_all_igw_traffic", "false", Kind::Bool),
    ("load_balancing.cross_zone.enabled", "true", Kind::Bool),
    (
        "routing.http.desync_mitigation_mode",
        "defensive",
        Kind::OneOf(&["monitor", "defensive", "strictest"]),
    ),
    (
        "routing.http.drop_invalid_header_fields.enabled",
        "false",
        Kind::Bool,
    ),
    (
        "routing.http.preserve_host_header.enabled",
        "false",
        Kind::Bool,
    ),
    (
        "routing.http.x_amzn_tls_version_and_cipher_suite.enabled",
        "false",
        Kind::Bool,
    ),
    ("routing.http.xff_client_port.enabled", "false", Kind::Bool),
    (
        "routing.http.xff_header_processing.mode",
        "append",
        Kind::OneOf(&["append", "preserve", "remove"]),
    ),
    ("routing.http2.enabled", "true", Kind::Bool),
    ("waf.fail_open.enabled", "false", Kind::Bool),
    ("zonal_shift.config.enabled", "false", Kind::Bool),
];

const NETWORK: &[(&str, &str, Kind)] = &[
    ("access_logs.s3.enabled", "false", Kind::Bool),
    ("access_logs.s3.bucket", "", Kind::Text),
    ("access_logs.s3.prefix", "", Kind::Text),
    ("deletion_protection.enabled", "false", Kind::Bool),
    (
        "dns_record.client_routing_policy",
        "any_availability_zone",
        Kind::OneOf(&[
            "availability_zone_affinity",
            "partial_availability_zone_affinity",
            "any_availability_zone",
        ]),
    ),
    ("ipv6.deny_all_igw_traffic", "false", Kind::Bool),
    ("load_balancing.cross_zone.enabled", "false", Kind::Bool),
    ("zonal_shift.config.enabled", "false", Kind::Bool),
];

/// Target group attributes of HTTP/HTTPS (application) target groups.
const HTTP_TARGET_GROUP: &[(&str, &str, Kind)] = &[
    (
        "deregistration_delay.timeout_seconds",
        "300",
        Kind::Int(0, 3600),
    ),
    (
        "load_balancing.algorithm.type",
        "round_robin",
        Kind::OneOf(&[
            "round_robin",
            "least_outstanding_requests",
            "weighted_random",
        ]),
    ),
    (
        "load_balancing.algorithm.anomaly_mitigation",
        "off",
        Kind::OneOf(&["on", "off"]),
    ),
    (
        "load_balancing.cross_zone.enabled",
        "use_load_balancer_configuration",
        Kind::OneOf(&["true", "false", "use_load_balancer_configuration"]),
    ),
    ("slow_start.duration_seconds", "0", Kind::Int(0, 900)),
    ("stickiness.enabled", "false", Kind::Bool),
    (
        "stickiness.type",
        "lb_cookie",
        Kind::OneOf(&["lb_cookie", "app_cookie"]),
    ),
    (
        "stickiness.lb_cookie.duration_seconds",
        "86400",
        Kind::Int(1, 604800),
    ),
    ("stickiness.app_cookie.cookie_name", "", Kind::Text),
    (
        "stickiness.app_cookie.duration_seconds",
        "86400",
        Kind::Int(1, 604800),
    ),
    (
        "target_group_health.dns_failover.minimum_healthy_targets.count",
        "1",
        Kind::Text,
    ),
    (
        "target_group_health.dns_failover.minimum_healthy_targets.percentage",
        "off",
        Kind::Text,
    ),
    (
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
        "1",
        Kind::Text,
    ),
    (
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
        "off",
        Kind::Text,
    ),
];

/// Target group attributes of TCP/TLS/UDP (network) target groups.
const TCP_TARGET_GROUP: &[(&str, &str, Kind)] = &[
    (
        "deregistration_delay.timeout_seconds",
        "300",
        Kind::Int(0, 3600),
    ),
    (
        "deregistration_delay.connection_termination.enabled",
        "false",
        Kind::Bool,
    ),
    (
        "load_balancing.cross_zone.enabled",
        "use_load_balancer_configuration",
        Kind::OneOf(&["true", "false", "use_load_balancer_configuration"]),
    ),
    ("preserve_client_ip.enabled", "false", Kind::Bool),
    ("proxy_protocol_v2.enabled", "false", Kind::Bool),
    ("stickiness.enabled", "false", Kind::Bool),
    ("stickiness.type", "source_ip", Kind::OneOf(&["source_ip"])),
    (
        "target_health_state.unhealthy.connection_termination.enabled",
        "true",
        Kind::Bool,
    ),
    (
        "target_health_state.unhealthy.draining_interval_seconds",
        "0",
        Kind::Int(0, 360000),
    ),
    (
        "target_group_health.dns_failover.minimum_healthy_targets.count",
        "1",
        Kind::Text,
    ),
    (
        "target_group_health.dns_failover.minimum_healthy_targets.percentage",
        "off",
        Kind::Text,
    ),
    (
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
        "1",
        Kind::Text,
    ),
    (
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
        "off",
        Kind::Text,
    ),
];

fn table_of_load_balancer(kind: &str) -> &'static [(&'static str, &'static str, Kind)] {
    if kind == "network" {
        NETWORK
    } else {
        APPLICATION
    }
}

fn table_of_target_group(protocol: Option<&str>) -> &'static [(&'static str, &'static str, Kind)] {
    match protocol {
        Some("TCP") | Some("TLS") | Some("UDP") | Some("TCP_UDP") => TCP_TARGET_GROUP,
        _ => HTTP_TARGET_GROUP,
    }
}

fn defaults(table: &[(&str, &str, Kind)]) -> BTreeMap<String, String> {
    table
        .iter()
        .map(|(k, v, _)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn load_balancer_defaults(kind: &str) -> BTreeMap<String, String> {
    defaults(table_of_load_balancer(kind))
}

pub fn target_group_defaults(protocol: Option<&str>) -> BTreeMap<String, String> {
    defaults(table_of_target_group(protocol))
}

fn check(table: &[(&str, &str, Kind)], key: &str, value: &str, what: &str) -> Result<()> {
    let Some((_, _, kind)) = table.iter().find(|(k, _, _)| *k == key) else {
        return Err(LbError::Validation(format!(
            "{what} attribute key '{key}' is not recognized"
        )));
    };
    let ok = match kind {
        Kind::Bool => value == "true" || value == "false",
        Kind::Int(lo, hi) => value.parse::<i64>().is_ok_and(|v| (*lo..=*hi).contains(&v)),
        Kind::OneOf(allowed) => allowed.contains(&value),
        Kind::Text => value.len() <= 1024,
    };
    if ok {
        return Ok(());
    }
    let expected = match kind {
        Kind::Bool => "'true' or 'false'".to_string(),
        Kind::Int(lo, hi) => format!("an integer from {lo} to {hi}"),
        Kind::OneOf(allowed) => allowed
            .iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(", "),
        Kind::Text => "at most 1024 characters".to_string(),
    };
    Err(LbError::InvalidConfiguration(format!(
        "{what} attribute '{key}' cannot have the value '{value}': it must be {expected}"
    )))
}

/// Applies `changes` to `attributes` after checking every one (all or nothing).
pub fn modify_load_balancer(
    kind: &str,
    attributes: &mut BTreeMap<String, String>,
    changes: &[(String, String)],
) -> Result<()> {
    modify(
        table_of_load_balancer(kind),
        attributes,
        changes,
        "Load balancer",
    )
}

pub fn modify_target_group(
    protocol: Option<&str>,
    attributes: &mut BTreeMap<String, String>,
    changes: &[(String, String)],
) -> Result<()> {
    let mut changed = attributes.clone();
    modify(
        table_of_target_group(protocol),
        &mut changed,
        changes,
        "Target group",
    )?;
    // ELBv2's rules between attributes, on the result of the change.
    let slow_start = number(&changed, "slow_start.duration_seconds", 0);
    if slow_start != 0 && !(30..=900).contains(&slow_start) {
        return Err(LbError::InvalidConfiguration(
            "Slow start duration must be 0 (off) or between 30 and 900 seconds".into(),
        ));
    }
    if slow_start != 0
        && changed
            .get("load_balancing.algorithm.type")
            .map(String::as_str)
            == Some("weighted_random")
    {
        return Err(LbError::InvalidConfiguration(
            "Slow start cannot be enabled with the weighted_random load balancing algorithm".into(),
        ));
    }
    *attributes = changed;
    Ok(())
}

fn modify(
    table: &[(&str, &str, Kind)],
    attributes: &mut BTreeMap<String, String>,
    changes: &[(String, String)],
    what: &str,
) -> Result<()> {
    if changes.is_empty() {
        return Err(LbError::Validation(
            "1 validation error detected: Value null at 'attributes' failed to satisfy constraint: Member must not be null".into(),
        ));
    }
    for (k, v) in changes {
        check(table, k, v, what)?;
    }
    for (k, v) in changes {
        attributes.insert(k.clone(), v.clone());
    }
    Ok(())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct Attribute {
    pub key: Option<String>,
    pub value: Option<String>,
}

/// `(key, value)` pairs of the input's attributes; a key without a value is refused.
pub fn pairs(list: Vec<Attribute>) -> Result<Vec<(String, String)>> {
    list.into_iter()
        .map(|a| match (a.key, a.value) {
            (Some(k), Some(v)) => Ok((k, v)),
            (k, _) => Err(LbError::Validation(format!(
                "Attribute '{}' has no value",
                k.unwrap_or_default()
            ))),
        })
        .collect()
}

/// `{"Attributes": [{"Key", "Value"}...]}`, as the Describe/Modify*Attributes calls answer.
pub fn answer(attributes: &BTreeMap<String, String>) -> Value {
    let list: Vec<Value> = attributes
        .iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    json!({ "Attributes": list })
}

/// The attribute as a number, or its default when unset or unreadable.
pub fn number(attributes: &BTreeMap<String, String>, key: &str, default: u64) -> u64 {
    attributes
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn flag(attributes: &BTreeMap<String, String>, key: &str) -> bool {
    attributes.get(key).is_some_and(|v| v == "true")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_start_is_0_or_30_to_900_and_not_with_weighted_random() {
        let mut a = target_group_defaults(Some("HTTP"));
        let set = |a: &mut BTreeMap<String, String>, k: &str, v: &str| {
            modify_target_group(Some("HTTP"), a, &[(k.to_string(), v.to_string())])
        };
        assert!(set(&mut a, "slow_start.duration_seconds", "10").is_err());
        assert!(set(&mut a, "slow_start.duration_seconds", "60").is_ok());
        assert!(set(&mut a, "load_balancing.algorithm.type", "weighted_random").is_err());
        assert_eq!(
            a["load_balancing.algorithm.type"], "round_robin",
            "a refused change changes nothing"
        );
        assert!(set(&mut a, "slow_start.duration_seconds", "0").is_ok());
        assert!(set(&mut a, "load_balancing.algorithm.type", "weighted_random").is_ok());
    }

    #[test]
    fn defaults_and_checks() {
        let mut a = load_balancer_defaults("application");
        assert_eq!(a["idle_timeout.timeout_seconds"], "60");
        assert_eq!(a["routing.http2.enabled"], "true");
        let ch = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        modify_load_balancer(
            "application",
            &mut a,
            &ch("idle_timeout.timeout_seconds", "5"),
        )
        .unwrap();
        assert_eq!(a["idle_timeout.timeout_seconds"], "5");
        for (k, v) in [
            ("idle_timeout.timeout_seconds", "0"),
            ("idle_timeout.timeout_seconds", "x"),
            ("deletion_protection.enabled", "yes"),
            ("no.such.key", "1"),
        ] {
            let err = modify_load_balancer("application", &mut a, &ch(k, v)).unwrap_err();
            assert!(
                matches!(
                    err,
                    LbError::Validation(_) | LbError::InvalidConfiguration(_)
                ),
                "{k}"
            );
        }
        // All or nothing.
        let both = vec![
            (
                "deletion_protection.enabled".to_string(),
                "true".to_string(),
            ),
            ("bad".to_string(), "1".to_string()),
        ];
        assert!(modify_load_balancer("application", &mut a, &both).is_err());
        assert_eq!(a["deletion_protection.enabled"], "false");
        // Network load balancers have no idle timeout.
        let mut n = load_balancer_defaults("network");
        assert!(
            modify_load_balancer("network", &mut n, &ch("idle_timeout.timeout_seconds", "5"))
                .is_err()
        );
        let mut t = target_group_defaults(Some("HTTP"));
        assert_eq!(number(&t, "deregistration_delay.timeout_seconds", 0), 300);
        modify_target_group(
            Some("HTTP"),
            &mut t,
            &ch(
                "load_balancing.algorithm.type",
                "least_outstanding_requests",
            ),
        )
        .unwrap();
        assert!(modify_target_group(
            Some("TCP"),
            &mut target_group_defaults(Some("TCP")),
            &ch("stickiness.type", "lb_cookie")
        )
        .is_err());
    }
}
