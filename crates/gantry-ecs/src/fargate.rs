//! What the Fargate launch type asks of a task definition, as ECS checks it at registration: the awsvpc network
//! mode, a task-level size from Fargate's table, no privileged containers, links or host paths, and an execution
//! role when logs go to CloudWatch. Pure functions over the task definition; the launch type itself (placement on
//! platform capacity, the size as a cgroup limit) is not wired yet.

use gantry_model::ecs::TaskDefinition;

use crate::validate::{parse_task_cpu, parse_task_memory};

/// Fargate's task sizes: for each cpu value (units), the memory values (MiB) it takes.
fn memory_choices(cpu: i64) -> Option<Vec<i64>> {
    let range = |from: i64, to: i64, step: i64| (from..=to).step_by(step as usize).collect();
    Some(match cpu {
        256 => vec![512, 1024, 2048],
        512 => range(1024, 4096, 1024),
        1024 => range(2048, 8192, 1024),
        2048 => range(4096, 16384, 1024),
        4096 => range(8192, 30720, 1024),
        8192 => range(16384, 61440, 4096),
        16384 => range(32768, 122880, 8192),
        _ => return None,
    })
}

/// Whether (cpu units, memory MiB) is one of Fargate's task sizes.
pub fn valid_size(cpu: i64, memory: i64) -> bool {
    memory_choices(cpu).is_some_and(|m| m.contains(&memory))
}

/// The first reason `td` cannot run on Fargate, in ECS's words, or `None` when it can.
pub fn problem(td: &TaskDefinition) -> Option<String> {
    if td.network_mode() != "awsvpc" {
        return Some("Fargate only supports network mode 'awsvpc'.".into());
    }
    let cpu = match td.cpu.as_deref() {
        None => return Some("Fargate requires that 'cpu' be defined at the task level.".into()),
        Some(c) => match parse_task_cpu(c) {
            Some(v) => v,
            None => return Some(format!("Invalid 'cpu' setting for task: {c}")),
        },
    };
    let memory = match td.memory.as_deref() {
        None => return Some("Fargate requires that 'memory' be defined at the task level.".into()),
        Some(m) => match parse_task_memory(m) {
            Some(v) => v,
            None => return Some(format!("Invalid 'memory' setting for task: {m}")),
        },
    };
    if !valid_size(cpu, memory) {
        return Some(format!(
            "No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. See the Amazon ECS \
             documentation for the valid values."
        ));
    }
    for c in &td.container_definitions {
        let name = c.name();
        if c.privileged == Some(true) {
            return Some(format!(
                "Fargate does not support privileged containers ('{name}')."
            ));
        }
        if c.links.as_ref().is_some_and(|l| !l.is_empty()) {
            return Some(format!(
                "Links are not supported when networkMode=awsvpc ('{name}')."
            ));
        }
        if c.log_configuration
            .as_ref()
            .is_some_and(|l| l.log_driver == "awslogs")
            && td.execution_role_arn.is_none()
        {
            return Some(
                "Fargate requires task definition to have execution role ARN to support log driver awslogs."
                    .into(),
            );
        }
    }
    if td
        .volumes
        .iter()
        .any(|v| v.host.as_ref().is_some_and(|h| h.source_path.is_some()))
    {
        return Some("Fargate does not support host volumes with a sourcePath.".into());
    }
    if matches!(td.pid_mode.as_deref(), Some("host")) || td.ipc_mode.is_some() {
        return Some("Fargate supports pidMode 'task' only and no ipcMode.".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn td(value: serde_json::Value) -> TaskDefinition {
        let mut base = json!({
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1",
            "family": "web", "revision": 1, "status": "ACTIVE", "networkMode": "awsvpc",
            "cpu": "256", "memory": "512", "executionRoleArn": "arn:aws:iam::000000000000:role/exec",
            "containerDefinitions": [{"name": "web", "image": "nginx",
                "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g"}}}],
        });
        if let (Some(b), Some(v)) = (base.as_object_mut(), value.as_object()) {
            for (k, x) in v {
                b.insert(k.clone(), x.clone());
            }
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn fargate_sizes() {
        assert!(valid_size(256, 512) && valid_size(256, 2048) && !valid_size(256, 4096));
        assert!(valid_size(1024, 3072) && !valid_size(1024, 1024));
        assert!(valid_size(8192, 20480) && !valid_size(8192, 18432));
        assert!(valid_size(16384, 122880) && !valid_size(16384, 123904));
        assert!(!valid_size(128, 512) && !valid_size(3072, 8192));
    }

    #[test]
    fn the_docs_example_fits_and_each_rule_is_checked() {
        assert_eq!(problem(&td(json!({}))), None);
        assert_eq!(
            problem(&td(json!({"cpu": "1 vCPU", "memory": "2 GB"}))),
            None
        );
        let cases = [
            (json!({"networkMode": "bridge"}), "network mode"),
            (json!({"cpu": null}), "'cpu'"),
            (json!({"memory": null}), "'memory'"),
            (json!({"memory": "4096"}), "256 CPU, 4096 memory"),
            (json!({"executionRoleArn": null}), "execution role"),
            (
                json!({"containerDefinitions": [{"name": "a", "image": "x", "privileged": true}]}),
                "privileged",
            ),
            (
                json!({"containerDefinitions": [{"name": "a", "image": "x", "links": ["b"]}]}),
                "Links",
            ),
            (
                json!({"volumes": [{"name": "v", "host": {"sourcePath": "/data"}}]}),
                "sourcePath",
            ),
            (json!({"pidMode": "host"}), "pidMode"),
            (json!({"cpu": "lots"}), "Invalid 'cpu'"),
        ];
        for (change, expected) in cases {
            let p = problem(&td(change.clone())).unwrap_or_default();
            assert!(p.contains(expected), "{change}: {p}");
        }
    }
}
