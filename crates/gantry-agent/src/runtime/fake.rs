//! An in-memory [`Runtime`] for tests of the lifecycle logic: containers never run anything, tests script what
//! they do (exit codes, health, log lines, pull failures) and read back what the agent asked for.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::stream::{self, BoxStream, StreamExt};

use super::{
    ContainerInfo, ContainerSpec, ContainerState, ContainerStatus, Health, LogChunk, NetworkSpec,
    Runtime, RuntimeError, RuntimeInfo, VolumeSpec,
};
use crate::translate::LABEL_CONTAINER_NAME;
use gantry_model::agent::RegistryCredentials;

/// What a container does once started, keyed by its ECS container name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FakeBehaviour {
    /// Exits with this code as soon as it starts.
    pub exit_on_start: Option<i64>,
    /// Its health once started (a container without a health check has none).
    pub health_on_start: Option<Health>,
    /// Ignores SIGTERM: a stop ends it with SIGKILL (exit code 137) instead of 143.
    pub ignores_sigterm: bool,
    /// Starting it fails with this engine message.
    pub start_error: Option<String>,
}

/// A container as the fake runtime keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeContainer {
    pub id: String,
    pub spec: ContainerSpec,
    pub status: ContainerStatus,
    pub exit_code: Option<i64>,
    pub health: Option<Health>,
    /// Lines as Docker prints them with timestamps, without the newline.
    pub log_lines: Vec<String>,
    /// The timeout of each stop request.
    pub stops: Vec<Option<Duration>>,
    pub removed: bool,
    behaviour: FakeBehaviour,
}

impl FakeContainer {
    /// The ECS container name from its labels.
    pub fn ecs_name(&self) -> &str {
        self.spec
            .config
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_CONTAINER_NAME))
            .map(String::as_str)
            .unwrap_or("")
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.spec
            .config
            .labels
            .as_ref()
            .and_then(|l| l.get(key))
            .map(String::as_str)
    }
}

#[derive(Debug, Default)]
struct FakeState {
    images: BTreeSet<String>,
    pull_errors: BTreeMap<String, String>,
    behaviours: BTreeMap<String, FakeBehaviour>,
    containers: Vec<FakeContainer>,
    volumes: BTreeMap<String, VolumeSpec>,
    networks: BTreeMap<String, NetworkSpec>,
    firewalls: BTreeMap<std::net::Ipv4Addr, gantry_model::agent::TaskFirewall>,
    cgroups: BTreeMap<String, (Option<i64>, Option<i64>)>,
    calls: Vec<String>,
    next_id: u64,
    last_log_nanos: i128,
    unavailable: bool,
}

/// The fake runtime. Clones share their state.
#[derive(Debug, Clone, Default)]
pub struct FakeRuntime {
    state: Arc<Mutex<FakeState>>,
}

fn lock(state: &Mutex<FakeState>) -> MutexGuard<'_, FakeState> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FakeRuntime {
    pub fn new() -> FakeRuntime {
        FakeRuntime::default()
    }

    /// Puts an image in the local store (it is then used without a pull).
    pub fn add_image(&self, image: &str) {
        lock(&self.state).images.insert(image.to_string());
    }

    /// Makes pulls of `image` fail with `message`.
    pub fn fail_pull(&self, image: &str, message: &str) {
        lock(&self.state)
            .pull_errors
            .insert(image.to_string(), message.to_string());
    }

    /// Scripts the containers named `container` (the ECS name) created from now on.
    pub fn behave(&self, container: &str, behaviour: FakeBehaviour) {
        lock(&self.state)
            .behaviours
            .insert(container.to_string(), behaviour);
    }

    /// Makes every engine call fail as if Docker were down (or back).
    pub fn set_unavailable(&self, unavailable: bool) {
        lock(&self.state).unavailable = unavailable;
    }

    /// Ends the running containers named `container` with `code`; returns how many there were.
    pub fn exit(&self, container: &str, code: i64) -> usize {
        let mut state = lock(&self.state);
        let mut n = 0;
        for c in state
            .containers
            .iter_mut()
            .filter(|c| !c.removed && c.ecs_name() == container)
        {
            if c.status == ContainerStatus::Running {
                c.status = ContainerStatus::Exited;
                c.exit_code = Some(code);
                n += 1;
            }
        }
        n
    }

    /// Sets the health of the containers named `container`.
    pub fn set_health(&self, container: &str, health: Health) {
        let mut state = lock(&self.state);
        for c in state
            .containers
            .iter_mut()
            .filter(|c| !c.removed && c.ecs_name() == container)
        {
            c.health = Some(health);
        }
    }

    /// Appends a line to the output of the containers named `container`, stamped with the current time.
    pub fn log(&self, container: &str, message: &str) {
        let mut state = lock(&self.state);
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        let nanos = now.max(state.last_log_nanos + 1);
        state.last_log_nanos = nanos;
        let stamp = crate::logs::format_timestamp(nanos);
        for c in state
            .containers
            .iter_mut()
            .filter(|c| !c.removed && c.ecs_name() == container)
        {
            c.log_lines.push(format!("{stamp} {message}"));
        }
    }

    /// Every container ever created, removed ones included.
    pub fn containers(&self) -> Vec<FakeContainer> {
        lock(&self.state).containers.clone()
    }

    /// Containers not removed.
    pub fn live_containers(&self) -> Vec<FakeContainer> {
        lock(&self.state)
            .containers
            .iter()
            .filter(|c| !c.removed)
            .cloned()
            .collect()
    }

    /// The task cgroups, by task id: (cpu, memory).
    pub fn cgroups(&self) -> BTreeMap<String, (Option<i64>, Option<i64>)> {
        lock(&self.state).cgroups.clone()
    }

    /// The packet filter rules of each awsvpc task, by address.
    pub fn firewalls(&self) -> BTreeMap<std::net::Ipv4Addr, gantry_model::agent::TaskFirewall> {
        lock(&self.state).firewalls.clone()
    }

    pub fn networks(&self) -> Vec<NetworkSpec> {
        lock(&self.state).networks.values().cloned().collect()
    }

    pub fn volumes(&self) -> Vec<String> {
        lock(&self.state).volumes.keys().cloned().collect()
    }

    /// The engine calls made, in order, e.g. `pull busybox`, `create app`, `start app`, `stop app`.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.state).calls.clone()
    }

    fn check(&self) -> Result<MutexGuard<'_, FakeState>, RuntimeError> {
        let state = lock(&self.state);
        if state.unavailable {
            return Err(RuntimeError::Unavailable("the fake engine is down".into()));
        }
        Ok(state)
    }
}

fn find<'a>(state: &'a mut FakeState, id: &str) -> Result<&'a mut FakeContainer, RuntimeError> {
    state
        .containers
        .iter_mut()
        .find(|c| !c.removed && (c.id == id || c.spec.name == id))
        .ok_or_else(|| RuntimeError::NotFound(format!("No such container: {id}")))
}

fn nanos_of_line(line: &str) -> i128 {
    line.split_once(' ')
        .and_then(|(ts, _)| crate::logs::parse_timestamp(ts))
        .unwrap_or(0)
}

impl Runtime for FakeRuntime {
    async fn info(&self) -> Result<RuntimeInfo, RuntimeError> {
        drop(self.check()?);
        Ok(RuntimeInfo {
            cpus: 2,
            memory_bytes: 4096 * 1024 * 1024,
            version: "fake".into(),
        })
    }

    async fn image_present(&self, image: &str) -> Result<bool, RuntimeError> {
        Ok(self.check()?.images.contains(image))
    }

    async fn pull_image(
        &self,
        image: &str,
        credentials: Option<&RegistryCredentials>,
    ) -> Result<(), RuntimeError> {
        let mut state = self.check()?;
        state.calls.push(match credentials {
            Some(c) => format!("pull {image} as {}", c.username),
            None => format!("pull {image}"),
        });
        if let Some(message) = state.pull_errors.get(image) {
            return Err(RuntimeError::Pull {
                image: image.to_string(),
                message: message.clone(),
            });
        }
        state.images.insert(image.to_string());
        Ok(())
    }

    async fn import_image(
        &self,
        reference: &str,
        _rootfs: Vec<u8>,
        _changes: Vec<String>,
    ) -> Result<(), RuntimeError> {
        let mut state = self.check()?;
        state.calls.push(format!("import {reference}"));
        state.images.insert(reference.to_string());
        Ok(())
    }

    async fn ensure_network(&self, spec: &NetworkSpec) -> Result<(), RuntimeError> {
        let mut state = self.check()?;
        state.calls.push(format!("ensure network {}", spec.name));
        state
            .networks
            .entry(spec.name.clone())
            .or_insert_with(|| spec.clone());
        Ok(())
    }

    async fn remove_network(&self, name: &str) -> Result<(), RuntimeError> {
        let mut state = self.check()?;
        let in_use = state.containers.iter().any(|c| {
            !c.removed
                && c.status == ContainerStatus::Running
                && c.spec
                    .config
                    .host_config
                    .as_ref()
                    .and_then(|h| h.network_mode.as_deref())
                    == Some(name)
        });
        if in_use {
            return Err(RuntimeError::Engine(format!(
                "error while removing network: network {name} has active endpoints"
            )));
        }
        state.calls.push(format!("remove network {name}"));
        state.networks.remove(name);
        Ok(())
    }

    async fn set_firewall(
        &self,
        address: std::net::Ipv4Addr,
        firewall: &gantry_model::agent::TaskFirewall,
    ) -> Result<(), RuntimeError> {
        let mut state = self.check()?;
        state.calls.push(format!("set firewall {address}"));
        state.firewalls.insert(address, firewall.clone());
        Ok(())
    }

    async fn task_cgroup(
        &self,
        task_id: &str,
        cpu: Option<i64>,
        memory_mib: Option<i64>,
    ) -> Result<Option<String>, RuntimeError> {
        let mut state = self.check()?;
        state.calls.push(format!("task cgroup {task_id}"));
        state.cgroups.insert(task_id.to_string(), (cpu, memory_mib));
        Ok(Some(crate::cgroup::parent(task_id)))
    }

    async fn remove_task_cgroup(&self, task_id: &str) -> Result<(), RuntimeError> {
        let mut state = self.check()?;
        state.calls.push(format!("remove task cgroup {task_id}"));
        state.cgroups.remove(task_id);
        Ok(())
    }

    async fn remove_firewall(&self, address: std::net::Ipv4Addr) -> Result<(), RuntimeError> {
        let mut state = self.check()?;
        state.calls.push(format!("remove firewall {address}"));
        state.firewalls.remove(&address);
        Ok(())
    }

    async fn volume_exists(&self, name: &str) -> Result<bool, RuntimeError> {
        Ok(self.check()?.volumes.contains_key(name))
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<(), RuntimeError> {
        let mut state = self.check()?;
        state.calls.push(format!("create volume {}", spec.name));
        state
            .volumes
            .entry(spec.name.clone())
            .or_insert_with(|| spec.clone());
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<(), RuntimeError> {
        let mut state = self.check()?;
        state.calls.push(format!("remove volume {name}"));
        state.volumes.remove(name);
        Ok(())
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let mut state = self.check()?;
        if state
            .containers
            .iter()
            .any(|c| !c.removed && c.spec.name == spec.name)
        {
            return Err(RuntimeError::Engine(format!(
                "Conflict. The container name \"/{}\" is already in use",
                spec.name
            )));
        }
        let image = spec.config.image.clone().unwrap_or_default();
        if !state.images.contains(&image) {
            return Err(RuntimeError::NotFound(format!("No such image: {image}")));
        }
        state.next_id += 1;
        let id = format!("{:064x}", state.next_id);
        let mut container = FakeContainer {
            id: id.clone(),
            spec: spec.clone(),
            status: ContainerStatus::Created,
            exit_code: None,
            health: None,
            log_lines: Vec::new(),
            stops: Vec::new(),
            removed: false,
            behaviour: FakeBehaviour::default(),
        };
        let name = container.ecs_name().to_string();
        container.behaviour = state.behaviours.get(&name).cloned().unwrap_or_default();
        state.calls.push(format!("create {name}"));
        state.containers.push(container);
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<(), RuntimeError> {
        let mut state = self.check()?;
        let c = find(&mut state, id)?;
        let name = c.ecs_name().to_string();
        if let Some(error) = c.behaviour.start_error.clone() {
            c.status = ContainerStatus::Exited;
            c.exit_code = Some(128);
            state.calls.push(format!("start {name}"));
            return Err(RuntimeError::Engine(error));
        }
        if c.status == ContainerStatus::Running {
            return Err(RuntimeError::Engine(format!(
                "container {id} is already running"
            )));
        }
        c.status = ContainerStatus::Running;
        c.exit_code = None;
        c.health = c.behaviour.health_on_start;
        if let Some(code) = c.behaviour.exit_on_start {
            c.status = ContainerStatus::Exited;
            c.exit_code = Some(code);
        }
        state.calls.push(format!("start {name}"));
        Ok(())
    }

    async fn stop_container(
        &self,
        id: &str,
        timeout: Option<Duration>,
    ) -> Result<(), RuntimeError> {
        let mut state = self.check()?;
        let c = find(&mut state, id)?;
        let name = c.ecs_name().to_string();
        c.stops.push(timeout);
        if c.status == ContainerStatus::Running {
            c.status = ContainerStatus::Exited;
            c.exit_code = Some(if c.behaviour.ignores_sigterm {
                137
            } else {
                143
            });
        }
        state.calls.push(format!("stop {name}"));
        Ok(())
    }

    async fn inspect_container(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        let mut state = self.check()?;
        let c = find(&mut state, id)?;
        let labels: BTreeMap<String, String> = c
            .spec
            .config
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let mut port_bindings = Vec::new();
        if c.status == ContainerStatus::Running {
            let ports = c
                .spec
                .config
                .host_config
                .as_ref()
                .and_then(|h| h.port_bindings.clone());
            port_bindings = super::docker::network_bindings(ports.as_ref());
        }
        Ok(ContainerState {
            id: c.id.clone(),
            name: c.spec.name.clone(),
            status: c.status,
            exit_code: c.exit_code,
            error: None,
            oom_killed: false,
            health: c.health,
            port_bindings,
            labels,
            image_id: c.spec.config.image.clone(),
            volumes: Vec::new(),
        })
    }

    async fn list_containers(&self, label: &str) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let state = self.check()?;
        let (key, value) = match label.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (label, None),
        };
        Ok(state
            .containers
            .iter()
            .filter(|c| !c.removed)
            .filter(|c| match (c.label(key), value) {
                (Some(v), Some(want)) => v == want,
                (Some(_), None) => true,
                (None, _) => false,
            })
            .map(|c| ContainerInfo {
                id: c.id.clone(),
                name: c.spec.name.clone(),
                labels: c
                    .spec
                    .config
                    .labels
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
            })
            .collect())
    }

    async fn remove_container(&self, id: &str) -> Result<(), RuntimeError> {
        let mut state = self.check()?;
        if let Ok(c) = find(&mut state, id) {
            c.removed = true;
            c.status = ContainerStatus::Exited;
            let name = c.ecs_name().to_string();
            state.calls.push(format!("remove {name}"));
        }
        Ok(())
    }

    fn logs(
        &self,
        id: &str,
        since: i64,
        follow: bool,
    ) -> BoxStream<'static, Result<LogChunk, RuntimeError>> {
        let state = self.state.clone();
        let id = id.to_string();
        let since_nanos = i128::from(since) * 1_000_000_000;
        // The state is the position of the next line to send, or `None` once the stream has failed.
        stream::unfold(Some(0usize), move |pos| {
            let state = state.clone();
            let id = id.clone();
            async move {
                let pos = pos?;
                loop {
                    let step = {
                        let mut guard = lock(&state);
                        if guard.unavailable {
                            Err(RuntimeError::Unavailable("the fake engine is down".into()))
                        } else {
                            find(&mut guard, &id).map(|c| {
                                let next = c.log_lines[pos.min(c.log_lines.len())..]
                                    .iter()
                                    .enumerate()
                                    .find(|(_, line)| nanos_of_line(line) >= since_nanos)
                                    .map(|(i, line)| (pos + i, line.clone()));
                                (next, c.status == ContainerStatus::Running)
                            })
                        }
                    };
                    match step {
                        Err(e) => return Some((Err(e), None)),
                        Ok((Some((i, line)), _)) => {
                            return Some((Ok(format!("{line}\n").into_bytes()), Some(i + 1)))
                        }
                        Ok((None, running)) => {
                            if !follow || !running {
                                return None;
                            }
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                }
            }
        })
        .boxed()
    }
}
