//! The server side of the agent protocol (DESIGN.md §5): registration, the long-poll of desired state, and the
//! reports of what happened to tasks. Transports (in-process for the embedded agent, HTTP for remote ones) call
//! these methods and nothing else.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use gantry_model::agent::{
    AgentError, DesiredState, RegisterRequest, RegisterResponse, TaskFirewall, TaskSpec,
    TaskStateChange,
};
use gantry_model::ecs::{status, Attribute, ContainerInstance, Resource, VersionInfo};
use gantry_model::{new_id, time, Arn, Scope};
use gantry_store::{Compare, Store, Txn};

use crate::error::EcsError;
use crate::records::TaskRecord;
use crate::repo::encode;
use crate::resources::RESERVED_PORTS;
use crate::{keys, EcsService};

fn agent_error(e: EcsError) -> AgentError {
    match e {
        EcsError::Store(_) => AgentError::retryable(e.to_string()),
        _ => AgentError::fatal(e.to_string()),
    }
}

/// `(region, cluster, id)` of a container instance ARN.
pub(crate) fn instance_parts(arn: &str) -> Result<(String, String, String), AgentError> {
    let parsed = Arn::parse(arn)
        .ok_or_else(|| AgentError::fatal(format!("invalid container instance ARN {arn}")))?;
    let rest = parsed
        .resource
        .strip_prefix("container-instance/")
        .ok_or_else(|| AgentError::fatal(format!("not a container instance ARN: {arn}")))?;
    let (cluster, id) = rest
        .split_once('/')
        .ok_or_else(|| AgentError::fatal(format!("invalid container instance ARN {arn}")))?;
    Ok((parsed.region, cluster.to_string(), id.to_string()))
}

/// The task as the agent needs it; `firewall` is what its security groups allow (awsvpc).
fn task_spec(r: &TaskRecord, cluster: &str, firewall: Option<TaskFirewall>) -> TaskSpec {
    TaskSpec {
        task_arn: r.task.task_arn.clone(),
        cluster_arn: r.task.cluster_arn.clone(),
        cluster_name: cluster.to_string(),
        family: r.family.clone(),
        revision: r.revision,
        // A draining task keeps running until its target groups let it go.
        desired_status: if r.draining {
            status::RUNNING.into()
        } else {
            r.task.desired_status.clone()
        },
        last_status: r.task.last_status.clone(),
        network_mode: r.network_mode.clone(),
        cpu: r.task.cpu.as_deref().and_then(|c| c.parse().ok()),
        memory: r.task.memory.as_deref().and_then(|m| m.parse().ok()),
        pid_mode: r.pid_mode.clone(),
        ipc_mode: r.ipc_mode.clone(),
        network: r.network.clone(),
        firewall,
        containers: r.containers.clone(),
        volumes: r.volumes.clone(),
        stop_code: r.task.stop_code.clone(),
        stopped_reason: r.task.stopped_reason.clone(),
    }
}

/// Folds an agent's report into the stored task. Never moves a task backwards; a STOPPED task stays as it is.
pub(crate) fn merge_report(record: &mut TaskRecord, change: &TaskStateChange, now: f64) -> bool {
    let t = &mut record.task;
    if t.is_stopped() {
        return false;
    }
    if status::rank(&change.last_status) > status::rank(&t.last_status) {
        t.last_status = change.last_status.clone();
    }
    // The agent decided to stop the task (an essential container exited, a start failed): it is stopping from now.
    if change.stop_code.is_some() && t.desired_status != status::STOPPED {
        t.desired_status = status::STOPPED.into();
        t.stopping_at = Some(now);
        t.stop_code = change.stop_code.clone();
        t.stopped_reason = change.stopped_reason.clone();
    }
    for c in &change.containers {
        let Some(wire) = t
            .containers
            .iter_mut()
            .find(|w| w.name.as_deref() == Some(c.name.as_str()))
        else {
            continue;
        };
        if c.runtime_id.is_some() {
            wire.runtime_id = c.runtime_id.clone();
        }
        if c.image_digest.is_some() {
            wire.image_digest = c.image_digest.clone();
        }
        if status::rank(&c.last_status) >= status::rank(wire.last_status.as_deref().unwrap_or("")) {
            wire.last_status = Some(c.last_status.clone());
        }
        if c.exit_code.is_some() {
            wire.exit_code = c.exit_code;
        }
        if c.reason.is_some() {
            wire.reason = c.reason.clone();
        }
        if !c.network_bindings.is_empty() {
            wire.network_bindings = c.network_bindings.clone();
        }
        if c.health_status.is_some() {
            wire.health_status = c.health_status.clone();
        }
    }
    if change.health_status.is_some() {
        t.health_status = change.health_status.clone();
    }
    t.pull_started_at = t.pull_started_at.or(change.pull_started_at);
    t.pull_stopped_at = t.pull_stopped_at.or(change.pull_stopped_at);
    if t.last_status == status::RUNNING || t.is_stopped() {
        t.started_at = t.started_at.or(change.started_at);
        t.connectivity = Some("CONNECTED".into());
        t.connectivity_at = t.connectivity_at.or(change.started_at);
    }
    if t.is_stopped() {
        t.desired_status = status::STOPPED.into();
        t.stop_code = t.stop_code.clone().or(change.stop_code.clone());
        t.stopped_reason = t.stopped_reason.clone().or(change.stopped_reason.clone());
        t.stopping_at = t.stopping_at.or(Some(now));
        t.execution_stopped_at = change.execution_stopped_at.or(Some(now));
        t.stopped_at = Some(now);
        for c in t.containers.iter_mut() {
            c.last_status = Some(status::STOPPED.into());
        }
    }
    if let Some(n) = &record.network {
        t.attachments = vec![crate::networking::attachment(n, &t.last_status)];
    }
    t.version += 1;
    true
}

/// What ECS sets on every instance; the agent's own attributes (from its configuration) override them, so that
/// several agents on one host can model several availability zones and instance types.
fn built_in_attributes(region: &str) -> Vec<Attribute> {
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        other => other,
    };
    [
        ("ecs.os-type", "linux".to_string()),
        ("ecs.os-family", "LINUX".to_string()),
        ("ecs.cpu-architecture", arch.to_string()),
        ("ecs.availability-zone", format!("{region}a")),
        ("ecs.instance-type", "gantry.host".to_string()),
    ]
    .into_iter()
    .map(|(name, value)| Attribute {
        name: name.into(),
        value: Some(value),
        ..Default::default()
    })
    .collect()
}

impl<S: Store> EcsService<S> {
    /// Registers an agent's host as a container instance (or takes back the one it had).
    pub async fn agent_register(
        &self,
        req: RegisterRequest,
    ) -> Result<RegisterResponse, AgentError> {
        let scope = Scope::new(self.config.region.clone(), self.config.account.clone());
        let cluster = crate::refs::cluster_name(Some(&req.cluster)).map_err(agent_error)?;
        let cluster_record = self
            .ensure_cluster(&scope, &cluster, None)
            .await
            .map_err(agent_error)?;
        if req.cpu <= 0 || req.memory <= 0 {
            return Err(AgentError::fatal("an agent must offer some cpu and memory"));
        }
        let ci = loop {
            // The id the agent had, when it names an instance of this cluster.
            let known_id = req
                .container_instance_arn
                .as_deref()
                .and_then(|arn| instance_parts(arn).ok())
                .filter(|(region, c, _)| *region == scope.region && *c == cluster)
                .map(|(_, _, id)| id);
            let stored = known_id.as_ref().and_then(|id| {
                self.repo
                    .get::<ContainerInstance>(&keys::instance(&scope.region, &cluster, id))
            });
            // A deregistered instance stays gone: its agent starts over as a new one. An instance whose record vanished
            // (an admin reset) comes back with the same ARN, so the agent keeps its identity and containers.
            let reuse_id = match &stored {
                Some(ci) if ci.value.status == "INACTIVE" => None,
                _ => known_id,
            };
            let previous = stored.filter(|ci| ci.value.status != "INACTIVE");
            let mut attributes = built_in_attributes(&scope.region);
            for a in req.attributes.iter().cloned() {
                attributes.retain(|e| e.name != a.name);
                attributes.push(a);
            }
            // Custom attributes put through the API outlive the agent's restarts.
            if let Some(p) = &previous {
                for a in &p.value.attributes {
                    if !crate::attributes::is_built_in(&a.name)
                        && !attributes.iter().any(|e| e.name == a.name)
                    {
                        attributes.push(a.clone());
                    }
                }
            }
            let (ci, guard) = match previous {
                Some(p) => {
                    let mut ci = p.value.clone();
                    ci.attributes = attributes;
                    ci.version += 1;
                    (ci, p.unchanged())
                }
                None => {
                    let id = reuse_id.unwrap_or_else(new_id);
                    let ci = ContainerInstance {
                        container_instance_arn: scope
                            .arn("ecs", &format!("container-instance/{cluster}/{id}")),
                        ec2_instance_id: Some(req.instance_id.clone()),
                        status: "ACTIVE".into(),
                        attributes,
                        registered_at: Some(time::now()),
                        version: 1,
                        ..Default::default()
                    };
                    let key = keys::instance(&scope.region, &cluster, &id);
                    (ci, Compare::absent(key))
                }
            };
            let mut ci = ci;
            ci.version_info = VersionInfo {
                agent_version: Some(req.agent_version.clone()),
                agent_hash: None,
                docker_version: Some(format!("DockerVersion: {}", req.docker_version)),
            };
            let reserved: Vec<String> = RESERVED_PORTS.iter().map(|p| p.to_string()).collect();
            ci.registered_resources = vec![
                Resource::integer("CPU", req.cpu),
                Resource::integer("MEMORY", req.memory),
                Resource::string_set("PORTS", reserved),
                Resource::string_set("PORTS_UDP", Vec::new()),
            ];
            let key = keys::instance(&scope.region, &cluster, ci.id());
            let committed = self
                .repo
                .commit(Txn::new().compare(guard).put(key, encode(&ci)))
                .await
                .map_err(agent_error)?;
            if committed {
                break ci;
            }
            // Another registration of the same instance won the race (an admin reset restores it while the agent
            // does): read again and update what it wrote.
        };
        self.mark_seen(&ci.container_instance_arn);
        tracing::info!(arn = %ci.container_instance_arn, "container instance registered");
        Ok(RegisterResponse {
            container_instance_arn: ci.container_instance_arn,
            cluster_arn: cluster_record.cluster_arn,
            token: None,
        })
    }

    /// The status of a container instance, `None` when no record of it exists (never registered, or wiped).
    pub fn container_instance_status(&self, arn: &str) -> Option<String> {
        let (region, cluster, id) = instance_parts(arn).ok()?;
        self.repo
            .get::<ContainerInstance>(&keys::instance(&region, &cluster, &id))
            .map(|ci| ci.value.status)
    }

    fn desired_state(&self, region: &str, cluster: &str, id: &str, arn: &str) -> DesiredState {
        let registered = self
            .repo
            .get::<ContainerInstance>(&keys::instance(region, cluster, id))
            .is_some_and(|ci| ci.value.status != "INACTIVE");
        let records: Vec<TaskRecord> = self
            .index
            .with(region, cluster, |c| c.tasks_on(arn))
            .iter()
            .filter_map(|id| {
                self.repo
                    .get::<TaskRecord>(&keys::task(region, cluster, id))
            })
            .map(|t| t.value)
            .filter(|t| !t.task.is_stopped())
            .collect();
        // The awsvpc tasks' security groups, resolved in one pass over the VPC's records.
        let interfaces: Vec<&str> = records
            .iter()
            .filter_map(|t| t.network.as_ref())
            .map(|n| n.network_interface_id.as_str())
            .collect();
        let mut firewalls = match self.networking() {
            Some(net) if !interfaces.is_empty() => net.interface_firewalls(region, &interfaces),
            _ => Default::default(),
        };
        let mut tasks: Vec<TaskSpec> = records
            .iter()
            .map(|t| {
                let firewall = t
                    .network
                    .as_ref()
                    .and_then(|n| firewalls.remove(&n.network_interface_id));
                task_spec(t, cluster, firewall)
            })
            .collect();
        tasks.sort_by(|a, b| a.task_arn.cmp(&b.task_arn));
        // The index covers only what the agent acts on, so its own reports do not wake it up.
        let mut h = DefaultHasher::new();
        registered.hash(&mut h);
        for t in &tasks {
            (&t.task_arn, &t.desired_status, &t.firewall).hash(&mut h);
        }
        DesiredState {
            index: h.finish(),
            registered,
            tasks,
        }
    }

    /// The desired state of an instance, at once when it differs from `index`, else after a change or `wait`.
    pub async fn agent_poll(
        &self,
        arn: &str,
        index: u64,
        wait: Duration,
    ) -> Result<DesiredState, AgentError> {
        let (region, cluster, id) = instance_parts(arn)?;
        self.mark_seen(arn);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Armed before the state is read, so that a change right after the read still wakes this poll.
            let waker = self.index.with(&region, &cluster, |c| c.waker(arn));
            let changed = waker.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let network = self.network_changed.notified();
            tokio::pin!(network);
            network.as_mut().enable();
            let state = self.desired_state(&region, &cluster, &id, arn);
            if state.index != index || !state.registered {
                return Ok(state);
            }
            let either = async {
                tokio::select! {
                    _ = changed => {}
                    _ = network => {}
                }
            };
            let timed_out = tokio::time::timeout_at(deadline, either).await.is_err();
            self.mark_seen(arn);
            if timed_out {
                return Ok(state);
            }
        }
    }

    /// Records what happened to a task on the agent.
    pub async fn agent_report(&self, arn: &str, change: TaskStateChange) -> Result<(), AgentError> {
        let (region, cluster, _) = instance_parts(arn)?;
        self.mark_seen(arn);
        let task_id = change.task_arn.rsplit('/').next().unwrap_or("").to_string();
        let key = keys::task(&region, &cluster, &task_id);
        loop {
            let current = self
                .repo
                .get::<TaskRecord>(&key)
                .filter(|t| t.value.task.container_instance_arn.as_deref() == Some(arn))
                .ok_or_else(|| {
                    AgentError::fatal(format!(
                        "task {} is not known on this instance",
                        change.task_arn
                    ))
                })?;
            let mut record = current.value.clone();
            if !merge_report(&mut record, &change, time::now()) {
                return Ok(());
            }
            let txn = Txn::new()
                .compare(current.unchanged())
                .put(&key, encode(&record));
            if self.repo.commit(txn).await.map_err(agent_error)? {
                if record.task.is_stopped() && !current.value.task.is_stopped() {
                    self.release_interface(&region, &record).await;
                }
                if record
                    .task
                    .group
                    .as_deref()
                    .is_some_and(|g| g.starts_with("service:"))
                {
                    self.wake_services();
                }
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use gantry_model::agent::ContainerStateChange;
    use gantry_model::ecs::{Container, Task};

    use super::*;

    fn record() -> TaskRecord {
        TaskRecord {
            task: Task {
                last_status: "PENDING".into(),
                desired_status: "RUNNING".into(),
                containers: vec![Container {
                    name: Some("web".into()),
                    last_status: Some("PENDING".into()),
                    ..Default::default()
                }],
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn running_then_stopped() {
        let mut r = record();
        let running = TaskStateChange {
            last_status: "RUNNING".into(),
            started_at: Some(10.0),
            containers: vec![ContainerStateChange {
                name: "web".into(),
                last_status: "RUNNING".into(),
                runtime_id: Some("abc".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(merge_report(&mut r, &running, 11.0));
        assert_eq!(r.task.last_status, "RUNNING");
        assert_eq!(r.task.started_at, Some(10.0));
        assert_eq!(r.task.containers[0].runtime_id.as_deref(), Some("abc"));
        // A late PENDING report does not move it back.
        let late = TaskStateChange {
            last_status: "PENDING".into(),
            ..Default::default()
        };
        merge_report(&mut r, &late, 12.0);
        assert_eq!(r.task.last_status, "RUNNING");
        let stopped = TaskStateChange {
            last_status: "STOPPED".into(),
            stop_code: Some("EssentialContainerExited".into()),
            stopped_reason: Some("Essential container in task exited".into()),
            containers: vec![ContainerStateChange {
                name: "web".into(),
                last_status: "STOPPED".into(),
                exit_code: Some(3),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(merge_report(&mut r, &stopped, 20.0));
        assert_eq!(r.task.desired_status, "STOPPED");
        assert_eq!(
            r.task.stop_code.as_deref(),
            Some("EssentialContainerExited")
        );
        assert_eq!(r.task.containers[0].exit_code, Some(3));
        assert_eq!(r.task.stopped_at, Some(20.0));
        // Nothing changes a stopped task.
        assert!(!merge_report(&mut r, &running, 30.0));
    }

    #[test]
    fn an_agent_decided_stop_starts_stopping_at_once() {
        let mut r = record();
        r.task.last_status = "RUNNING".into();
        let stopping = TaskStateChange {
            last_status: "RUNNING".into(),
            stop_code: Some("EssentialContainerExited".into()),
            stopped_reason: Some("Essential container in task exited".into()),
            ..Default::default()
        };
        merge_report(&mut r, &stopping, 5.0);
        assert_eq!(
            (r.task.desired_status.as_str(), r.task.last_status.as_str()),
            ("STOPPED", "RUNNING")
        );
        assert_eq!(r.task.stopping_at, Some(5.0));
        let stopped = TaskStateChange {
            last_status: "STOPPED".into(),
            execution_stopped_at: Some(8.0),
            ..Default::default()
        };
        merge_report(&mut r, &stopped, 9.0);
        assert_eq!(
            (
                r.task.stopping_at,
                r.task.execution_stopped_at,
                r.task.stopped_at
            ),
            (Some(5.0), Some(8.0), Some(9.0))
        );
        assert_eq!(
            r.task.stop_code.as_deref(),
            Some("EssentialContainerExited")
        );
    }

    #[test]
    fn a_user_stop_keeps_its_code() {
        let mut r = record();
        r.task.desired_status = "STOPPED".into();
        r.task.stop_code = Some("UserInitiated".into());
        let stopped = TaskStateChange {
            last_status: "STOPPED".into(),
            stop_code: Some("EssentialContainerExited".into()),
            ..Default::default()
        };
        merge_report(&mut r, &stopped, 1.0);
        assert_eq!(r.task.stop_code.as_deref(), Some("UserInitiated"));
    }
}
