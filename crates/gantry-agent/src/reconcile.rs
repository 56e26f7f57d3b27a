//! Desired against actual: which tasks get a runner, which runners learn of a change or that their task is gone,
//! and which containers found on the runtime at start are adopted or are orphans. Pure functions, plus the
//! removal of orphans.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gantry_model::agent::{AgentApi, TaskSpec};

use crate::runtime::{ContainerInfo, Runtime};
use crate::task_runner::Shared;
use crate::translate::{task_id, LABEL_INSTANCE, LABEL_TASK_ARN};

/// Containers found on the runtime when the agent started, by task ARN.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Discovered {
    /// Labelled with this agent's instance (its current or previous ARN).
    pub ours: BTreeMap<String, Vec<ContainerInfo>>,
    /// Labelled with another instance: adopted only when the server gives this agent their task.
    pub others: BTreeMap<String, Vec<ContainerInfo>>,
}

pub(crate) fn group(containers: Vec<ContainerInfo>, instance_arns: &[String]) -> Discovered {
    let mut found = Discovered::default();
    for c in containers {
        let Some(task) = c.labels.get(LABEL_TASK_ARN).cloned() else {
            continue;
        };
        let ours = c
            .labels
            .get(LABEL_INSTANCE)
            .is_some_and(|i| instance_arns.contains(i));
        let map = if ours {
            &mut found.ours
        } else {
            &mut found.others
        };
        map.entry(task).or_default().push(c);
    }
    found
}

#[derive(Debug, Default, PartialEq)]
pub(crate) struct Plan {
    /// Tasks that need a runner, with the containers to adopt.
    pub start: Vec<(TaskSpec, Vec<ContainerInfo>)>,
    /// Tasks whose runner gets the latest spec.
    pub update: Vec<TaskSpec>,
    /// Runners whose task the server no longer lists.
    pub gone: Vec<String>,
    /// Containers of this agent whose task the server does not list: stop and remove.
    pub orphans: Vec<(String, Vec<ContainerInfo>)>,
}

/// The plan for one desired state. `discovered` is given on the first reconcile after a start only.
pub(crate) fn plan(
    desired: &[TaskSpec],
    running: &BTreeSet<String>,
    discovered: Option<Discovered>,
) -> Plan {
    let mut discovered = discovered.unwrap_or_default();
    let mut plan = Plan::default();
    let mut listed = BTreeSet::new();
    for spec in desired {
        listed.insert(spec.task_arn.clone());
        if running.contains(&spec.task_arn) {
            plan.update.push(spec.clone());
        } else {
            let mut adopted = discovered.ours.remove(&spec.task_arn).unwrap_or_default();
            adopted.extend(discovered.others.remove(&spec.task_arn).unwrap_or_default());
            plan.start.push((spec.clone(), adopted));
        }
    }
    plan.gone = running
        .iter()
        .filter(|arn| !listed.contains(*arn))
        .cloned()
        .collect();
    plan.orphans = discovered.ours.into_iter().collect();
    plan
}

/// Stops (with each container's own stop timeout) and removes the containers of a task this agent no longer
/// runs, and the task's volumes.
pub(crate) async fn remove_orphans<A: AgentApi, R: Runtime>(
    shared: Arc<Shared<A, R>>,
    task_arn: String,
    containers: Vec<ContainerInfo>,
) {
    tracing::info!(task = %task_arn, containers = containers.len(), "removing orphaned containers");
    let runtime = &shared.runtime;
    let prefix = format!("ecs-{}-", task_id(&task_arn));
    let mut volumes = BTreeSet::new();
    for c in &containers {
        if let Ok(state) = runtime.inspect_container(&c.id).await {
            volumes.extend(state.volumes.into_iter().filter(|v| v.starts_with(&prefix)));
        }
        if let Err(e) = runtime.stop_container(&c.id, None).await {
            tracing::warn!(task = %task_arn, container = %c.name, error = %e, "cannot stop orphan");
        }
        if let Err(e) = runtime.remove_container(&c.id).await {
            tracing::warn!(task = %task_arn, container = %c.name, error = %e, "cannot remove orphan");
        }
    }
    for v in volumes {
        if let Err(e) = runtime.remove_volume(&v).await {
            tracing::warn!(task = %task_arn, volume = %v, error = %e, "cannot remove orphan volume");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(id: &str, task: &str, instance: &str) -> ContainerInfo {
        ContainerInfo {
            id: id.into(),
            name: format!("ecs-{id}"),
            labels: BTreeMap::from([
                (LABEL_TASK_ARN.to_string(), task.to_string()),
                (LABEL_INSTANCE.to_string(), instance.to_string()),
            ]),
        }
    }

    fn spec(arn: &str) -> TaskSpec {
        TaskSpec {
            task_arn: arn.into(),
            desired_status: "RUNNING".into(),
            ..Default::default()
        }
    }

    #[test]
    fn groups_by_owner_and_task() {
        let found = group(
            vec![
                container("a1", "t1", "me"),
                container("a2", "t1", "me"),
                container("b1", "t2", "old-me"),
                container("c1", "t3", "someone"),
            ],
            &["me".to_string(), "old-me".to_string()],
        );
        assert_eq!(found.ours["t1"].len(), 2);
        assert_eq!(found.ours["t2"].len(), 1);
        assert_eq!(found.others["t3"].len(), 1);
    }

    #[test]
    fn plans_adoption_orphans_updates_and_gone() {
        let found = group(
            vec![
                container("a1", "t1", "me"),
                container("b1", "t2", "me"),
                container("c1", "t3", "someone"),
            ],
            &["me".to_string()],
        );
        let p = plan(
            &[spec("t1"), spec("t3"), spec("t4")],
            &BTreeSet::new(),
            Some(found),
        );
        assert_eq!(p.start.len(), 3);
        assert_eq!(p.start[0].1[0].id, "a1");
        assert_eq!(
            p.start[1].1[0].id, "c1",
            "another instance's container of a task given to us is adopted"
        );
        assert!(p.start[2].1.is_empty());
        assert_eq!(p.orphans.len(), 1);
        assert_eq!(p.orphans[0].0, "t2");

        let running: BTreeSet<String> = ["t1".to_string(), "t3".to_string()].into();
        let p = plan(&[spec("t1")], &running, None);
        assert!(p.start.is_empty());
        assert_eq!(p.update, vec![spec("t1")]);
        assert_eq!(p.gone, vec!["t3".to_string()]);
        assert!(p.orphans.is_empty());
    }
}
