//! Validation of task definitions against the ECS API reference. Pure functions: the input in, an error out.

use std::collections::HashSet;

use gantry_model::ecs::{ContainerDefinition, TaskDefinition};

use crate::error::{invalid, reject_unsupported, EcsError, Result};

fn client(msg: impl Into<String>) -> EcsError {
    EcsError::Client(msg.into())
}

pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Task-level cpu: `"1024"` units or `"1 vCPU"`, `"0.5 vcpu"`.
pub fn parse_task_cpu(s: &str) -> Option<i64> {
    let t = s.trim().to_ascii_lowercase();
    match t.strip_suffix("vcpu") {
        Some(n) => n
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| *v > 0.0)
            .map(|v| (v * 1024.0) as i64),
        None => t.parse::<i64>().ok().filter(|v| *v >= 128),
    }
}

/// Task-level memory: `"512"` MiB or `"1 GB"`, `"2gb"`.
pub fn parse_task_memory(s: &str) -> Option<i64> {
    let t = s.trim().to_ascii_lowercase();
    match t.strip_suffix("gb") {
        Some(n) => n
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| *v > 0.0)
            .map(|v| (v * 1024.0) as i64),
        None => t.parse::<i64>().ok().filter(|v| *v >= 6),
    }
}

const LOG_DRIVERS: [&str; 3] = ["awslogs", "json-file", "none"];
const ULIMITS: [&str; 15] = [
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

fn validate_container(
    c: &ContainerDefinition,
    td: &TaskDefinition,
    names: &HashSet<&str>,
    volumes: &HashSet<&str>,
) -> Result<()> {
    let name = c.name();
    if !valid_name(name) {
        return Err(client("Container name should not be null or empty, and may contain only letters, numbers, hyphens and underscores."));
    }
    reject_unsupported(&format!("containerDefinitions[{name}]"), &c.unsupported)?;
    if c.image.as_deref().unwrap_or("").trim().is_empty() {
        return Err(client(format!(
            "Container.image should not be null or empty. (container {name})"
        )));
    }
    if c.memory.is_none() && c.memory_reservation.is_none() && td.memory.is_none() {
        return Err(client(format!("Invalid setting for container '{name}'. At least one of 'memory' or 'memoryReservation' must be specified.")));
    }
    if let Some(m) = c.memory {
        if m < 6 {
            return Err(client(format!(
                "Invalid 'memory' setting for container '{name}'. The minimum is 6 MiB."
            )));
        }
        if c.memory_reservation.is_some_and(|r| r > m) {
            return Err(client(format!("Invalid setting for container '{name}'. 'memory' must be greater than or equal to 'memoryReservation'.")));
        }
    }
    if c.memory_reservation.is_some_and(|r| r < 6) {
        return Err(client(format!(
            "Invalid 'memoryReservation' setting for container '{name}'. The minimum is 6 MiB."
        )));
    }
    if c.cpu < 0 || c.cpu > 10 * 1024 * 192 {
        return Err(client(format!(
            "Invalid 'cpu' setting for container '{name}'."
        )));
    }
    let mode = td.network_mode();
    for p in &c.port_mappings {
        let cp = p.container_port.ok_or_else(|| {
            client(format!(
                "Container '{name}': portMappings need a containerPort"
            ))
        })?;
        if !(1..=65535).contains(&cp) {
            return Err(client(format!(
                "Invalid containerPort {cp} for container '{name}'"
            )));
        }
        if let Some(hp) = p.host_port {
            if !(0..=65535).contains(&hp) {
                return Err(client(format!(
                    "Invalid hostPort {hp} for container '{name}'"
                )));
            }
            if mode == "host" && hp != 0 && hp != cp {
                return Err(client("When networkMode=host, the hostPort must either be blank or equal to the containerPort."));
            }
            if mode == "awsvpc" && hp != cp {
                return Err(client("When networkMode=awsvpc, the host ports and container ports in port mappings must match."));
            }
        }
        if !matches!(p.protocol.as_deref(), None | Some("tcp") | Some("udp")) {
            return Err(invalid(format!(
                "Invalid protocol for container '{name}': must be tcp or udp"
            )));
        }
        if p.container_port_range.is_some() {
            return Err(EcsError::Unsupported(
                "portMappings.containerPortRange".into(),
            ));
        }
    }
    if mode != "bridge" && c.links.as_ref().is_some_and(|l| !l.is_empty()) {
        return Err(client(
            "Links are only supported when networkMode is bridge.",
        ));
    }
    for link in c.links.iter().flatten() {
        let target = link.split(':').next().unwrap_or("");
        if !names.contains(target) {
            return Err(client(format!(
                "Container '{name}' links to unknown container '{target}'."
            )));
        }
    }
    for d in c.depends_on.iter().flatten() {
        if !names.contains(d.container_name.as_str()) || d.container_name == name {
            return Err(client(format!(
                "Container '{name}' depends on unknown container '{}'.",
                d.container_name
            )));
        }
        match d.condition.as_str() {
            "START" | "COMPLETE" | "SUCCESS" => {}
            "HEALTHY" => {
                if td
                    .container(&d.container_name)
                    .and_then(|t| t.health_check.as_ref())
                    .is_none()
                {
                    return Err(client(format!(
                        "Container '{name}' depends on '{}' being HEALTHY, but it has no healthCheck.",
                        d.container_name
                    )));
                }
            }
            other => return Err(invalid(format!("Invalid dependsOn condition: {other}"))),
        }
    }
    if let Some(h) = &c.health_check {
        match h.command.first().map(String::as_str) {
            Some("CMD" | "CMD-SHELL" | "NONE") if h.command.len() > 1 || h.command[0] == "NONE" => {}
            _ => return Err(client(format!("Invalid healthCheck command for container '{name}': it must start with CMD or CMD-SHELL followed by the command."))),
        }
        let check = |v: Option<i64>, lo: i64, hi: i64, what: &str| match v {
            Some(v) if v < lo || v > hi => Err(client(format!(
                "healthCheck.{what} must be between {lo} and {hi}"
            ))),
            _ => Ok(()),
        };
        check(h.interval, 5, 300, "interval")?;
        check(h.timeout, 2, 120, "timeout")?;
        check(h.retries, 1, 10, "retries")?;
        check(h.start_period, 0, 300, "startPeriod")?;
    }
    for u in c.ulimits.iter().flatten() {
        if !ULIMITS.contains(&u.name.as_str()) {
            return Err(invalid(format!("Invalid ulimit name: {}", u.name)));
        }
        if u.soft_limit > u.hard_limit {
            return Err(client(format!(
                "ulimit {}: softLimit must not be greater than hardLimit",
                u.name
            )));
        }
    }
    for m in &c.mount_points {
        let source = m.source_volume.as_deref().unwrap_or("");
        if !volumes.contains(source) {
            return Err(client(format!(
                "Invalid 'mountPoints' setting for container '{name}': unknown volume '{source}'."
            )));
        }
        if !m
            .container_path
            .as_deref()
            .is_some_and(|p| p.starts_with('/'))
        {
            return Err(client(format!("Invalid 'mountPoints' setting for container '{name}': containerPath must be absolute.")));
        }
    }
    for v in &c.volumes_from {
        if !v
            .source_container
            .as_deref()
            .is_some_and(|s| names.contains(s) && s != name)
        {
            return Err(client(format!(
                "Invalid 'volumesFrom' setting for container '{name}'."
            )));
        }
    }
    if let Some(l) = &c.log_configuration {
        if !LOG_DRIVERS.contains(&l.log_driver.as_str()) {
            return Err(EcsError::Unsupported(format!("logDriver {}", l.log_driver)));
        }
        if l.secret_options.as_ref().is_some_and(|s| !s.is_empty()) {
            return Err(EcsError::Unsupported(
                "logConfiguration.secretOptions".into(),
            ));
        }
        let opts = l.options.clone().unwrap_or_default();
        if l.log_driver == "awslogs" && opts.get("awslogs-group").is_none_or(|g| g.is_empty()) {
            return Err(client(format!(
                "Container '{name}': the awslogs log driver requires the awslogs-group option."
            )));
        }
    }
    if c.stop_timeout.is_some_and(|t| !(0..=120).contains(&t))
        || c.start_timeout.is_some_and(|t| t < 0)
    {
        return Err(invalid(format!(
            "Invalid stopTimeout or startTimeout for container '{name}'"
        )));
    }
    if c.system_controls.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(EcsError::Unsupported(
            "containerDefinitions.systemControls".into(),
        ));
    }
    Ok(())
}

/// `runtimePlatform`: Linux on x86-64 or ARM64 (whether the host can run ARM64 is decided when a task is placed).
fn runtime_platform(td: &TaskDefinition) -> Result<()> {
    let Some(p) = &td.runtime_platform else {
        return Ok(());
    };
    match p.cpu_architecture.as_deref() {
        None | Some("X86_64") | Some("ARM64") => {}
        Some(other) => {
            return Err(invalid(format!(
                "Invalid runtimePlatform.cpuArchitecture: {other}"
            )))
        }
    }
    match p.operating_system_family.as_deref() {
        None | Some("LINUX") => Ok(()),
        Some(f) if f.starts_with("WINDOWS_SERVER_") => Err(EcsError::Unsupported(format!(
            "runtimePlatform.operatingSystemFamily {f}: Gantry runs Linux containers only"
        ))),
        Some(other) => Err(invalid(format!(
            "Invalid runtimePlatform.operatingSystemFamily: {other}"
        ))),
    }
}

/// Checks a task definition about to be registered.
pub fn task_definition(td: &TaskDefinition) -> Result<()> {
    if !valid_name(&td.family) {
        return Err(client(
            "Family contains invalid characters or is longer than 255 characters.",
        ));
    }
    if td.container_definitions.is_empty() {
        return Err(client("Container list cannot be empty."));
    }
    if td.container_definitions.len() > 10 {
        return Err(client(
            "Too many containers: a task definition can have at most 10.",
        ));
    }
    match td.network_mode() {
        "bridge" | "host" | "none" | "awsvpc" => {}
        other => return Err(invalid(format!("Invalid networkMode: {other}"))),
    }
    for c in td.requires_compatibilities.iter().flatten() {
        match c.as_str() {
            "EC2" | "EXTERNAL" => {}
            "FARGATE" => {
                if let Some(problem) = crate::fargate::problem(td) {
                    return Err(client(format!(
                        "Task definition does not support launch_type FARGATE. {problem}"
                    )));
                }
            }
            "MANAGED_INSTANCES" => {
                return Err(EcsError::Unsupported(format!(
                    "requiresCompatibilities {c}"
                )))
            }
            other => return Err(invalid(format!("Invalid compatibility: {other}"))),
        }
    }
    if let Some(cpu) = &td.cpu {
        parse_task_cpu(cpu)
            .ok_or_else(|| client(format!("Invalid 'cpu' setting for task: {cpu}")))?;
    }
    if let Some(mem) = &td.memory {
        parse_task_memory(mem)
            .ok_or_else(|| client(format!("Invalid 'memory' setting for task: {mem}")))?;
    }
    runtime_platform(td)?;
    if let Some(e) = &td.ephemeral_storage {
        if !(21..=200).contains(&e.size_in_gib) {
            return Err(client(format!(
                "The ephemeral storage size {} GiB is not valid: it must be between 21 and 200 GiB.",
                e.size_in_gib
            )));
        }
    }
    if matches!(td.pid_mode.as_deref(), Some(m) if m != "host" && m != "task")
        || matches!(td.ipc_mode.as_deref(), Some(m) if !["host", "task", "none"].contains(&m))
    {
        return Err(invalid("Invalid pidMode or ipcMode"));
    }
    let mut volume_names = HashSet::new();
    for v in &td.volumes {
        reject_unsupported("volumes", &v.unsupported)?;
        let name = v.name.as_deref().unwrap_or("");
        if !valid_name(name) || !volume_names.insert(name) {
            return Err(client(format!(
                "Invalid or duplicate volume name: '{name}'"
            )));
        }
        if let Some(src) = v.host.as_ref().and_then(|h| h.source_path.as_deref()) {
            if !src.starts_with('/') {
                return Err(client(format!(
                    "Volume '{name}': host.sourcePath must be an absolute path."
                )));
            }
        }
        if let Some(d) = &v.docker_volume_configuration {
            if v.host.is_some() {
                return Err(client(format!(
                    "Volume '{name}': host and dockerVolumeConfiguration are exclusive."
                )));
            }
            match d.scope.as_deref() {
                None | Some("task") if d.autoprovision == Some(true) => {
                    return Err(client(
                        "autoprovision is only supported for shared-scope Docker volumes.",
                    ))
                }
                None | Some("task") | Some("shared") => {}
                Some(other) => {
                    return Err(invalid(format!("Invalid Docker volume scope: {other}")))
                }
            }
        }
    }
    let mut names = HashSet::new();
    for c in &td.container_definitions {
        if !names.insert(c.name()) {
            return Err(client(format!("Duplicate container name: '{}'", c.name())));
        }
    }
    for c in &td.container_definitions {
        validate_container(c, td, &names, &volume_names)?;
    }
    if !td.container_definitions.iter().any(|c| c.is_essential()) {
        return Err(client(
            "At least one container in the task definition must be essential.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use gantry_model::ecs::{ContainerDependency, HealthCheck, PortMapping};

    use super::*;

    fn container(name: &str) -> ContainerDefinition {
        ContainerDefinition {
            name: Some(name.into()),
            image: Some("img".into()),
            memory: Some(64),
            ..Default::default()
        }
    }

    fn td(cs: Vec<ContainerDefinition>) -> TaskDefinition {
        TaskDefinition {
            family: "web".into(),
            container_definitions: cs,
            ..Default::default()
        }
    }

    #[test]
    fn accepts_a_plain_definition() {
        assert!(task_definition(&td(vec![container("a")])).is_ok());
    }

    #[test]
    fn refuses_what_ecs_refuses() {
        let mut no_mem = container("a");
        no_mem.memory = None;
        assert!(task_definition(&td(vec![no_mem])).is_err());
        assert!(task_definition(&td(vec![container("a"), container("a")])).is_err());
        let mut bad_port = container("a");
        bad_port.port_mappings = vec![PortMapping {
            container_port: Some(70000),
            ..Default::default()
        }];
        assert!(task_definition(&td(vec![bad_port])).is_err());
        let mut no_essential = container("a");
        no_essential.essential = Some(false);
        assert!(task_definition(&td(vec![no_essential])).is_err());
        let mut dep = container("a");
        dep.depends_on = Some(vec![ContainerDependency {
            container_name: "b".into(),
            condition: "HEALTHY".into(),
        }]);
        // b exists but has no health check.
        assert!(task_definition(&td(vec![dep.clone(), container("b")])).is_err());
        let mut b = container("b");
        b.health_check = Some(HealthCheck {
            command: vec!["CMD".into(), "true".into()],
            ..Default::default()
        });
        assert!(task_definition(&td(vec![dep, b])).is_ok());
        let mut host = td(vec![container("a")]);
        host.network_mode = Some("host".into());
        host.container_definitions[0].port_mappings = vec![PortMapping {
            container_port: Some(80),
            host_port: Some(81),
            ..Default::default()
        }];
        assert!(task_definition(&host).is_err());
    }

    #[test]
    fn parses_task_sizes() {
        assert_eq!(parse_task_cpu("1 vCPU"), Some(1024));
        assert_eq!(parse_task_cpu("256"), Some(256));
        assert_eq!(parse_task_cpu("x"), None);
        assert_eq!(parse_task_memory("2 GB"), Some(2048));
        assert_eq!(parse_task_memory("512"), Some(512));
    }
}
