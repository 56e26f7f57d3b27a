//! CreateTargetGroup, DescribeTargetGroups, ModifyTargetGroup, DeleteTargetGroup and their attributes.

use gantry_model::Scope;
use gantry_store::{Store, Txn};
use serde::Deserialize;
use serde_json::{json, Value};

use super::actions::target_group_users;
use super::load_balancers::DEFAULT_VPC;
use super::page::page;
use super::validate;
use crate::attributes;
use crate::errors::{invalid, LbError, Result};
use crate::keys;
use crate::model::{Matcher, Tag, TargetGroup, TargetGroupRecord};
use crate::service::{answer, encode, LbService};

const PROTOCOLS: &[&str] = &[
    "HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP", "GENEVE", "QUIC", "TCP_QUIC",
];

/// Whether the protocol is one of a network load balancer's.
pub fn is_layer4(protocol: &str) -> bool {
    matches!(protocol, "TCP" | "TLS" | "UDP" | "TCP_UDP")
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthCheckInput {
    pub health_check_protocol: Option<String>,
    pub health_check_port: Option<String>,
    pub health_check_enabled: Option<bool>,
    pub health_check_path: Option<String>,
    pub health_check_interval_seconds: Option<u32>,
    pub health_check_timeout_seconds: Option<u32>,
    pub healthy_threshold_count: Option<u32>,
    pub unhealthy_threshold_count: Option<u32>,
    pub matcher: Option<Matcher>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateInput {
    pub name: String,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub protocol_version: Option<String>,
    #[serde(default)]
    pub port: Option<u32>,
    #[serde(default)]
    pub vpc_id: Option<String>,
    #[serde(default)]
    pub target_type: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<Tag>>,
    #[serde(default)]
    pub ip_address_type: Option<String>,
}

/// Checks a matcher's `HttpCode`: codes, comma lists and ranges (`200`, `200,202`, `200-299`) within what the
/// load balancer's type allows (ALB 200-499, NLB 200-599).
pub fn check_matcher(code: &str, layer4: bool) -> Result<()> {
    let max = if layer4 { 599 } else { 499 };
    let in_range =
        |s: &str| s.len() == 3 && s.parse::<u16>().is_ok_and(|n| (200..=max).contains(&n));
    let ok = !code.is_empty()
        && code.split(',').all(|part| match part.split_once('-') {
            Some((a, b)) => in_range(a) && in_range(b) && a <= b,
            None => in_range(part),
        });
    if ok {
        Ok(())
    } else {
        Err(LbError::Validation(format!(
            "Health check matcher HTTP code '{code}' must be a code, a comma-separated list or a range of codes between 200 and {max}"
        )))
    }
}

/// Applies the health check settings of `h` to `tg` and checks the result as a whole.
fn apply_health(tg: &mut TargetGroup, h: HealthCheckInput) -> Result<()> {
    let protocol = tg.protocol.clone().unwrap_or_default();
    if let Some(p) = h.health_check_protocol {
        validate::one_of(&p, "healthCheckProtocol", &["HTTP", "HTTPS", "TCP"])?;
        if !is_layer4(&protocol) && p == "TCP" {
            return Err(LbError::InvalidConfiguration(format!(
                "Health check protocol TCP is not supported for target groups with the {protocol} protocol"
            )));
        }
        tg.health_check_protocol = Some(p);
    }
    if let Some(port) = h.health_check_port {
        if port != "traffic-port" {
            let n: u32 = port.parse().map_err(|_| {
                invalid(
                    "healthCheckPort",
                    &port,
                    "Member must be 'traffic-port' or a port number",
                )
            })?;
            validate::port(n, "healthCheckPort")?;
        }
        tg.health_check_port = Some(port);
    }
    if let Some(e) = h.health_check_enabled {
        tg.health_check_enabled = e;
    }
    if let Some(path) = h.health_check_path {
        if !path.starts_with('/') || path.len() > 1024 {
            return Err(invalid(
                "healthCheckPath",
                &path,
                "Member must start with '/' and have length less than or equal to 1024",
            ));
        }
        tg.health_check_path = Some(path);
    }
    if let Some(i) = h.health_check_interval_seconds {
        if !(5..=300).contains(&i) {
            return Err(invalid(
                "healthCheckIntervalSeconds",
                i,
                "Member must have value less than or equal to 300 and greater than or equal to 5",
            ));
        }
        tg.health_check_interval_seconds = i;
    }
    if let Some(t) = h.health_check_timeout_seconds {
        if !(2..=120).contains(&t) {
            return Err(invalid(
                "healthCheckTimeoutSeconds",
                t,
                "Member must have value less than or equal to 120 and greater than or equal to 2",
            ));
        }
        tg.health_check_timeout_seconds = t;
    }
    for (value, member, field) in [
        (
            h.healthy_threshold_count,
            "healthyThresholdCount",
            &mut tg.healthy_threshold_count,
        ),
        (
            h.unhealthy_threshold_count,
            "unhealthyThresholdCount",
            &mut tg.unhealthy_threshold_count,
        ),
    ] {
        if let Some(n) = value {
            if !(2..=10).contains(&n) {
                return Err(invalid(member, n, "Member must have value less than or equal to 10 and greater than or equal to 2"));
            }
            *field = n;
        }
    }
    if let Some(m) = h.matcher {
        if m.grpc_code.is_some() {
            return Err(LbError::InvalidConfiguration(
                "gRPC health check matchers are not supported by Gantry".into(),
            ));
        }
        let code = m.http_code.clone().unwrap_or_default();
        check_matcher(&code, is_layer4(&protocol))?;
        tg.matcher = Some(m);
    }
    if tg.health_check_timeout_seconds >= tg.health_check_interval_seconds {
        return Err(LbError::InvalidConfiguration(
            "Health check interval must be greater than the timeout.".into(),
        ));
    }
    let checks_http = matches!(
        tg.health_check_protocol.as_deref(),
        Some("HTTP") | Some("HTTPS")
    );
    if !checks_http
        && (tg.health_check_path.is_some() || tg.matcher.is_some())
        && !is_layer4(&protocol)
    {
        return Err(LbError::InvalidConfiguration(
            "A health check path and matcher need the HTTP or HTTPS health check protocol".into(),
        ));
    }
    Ok(())
}

/// `health` is decoded from the same parameters as `input`.
pub async fn create<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: CreateInput,
    health: HealthCheckInput,
) -> Result<Value> {
    validate::name(&input.name, "Target group")?;
    let target_type = input.target_type.unwrap_or_else(|| "instance".into());
    validate::one_of(
        &target_type,
        "targetType",
        &["instance", "ip", "lambda", "alb"],
    )?;
    if target_type == "lambda" || target_type == "alb" {
        return Err(LbError::Validation(format!(
            "Target type '{target_type}' is not supported by Gantry"
        )));
    }
    let Some(protocol) = input.protocol else {
        return Err(LbError::Validation("A protocol must be specified".into()));
    };
    validate::one_of(&protocol, "protocol", PROTOCOLS)?;
    if !matches!(protocol.as_str(), "HTTP" | "HTTPS" | "TCP") {
        return Err(LbError::UnsupportedProtocol(format!(
            "Protocol '{protocol}' is not supported by Gantry (HTTP, HTTPS and TCP are)"
        )));
    }
    let Some(port) = input.port else {
        return Err(LbError::Validation("A port must be specified".into()));
    };
    let port = validate::port(port, "port")?;
    let layer4 = is_layer4(&protocol);
    let protocol_version = match input.protocol_version.as_deref() {
        None if layer4 => None,
        None | Some("HTTP1") if !layer4 => Some("HTTP1".to_string()),
        Some(v @ ("HTTP2" | "GRPC")) if !layer4 => {
            return Err(LbError::Validation(format!(
                "Protocol version '{v}' is not supported by Gantry (HTTP1 is)"
            )))
        }
        Some(v) => {
            return Err(LbError::Validation(format!(
                "Protocol version '{v}' is not valid for the {protocol} protocol"
            )))
        }
        None => None,
    };
    let ip_type = input.ip_address_type.unwrap_or_else(|| "ipv4".into());
    validate::one_of(&ip_type, "ipAddressType", &["ipv4", "ipv6"])?;
    let tags = input.tags.unwrap_or_default();
    validate::tags(&tags)?;

    let region = &scope.region;
    let mut tg = TargetGroup {
        target_group_arn: String::new(),
        target_group_name: input.name.clone(),
        protocol: Some(protocol.clone()),
        port: Some(port),
        vpc_id: Some(input.vpc_id.unwrap_or_else(|| DEFAULT_VPC.into())),
        health_check_protocol: Some(if layer4 {
            "TCP".into()
        } else {
            protocol.clone()
        }),
        health_check_port: Some("traffic-port".into()),
        health_check_enabled: true,
        health_check_interval_seconds: 30,
        health_check_timeout_seconds: if layer4 { 10 } else { 5 },
        healthy_threshold_count: 5,
        unhealthy_threshold_count: 2,
        health_check_path: (!layer4).then(|| "/".into()),
        matcher: (!layer4).then(|| Matcher {
            http_code: Some("200".into()),
            grpc_code: None,
        }),
        load_balancer_arns: Vec::new(),
        target_type,
        protocol_version,
        ip_address_type: ip_type,
    };
    let health_path_given = health.health_check_path.is_some() || health.matcher.is_some();
    apply_health(&mut tg, health)?;
    // A TCP target group checked over HTTP gets HTTP's defaults for what it did not say.
    if layer4
        && matches!(tg.health_check_protocol.as_deref(), Some("HTTP" | "HTTPS"))
        && !health_path_given
    {
        tg.health_check_path = Some("/".into());
        tg.matcher = Some(Matcher {
            http_code: Some("200-399".into()),
            grpc_code: None,
        });
    }

    let _w = svc.writes.lock().await;
    let key = keys::target_group(region, &input.name);
    if let Some(existing) = svc.get::<TargetGroupRecord>(&key) {
        let mut same = tg.clone();
        same.target_group_arn = existing.target_group.target_group_arn.clone();
        if same == existing.target_group {
            return Ok(json!({"TargetGroups": [describe_one(svc, region, &existing)]}));
        }
        return Err(LbError::DuplicateTargetGroupName(input.name));
    }
    tg.target_group_arn = keys::target_group_arn(scope, &input.name, &keys::new_id());
    let record = TargetGroupRecord {
        attributes: attributes::target_group_defaults(tg.protocol.as_deref()),
        target_group: tg,
        tags,
        targets: Vec::new(),
    };
    svc.commit(Txn::new().put(key, encode(&record))).await?;
    Ok(json!({"TargetGroups": [describe_one(svc, region, &record)]}))
}

/// The target group as answered: with the load balancers that route to it.
fn describe_one<S: Store>(svc: &LbService<S>, region: &str, record: &TargetGroupRecord) -> Value {
    let mut tg = record.target_group.clone();
    tg.load_balancer_arns = target_group_users(svc, region, &tg.target_group_arn);
    answer(&tg)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeInput {
    pub load_balancer_arn: Option<String>,
    pub target_group_arns: Option<Vec<String>>,
    pub names: Option<Vec<String>>,
    pub marker: Option<String>,
    pub page_size: Option<u32>,
}

pub fn describe<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: DescribeInput,
) -> Result<Value> {
    let region = &scope.region;
    let arns = input.target_group_arns.unwrap_or_default();
    let names = input.names.unwrap_or_default();
    let given = [
        input.load_balancer_arn.is_some(),
        !arns.is_empty(),
        !names.is_empty(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(LbError::Validation(
            "Only one of load balancer ARN, target group ARNs or names can be specified".into(),
        ));
    }
    let all = svc.target_groups(region);
    let chosen: Vec<TargetGroupRecord> = if let Some(lb) = &input.load_balancer_arn {
        svc.load_balancer_by_arn(region, lb)?;
        all.into_iter()
            .filter(|tg| {
                target_group_users(svc, region, &tg.target_group.target_group_arn).contains(lb)
            })
            .collect()
    } else if !arns.is_empty() {
        arns.iter()
            .map(|a| svc.target_group_by_arn(region, a))
            .collect::<Result<_>>()?
    } else if !names.is_empty() {
        names
            .iter()
            .map(|n| {
                all.iter()
                    .find(|tg| &tg.target_group.target_group_name == n)
                    .cloned()
                    .ok_or(LbError::TargetGroupNotFound)
            })
            .collect::<Result<_>>()?
    } else {
        all
    };
    let p = page(chosen, input.marker.as_deref(), input.page_size)?;
    let list: Vec<Value> = p
        .items
        .iter()
        .map(|tg| describe_one(svc, region, tg))
        .collect();
    Ok(json!({"TargetGroups": list, "NextMarker": p.next_marker}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModifyInput {
    pub target_group_arn: String,
}

pub async fn modify<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: ModifyInput,
    health: HealthCheckInput,
) -> Result<Value> {
    let _w = svc.writes.lock().await;
    let mut record = svc.target_group_by_arn(&scope.region, &input.target_group_arn)?;
    apply_health(&mut record.target_group, health)?;
    put(svc, scope, &record).await?;
    Ok(json!({"TargetGroups": [describe_one(svc, &scope.region, &record)]}))
}

pub(crate) async fn put<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    record: &TargetGroupRecord,
) -> Result<()> {
    let key = keys::target_group(&scope.region, &record.target_group.target_group_name);
    svc.commit(Txn::new().put(key, encode(record))).await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ArnInput {
    pub target_group_arn: String,
}

pub async fn delete<S: Store>(svc: &LbService<S>, scope: &Scope, input: ArnInput) -> Result<Value> {
    let _w = svc.writes.lock().await;
    let record = match svc.target_group_by_arn(&scope.region, &input.target_group_arn) {
        Ok(r) => r,
        Err(LbError::TargetGroupNotFound) => return Ok(json!({})),
        Err(e) => return Err(e),
    };
    if !target_group_users(svc, &scope.region, &input.target_group_arn).is_empty() {
        return Err(LbError::ResourceInUse(format!(
            "Target group '{}' is currently in use by a listener or a rule",
            input.target_group_arn
        )));
    }
    let key = keys::target_group(&scope.region, &record.target_group.target_group_name);
    svc.commit(Txn::new().delete(key)).await?;
    Ok(json!({}))
}

pub fn describe_attributes<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: ArnInput,
) -> Result<Value> {
    Ok(attributes::answer(
        &svc.target_group_by_arn(&scope.region, &input.target_group_arn)?
            .attributes,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModifyAttributesInput {
    pub target_group_arn: String,
    pub attributes: Vec<attributes::Attribute>,
}

pub async fn modify_attributes<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: ModifyAttributesInput,
) -> Result<Value> {
    let _w = svc.writes.lock().await;
    let mut record = svc.target_group_by_arn(&scope.region, &input.target_group_arn)?;
    let changes = attributes::pairs(input.attributes)?;
    attributes::modify_target_group(
        record.target_group.protocol.as_deref(),
        &mut record.attributes,
        &changes,
    )?;
    put(svc, scope, &record).await?;
    Ok(attributes::answer(&record.attributes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers() {
        for ok in ["200", "200,202", "200-299", "200-399,404"] {
            assert!(check_matcher(ok, false).is_ok(), "{ok}");
        }
        for bad in ["", "abc", "100", "500", "299-200", "2000", "200-", ",200"] {
            assert!(check_matcher(bad, false).is_err(), "{bad}");
        }
        assert!(check_matcher("500", true).is_ok());
    }
}
