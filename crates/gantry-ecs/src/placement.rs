//! From ECS records to the scheduler's plain data and back: the wire placement strategies and constraints parsed
//! (malformed ones are InvalidParameterException), and the cluster's instances as placement candidates with what
//! the cluster query language can ask about them.

use std::collections::HashMap;

use gantry_model::ecs::{ContainerInstance, PlacementConstraint, PlacementStrategy};
use gantry_scheduler::{self as scheduler, Candidate, InstanceFacts, PortSet};

use crate::error::{invalid, Result};
use crate::records::TaskRecord;
use crate::resources;

/// Parsed placement parameters of a request (RunTask, a service) together with its task definition's.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    pub strategies: Vec<scheduler::PlacementStrategy>,
    pub constraints: Vec<scheduler::PlacementConstraint>,
}

impl Placement {
    /// Checks counts and syntax as ECS does. `definition` holds the task definition's constraints (memberOf only),
    /// which apply on top of the request's and do not count towards its limit.
    pub fn parse(
        strategies: &[PlacementStrategy],
        constraints: &[PlacementConstraint],
        definition: &[PlacementConstraint],
    ) -> Result<Placement> {
        let bad = |e: scheduler::InvalidPlacement| invalid(e.to_string());
        scheduler::PlacementStrategy::check_count(strategies.len()).map_err(bad)?;
        scheduler::PlacementConstraint::check_count(constraints.len()).map_err(bad)?;
        let strategies = strategies
            .iter()
            .map(|s| {
                let kind = s.kind.as_deref().unwrap_or_default();
                scheduler::PlacementStrategy::from_wire(kind, s.field.as_deref())
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(bad)?;
        let constraints = constraints
            .iter()
            .chain(definition)
            .map(|c| {
                let kind = c.kind.as_deref().unwrap_or_default();
                scheduler::PlacementConstraint::from_wire(kind, c.expression.as_deref())
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(bad)?;
        Ok(Placement {
            strategies,
            constraints,
        })
    }

    /// Whether the memberOf constraints admit the instance (what a DAEMON service runs on).
    pub fn selects(&self, facts: &InstanceFacts) -> bool {
        self.constraints.iter().all(|c| match c {
            scheduler::PlacementConstraint::MemberOf(e) => e.matches(facts),
            scheduler::PlacementConstraint::DistinctInstance => true,
        })
    }
}

/// What the tasks on one instance hold and are.
#[derive(Default)]
struct Held {
    cpu: i64,
    memory: i64,
    ports: Vec<(u16, bool)>,
    running: i64,
    groups: HashMap<String, u32>,
}

/// Every instance that may take tasks (ACTIVE; disconnected ones included, they fail with AGENT), as candidates
/// with resources left and facts, in one pass over the cluster's tasks.
pub fn candidates(
    instances: &[&ContainerInstance],
    tasks: &[TaskRecord],
    connected: impl Fn(&str) -> bool,
) -> Vec<Candidate> {
    let mut held: HashMap<&str, Held> = instances
        .iter()
        .map(|i| (i.container_instance_arn.as_str(), Held::default()))
        .collect();
    for t in tasks {
        let Some(h) = t
            .task
            .container_instance_arn
            .as_deref()
            .and_then(|arn| held.get_mut(arn))
        else {
            continue;
        };
        if t.holds_resources() {
            h.cpu += t.reserved_cpu;
            h.memory += t.reserved_memory;
            h.ports.extend(t.host_ports());
        }
        if t.task.last_status == gantry_model::ecs::status::RUNNING {
            h.running += 1;
        }
        // A task counts in its group while it runs or is about to (spread, distinctInstance, task:group).
        if !t.task.is_stopped() && t.task.desired_status != gantry_model::ecs::status::STOPPED {
            if let Some(g) = &t.task.group {
                *h.groups.entry(g.clone()).or_default() += 1;
            }
        }
    }
    instances
        .iter()
        .map(|ci| {
            let h = held
                .remove(ci.container_instance_arn.as_str())
                .unwrap_or_default();
            let mut ports = PortSet::default();
            for (port, udp) in resources::reserved_ports(ci).chain(h.ports) {
                ports.insert(port, udp);
            }
            Candidate {
                id: ci.container_instance_arn.clone(),
                cpu_remaining: resources::registered_integer(ci, "CPU") - h.cpu,
                memory_remaining: resources::registered_integer(ci, "MEMORY") - h.memory,
                ports_used: ports,
                facts: InstanceFacts {
                    agent_connected: ci.status != "INACTIVE"
                        && connected(&ci.container_instance_arn),
                    running_tasks_count: h.running,
                    task_groups: h.groups.into_iter().collect(),
                    ..facts(ci)
                },
            }
        })
        .collect()
}

/// What the query language knows of an instance from its record alone (no task counts, connection unknown).
pub fn facts(ci: &ContainerInstance) -> InstanceFacts {
    InstanceFacts {
        agent_connected: ci.agent_connected,
        agent_version: ci.version_info.agent_version.clone().unwrap_or_default(),
        attributes: ci
            .attributes
            .iter()
            .map(|a| (a.name.clone(), a.value.clone()))
            .collect(),
        ec2_instance_id: ci.ec2_instance_id.clone(),
        registered_at: ci.registered_at.map(|t| t as i64).unwrap_or(0),
        running_tasks_count: ci.running_tasks_count,
        task_groups: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use gantry_model::ecs::{Attribute, Resource, Task};

    use super::*;

    fn instance(arn: &str, az: &str) -> ContainerInstance {
        ContainerInstance {
            container_instance_arn: arn.into(),
            status: "ACTIVE".into(),
            registered_resources: vec![
                Resource::integer("CPU", 1024),
                Resource::integer("MEMORY", 2048),
                Resource::string_set("PORTS", vec!["22".into()]),
            ],
            attributes: vec![Attribute {
                name: "ecs.availability-zone".into(),
                value: Some(az.into()),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn task(on: &str, group: &str, last: &str, desired: &str) -> TaskRecord {
        TaskRecord {
            task: Task {
                container_instance_arn: Some(on.into()),
                group: Some(group.into()),
                last_status: last.into(),
                desired_status: desired.into(),
                ..Default::default()
            },
            reserved_cpu: 256,
            reserved_memory: 512,
            ..Default::default()
        }
    }

    #[test]
    fn candidates_count_resources_groups_and_running_tasks() {
        let (a, b) = (instance("a", "z1"), instance("b", "z2"));
        let tasks = vec![
            task("a", "service:web", "RUNNING", "RUNNING"),
            task("a", "service:web", "PENDING", "RUNNING"),
            // Being stopped: still holds resources, no longer in its group.
            task("a", "service:web", "RUNNING", "STOPPED"),
            task("b", "family:x", "STOPPED", "STOPPED"),
            task("elsewhere", "service:web", "RUNNING", "RUNNING"),
        ];
        let c = candidates(&[&a, &b], &tasks, |arn| arn == "a");
        assert_eq!(c[0].cpu_remaining, 1024 - 3 * 256);
        assert_eq!(c[0].memory_remaining, 2048 - 3 * 512);
        assert_eq!(c[0].facts.group_tasks("service:web"), 2);
        assert_eq!(c[0].facts.running_tasks_count, 2);
        assert!(c[0].facts.agent_connected);
        assert!(c[0].ports_used.tcp.contains(&22));
        assert_eq!(c[1].cpu_remaining, 1024);
        assert!(!c[1].facts.agent_connected);
        assert_eq!(
            c[1].facts.attribute("ecs.availability-zone"),
            Some(&Some("z2".into()))
        );
    }

    #[test]
    fn parse_refuses_what_ecs_refuses() {
        let s = |k: &str, f: Option<&str>| PlacementStrategy {
            kind: Some(k.into()),
            field: f.map(String::from),
        };
        let c = |k: &str, e: Option<&str>| PlacementConstraint {
            kind: Some(k.into()),
            expression: e.map(String::from),
        };
        let ok = Placement::parse(
            &[
                s("spread", Some("attribute:ecs.availability-zone")),
                s("binpack", Some("memory")),
            ],
            &[c("distinctInstance", None)],
            &[c("memberOf", Some("attribute:ecs.os-type == linux"))],
        )
        .unwrap();
        assert_eq!((ok.strategies.len(), ok.constraints.len()), (2, 2));
        assert!(Placement::parse(&[s("binpack", Some("disk"))], &[], &[]).is_err());
        assert!(Placement::parse(&[s("pack", None)], &[], &[]).is_err());
        assert!(Placement::parse(&[], &[c("memberOf", Some("attribute:x =="))], &[]).is_err());
        assert!(Placement::parse(&vec![s("random", None); 6], &[], &[]).is_err());
        assert!(Placement::parse(&[], &vec![c("distinctInstance", None); 11], &[]).is_err());
    }
}
