//! The server side of the agent protocol, straight into the ECS, Logs and ECR services. The embedded agent calls
//! it in-process; the HTTP endpoints of remote agents (`agent_http`) call the same object, so both take one code
//! path.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gantry_ecs::EcsService;
use gantry_logs::LogsService;
use gantry_model::agent::{
    AgentApi, AgentError, DesiredState, LogBatch, RegisterRequest, RegisterResponse,
    RegistryCredentials, TaskStateChange,
};
use gantry_model::Scope;
use gantry_registry::ecr::EcrService;
use gantry_store::WalStore;

pub struct Embedded {
    pub ecs: Arc<EcsService<WalStore>>,
    pub logs: Arc<LogsService<WalStore>>,
    pub ecr: Arc<EcrService<WalStore>>,
    pub scope: Scope,
    /// The agent's registration and the ARN it got, to restore its container instance after an admin reset.
    pub registration: Mutex<Option<(RegisterRequest, String)>>,
    /// Whether this object serves the embedded agent (one agent: it remembers its registration) or remote agents
    /// (many: a remote agent re-registers by itself when its instance vanished).
    pub embedded_agent: bool,
    /// The longest a poll waits, shorter than the agent timeout so that a waiting agent stays connected.
    pub max_wait: Duration,
}

impl Embedded {
    pub fn new(
        ecs: Arc<EcsService<WalStore>>,
        logs: Arc<LogsService<WalStore>>,
        ecr: Arc<EcrService<WalStore>>,
        scope: Scope,
        embedded_agent: bool,
        agent_timeout: Duration,
    ) -> Embedded {
        Embedded {
            ecs,
            logs,
            ecr,
            scope,
            registration: Mutex::new(None),
            embedded_agent,
            max_wait: (agent_timeout / 2).max(Duration::from_millis(500)),
        }
    }

    /// After an admin reset the instance's record is gone (not INACTIVE): register it again under the same ARN so
    /// the embedded agent goes on as a fresh server's would. A user's deregistration is left alone.
    /// Returns whether it did.
    pub async fn restore_after_reset(&self) -> Result<bool, AgentError> {
        let Some((mut req, arn)) = self.registration.lock().ok().and_then(|r| r.clone()) else {
            return Ok(false);
        };
        if self.ecs.container_instance_status(&arn).is_some() {
            return Ok(false);
        }
        req.container_instance_arn = Some(arn.clone());
        let restored = self.ecs.agent_register(req).await?;
        Ok(restored.container_instance_arn == arn)
    }
}

impl Embedded {
    /// Whether the agent has registered this host (the server counts as ready only then).
    pub fn is_registered(&self) -> bool {
        self.registration
            .lock()
            .map(|r| r.is_some())
            .unwrap_or(false)
    }
}

impl AgentApi for Embedded {
    async fn register(&self, req: RegisterRequest) -> Result<RegisterResponse, AgentError> {
        let response = self.ecs.agent_register(req.clone()).await?;
        if self.embedded_agent {
            if let Ok(mut r) = self.registration.lock() {
                *r = Some((req, response.container_instance_arn.clone()));
            }
        }
        Ok(response)
    }

    async fn poll(
        &self,
        arn: &str,
        index: u64,
        wait: Duration,
    ) -> Result<DesiredState, AgentError> {
        let state = self
            .ecs
            .agent_poll(arn, index, wait.min(self.max_wait))
            .await?;
        if !state.registered && self.restore_after_reset().await? {
            return self.ecs.agent_poll(arn, index, Duration::ZERO).await;
        }
        Ok(state)
    }

    async fn report(&self, arn: &str, change: TaskStateChange) -> Result<(), AgentError> {
        self.ecs.agent_report(arn, change).await
    }

    async fn put_logs(&self, batch: LogBatch) -> Result<(), AgentError> {
        self.logs.put_batch(&self.scope, &batch).await.map_err(|e| {
            // A missing group without awslogs-create-group never succeeds: the agent drops such a batch.
            if e.is_retryable() {
                AgentError::retryable(e.to_string())
            } else {
                AgentError::fatal(e.to_string())
            }
        })
    }

    async fn log_cursor(&self, group: &str, stream: &str) -> Result<Option<String>, AgentError> {
        Ok(self.logs.log_cursor(&self.scope, group, stream))
    }

    async fn registry_credentials(
        &self,
        image: &str,
    ) -> Result<Option<RegistryCredentials>, AgentError> {
        Ok(self.ecr.pull_credentials(image))
    }
}
