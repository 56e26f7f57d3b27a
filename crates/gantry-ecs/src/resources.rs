//! Resource accounting, derived from the tasks and never stored: what an instance has left, how many tasks are
//! running or pending, the counts of a cluster. Pure functions over records.

use gantry_model::ecs::{status, ContainerInstance, Resource};
use gantry_scheduler::PortSet;

use crate::records::TaskRecord;

/// Host ports an agent never hands out (as the ECS agent reserves by default).
pub const RESERVED_PORTS: [u16; 5] = [22, 2375, 2376, 51678, 51679];

pub fn registered_integer(ci: &ContainerInstance, name: &str) -> i64 {
    ci.registered(name).map(|r| r.integer_value).unwrap_or(0)
}

fn registered_ports(ci: &ContainerInstance, name: &str) -> Vec<u16> {
    ci.registered(name)
        .and_then(|r| r.string_set_value.as_ref())
        .map(|v| v.iter().filter_map(|p| p.parse().ok()).collect())
        .unwrap_or_default()
}

/// The host ports the instance registered as taken, `(port, udp)`.
pub fn reserved_ports(ci: &ContainerInstance) -> impl Iterator<Item = (u16, bool)> {
    let tcp = registered_ports(ci, "PORTS")
        .into_iter()
        .map(|p| (p, false));
    tcp.chain(
        registered_ports(ci, "PORTS_UDP")
            .into_iter()
            .map(|p| (p, true)),
    )
}

/// What the tasks on `ci` hold: cpu, memory, and host ports (registered reservations included).
pub fn usage<'a>(
    ci: &ContainerInstance,
    tasks: impl Iterator<Item = &'a TaskRecord>,
) -> (i64, i64, PortSet) {
    let mut ports = PortSet::default();
    for (port, udp) in reserved_ports(ci) {
        ports.insert(port, udp);
    }
    let (mut cpu, mut memory) = (0, 0);
    for t in tasks.filter(|t| {
        t.holds_resources()
            && t.task.container_instance_arn.as_deref() == Some(&ci.container_instance_arn)
    }) {
        cpu += t.reserved_cpu;
        memory += t.reserved_memory;
        for (port, udp) in t.host_ports() {
            ports.insert(port, udp);
        }
    }
    (cpu, memory, ports)
}

fn port_strings(ports: &std::collections::BTreeSet<u16>) -> Vec<String> {
    ports.iter().map(|p| p.to_string()).collect()
}

/// The instance as DescribeContainerInstances shows it: remaining resources and task counts filled in.
pub fn describe_instance<'a>(
    ci: &ContainerInstance,
    tasks: impl Iterator<Item = &'a TaskRecord> + Clone,
    connected: bool,
) -> ContainerInstance {
    let (cpu, memory, ports) = usage(ci, tasks.clone());
    let mut out = ci.clone();
    out.remaining_resources = vec![
        Resource::integer("CPU", registered_integer(ci, "CPU") - cpu),
        Resource::integer("MEMORY", registered_integer(ci, "MEMORY") - memory),
        Resource::string_set("PORTS", port_strings(&ports.tcp)),
        Resource::string_set("PORTS_UDP", port_strings(&ports.udp)),
    ];
    let mine: Vec<&TaskRecord> = tasks
        .filter(|t| t.task.container_instance_arn.as_deref() == Some(&ci.container_instance_arn))
        .collect();
    out.running_tasks_count = mine
        .iter()
        .filter(|t| t.task.last_status == status::RUNNING)
        .count() as i64;
    out.pending_tasks_count = mine
        .iter()
        .filter(|t| is_pending(&t.task.last_status))
        .count() as i64;
    out.agent_connected = connected && ci.status != "INACTIVE";
    out
}

/// ECS counts a task as pending from PROVISIONING until it runs.
pub fn is_pending(last_status: &str) -> bool {
    matches!(
        last_status,
        status::PROVISIONING | status::PENDING | status::ACTIVATING
    )
}

#[cfg(test)]
mod tests {
    use gantry_model::ecs::{ContainerDefinition, PortMapping, Task};

    use super::*;

    fn instance() -> ContainerInstance {
        ContainerInstance {
            container_instance_arn: "ci1".into(),
            registered_resources: vec![
                Resource::integer("CPU", 2048),
                Resource::integer("MEMORY", 4096),
                Resource::string_set("PORTS", vec!["22".into()]),
            ],
            status: "ACTIVE".into(),
            ..Default::default()
        }
    }

    fn task(last: &str, host_port: i64) -> TaskRecord {
        TaskRecord {
            task: Task {
                container_instance_arn: Some("ci1".into()),
                last_status: last.into(),
                ..Default::default()
            },
            containers: vec![ContainerDefinition {
                port_mappings: vec![PortMapping {
                    container_port: Some(80),
                    host_port: Some(host_port),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            reserved_cpu: 512,
            reserved_memory: 1024,
            ..Default::default()
        }
    }

    #[test]
    fn stopped_tasks_free_their_resources() {
        let tasks = [
            task("RUNNING", 8080),
            task("PENDING", 49200),
            task("STOPPED", 9000),
        ];
        let d = describe_instance(&instance(), tasks.iter(), true);
        assert_eq!(d.remaining_resources[0].integer_value, 2048 - 1024);
        assert_eq!(d.remaining_resources[1].integer_value, 4096 - 2048);
        assert_eq!(
            d.remaining_resources[2].string_set_value.as_ref().unwrap(),
            &vec!["22", "8080", "49200"]
        );
        assert_eq!((d.running_tasks_count, d.pending_tasks_count), (1, 1));
        assert!(d.agent_connected);
    }
}
