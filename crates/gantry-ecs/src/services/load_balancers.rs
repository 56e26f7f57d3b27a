//! A service's `loadBalancers`: checked against its task definition and the target groups as ECS checks them,
//! and the target a task is registered as (its container instance's EC2 id and the host port of the container
//! port, for `instance` target groups).

use gantry_model::ecs::{ContainerDefinition, LoadBalancer, TaskDefinition};

use crate::error::{invalid, EcsError, Result};
use crate::load_balancing::LoadBalancing;

/// Target groups one service may name.
pub const MAX_LOAD_BALANCERS: usize = 5;

/// Checks the service's load balancers against its task definition and the target groups.
pub fn validate(
    lb: Option<&dyn LoadBalancing>,
    region: &str,
    list: &[LoadBalancer],
    td: &TaskDefinition,
) -> Result<()> {
    if list.is_empty() {
        return Ok(());
    }
    if list.len() > MAX_LOAD_BALANCERS {
        return Err(invalid(format!(
            "A service can have at most {MAX_LOAD_BALANCERS} load balancers (target groups)."
        )));
    }
    let Some(lb) = lb else {
        return Err(EcsError::Unsupported(
            "loadBalancers (no load balancing service)".into(),
        ));
    };
    let mut seen = Vec::new();
    for l in list {
        if l.load_balancer_name.is_some() {
            return Err(invalid(
                "Classic Load Balancers (loadBalancerName) are not supported by Gantry; use targetGroupArn.",
            ));
        }
        let Some(arn) = l.target_group_arn.as_deref() else {
            return Err(invalid(
                "targetGroupArn is required for each load balancer of a service.",
            ));
        };
        let (Some(name), Some(port)) = (l.container_name.as_deref(), l.container_port) else {
            return Err(invalid(
                "containerName and containerPort are required for each load balancer of a service.",
            ));
        };
        let Some(container) = td
            .container_definitions
            .iter()
            .find(|c| c.name.as_deref() == Some(name))
        else {
            return Err(invalid(format!(
                "The container {name} does not exist in the task definition."
            )));
        };
        if !container
            .port_mappings
            .iter()
            .any(|p| p.container_port == Some(port))
        {
            return Err(invalid(format!(
                "The container {name} did not have a container port {port} defined."
            )));
        }
        let Some(tg) = lb.target_group(region, arn) else {
            return Err(invalid(format!(
                "The target group with targetGroupArn {arn} does not exist."
            )));
        };
        let mode = td.network_mode();
        match (tg.target_type.as_str(), mode) {
            ("ip", "awsvpc") | ("instance", "bridge" | "host") => {}
            ("ip", _) => {
                return Err(invalid(format!(
                    "The provided target group {arn} has target type ip, which is incompatible with the {mode} network mode specified in the task definition."
                )))
            }
            (t, _) => {
                return Err(invalid(format!(
                    "The provided target group {arn} has target type {t}, which is incompatible with the {mode} network mode specified in the task definition."
                )))
            }
        }
        if !tg.has_load_balancer {
            return Err(invalid(format!(
                "The target group with targetGroupArn {arn} does not have an associated load balancer."
            )));
        }
        if seen.contains(&(arn, name, port)) {
            return Err(invalid(format!(
                "The target group {arn} is given twice for the same container port."
            )));
        }
        seen.push((arn, name, port));
    }
    Ok(())
}

/// The host port a task's container listens on for `container_port`.
pub fn host_port(
    containers: &[ContainerDefinition],
    name: &str,
    container_port: i64,
) -> Option<u16> {
    containers
        .iter()
        .find(|c| c.name.as_deref() == Some(name))?
        .port_mappings
        .iter()
        .find(|p| p.container_port == Some(container_port))
        .and_then(|p| p.host_port)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use gantry_model::ecs::PortMapping;

    use super::*;
    use crate::load_balancing::{LbFuture, TargetGroupFacts, TargetState};

    struct Groups(HashMap<&'static str, TargetGroupFacts>);

    impl LoadBalancing for Groups {
        fn target_group(&self, _: &str, arn: &str) -> Option<TargetGroupFacts> {
            self.0.get(arn).cloned()
        }
        fn target_state(&self, _: &str, _: &str, _: &str, _: u16) -> Option<TargetState> {
            None
        }
        fn register<'a>(&'a self, _: &'a str, _: &'a str, _: &'a str, _: u16) -> LbFuture<'a> {
            Box::pin(async { Ok(()) })
        }
        fn deregister<'a>(&'a self, _: &'a str, _: &'a str, _: &'a str, _: u16) -> LbFuture<'a> {
            Box::pin(async { Ok(()) })
        }
    }

    fn facts(t: &str, used: bool) -> TargetGroupFacts {
        TargetGroupFacts {
            target_type: t.into(),
            has_load_balancer: used,
        }
    }

    fn td(mode: &str) -> TaskDefinition {
        TaskDefinition {
            network_mode: Some(mode.into()),
            container_definitions: vec![ContainerDefinition {
                name: Some("web".into()),
                port_mappings: vec![PortMapping {
                    container_port: Some(8080),
                    host_port: Some(0),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn lb(arn: &str, name: &str, port: i64) -> LoadBalancer {
        LoadBalancer {
            target_group_arn: Some(arn.into()),
            container_name: Some(name.into()),
            container_port: Some(port),
            load_balancer_name: None,
        }
    }

    #[test]
    fn checks_as_ecs_does() {
        let groups = Groups(HashMap::from([
            ("tg", facts("instance", true)),
            ("ip", facts("ip", true)),
            ("lonely", facts("instance", false)),
        ]));
        let g: Option<&dyn LoadBalancing> = Some(&groups);
        assert!(validate(g, "r", &[lb("tg", "web", 8080)], &td("bridge")).is_ok());
        let message = |list: &[LoadBalancer], mode: &str| match validate(g, "r", list, &td(mode)) {
            Err(EcsError::InvalidParameter(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(
            message(&[lb("tg", "api", 8080)], "bridge").contains("container api does not exist")
        );
        assert!(message(&[lb("tg", "web", 9090)], "bridge")
            .contains("did not have a container port 9090"));
        assert!(message(&[lb("nope", "web", 8080)], "bridge").contains("does not exist"));
        assert!(message(&[lb("lonely", "web", 8080)], "bridge")
            .contains("does not have an associated load balancer"));
        assert!(message(&[lb("ip", "web", 8080)], "bridge")
            .contains("target type ip, which is incompatible with the bridge"));
        assert!(
            message(&[lb("tg", "web", 8080), lb("tg", "web", 8080)], "bridge").contains("twice")
        );
        let six: Vec<LoadBalancer> = (0..6).map(|_| lb("tg", "web", 8080)).collect();
        assert!(message(&six, "bridge").contains("at most 5"));
        assert!(validate(None, "r", &[lb("tg", "web", 8080)], &td("bridge")).is_err());
        assert!(validate(None, "r", &[], &td("bridge")).is_ok());
    }

    #[test]
    fn host_ports() {
        let mut c = td("bridge").container_definitions;
        assert_eq!(
            host_port(&c, "web", 8080),
            None,
            "a dynamic port not chosen yet"
        );
        c[0].port_mappings[0].host_port = Some(49153);
        assert_eq!(host_port(&c, "web", 8080), Some(49153));
        assert_eq!(host_port(&c, "api", 8080), None);
    }
}
