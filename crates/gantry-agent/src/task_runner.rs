//! One task's lifecycle, driven by its own tokio task: pull images, create volumes and containers, start them in
//! dependency order, report RUNNING, watch exits and health, stop (SIGTERM, stopTimeout, SIGKILL), report
//! STOPPED, and once the server no longer lists the task, remove its containers and task volumes. A runner given
//! containers that already exist (re-adoption) uses them: nothing is created or started twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use gantry_model::agent::{AgentApi, ContainerStateChange, TaskSpec, TaskStateChange};
use gantry_model::ecs::{status, stop_code, ContainerDefinition, NetworkBinding, TaskNetwork};
use gantry_model::time::now;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::config::AgentConfig;
use crate::deps::{self, Observed, Resolution};
use crate::health::{self, Member};
use crate::logs;
use crate::pause::{self, PAUSE_COMMAND, PAUSE_CONTAINER_NAME, PAUSE_IMAGE};
use crate::runtime::{ContainerInfo, ContainerState, ContainerStatus, Runtime, RuntimeError};
use crate::translate::{self, Context, VolumePlan, LABEL_CONTAINER_NAME};

/// What every runner shares with the agent.
pub(crate) struct Shared<A, R> {
    pub api: Arc<A>,
    pub runtime: Arc<R>,
    pub instance_arn: String,
    pub config: AgentConfig,
}

impl<A: AgentApi, R> Shared<A, R> {
    /// Sends a report, retrying while the server says retrying helps.
    pub(crate) async fn report(&self, change: TaskStateChange) {
        let mut backoff = Backoff::new(self.config.retry_initial, self.config.retry_max);
        loop {
            match self.api.report(&self.instance_arn, change.clone()).await {
                Ok(()) => return,
                Err(e) if e.retryable => {
                    tracing::warn!(task = %change.task_arn, error = %e, "report failed, retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(e) => {
                    tracing::error!(task = %change.task_arn, status = %change.last_status, error = %e, "report refused");
                    return;
                }
            }
        }
    }
}

/// The agent's end of a runner: the latest desired state of the task (`None` once the server no longer lists it).
/// Dropping the handle ends the runner (containers are left as they are, to be re-adopted).
pub(crate) struct RunnerHandle {
    pub updates: watch::Sender<Option<TaskSpec>>,
    join: JoinHandle<()>,
}

impl RunnerHandle {
    pub(crate) fn is_finished(&self) -> bool {
        self.join.is_finished()
    }
}

impl Drop for RunnerHandle {
    fn drop(&mut self) {
        self.join.abort();
    }
}

/// Starts the runner of a task, with the containers found for it on the runtime.
pub(crate) fn spawn<A: AgentApi, R: Runtime>(
    shared: Arc<Shared<A, R>>,
    spec: TaskSpec,
    adopted: Vec<ContainerInfo>,
) -> RunnerHandle {
    let (updates, rx) = watch::channel(Some(spec.clone()));
    let runner = TaskRunner::new(shared, spec, adopted, rx);
    RunnerHandle {
        updates,
        join: tokio::spawn(runner.run()),
    }
}

/// Why a task stops.
#[derive(Debug, Clone, PartialEq)]
enum StopCause {
    /// The server asked (desired status STOPPED).
    Server,
    /// The server no longer lists the task: stop without reporting.
    Gone,
    /// The named essential container exited.
    EssentialExited(String),
    FailedToStart(String),
}

struct Slot {
    def: ContainerDefinition,
    docker_name: Option<String>,
    id: Option<String>,
    state: Option<ContainerState>,
    /// The container existed once but no longer does.
    lost: bool,
    reason: Option<String>,
    reported: Option<ContainerStateChange>,
    shipping: bool,
}

impl Slot {
    fn observed(&self) -> Observed {
        match self.state.as_ref() {
            None => Observed::NotStarted,
            Some(s) => match s.status {
                ContainerStatus::Created => Observed::NotStarted,
                ContainerStatus::Running => Observed::Running { health: s.health },
                ContainerStatus::Exited => Observed::Exited { code: s.exit_code },
            },
        }
    }

    fn has_health_check(&self) -> bool {
        self.def
            .health_check
            .as_ref()
            .is_some_and(|h| !h.command.is_empty())
    }

    fn status(&self) -> Option<ContainerStatus> {
        self.state.as_ref().map(|s| s.status)
    }

    fn member(&self) -> Member {
        Member {
            essential: self.def.is_essential(),
            has_health_check: self.has_health_check(),
            health: self.state.as_ref().and_then(|s| s.health),
        }
    }
}

fn lost_state(id: &str, name: &str, previous: Option<&ContainerState>) -> ContainerState {
    ContainerState {
        id: id.to_string(),
        name: name.to_string(),
        status: ContainerStatus::Exited,
        exit_code: previous.and_then(|p| p.exit_code),
        error: None,
        oom_killed: false,
        health: None,
        port_bindings: Vec::new(),
        labels: BTreeMap::new(),
        image_id: None,
        volumes: Vec::new(),
    }
}

const LOST_REASON: &str = "the container no longer exists on the instance";

struct TaskRunner<A, R> {
    shared: Arc<Shared<A, R>>,
    spec: TaskSpec,
    updates: watch::Receiver<Option<TaskSpec>>,
    gone: bool,
    slots: Vec<Slot>,
    /// Containers labelled with the task that match none of its definitions.
    strays: Vec<String>,
    volumes: BTreeMap<String, VolumePlan>,
    /// An awsvpc task's pause container: its Docker name and id once made (or adopted).
    pause: Option<(String, String)>,
    /// The security groups in the desired state changed since they were last enforced.
    firewall_stale: bool,
    /// The task's cgroup, when it has task-level cpu or memory.
    cgroup_parent: Option<String>,
    logs: JoinSet<()>,
    pull_started_at: Option<f64>,
    pull_stopped_at: Option<f64>,
    pull_reported: bool,
    reported_health: Option<&'static str>,
}

impl<A: AgentApi, R: Runtime> TaskRunner<A, R> {
    fn new(
        shared: Arc<Shared<A, R>>,
        spec: TaskSpec,
        adopted: Vec<ContainerInfo>,
        updates: watch::Receiver<Option<TaskSpec>>,
    ) -> Self {
        let mut slots: Vec<Slot> = spec
            .containers
            .iter()
            .map(|def| Slot {
                def: def.clone(),
                docker_name: None,
                id: None,
                state: None,
                lost: false,
                reason: None,
                reported: None,
                shipping: false,
            })
            .collect();
        let mut strays = Vec::new();
        let mut pause = None;
        for info in adopted {
            let name = info
                .labels
                .get(LABEL_CONTAINER_NAME)
                .cloned()
                .unwrap_or_default();
            if name == PAUSE_CONTAINER_NAME && pause.is_none() {
                pause = Some((info.name, info.id));
                continue;
            }
            match slots
                .iter_mut()
                .find(|s| s.def.name() == name && s.id.is_none())
            {
                Some(slot) => {
                    slot.id = Some(info.id);
                    slot.docker_name = Some(info.name);
                }
                None => strays.push(info.id),
            }
        }
        let volumes = translate::volume_plans(&spec, &shared.instance_arn);
        TaskRunner {
            shared,
            spec,
            updates,
            gone: false,
            slots,
            strays,
            volumes,
            pause,
            firewall_stale: false,
            cgroup_parent: None,
            logs: JoinSet::new(),
            pull_started_at: None,
            pull_stopped_at: None,
            pull_reported: false,
            reported_health: None,
        }
    }

    async fn run(mut self) {
        let adopted = self.slots.iter().filter(|s| s.id.is_some()).count();
        tracing::info!(task = %self.spec.task_arn, adopted, "task runner started");
        self.refresh().await;
        // Whether the task ended as a task (its containers are kept a while), rather than being forgotten.
        let ended = if self.spec.last_status == status::STOPPED {
            // The server has it STOPPED already: make sure nothing runs, and say nothing.
            self.stop_all().await;
            true
        } else {
            let cause = match self.check_desired() {
                Some(cause) => cause,
                None => self.start_and_watch().await,
            };
            let ended = !matches!(cause, StopCause::Gone);
            self.stop_task(cause).await;
            self.release_firewall().await;
            self.release_network().await;
            ended
        };
        self.wait_until_gone().await;
        self.cleanup(ended).await;
    }

    async fn start_and_watch(&mut self) -> StopCause {
        if let Err(cause) = self.start().await {
            return cause;
        }
        self.report_running().await;
        self.watch().await
    }

    /// Waits for the next watch tick or a change of the desired state.
    async fn tick(&mut self) {
        let interval = self.shared.config.watch_interval;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            changed = self.updates.changed() => {
                if changed.is_err() {
                    // The agent is gone; it aborts this task.
                    std::future::pending::<()>().await;
                }
            }
        }
    }

    /// Takes in the latest desired state; says whether the task must stop.
    fn check_desired(&mut self) -> Option<StopCause> {
        {
            let latest = self.updates.borrow_and_update();
            match latest.as_ref() {
                None => self.gone = true,
                Some(s) => {
                    if s.firewall != self.spec.firewall {
                        self.spec.firewall = s.firewall.clone();
                        self.firewall_stale = true;
                    }
                    self.spec.desired_status = s.desired_status.clone();
                    self.spec.stop_code = s.stop_code.clone();
                    self.spec.stopped_reason = s.stopped_reason.clone();
                }
            }
        }
        if self.gone {
            Some(StopCause::Gone)
        } else if self.spec.desired_status == status::STOPPED {
            Some(StopCause::Server)
        } else {
            None
        }
    }

    async fn wait_until_gone(&mut self) {
        loop {
            if self.updates.borrow_and_update().is_none() {
                self.gone = true;
            }
            if self.gone {
                return;
            }
            if self.updates.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Inspects every container of the task.
    async fn refresh(&mut self) {
        for i in 0..self.slots.len() {
            self.refresh_one(i).await;
        }
    }

    async fn refresh_one(&mut self, i: usize) {
        let Some(id) = self.slots[i].id.clone() else {
            return;
        };
        if self.slots[i].lost {
            return;
        }
        match self.shared.runtime.inspect_container(&id).await {
            Ok(state) => self.slots[i].state = Some(state),
            Err(RuntimeError::NotFound(_)) => {
                let slot = &mut self.slots[i];
                tracing::warn!(task = %self.spec.task_arn, container = %slot.def.name(), "container vanished");
                slot.state = Some(lost_state(
                    &id,
                    slot.docker_name.as_deref().unwrap_or(""),
                    slot.state.as_ref(),
                ));
                slot.lost = true;
                slot.reason.get_or_insert_with(|| LOST_REASON.to_string());
            }
            Err(e) => {
                tracing::warn!(task = %self.spec.task_arn, container = %id, error = %e, "cannot inspect container")
            }
        }
        if self.slots[i]
            .state
            .as_ref()
            .is_some_and(|s| s.was_started())
        {
            self.ensure_shipping(i);
        }
    }

    /// Starts shipping a started container's output if it logs with `awslogs`.
    fn ensure_shipping(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        if slot.shipping || slot.lost {
            return;
        }
        slot.shipping = true;
        let Some(id) = slot.id.clone() else { return };
        let Some(target) = logs::target(&self.spec, &slot.def, &id) else {
            return;
        };
        let api = self.shared.api.clone();
        let runtime = self.shared.runtime.clone();
        self.logs.spawn(logs::ship(
            api,
            runtime,
            id,
            target,
            self.shared.config.log_settings(),
        ));
    }

    fn essential_exit(&self) -> Option<StopCause> {
        self.slots
            .iter()
            .find(|s| s.def.is_essential() && s.status() == Some(ContainerStatus::Exited))
            .map(|s| StopCause::EssentialExited(s.def.name().to_string()))
    }

    fn fail(&mut self, i: usize, reason: String) -> StopCause {
        self.slots[i].reason = Some(reason.clone());
        StopCause::FailedToStart(reason)
    }

    /// Everything up to all containers started (or resolved): pull, volumes, create, start in dependency order.
    async fn start(&mut self) -> Result<(), StopCause> {
        let runtime = self.shared.runtime.clone();
        let already_running = status::rank(&self.spec.last_status) >= status::rank(status::RUNNING);
        if already_running {
            // The server has seen this task run: a container missing now is gone, never created afresh.
            for slot in self.slots.iter_mut().filter(|s| s.id.is_none()) {
                slot.state = Some(lost_state("", "", None));
                slot.lost = true;
                slot.reason = Some(LOST_REASON.to_string());
            }
        }

        self.pull().await?;

        for plan in self.volumes.values() {
            let result = match plan {
                VolumePlan::Host { .. } => Ok(()),
                VolumePlan::Task(spec) => runtime.create_volume(spec).await,
                VolumePlan::Shared {
                    spec,
                    autoprovision,
                } => match runtime.volume_exists(&spec.name).await {
                    Ok(true) => Ok(()),
                    Ok(false) if *autoprovision => runtime.create_volume(spec).await,
                    Ok(false) => Err(RuntimeError::NotFound(format!(
                        "volume {} does not exist and autoprovision is off",
                        spec.name
                    ))),
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = result {
                return Err(StopCause::FailedToStart(format!(
                    "CannotCreateVolumeError: {e}"
                )));
            }
        }

        if self.spec.cpu.is_some() || self.spec.memory.is_some() {
            match self
                .shared
                .runtime
                .task_cgroup(self.task_id(), self.spec.cpu, self.spec.memory)
                .await
            {
                Ok(parent) => self.cgroup_parent = parent,
                Err(e) => {
                    return Err(StopCause::FailedToStart(format!(
                        "ResourceInitializationError: cannot limit the task's cpu and memory: {e}"
                    )))
                }
            }
        }

        if translate::needs_pause(&self.spec) {
            let network = self
                .spec
                .network
                .clone()
                .filter(|_| translate::network_mode(&self.spec) == "awsvpc");
            if let Err(e) = self.start_pause(network.as_ref()).await {
                return Err(StopCause::FailedToStart(format!(
                    "ResourceInitializationError: {e}"
                )));
            }
            // Before any container of the task runs: its groups hold from its first packet.
            if let Err(e) = self.enforce_firewall().await {
                return Err(StopCause::FailedToStart(format!(
                    "ResourceInitializationError: cannot enforce the task's security groups: {e}"
                )));
            }
        }

        let defs: Vec<ContainerDefinition> = self.slots.iter().map(|s| s.def.clone()).collect();
        let (order, dependencies) = match (deps::start_order(&defs), deps::dependencies(&defs)) {
            (Ok(order), Ok(dependencies)) => (order, dependencies),
            (Err(e), _) | (_, Err(e)) => {
                return Err(StopCause::FailedToStart(format!("DependencyError: {e}")))
            }
        };

        for slot in self.slots.iter_mut().filter(|s| s.docker_name.is_none()) {
            slot.docker_name = Some(translate::docker_container_name(
                &self.spec.family,
                self.spec.revision,
                slot.def.name(),
            ));
        }
        let names: BTreeMap<String, String> = self
            .slots
            .iter()
            .map(|s| {
                (
                    s.def.name().to_string(),
                    s.docker_name.clone().unwrap_or_default(),
                )
            })
            .collect();
        for &i in &order {
            if self.slots[i].id.is_some() || self.slots[i].lost {
                continue;
            }
            let ctx = Context {
                task: &self.spec,
                instance_arn: &self.shared.instance_arn,
                docker_names: &names,
                volumes: &self.volumes,
                pause: self.pause.as_ref().map(|(name, _)| name.as_str()),
                cgroup_parent: self.cgroup_parent.as_deref(),
            };
            let docker_name = names
                .get(self.slots[i].def.name())
                .cloned()
                .unwrap_or_default();
            let spec = match translate::container_spec(&ctx, &self.slots[i].def, &docker_name) {
                Ok(spec) => spec,
                Err(e) => return Err(self.fail(i, format!("CannotCreateContainerError: {e}"))),
            };
            match runtime.create_container(&spec).await {
                Ok(id) => {
                    tracing::debug!(task = %self.spec.task_arn, container = %docker_name, "created");
                    self.slots[i].id = Some(id);
                }
                Err(e) => return Err(self.fail(i, format!("CannotCreateContainerError: {e}"))),
            }
        }

        let waiting_since = Instant::now();
        loop {
            self.refresh().await;
            if let Some(cause) = self.essential_exit() {
                return Err(cause);
            }
            let mut waiting = false;
            for &i in &order {
                match self.slots[i].status() {
                    Some(ContainerStatus::Created) => {}
                    Some(_) => continue,
                    None => {
                        waiting = true; // not inspected yet
                        continue;
                    }
                }
                let mut resolution = Resolution::Met;
                for d in &dependencies[i] {
                    let dep = &self.slots[d.on];
                    match deps::resolve(
                        dep.def.name(),
                        d.condition,
                        dep.observed(),
                        dep.has_health_check(),
                    ) {
                        Resolution::Met => {}
                        Resolution::Waiting => resolution = Resolution::Waiting,
                        never @ Resolution::Never(_) => {
                            resolution = never;
                            break;
                        }
                    }
                }
                let name = self.slots[i].def.name().to_string();
                match resolution {
                    Resolution::Met => {
                        let id = self.slots[i].id.clone().unwrap_or_default();
                        if let Err(e) = runtime.start_container(&id).await {
                            self.refresh_one(i).await;
                            return Err(self.fail(i, format!("CannotStartContainerError: {e}")));
                        }
                        tracing::info!(task = %self.spec.task_arn, container = %name, "started");
                        self.refresh_one(i).await;
                    }
                    Resolution::Waiting => {
                        waiting = true;
                        if let Some(limit) = self.slots[i].def.start_timeout.filter(|t| *t > 0) {
                            if waiting_since.elapsed() > Duration::from_secs(limit.unsigned_abs()) {
                                let reason = format!(
                                    "DependencyError: container {name} gave up waiting for its dependencies after {limit} s"
                                );
                                return Err(self.fail(i, reason));
                            }
                        }
                    }
                    Resolution::Never(why) => {
                        return Err(self.fail(
                            i,
                            format!("DependencyError: container {name} cannot start: {why}"),
                        ));
                    }
                }
            }
            if !waiting {
                return Ok(());
            }
            self.tick().await;
            if let Some(cause) = self.check_desired() {
                return Err(cause);
            }
        }
    }

    /// Makes (once) and starts the pause container that holds the task's shared namespaces: an awsvpc task's
    /// address (with the subnet's host network), and the PID or IPC namespace of `pidMode`/`ipcMode: task`.
    async fn start_pause(&mut self, network: Option<&TaskNetwork>) -> Result<(), String> {
        let runtime = self.shared.runtime.clone();
        let host_network = network
            .map(translate::subnet_network)
            .transpose()
            .map_err(|e| e.to_string())?;
        let ensure_network = || async {
            let (Some(net), Some(network)) = (&host_network, network) else {
                return Ok(());
            };
            runtime.ensure_network(net).await.map_err(|e| {
                format!(
                    "cannot create the network of subnet {}: {e}",
                    network.subnet_id
                )
            })
        };
        let (id, made) = match self.pause.clone() {
            Some((_, id)) => (id, false),
            None => {
                if !runtime.image_present(PAUSE_IMAGE).await.unwrap_or(false) {
                    let program = pause::pause_program().ok_or(
                        "awsvpc tasks and pidMode/ipcMode task need an x86-64 host: the agent has no pause program for this architecture",
                    )?;
                    let rootfs = pause::tar_with(PAUSE_COMMAND, &program);
                    let changes = vec![format!("CMD [\"{PAUSE_COMMAND}\"]")];
                    runtime
                        .import_image(PAUSE_IMAGE, rootfs, changes)
                        .await
                        .map_err(|e| format!("cannot make the pause image: {e}"))?;
                }
                ensure_network().await?;
                let name = translate::docker_container_name(
                    &self.spec.family,
                    self.spec.revision,
                    "internalecspause",
                );
                let (names, volumes) = (BTreeMap::new(), BTreeMap::new());
                let ctx = Context {
                    task: &self.spec,
                    instance_arn: &self.shared.instance_arn,
                    docker_names: &names,
                    volumes: &volumes,
                    pause: None,
                    cgroup_parent: None,
                };
                let spec =
                    translate::pause_spec(&ctx, network, &name).map_err(|e| e.to_string())?;
                let id = runtime
                    .create_container(&spec)
                    .await
                    .map_err(|e| format!("cannot create the pause container: {e}"))?;
                self.pause = Some((name, id.clone()));
                (id, true)
            }
        };
        // An adopted one may be running already; one just made is not.
        if !made && matches!(runtime.inspect_container(&id).await, Ok(s) if s.is_running()) {
            return Ok(());
        }
        if runtime.start_container(&id).await.is_err() {
            // Another agent of this host may have removed the network of its last task meanwhile.
            ensure_network().await?;
            runtime
                .start_container(&id)
                .await
                .map_err(|e| format!("cannot start the pause container: {e}"))?;
        }
        Ok(())
    }

    fn task_id(&self) -> &str {
        self.spec.task_arn.rsplit('/').next().unwrap_or_default()
    }

    /// The task's address and what its security groups allow, for an awsvpc task the server resolved them for.
    fn firewall(&self) -> Option<(std::net::Ipv4Addr, &gantry_model::agent::TaskFirewall)> {
        let network = self.spec.network.as_ref()?;
        let address = network.private_ipv4_address.parse().ok()?;
        Some((address, self.spec.firewall.as_ref()?))
    }

    async fn enforce_firewall(&self) -> Result<(), RuntimeError> {
        match self.firewall() {
            Some((address, firewall)) => self.shared.runtime.set_firewall(address, firewall).await,
            None => Ok(()),
        }
    }

    /// Removes the task's packet filter rules once its containers have stopped (none is not an error).
    async fn release_firewall(&self) {
        let Some(address) = self
            .spec
            .network
            .as_ref()
            .and_then(|n| n.private_ipv4_address.parse().ok())
        else {
            return;
        };
        if let Err(e) = self.shared.runtime.remove_firewall(address).await {
            tracing::warn!(task = %self.spec.task_arn, error = %e, "cannot remove the task's security group rules");
        }
    }

    /// Removes the subnet's host network once the task's pause container has stopped. The engine refuses while
    /// other tasks run on it: the last one to stop removes it.
    async fn release_network(&self) {
        let Some(network) = self.spec.network.as_ref().filter(|_| self.pause.is_some()) else {
            return;
        };
        if let Ok(net) = translate::subnet_network(network) {
            if let Err(e) = self.shared.runtime.remove_network(&net.name).await {
                tracing::debug!(network = %net.name, error = %e, "network kept");
            }
        }
    }

    /// Pulls the images of the containers still to create; an image in the local store is used as it is.
    async fn pull(&mut self) -> Result<(), StopCause> {
        let mut images: Vec<String> = Vec::new();
        for slot in self.slots.iter().filter(|s| s.id.is_none() && !s.lost) {
            if let Some(image) = slot.def.image.clone().filter(|i| !i.is_empty()) {
                if !images.contains(&image) {
                    images.push(image);
                }
            }
        }
        if images.is_empty() {
            return Ok(());
        }
        let runtime = self.shared.runtime.clone();
        self.pull_started_at = Some(now());
        for image in images {
            if runtime.image_present(&image).await.unwrap_or(false) {
                continue;
            }
            tracing::info!(task = %self.spec.task_arn, %image, "pulling");
            // Without credentials the pull is still tried: a public or local registry needs none.
            let credentials = match self.shared.api.registry_credentials(&image).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(%image, error = %e, "no registry credentials, pulling without");
                    None
                }
            };
            if let Err(e) = runtime.pull_image(&image, credentials.as_ref()).await {
                self.pull_stopped_at = Some(now());
                let message = match e {
                    RuntimeError::Pull { message, .. } => message,
                    other => other.to_string(),
                };
                let reason = format!("CannotPullContainerError: {message}");
                for slot in self
                    .slots
                    .iter_mut()
                    .filter(|s| s.def.image.as_deref() == Some(image.as_str()))
                {
                    slot.reason = Some(reason.clone());
                }
                return Err(StopCause::FailedToStart(reason));
            }
            if let Some(cause) = self.check_desired() {
                self.pull_stopped_at = Some(now());
                return Err(cause);
            }
        }
        self.pull_stopped_at = Some(now());
        if status::rank(&self.spec.last_status) < status::rank(status::RUNNING) {
            let change = TaskStateChange {
                task_arn: self.spec.task_arn.clone(),
                last_status: status::PENDING.into(),
                pull_started_at: self.pull_started_at,
                pull_stopped_at: self.pull_stopped_at,
                ..Default::default()
            };
            self.shared.report(change).await;
            self.pull_reported = true;
        }
        Ok(())
    }

    fn network_bindings(&self, slot: &Slot) -> Vec<NetworkBinding> {
        if translate::network_mode(&self.spec) == "host" {
            return slot
                .def
                .port_mappings
                .iter()
                .filter_map(|pm| {
                    let port = pm.container_port?;
                    Some(NetworkBinding {
                        bind_ip: Some("0.0.0.0".into()),
                        container_port: Some(port),
                        host_port: Some(pm.host_port.filter(|p| *p > 0).unwrap_or(port)),
                        protocol: Some(
                            pm.protocol
                                .clone()
                                .unwrap_or_else(|| "tcp".into())
                                .to_ascii_lowercase(),
                        ),
                    })
                })
                .collect();
        }
        slot.state
            .as_ref()
            .map(|s| s.port_bindings.clone())
            .unwrap_or_default()
    }

    /// A container's state for a report; `stopped` for the task's final report.
    fn container_change(&self, slot: &Slot, stopped: bool) -> ContainerStateChange {
        let state = slot.state.as_ref();
        let last_status = match (stopped, state.map(|s| s.status)) {
            (true, _) | (_, Some(ContainerStatus::Exited)) => status::STOPPED,
            (false, Some(ContainerStatus::Running)) => status::RUNNING,
            _ => status::PENDING,
        };
        let running = last_status == status::RUNNING;
        let mut network_bindings = if running {
            self.network_bindings(slot)
        } else {
            Vec::new()
        };
        if network_bindings.is_empty() && !running {
            network_bindings = slot
                .reported
                .as_ref()
                .map(|r| r.network_bindings.clone())
                .unwrap_or_default();
        }
        let reason = slot.reason.clone().or_else(|| {
            state.and_then(|s| {
                if s.oom_killed {
                    Some("OutOfMemoryError: Container killed due to memory usage".to_string())
                } else {
                    s.error.clone()
                }
            })
        });
        ContainerStateChange {
            name: slot.def.name().to_string(),
            runtime_id: slot.id.clone().filter(|id| !id.is_empty()),
            image_digest: None,
            last_status: last_status.to_string(),
            exit_code: state
                .filter(|s| s.status == ContainerStatus::Exited)
                .and_then(|s| s.exit_code),
            reason,
            network_bindings,
            health_status: if running {
                health::container_health(
                    slot.has_health_check(),
                    slot.state.as_ref().and_then(|s| s.health),
                )
                .map(str::to_string)
            } else {
                None
            },
        }
    }

    fn task_health(&self) -> &'static str {
        health::task_health(self.slots.iter().map(Slot::member))
    }

    async fn report_running(&mut self) {
        let containers: Vec<ContainerStateChange> = self
            .slots
            .iter()
            .map(|s| self.container_change(s, false))
            .collect();
        let health = self.task_health();
        let first = status::rank(&self.spec.last_status) < status::rank(status::RUNNING);
        let change = TaskStateChange {
            task_arn: self.spec.task_arn.clone(),
            last_status: status::RUNNING.into(),
            containers: containers.clone(),
            health_status: Some(health.to_string()),
            pull_started_at: self.pull_started_at.filter(|_| !self.pull_reported),
            pull_stopped_at: self.pull_stopped_at.filter(|_| !self.pull_reported),
            started_at: first.then(now),
            ..Default::default()
        };
        tracing::info!(task = %self.spec.task_arn, "running");
        self.shared.report(change).await;
        self.pull_reported = true;
        for (slot, c) in self.slots.iter_mut().zip(containers) {
            slot.reported = Some(c);
        }
        self.reported_health = Some(health);
        self.spec.last_status = status::RUNNING.into();
    }

    /// Reports the containers whose state or health changed, and the task's health.
    async fn report_changes(&mut self) {
        let changed: Vec<(usize, ContainerStateChange)> = self
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| (i, self.container_change(s, false)))
            .filter(|(i, c)| self.slots[*i].reported.as_ref() != Some(c))
            .collect();
        let health = self.task_health();
        if changed.is_empty() && self.reported_health == Some(health) {
            return;
        }
        let change = TaskStateChange {
            task_arn: self.spec.task_arn.clone(),
            last_status: status::RUNNING.into(),
            containers: changed.iter().map(|(_, c)| c.clone()).collect(),
            health_status: Some(health.to_string()),
            ..Default::default()
        };
        self.shared.report(change).await;
        for (i, c) in changed {
            self.slots[i].reported = Some(c);
        }
        self.reported_health = Some(health);
    }

    async fn watch(&mut self) -> StopCause {
        loop {
            self.tick().await;
            if let Some(cause) = self.check_desired() {
                return cause;
            }
            if self.firewall_stale {
                match self.enforce_firewall().await {
                    Ok(()) => self.firewall_stale = false,
                    // Tried again at the next tick.
                    Err(e) => {
                        tracing::warn!(task = %self.spec.task_arn, error = %e, "cannot change the task's security group rules")
                    }
                }
            }
            self.refresh().await;
            if let Some(cause) = self.essential_exit() {
                return cause;
            }
            self.report_changes().await;
        }
    }

    /// Stops every container not yet stopped, dependents before their dependencies, each with its stopTimeout.
    async fn stop_all(&mut self) {
        let defs: Vec<ContainerDefinition> = self.slots.iter().map(|s| s.def.clone()).collect();
        for layer in deps::stop_layers(&defs) {
            let stops: Vec<(String, String, Duration)> = layer
                .iter()
                .map(|&i| &self.slots[i])
                .filter(|s| !s.lost && s.status() != Some(ContainerStatus::Exited))
                .filter_map(|s| {
                    let id = s.id.clone()?;
                    let timeout =
                        Duration::from_secs(translate::stop_timeout_secs(&s.def).unsigned_abs());
                    Some((id, s.def.name().to_string(), timeout))
                })
                .collect();
            let runtime = &self.shared.runtime;
            let task = &self.spec.task_arn;
            join_all(stops.into_iter().map(|(id, name, timeout)| async move {
                tracing::info!(%task, container = %name, ?timeout, "stopping");
                if let Err(e) = runtime.stop_container(&id, Some(timeout)).await {
                    tracing::warn!(%task, container = %name, error = %e, "cannot stop container");
                }
            }))
            .await;
        }
        // The pause program ignores SIGTERM (it is PID 1 without a handler): kill it at once.
        if let Some((_, id)) = &self.pause {
            if let Err(e) = self
                .shared
                .runtime
                .stop_container(id, Some(Duration::ZERO))
                .await
            {
                tracing::warn!(task = %self.spec.task_arn, error = %e, "cannot stop the pause container");
            }
        }
        // Before the task is reported STOPPED: its address is then free for another task, whose rules these are not.
        self.release_firewall().await;
        if self.spec.cpu.is_some() || self.spec.memory.is_some() {
            if let Err(e) = self.shared.runtime.remove_task_cgroup(self.task_id()).await {
                tracing::warn!(task = %self.spec.task_arn, error = %e, "cannot remove the task's cgroup");
            }
        }
        self.refresh().await;
    }

    async fn stop_task(&mut self, cause: StopCause) {
        tracing::info!(task = %self.spec.task_arn, ?cause, "stopping task");
        let decided_here = !matches!(cause, StopCause::Server);
        let (code, reason) = match cause {
            StopCause::Gone => {
                self.stop_all().await;
                return;
            }
            StopCause::Server => (
                self.spec.stop_code.clone(),
                self.spec.stopped_reason.clone(),
            ),
            StopCause::EssentialExited(_) => (
                Some(stop_code::ESSENTIAL_CONTAINER_EXITED.to_string()),
                Some("Essential container in task exited".to_string()),
            ),
            StopCause::FailedToStart(reason) => (
                Some(stop_code::TASK_FAILED_TO_START.to_string()),
                Some(reason),
            ),
        };
        if decided_here {
            // The task starts stopping now, on the agent's own decision: say so and why before stopping the rest
            // (which may take each container's stopTimeout), so that stoppingAt is now, as on ECS.
            let stopping = TaskStateChange {
                task_arn: self.spec.task_arn.clone(),
                last_status: self.spec.last_status.clone(),
                containers: self
                    .slots
                    .iter()
                    .map(|s| self.container_change(s, false))
                    .collect(),
                stop_code: code.clone(),
                stopped_reason: reason.clone(),
                ..Default::default()
            };
            self.shared.report(stopping).await;
        }
        self.stop_all().await;
        let change = TaskStateChange {
            task_arn: self.spec.task_arn.clone(),
            last_status: status::STOPPED.into(),
            containers: self
                .slots
                .iter()
                .map(|s| self.container_change(s, true))
                .collect(),
            health_status: None,
            pull_started_at: self.pull_started_at.filter(|_| !self.pull_reported),
            pull_stopped_at: self.pull_stopped_at.filter(|_| !self.pull_reported),
            started_at: None,
            execution_stopped_at: Some(now()),
            stop_code: code,
            stopped_reason: reason,
        };
        self.shared.report(change).await;
        self.spec.last_status = status::STOPPED.into();
    }

    /// After the server dropped the task: let the last log lines go out, keep the containers of an ended task for
    /// the cleanup wait, then remove containers and task volumes.
    async fn cleanup(&mut self, ended: bool) {
        let drain = self.shared.config.log_drain_timeout;
        let logs = &mut self.logs;
        if tokio::time::timeout(drain, async { while logs.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            tracing::warn!(task = %self.spec.task_arn, "log shipping did not finish before cleanup");
        }
        self.logs.abort_all();
        if ended {
            tokio::time::sleep(self.shared.config.task_cleanup_wait).await;
        }
        let runtime = &self.shared.runtime;
        let ids = self
            .slots
            .iter()
            .filter(|s| !s.lost)
            .filter_map(|s| s.id.clone())
            .chain(self.strays.clone())
            .chain(self.pause.iter().map(|(_, id)| id.clone()));
        for id in ids {
            if let Err(e) = runtime.remove_container(&id).await {
                tracing::warn!(task = %self.spec.task_arn, container = %id, error = %e, "cannot remove container");
            }
        }
        for plan in self.volumes.values() {
            if let VolumePlan::Task(spec) = plan {
                if let Err(e) = runtime.remove_volume(&spec.name).await {
                    tracing::warn!(task = %self.spec.task_arn, volume = %spec.name, error = %e, "cannot remove volume");
                }
            }
        }
        tracing::info!(task = %self.spec.task_arn, "task cleaned up");
    }
}
