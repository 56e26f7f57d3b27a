//! The service controller's side of load balancing: which targets a service's tasks are, how their target health
//! counts for the rollout, registering running tasks, deregistering stopping ones, and letting a draining task
//! stop once its target groups have let it go.

use std::collections::HashMap;
use std::sync::Arc;

use gantry_model::ecs::{status, ContainerInstance};
use gantry_store::{Store, Txn};

use super::load_balancers::host_port;
use super::record::ServiceRecord;
use super::rollout::{ServiceTask, TaskState};
use crate::error::Result;
use crate::index::TaskSummary;
use crate::load_balancing::{LoadBalancing, TargetState};
use crate::records::TaskRecord;
use crate::repo::encode;
use crate::{keys, EcsService};

/// One target of a task: (target group ARN, target id, port).
pub type Target = (String, String, u16);

/// A service task as its target groups see it.
pub struct TaskTargets {
    pub targets: Vec<Target>,
    /// The state of each target, `None` when it is not registered.
    pub states: Vec<Option<TargetState>>,
    pub draining: bool,
    pub running: bool,
    pub stopping: bool,
}

impl TaskTargets {
    /// Registered somewhere and not yet deregistered: stopping it first drains it.
    pub fn in_service(&self) -> bool {
        self.states
            .iter()
            .any(|s| s.is_some_and(|s| s != TargetState::Draining))
    }
}

/// The load balancing view of one service's tasks in one pass.
pub struct LbView {
    pub lb: Arc<dyn LoadBalancing>,
    pub tasks: HashMap<String, TaskTargets>,
}

/// How the target groups' health changes a running task's rollout state: healthy only when every target group
/// says so (or does not check), settling while any is `initial` or not registered yet, unhealthy when any is.
pub fn gate(state: TaskState, t: &TaskTargets) -> TaskState {
    if !matches!(state, TaskState::Healthy | TaskState::Settling) {
        return state;
    }
    let mut out = state;
    for s in &t.states {
        match s {
            Some(TargetState::Unhealthy) => return TaskState::Unhealthy,
            Some(TargetState::Healthy) | Some(TargetState::Unchecked) => {}
            Some(TargetState::Initial) | Some(TargetState::Draining) | None => {
                out = TaskState::Settling
            }
        }
    }
    out
}

/// The target groups of the service whose target of this task is unhealthy.
pub fn unhealthy_groups(t: &TaskTargets) -> Vec<&str> {
    t.targets
        .iter()
        .zip(&t.states)
        .filter(|(_, s)| **s == Some(TargetState::Unhealthy))
        .map(|((tg, _, _), _)| tg.as_str())
        .collect()
}

impl<S: Store> EcsService<S> {
    /// The targets of the service's tasks and their states, when the service has load balancers.
    pub(crate) fn lb_view(
        &self,
        region: &str,
        cluster: &str,
        record: &ServiceRecord,
        tasks: &[(&String, &TaskSummary)],
    ) -> Option<LbView> {
        if record.service.load_balancers.is_empty() {
            return None;
        }
        let lb = self.load_balancing()?;
        let mut instances: HashMap<String, Option<String>> = HashMap::new();
        let mut out = HashMap::new();
        for (id, summary) in tasks {
            let Some(task) = self
                .repo
                .get::<TaskRecord>(&keys::task(region, cluster, id))
            else {
                continue;
            };
            let instance_arn = summary.instance.clone().unwrap_or_default();
            let ec2 = instances
                .entry(instance_arn.clone())
                .or_insert_with(|| self.ec2_instance_id(region, cluster, &instance_arn))
                .clone();
            let targets = task_targets(record, &task.value, ec2.as_deref());
            let states = targets
                .iter()
                .map(|(tg, target, port)| lb.target_state(region, tg, target, *port))
                .collect();
            out.insert(
                id.to_string(),
                TaskTargets {
                    targets,
                    states,
                    draining: task.value.draining,
                    running: summary.running,
                    stopping: summary.stopping,
                },
            );
        }
        Some(LbView { lb, tasks: out })
    }

    fn ec2_instance_id(&self, region: &str, cluster: &str, instance_arn: &str) -> Option<String> {
        let id = instance_arn.rsplit('/').next()?;
        self.repo
            .get::<ContainerInstance>(&keys::instance(region, cluster, id))?
            .value
            .ec2_instance_id
    }

    /// Whether a task its user stops should be drained first: it belongs to a service behind load balancers
    /// and some target group still sends to it. StopTask then marks it draining instead of stopping it at once.
    pub(crate) fn sent_traffic(&self, region: &str, cluster: &str, task: &TaskRecord) -> bool {
        let Some(service) = task
            .task
            .group
            .as_deref()
            .and_then(|g| g.strip_prefix("service:"))
        else {
            return false;
        };
        let (Some(lb), Some(record)) = (
            self.load_balancing(),
            self.repo
                .get::<ServiceRecord>(&keys::service(region, cluster, service)),
        ) else {
            return false;
        };
        let instance = task.task.container_instance_arn.clone().unwrap_or_default();
        let ec2 = self.ec2_instance_id(region, cluster, &instance);
        task_targets(&record.value, task, ec2.as_deref())
            .iter()
            .any(|(tg, id, port)| {
                lb.target_state(region, tg, id, *port)
                    .is_some_and(|s| s != TargetState::Draining)
            })
    }

    /// Registers running tasks, deregisters stopping and stopped ones, and lets a draining task stop once none
    /// of its targets is registered any more. Returns the service events to write.
    pub(crate) async fn sync_targets(
        &self,
        region: &str,
        cluster: &str,
        name: &str,
        view: &LbView,
    ) -> Result<Vec<String>> {
        let mut registered: HashMap<&str, usize> = HashMap::new();
        let mut deregistered: HashMap<&str, usize> = HashMap::new();
        for (id, t) in &view.tasks {
            let wanted = t.running && !t.stopping && !t.draining;
            for ((tg, target, port), state) in t.targets.iter().zip(&t.states) {
                match state {
                    None if wanted => {
                        if let Err(e) = view.lb.register(region, tg, target, *port).await {
                            tracing::warn!(task = %id, target_group = %tg, error = %e, "registering a target failed");
                        } else {
                            *registered.entry(tg).or_default() += 1;
                        }
                    }
                    Some(s) if !wanted && *s != TargetState::Draining => {
                        if let Err(e) = view.lb.deregister(region, tg, target, *port).await {
                            tracing::warn!(task = %id, target_group = %tg, error = %e, "deregistering a target failed");
                        } else {
                            *deregistered.entry(tg).or_default() += 1;
                        }
                    }
                    _ => {}
                }
            }
            if t.draining && t.states.iter().all(Option::is_none) {
                self.finish_draining(region, cluster, id).await?;
            }
        }
        let mut events = Vec::new();
        for (tg, n) in registered {
            events.push(format!(
                "(service {name}) registered {n} targets in (target-group {tg})"
            ));
        }
        for (tg, n) in deregistered {
            events.push(format!(
                "(service {name}) deregistered {n} targets in (target-group {tg})"
            ));
        }
        Ok(events)
    }

    /// The drained task may stop now: its agent is told so.
    async fn finish_draining(&self, region: &str, cluster: &str, id: &str) -> Result<()> {
        let Some(current) = self
            .repo
            .get::<TaskRecord>(&keys::task(region, cluster, id))
        else {
            return Ok(());
        };
        if !current.value.draining {
            return Ok(());
        }
        let mut t = current.value.clone();
        t.draining = false;
        t.task.version += 1;
        let txn = Txn::new()
            .compare(current.unchanged())
            .put(current.kv.key.clone(), encode(&t));
        self.repo.commit(txn).await?;
        Ok(())
    }
}

/// The targets of a task of the service: one per load balancer entry whose container has a host port.
/// The targets of a task: its instance's EC2 id and host port (`instance` target groups), or its own address and
/// the container port (`ip` target groups, awsvpc tasks).
fn task_targets(record: &ServiceRecord, task: &TaskRecord, ec2: Option<&str>) -> Vec<Target> {
    if let Some(n) = &task.network {
        return record
            .service
            .load_balancers
            .iter()
            .filter_map(|l| {
                let port = u16::try_from(l.container_port?).ok()?;
                Some((
                    l.target_group_arn.clone()?,
                    n.private_ipv4_address.clone(),
                    port,
                ))
            })
            .collect();
    }
    let Some(ec2) = ec2 else {
        return Vec::new();
    };
    record
        .service
        .load_balancers
        .iter()
        .filter_map(|l| {
            let tg = l.target_group_arn.as_ref()?;
            let host = host_port(
                &task.containers,
                l.container_name.as_deref()?,
                l.container_port?,
            )?;
            Some((tg.clone(), ec2.to_string(), host))
        })
        .collect()
}

/// Marks a task that is being stopped as draining: it is DEACTIVATING and its containers keep serving their
/// in-flight requests until its target groups have deregistered it.
pub fn start_draining(record: &mut TaskRecord) {
    record.draining = true;
    if status::rank(&record.task.last_status) < status::rank(status::DEACTIVATING) {
        record.task.last_status = status::DEACTIVATING.into();
    }
}

/// Replaces the rollout states of the live tasks by their target-gated ones.
pub fn gate_all(live: &mut [ServiceTask], view: &LbView) {
    for t in live.iter_mut() {
        if let Some(targets) = view.tasks.get(&t.id) {
            t.state = gate(t.state, targets);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(states: Vec<Option<TargetState>>) -> TaskTargets {
        TaskTargets {
            targets: states
                .iter()
                .enumerate()
                .map(|(i, _)| (format!("tg{i}"), "i-1".into(), 49153))
                .collect(),
            states,
            draining: false,
            running: true,
            stopping: false,
        }
    }

    #[test]
    fn a_task_is_healthy_only_when_every_target_group_says_so() {
        use TargetState::*;
        let h = TaskState::Healthy;
        assert_eq!(
            gate(h, &targets(vec![Some(Healthy), Some(Unchecked)])),
            TaskState::Healthy
        );
        assert_eq!(
            gate(h, &targets(vec![Some(Healthy), Some(Initial)])),
            TaskState::Settling
        );
        assert_eq!(
            gate(h, &targets(vec![Some(Healthy), None])),
            TaskState::Settling
        );
        assert_eq!(
            gate(h, &targets(vec![Some(Initial), Some(Unhealthy)])),
            TaskState::Unhealthy
        );
        // A task not running yet, or stopping, stays what it is.
        assert_eq!(
            gate(TaskState::Starting, &targets(vec![Some(Unhealthy)])),
            TaskState::Starting
        );
        assert_eq!(
            gate(TaskState::Stopping, &targets(vec![None])),
            TaskState::Stopping
        );
        assert_eq!(
            unhealthy_groups(&targets(vec![Some(Healthy), Some(Unhealthy)])),
            vec!["tg1"]
        );
        assert!(targets(vec![Some(Healthy)]).in_service());
        assert!(!targets(vec![Some(Draining), None]).in_service());
    }
}
