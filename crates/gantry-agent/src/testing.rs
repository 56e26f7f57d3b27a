//! Test doubles: [`FakeApi`], an in-memory server side of the agent protocol that records what the agent says.
//! (The in-memory runtime is [`crate::runtime::FakeRuntime`].)

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use gantry_model::agent::{
    AgentApi, AgentError, DesiredState, LogBatch, LogEvent, RegisterRequest, RegisterResponse,
    RegistryCredentials, TaskSpec, TaskStateChange,
};
use gantry_model::ecs::status;
use tokio::sync::watch;

#[derive(Debug, Default)]
struct ApiState {
    arn: Option<String>,
    registrations: Vec<RegisterRequest>,
    registered: bool,
    tasks: Vec<TaskSpec>,
    reports: Vec<TaskStateChange>,
    batches: Vec<LogBatch>,
    cursors: BTreeMap<(String, String), String>,
    failing: u32,
    drop_stopped: bool,
    /// Handed out for images whose reference starts with `{server}/`.
    registry: Option<RegistryCredentials>,
}

/// An in-memory server. Reports update the last status of the tasks it hands out (never backwards), as the
/// real server does, so that a restarted agent sees what it had reported.
#[derive(Debug)]
pub struct FakeApi {
    state: Mutex<ApiState>,
    /// Bumped on every change of the desired state.
    index: watch::Sender<u64>,
    /// Bumped on every call that records something.
    recorded: watch::Sender<u64>,
}

impl Default for FakeApi {
    fn default() -> Self {
        FakeApi {
            state: Mutex::new(ApiState {
                registered: true,
                ..Default::default()
            }),
            index: watch::channel(1).0,
            recorded: watch::channel(0).0,
        }
    }
}

impl FakeApi {
    pub fn new() -> FakeApi {
        FakeApi::default()
    }

    fn lock(&self) -> MutexGuard<'_, ApiState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn bump_index(&self) {
        self.index.send_modify(|i| *i += 1);
    }

    fn bump_recorded(&self) {
        self.recorded.send_modify(|i| *i += 1);
    }

    /// Hands out `credentials` for the images of `credentials.server`.
    pub fn set_registry_credentials(&self, credentials: RegistryCredentials) {
        self.lock().registry = Some(credentials);
    }

    /// Replaces the desired tasks.
    pub fn set_tasks(&self, tasks: Vec<TaskSpec>) {
        self.lock().tasks = tasks;
        self.bump_index();
    }

    /// Changes one desired task.
    pub fn update_task(&self, task_arn: &str, change: impl FnOnce(&mut TaskSpec)) {
        if let Some(t) = self
            .lock()
            .tasks
            .iter_mut()
            .find(|t| t.task_arn == task_arn)
        {
            change(t);
        }
        self.bump_index();
    }

    /// Asks a task to stop, as StopTask does.
    pub fn stop_task(&self, task_arn: &str, code: &str, reason: &str) {
        self.update_task(task_arn, |t| {
            t.desired_status = status::STOPPED.into();
            t.stop_code = Some(code.into());
            t.stopped_reason = Some(reason.into());
        });
    }

    /// Drops a task from the desired state.
    pub fn remove_task(&self, task_arn: &str) {
        self.lock().tasks.retain(|t| t.task_arn != task_arn);
        self.bump_index();
    }

    /// Drops tasks from the desired state as soon as they are reported STOPPED.
    pub fn drop_stopped_tasks(&self, drop: bool) {
        self.lock().drop_stopped = drop;
    }

    /// Makes the next `n` calls fail with a retryable error.
    pub fn fail_next(&self, n: u32) {
        self.lock().failing = n;
    }

    pub fn deregister(&self) {
        self.lock().registered = false;
        self.bump_index();
    }

    pub fn container_instance_arn(&self) -> Option<String> {
        self.lock().arn.clone()
    }

    pub fn registrations(&self) -> Vec<RegisterRequest> {
        self.lock().registrations.clone()
    }

    pub fn reports(&self) -> Vec<TaskStateChange> {
        self.lock().reports.clone()
    }

    pub fn reports_for(&self, task_arn: &str) -> Vec<TaskStateChange> {
        self.lock()
            .reports
            .iter()
            .filter(|r| r.task_arn == task_arn)
            .cloned()
            .collect()
    }

    /// The last status the agent reported for a task.
    pub fn last_status(&self, task_arn: &str) -> Option<String> {
        self.lock()
            .reports
            .iter()
            .rev()
            .find(|r| r.task_arn == task_arn)
            .map(|r| r.last_status.clone())
    }

    /// The report that said STOPPED, if any.
    pub fn stopped_report(&self, task_arn: &str) -> Option<TaskStateChange> {
        self.lock()
            .reports
            .iter()
            .find(|r| r.task_arn == task_arn && r.last_status == status::STOPPED)
            .cloned()
    }

    pub fn batches(&self) -> Vec<LogBatch> {
        self.lock().batches.clone()
    }

    /// Every event stored for a stream, in order.
    pub fn log_events(&self, group: &str, stream: &str) -> Vec<LogEvent> {
        self.lock()
            .batches
            .iter()
            .filter(|b| b.log_group == group && b.log_stream == stream)
            .flat_map(|b| b.events.clone())
            .collect()
    }

    /// Waits until `check` holds (re-checked on every recorded call and every 20 ms), at most `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&FakeApi) -> bool,
    ) -> bool {
        let mut rx = self.recorded.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if check(self) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            let _ = tokio::time::timeout(Duration::from_millis(20), rx.changed()).await;
        }
    }

    /// Waits until the task was reported with `status`.
    pub async fn wait_for_status(&self, task_arn: &str, status: &str, timeout: Duration) -> bool {
        self.wait_for(timeout, |api| {
            api.reports_for(task_arn)
                .iter()
                .any(|r| r.last_status == status)
        })
        .await
    }

    fn take_failure(&self) -> Result<(), AgentError> {
        let mut state = self.lock();
        if state.failing > 0 {
            state.failing -= 1;
            return Err(AgentError::retryable("the fake server is unavailable"));
        }
        Ok(())
    }
}

impl AgentApi for FakeApi {
    async fn register(&self, req: RegisterRequest) -> Result<RegisterResponse, AgentError> {
        self.take_failure()?;
        let response = {
            let mut state = self.lock();
            let arn = req.container_instance_arn.clone().unwrap_or_else(|| {
                format!(
                    "arn:aws:ecs:us-east-1:000000000000:container-instance/{}/{}",
                    req.cluster,
                    gantry_model::new_id()
                )
            });
            state.arn = Some(arn.clone());
            state.registrations.push(req.clone());
            RegisterResponse {
                container_instance_arn: arn,
                cluster_arn: format!("arn:aws:ecs:us-east-1:000000000000:cluster/{}", req.cluster),
                token: None,
            }
        };
        self.bump_recorded();
        Ok(response)
    }

    async fn poll(
        &self,
        container_instance_arn: &str,
        index: u64,
        wait: Duration,
    ) -> Result<DesiredState, AgentError> {
        self.take_failure()?;
        if self.lock().arn.as_deref() != Some(container_instance_arn) {
            return Err(AgentError::fatal(format!(
                "unknown container instance {container_instance_arn}"
            )));
        }
        let mut rx = self.index.subscribe();
        if *rx.borrow_and_update() == index {
            let _ = tokio::time::timeout(wait, rx.changed()).await;
        }
        let current = *self.index.borrow();
        let state = self.lock();
        Ok(DesiredState {
            index: current,
            registered: state.registered,
            tasks: state.tasks.clone(),
        })
    }

    async fn report(
        &self,
        _container_instance_arn: &str,
        change: TaskStateChange,
    ) -> Result<(), AgentError> {
        self.take_failure()?;
        let mut drop = false;
        {
            let mut state = self.lock();
            let drop_stopped = state.drop_stopped;
            if let Some(t) = state
                .tasks
                .iter_mut()
                .find(|t| t.task_arn == change.task_arn)
            {
                if status::rank(&change.last_status) > status::rank(&t.last_status) {
                    t.last_status = change.last_status.clone();
                }
                drop = drop_stopped && change.last_status == status::STOPPED;
            }
            if drop {
                state.tasks.retain(|t| t.task_arn != change.task_arn);
            }
            state.reports.push(change);
        }
        if drop {
            self.bump_index();
        }
        self.bump_recorded();
        Ok(())
    }

    async fn put_logs(&self, batch: LogBatch) -> Result<(), AgentError> {
        self.take_failure()?;
        {
            let mut state = self.lock();
            if let Some(cursor) = batch.cursor.clone() {
                state
                    .cursors
                    .insert((batch.log_group.clone(), batch.log_stream.clone()), cursor);
            }
            state.batches.push(batch);
        }
        self.bump_recorded();
        Ok(())
    }

    async fn log_cursor(
        &self,
        log_group: &str,
        log_stream: &str,
    ) -> Result<Option<String>, AgentError> {
        self.take_failure()?;
        Ok(self
            .lock()
            .cursors
            .get(&(log_group.to_string(), log_stream.to_string()))
            .cloned())
    }

    async fn registry_credentials(
        &self,
        image: &str,
    ) -> Result<Option<RegistryCredentials>, AgentError> {
        self.take_failure()?;
        Ok(self
            .lock()
            .registry
            .clone()
            .filter(|c| image.starts_with(&format!("{}/", c.server))))
    }
}
