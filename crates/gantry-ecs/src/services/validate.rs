//! Checks of CreateService / UpdateService input that need nothing but the input, as ECS words them.

use gantry_model::ecs::{DeploymentConfiguration, PlacementConstraint, PlacementStrategy};

use crate::error::{invalid, reject_unsupported, EcsError, Result};

pub const REPLICA: &str = "REPLICA";
pub const DAEMON: &str = "DAEMON";

pub fn service_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!("Invalid service name: {name}. Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed.")))
    }
}

pub fn scheduling_strategy(s: Option<&str>) -> Result<&'static str> {
    match s {
        None | Some("REPLICA") => Ok(REPLICA),
        Some("DAEMON") => Ok(DAEMON),
        Some(other) => Err(invalid(format!("Invalid schedulingStrategy: {other}"))),
    }
}

pub fn launch_type(l: Option<&str>) -> Result<()> {
    match l {
        None | Some("EC2") | Some("EXTERNAL") => Ok(()),
        Some("FARGATE") | Some("MANAGED_INSTANCES") => Err(EcsError::Unsupported(format!(
            "launchType {}",
            l.unwrap_or("")
        ))),
        Some(other) => Err(invalid(format!("Invalid launchType: {other}"))),
    }
}

pub fn desired_count(count: Option<i64>) -> Result<()> {
    match count {
        Some(c) if c < 0 => Err(invalid("desiredCount must be a non-negative integer")),
        _ => Ok(()),
    }
}

/// Fills in ECS's defaults (REPLICA 100/200, DAEMON 0/100) and checks the ranges.
pub fn deployment_configuration(
    given: Option<DeploymentConfiguration>,
    scheduling: &str,
) -> Result<DeploymentConfiguration> {
    let mut c = given.unwrap_or_default();
    reject_unsupported("deploymentConfiguration", &c.unsupported)?;
    if let Some(b) = &c.deployment_circuit_breaker {
        reject_unsupported(
            "deploymentConfiguration.deploymentCircuitBreaker",
            &b.unsupported,
        )?;
    }
    match c.strategy.as_deref() {
        None | Some("ROLLING") => {}
        Some(other) => {
            return Err(EcsError::Unsupported(format!(
                "deploymentConfiguration.strategy {other}"
            )))
        }
    }
    let daemon = scheduling == DAEMON;
    let min = *c
        .minimum_healthy_percent
        .get_or_insert(if daemon { 0 } else { 100 });
    let max = *c
        .maximum_percent
        .get_or_insert(if daemon { 100 } else { 200 });
    if !(0..=100).contains(&min) {
        return Err(invalid("minimumHealthyPercent must be between 0 and 100"));
    }
    if max < 100 && !daemon {
        return Err(invalid("maximumPercent must be at least 100"));
    }
    if daemon && max != 100 {
        return Err(invalid(
            "maximumPercent must be 100 for a service with the DAEMON scheduling strategy",
        ));
    }
    if max > 2000 {
        return Err(invalid("maximumPercent must be at most 2000"));
    }
    Ok(c)
}

pub fn placement(
    strategies: &[PlacementStrategy],
    constraints: &[PlacementConstraint],
    scheduling: &str,
) -> Result<()> {
    if scheduling == DAEMON && !strategies.is_empty() {
        return Err(invalid(
            "Placement strategies are not supported with the DAEMON scheduling strategy.",
        ));
    }
    crate::placement::Placement::parse(strategies, constraints, &[]).map(|_| ())
}

pub fn grace_period(seconds: Option<i64>) -> Result<()> {
    match seconds {
        Some(s) if !(0..=2_147_483_647).contains(&s) => Err(invalid(
            "healthCheckGracePeriodSeconds must be between 0 and 2147483647",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_configuration_defaults_and_ranges() {
        let c = deployment_configuration(None, REPLICA).unwrap();
        assert_eq!(
            (c.minimum_healthy_percent, c.maximum_percent),
            (Some(100), Some(200))
        );
        let c = deployment_configuration(None, DAEMON).unwrap();
        assert_eq!(
            (c.minimum_healthy_percent, c.maximum_percent),
            (Some(0), Some(100))
        );
        let bad = |min, max| DeploymentConfiguration {
            minimum_healthy_percent: Some(min),
            maximum_percent: Some(max),
            ..Default::default()
        };
        assert!(deployment_configuration(Some(bad(101, 200)), REPLICA).is_err());
        assert!(deployment_configuration(Some(bad(-1, 200)), REPLICA).is_err());
        assert!(deployment_configuration(Some(bad(50, 99)), REPLICA).is_err());
        assert!(deployment_configuration(Some(bad(0, 200)), DAEMON).is_err());
        assert!(deployment_configuration(Some(bad(50, 150)), REPLICA).is_ok());
    }

    #[test]
    fn names_and_enums() {
        assert!(service_name("web-1_a").is_ok());
        assert!(service_name("").is_err());
        assert!(service_name("a b").is_err());
        assert!(service_name(&"x".repeat(256)).is_err());
        assert_eq!(scheduling_strategy(None).unwrap(), REPLICA);
        assert!(scheduling_strategy(Some("X")).is_err());
        assert!(matches!(
            launch_type(Some("FARGATE")),
            Err(EcsError::Unsupported(_))
        ));
        assert!(desired_count(Some(-1)).is_err());
    }
}
