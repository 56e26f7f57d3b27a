//! RegisterTargets, DeregisterTargets and DescribeTargetHealth.

use std::net::IpAddr;

use gantry_model::Scope;
use gantry_store::Store;
use serde::Deserialize;
use serde_json::{json, Value};

use super::actions::target_group_users;
use super::target_groups::put;
use super::validate;
use crate::attributes;
use crate::errors::{LbError, Result};
use crate::model::{same_target, TargetDescription, TargetGroupRecord, TargetRecord};
use crate::service::LbService;

/// Targets one target group may have.
pub const MAX_TARGETS: usize = 1000;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetsInput {
    pub target_group_arn: String,
    pub targets: Vec<TargetInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetInput {
    pub id: String,
    #[serde(default)]
    pub port: Option<u32>,
    #[serde(default)]
    pub availability_zone: Option<String>,
}

fn is_instance_id(id: &str) -> bool {
    id.strip_prefix("i-")
        .is_some_and(|h| (8..=17).contains(&h.len()) && h.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The targets' (id, port), checked against the group's target type.
fn checked(
    tg: &TargetGroupRecord,
    targets: &[TargetInput],
) -> Result<Vec<(String, u16, Option<String>)>> {
    if targets.is_empty() {
        return Err(LbError::Validation(
            "At least one target must be specified".into(),
        ));
    }
    let kind = tg.target_group.target_type.as_str();
    let mut out = Vec::new();
    for t in targets {
        let valid = match kind {
            "ip" => t.id.parse::<IpAddr>().is_ok(),
            _ => is_instance_id(&t.id),
        };
        if !valid {
            let what = if kind == "ip" {
                "IP addresses"
            } else {
                "instance IDs"
            };
            return Err(LbError::InvalidTarget(format!(
                "The following targets are not valid {what}: {}",
                t.id
            )));
        }
        let port = match t.port {
            Some(p) => validate::port(p, "targets.member.port")?,
            None => tg.target_group.port.ok_or_else(|| {
                LbError::Validation(format!(
                    "Target '{}' needs a port: the target group has none",
                    t.id
                ))
            })?,
        };
        out.push((t.id.clone(), port, t.availability_zone.clone()));
    }
    Ok(out)
}

pub async fn register<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: TargetsInput,
) -> Result<Value> {
    let _w = svc.writes.lock().await;
    let mut tg = svc.target_group_by_arn(&scope.region, &input.target_group_arn)?;
    let now = gantry_model::time::now();
    for (id, port, zone) in checked(&tg, &input.targets)? {
        if tg.target_group.target_type == "instance"
            && svc.resolve_instance(&scope.region, &id).is_none()
        {
            return Err(LbError::InvalidTarget(format!(
                "The following targets are not in a running state and cannot be registered: '{id}'"
            )));
        }
        match tg.targets.iter_mut().find(|t| same_target(t, &id, port)) {
            // Registering a draining target again puts it back in service, as ELBv2 does.
            Some(t) => t.deregistered_at = None,
            None => tg.targets.push(TargetRecord {
                id,
                port,
                availability_zone: zone,
                registered_at: now,
                deregistered_at: None,
            }),
        }
    }
    if tg.targets.len() > MAX_TARGETS {
        return Err(LbError::TooMany(
            "TooManyTargets",
            format!("A target group can have at most {MAX_TARGETS} targets"),
        ));
    }
    put(svc, scope, &tg).await?;
    Ok(json!({}))
}

pub async fn deregister<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: TargetsInput,
) -> Result<Value> {
    let _w = svc.writes.lock().await;
    let mut tg = svc.target_group_by_arn(&scope.region, &input.target_group_arn)?;
    let now = gantry_model::time::now();
    let delay = attributes::number(&tg.attributes, "deregistration_delay.timeout_seconds", 300);
    let in_use = !target_group_users(svc, &scope.region, &input.target_group_arn).is_empty();
    let mut gone = Vec::new();
    for (id, port, _) in checked(&tg, &input.targets)? {
        let Some(t) = tg.targets.iter_mut().find(|t| same_target(t, &id, port)) else {
            return Err(LbError::InvalidTarget(format!(
                "The following targets are not registered in target group '{}': '{id}'",
                input.target_group_arn
            )));
        };
        // Nothing to drain without a delay or without a load balancer sending traffic.
        if delay == 0 || !in_use {
            gone.push((id, port));
        } else if t.deregistered_at.is_none() {
            t.deregistered_at = Some(now);
        }
    }
    tg.targets
        .retain(|t| !gone.iter().any(|(id, port)| same_target(t, id, *port)));
    for (id, port) in gone {
        svc.health
            .forget(&(input.target_group_arn.clone(), id, port));
    }
    put(svc, scope, &tg).await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeHealthInput {
    pub target_group_arn: String,
    #[serde(default)]
    pub targets: Option<Vec<TargetInput>>,
    #[serde(default)]
    pub include: Option<Vec<String>>,
}

/// ELBv2's (state, reason, description) of one registered target.
pub fn target_health<S: Store>(
    svc: &LbService<S>,
    tg: &TargetGroupRecord,
    in_use: bool,
    t: &TargetRecord,
) -> (String, Option<String>, Option<String>) {
    let own =
        |(s, r, d): (&str, Option<&str>, Option<String>)| (s.to_string(), r.map(String::from), d);
    if t.deregistered_at.is_some() {
        return own((
            "draining",
            Some("Target.DeregistrationInProgress"),
            Some("Target deregistration is in progress".into()),
        ));
    }
    if !in_use {
        return own((
            "unused",
            Some("Target.NotInUse"),
            Some("Target group is not configured to receive traffic from the load balancer".into()),
        ));
    }
    if !tg.target_group.health_check_enabled {
        return own((
            "unavailable",
            Some("Target.HealthCheckDisabled"),
            Some("Health checks are disabled".into()),
        ));
    }
    let key = (
        tg.target_group.target_group_arn.clone(),
        t.id.clone(),
        t.port,
    );
    own(svc.health.get(&key).describe())
}

pub fn describe_health<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: DescribeHealthInput,
) -> Result<Value> {
    let tg = svc.target_group_by_arn(&scope.region, &input.target_group_arn)?;
    for inc in input.include.unwrap_or_default() {
        validate::one_of(&inc, "include", &["AnomalyDetection", "All"])?;
    }
    let in_use = !target_group_users(svc, &scope.region, &input.target_group_arn).is_empty();
    let health_port = |port: u16| match tg.target_group.health_check_port.as_deref() {
        Some("traffic-port") | None => port.to_string(),
        Some(p) => p.to_string(),
    };
    let describe = |t: &TargetRecord| {
        let (state, reason, description) = target_health(svc, &tg, in_use, t);
        json!({
            "Target": TargetDescription { id: t.id.clone(), port: Some(t.port), availability_zone: t.availability_zone.clone() },
            "HealthCheckPort": health_port(t.port),
            "TargetHealth": {"State": state, "Reason": reason, "Description": description},
        })
    };
    let list: Vec<Value> = match input.targets {
        Some(asked) if !asked.is_empty() => asked
            .iter()
            .map(|a| {
                let port = a.port.map(|p| p as u16).or(tg.target_group.port).unwrap_or(0);
                match tg.targets.iter().find(|t| same_target(t, &a.id, port)) {
                    Some(t) => describe(t),
                    None => json!({
                        "Target": {"Id": a.id, "Port": port},
                        "HealthCheckPort": health_port(port),
                        "TargetHealth": {"State": "unused", "Reason": "Target.NotRegistered", "Description": "Target is not registered to the target group"},
                    }),
                }
            })
            .collect(),
        _ => tg.targets.iter().map(describe).collect(),
    };
    Ok(gantry_model::json::to_value(
        &json!({"TargetHealthDescriptions": list}),
    ))
}
