//! What the ECS service stores beside the wire shapes.

use gantry_model::ecs::{ContainerDefinition, Task, TaskNetwork, Volume};
use serde::{Deserialize, Serialize};

/// A task as stored: the wire `Task` plus what Gantry resolved when it placed it, so that neither the agent nor
/// the resource accounting has to look up a task definition that may since have changed or gone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskRecord {
    pub task: Task,
    pub family: String,
    pub revision: i64,
    pub network_mode: String,
    /// The task definition's `pidMode` and `ipcMode`.
    pub pid_mode: Option<String>,
    pub ipc_mode: Option<String>,
    /// The task's network interface (awsvpc).
    pub network: Option<TaskNetwork>,
    /// Container definitions with overrides applied and host ports chosen.
    pub containers: Vec<ContainerDefinition>,
    pub volumes: Vec<Volume>,
    pub reserved_cpu: i64,
    pub reserved_memory: i64,
    /// RunTask's idempotency token: a retried call returns the tasks of the first.
    pub client_token: Option<String>,
    /// Asked to stop and deregistered from its service's target groups: its containers keep running (the agent is
    /// told RUNNING) until the target groups have drained it.
    pub draining: bool,
}

impl TaskRecord {
    /// Host ports this task holds on its instance: `(port, udp)`. An awsvpc task holds none: its ports are on its
    /// own address.
    pub fn host_ports(&self) -> Vec<(u16, bool)> {
        if self.network_mode == "awsvpc" {
            return Vec::new();
        }
        self.containers
            .iter()
            .flat_map(|c| c.port_mappings.iter())
            .filter_map(|p| {
                let port = u16::try_from(p.host_port?).ok().filter(|p| *p != 0)?;
                Some((port, p.protocol.as_deref() == Some("udp")))
            })
            .collect()
    }

    /// A task holds its resources until it is STOPPED.
    pub fn holds_resources(&self) -> bool {
        !self.task.is_stopped()
    }
}

/// A task definition as stored: the wire shape has no tags, DescribeTaskDefinition returns them beside it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskDefinitionRecord {
    pub task_definition: gantry_model::ecs::TaskDefinition,
    pub tags: Vec<gantry_model::ecs::Tag>,
}

#[cfg(test)]
mod tests {
    use gantry_model::ecs::PortMapping;

    use super::*;

    #[test]
    fn an_awsvpc_task_holds_no_host_port() {
        let mut r = TaskRecord {
            network_mode: "bridge".into(),
            containers: vec![ContainerDefinition {
                port_mappings: vec![PortMapping {
                    container_port: Some(8080),
                    host_port: Some(8080),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(r.host_ports(), [(8080, false)]);
        r.network_mode = "awsvpc".into();
        assert!(r.host_ports().is_empty());
    }
}
