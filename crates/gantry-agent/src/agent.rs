//! The agent: register (keeping its identity in the data dir), find the containers it already has, then
//! long-poll the desired state and hand each task to its runner.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use gantry_model::agent::{AgentApi, AgentError, RegisterRequest, TaskSpec};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::config::{self, AgentConfig};
use crate::reconcile::{self, Discovered};
use crate::runtime::{ContainerInfo, Runtime, RuntimeError, RuntimeInfo};
use crate::state_file::{self, AgentState, StateFileError};
use crate::task_runner::{self, RunnerHandle, Shared};
use crate::translate::LABEL_TASK_ARN;

#[derive(Debug, thiserror::Error)]
pub enum AgentRunError {
    #[error("container runtime: {0}")]
    Runtime(#[from] RuntimeError),
    #[error("registration refused: {0}")]
    Register(AgentError),
    #[error("polling refused: {0}")]
    Poll(AgentError),
    #[error(transparent)]
    StateFile(#[from] StateFileError),
}

/// Who the agent is once registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub container_instance_arn: String,
    pub cluster_arn: String,
    pub instance_id: String,
}

/// The agent of one container instance. See the crate documentation for how to run one.
pub struct Agent<A: AgentApi, R: Runtime> {
    api: Arc<A>,
    runtime: Arc<R>,
    config: AgentConfig,
}

/// A server that answers polls at once without news is not polled faster than this.
const MIN_POLL_PERIOD: Duration = Duration::from_millis(100);

impl<A: AgentApi, R: Runtime> Agent<A, R> {
    pub fn new(api: Arc<A>, runtime: Arc<R>, config: AgentConfig) -> Self {
        Agent {
            api,
            runtime,
            config,
        }
    }

    /// Runs until the server deregisters the instance (`Ok`) or refuses the agent for good (`Err`).
    pub async fn run(self) -> Result<(), AgentRunError> {
        self.run_until(std::future::pending()).await
    }

    /// Runs until `shutdown` completes, the server deregisters the instance, or refuses the agent for good.
    /// Stopping the agent leaves containers running: the next agent with the same data dir re-adopts them.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), AgentRunError> {
        tokio::pin!(shutdown);
        let started = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            r = self.start() => r?,
        };
        let (registration, discovered) = started;
        let arn = registration.container_instance_arn.clone();
        let shared = Arc::new(Shared {
            api: self.api.clone(),
            runtime: self.runtime.clone(),
            instance_arn: arn.clone(),
            config: self.config.clone(),
        });
        let mut discovered = Some(discovered);
        let mut runners: BTreeMap<String, RunnerHandle> = BTreeMap::new();
        let mut orphans = JoinSet::new();
        let mut index = 0u64;
        let mut backoff = Backoff::new(self.config.retry_initial, self.config.retry_max);
        loop {
            let asked = Instant::now();
            let polled = tokio::select! {
                _ = &mut shutdown => break,
                r = self.api.poll(&arn, index, self.config.poll_wait) => r,
            };
            match polled {
                Ok(desired) => {
                    backoff.reset();
                    if !desired.registered {
                        tracing::info!(instance = %arn, "the container instance was deregistered; the agent stops");
                        break;
                    }
                    let news = desired.index != index;
                    index = desired.index;
                    reconcile(
                        &shared,
                        desired.tasks,
                        &mut runners,
                        discovered.take(),
                        &mut orphans,
                    );
                    if !news && asked.elapsed() < MIN_POLL_PERIOD {
                        tokio::select! {
                            _ = &mut shutdown => break,
                            _ = tokio::time::sleep(MIN_POLL_PERIOD) => {}
                        }
                    }
                }
                Err(e) if e.retryable => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, ?delay, "poll failed, reconnecting");
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                Err(e) => return Err(AgentRunError::Poll(e)),
            }
            while orphans.try_join_next().is_some() {}
        }
        Ok(())
    }

    /// Registers and finds the containers already there.
    async fn start(&self) -> Result<(Registration, Discovered), AgentRunError> {
        let info = self.runtime_info().await?;
        let (registration, previous) = self.register(&info).await?;
        tracing::info!(
            instance = %registration.container_instance_arn,
            instance_id = %registration.instance_id,
            "registered"
        );
        let mut arns = vec![registration.container_instance_arn.clone()];
        arns.extend(previous.filter(|p| *p != registration.container_instance_arn));
        let containers = self.list_task_containers().await?;
        let discovered = reconcile::group(containers, &arns);
        Ok((registration, discovered))
    }

    async fn runtime_info(&self) -> Result<RuntimeInfo, AgentRunError> {
        let mut backoff = Backoff::new(self.config.retry_initial, self.config.retry_max);
        loop {
            match self.runtime.info().await {
                Ok(info) => return Ok(info),
                Err(RuntimeError::Unavailable(e)) => {
                    tracing::warn!(error = %e, "container runtime unavailable, retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn list_task_containers(&self) -> Result<Vec<ContainerInfo>, AgentRunError> {
        let mut backoff = Backoff::new(self.config.retry_initial, self.config.retry_max);
        loop {
            match self.runtime.list_containers(LABEL_TASK_ARN).await {
                Ok(list) => return Ok(list),
                Err(RuntimeError::Unavailable(e)) => {
                    tracing::warn!(error = %e, "container runtime unavailable, retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Registers with the identity saved in the data dir; returns the registration and the previous ARN.
    async fn register(
        &self,
        info: &RuntimeInfo,
    ) -> Result<(Registration, Option<String>), AgentRunError> {
        let data_dir = &self.config.data_dir;
        let saved = state_file::load(data_dir)?.unwrap_or_default();
        let instance_id = self
            .config
            .instance_id
            .clone()
            .or_else(|| Some(saved.instance_id.clone()).filter(|i| !i.is_empty()))
            .unwrap_or_else(state_file::new_instance_id);
        let previous = saved
            .container_instance_arn
            .clone()
            .filter(|_| saved.cluster == self.config.cluster);
        let request = RegisterRequest {
            cluster: self.config.cluster.clone(),
            instance_id: instance_id.clone(),
            container_instance_arn: previous.clone(),
            cpu: config::cpu_units(&self.config, info),
            memory: config::memory_mib(&self.config, info),
            attributes: config::attributes(&self.config),
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            docker_version: info.version.clone(),
        };
        let mut backoff = Backoff::new(self.config.retry_initial, self.config.retry_max);
        let response = loop {
            match self.api.register(request.clone()).await {
                Ok(response) => break response,
                Err(e) if e.retryable => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, ?delay, "registration failed, retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(AgentRunError::Register(e)),
            }
        };
        let state = AgentState {
            cluster: self.config.cluster.clone(),
            instance_id: instance_id.clone(),
            container_instance_arn: Some(response.container_instance_arn.clone()),
        };
        state_file::save(data_dir, &state)?;
        let registration = Registration {
            container_instance_arn: response.container_instance_arn,
            cluster_arn: response.cluster_arn,
            instance_id,
        };
        Ok((registration, previous))
    }
}

/// Applies one desired state: new tasks get a runner (adopting what was found at start), running ones learn the
/// latest spec, runners of tasks no longer listed clean up, and orphans found at start are removed.
fn reconcile<A: AgentApi, R: Runtime>(
    shared: &Arc<Shared<A, R>>,
    desired: Vec<TaskSpec>,
    runners: &mut BTreeMap<String, RunnerHandle>,
    discovered: Option<Discovered>,
    orphans: &mut JoinSet<()>,
) {
    runners.retain(|_, r| !r.is_finished());
    let running: BTreeSet<String> = runners.keys().cloned().collect();
    let plan = reconcile::plan(&desired, &running, discovered);
    for (spec, adopted) in plan.start {
        tracing::info!(task = %spec.task_arn, desired = %spec.desired_status, "new task");
        let arn = spec.task_arn.clone();
        runners.insert(arn, task_runner::spawn(shared.clone(), spec, adopted));
    }
    for spec in plan.update {
        if let Some(runner) = runners.get(&spec.task_arn) {
            runner.updates.send_if_modified(|current| {
                if current.as_ref() == Some(&spec) {
                    false
                } else {
                    *current = Some(spec);
                    true
                }
            });
        }
    }
    for arn in plan.gone {
        if let Some(runner) = runners.get(&arn) {
            runner
                .updates
                .send_if_modified(|current| current.take().is_some());
        }
    }
    for (arn, containers) in plan.orphans {
        orphans.spawn(reconcile::remove_orphans(shared.clone(), arn, containers));
    }
}
