//! The agent protocol (DESIGN.md §5): the messages between an agent and the server, and the [`AgentApi`] trait
//! that both the in-process transport of the embedded agent and the HTTP client of a remote agent implement.

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ecs::{Attribute, ContainerDefinition, NetworkBinding, TaskNetwork, Volume};

/// The agent's first call: who it is and what it offers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RegisterRequest {
    pub cluster: String,
    /// A stable identity of this agent (kept in its data dir), reported as `ec2InstanceId`.
    pub instance_id: String,
    /// The ARN this agent had before, so that a restarted agent keeps its container instance.
    pub container_instance_arn: Option<String>,
    /// CPU units (1024 a core).
    pub cpu: i64,
    /// Memory in MiB.
    pub memory: i64,
    pub attributes: Vec<Attribute>,
    pub agent_version: String,
    pub docker_version: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RegisterResponse {
    pub container_instance_arn: String,
    pub cluster_arn: String,
    /// The instance token a remote agent authenticates its other calls with (HTTP transport only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Everything the agent must run, resolved by the server: the task definition with overrides applied and dynamic
/// host ports chosen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskSpec {
    pub task_arn: String,
    pub cluster_arn: String,
    pub cluster_name: String,
    pub family: String,
    pub revision: i64,
    /// RUNNING or STOPPED.
    pub desired_status: String,
    /// What the server last recorded, so a restarted agent knows what it had reported.
    pub last_status: String,
    pub network_mode: String,
    /// Task-level cpu units and memory (MiB): one limit over all the task's containers.
    pub cpu: Option<i64>,
    pub memory: Option<i64>,
    /// `host` or `task` (the task's containers share one PID namespace); none: each its own.
    pub pid_mode: Option<String>,
    /// `host`, `task` or `none`; none: Docker's default.
    pub ipc_mode: Option<String>,
    /// The task's own address, for `awsvpc`.
    pub network: Option<TaskNetwork>,
    /// What the task's security groups let in and out, for `awsvpc`.
    pub firewall: Option<TaskFirewall>,
    pub containers: Vec<ContainerDefinition>,
    pub volumes: Vec<Volume>,
    /// Set when the server asks the task to stop.
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
}

/// The security groups of an awsvpc task, resolved by the server into what the agent's packet filter needs: every
/// group a rule names is replaced by its members' addresses and by the load balancers in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskFirewall {
    /// The VPC's CIDR block: traffic between the VPC's subnets is routed between their host networks.
    pub vpc_cidr: String,
    pub ingress: Vec<FirewallRule>,
    pub egress: Vec<FirewallRule>,
}

/// One security group rule with its peer resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FirewallRule {
    /// `tcp`, `udp`, `icmp` or `-1` (every protocol).
    pub protocol: String,
    /// The port range (icmp: type and code, -1 for any); `None` for `-1`.
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    /// The peer's address blocks: a CIDR rule's block, or each member of a peer group as a /32.
    pub cidrs: Vec<String>,
    /// The packet marks of the load balancers in a peer group: their connections to targets leave the host with
    /// their mark (see `gantry-lb`), which is how a task tells a load balancer from other local traffic.
    pub marks: Vec<u32>,
}

/// The answer to a poll: the whole desired state of one container instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DesiredState {
    /// Changes whenever the desired state changes; the agent sends it back to wait for the next change.
    pub index: u64,
    /// False once the instance was deregistered: the agent stops polling.
    pub registered: bool,
    pub tasks: Vec<TaskSpec>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerStateChange {
    pub name: String,
    pub runtime_id: Option<String>,
    pub image_digest: Option<String>,
    pub last_status: String,
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
    pub network_bindings: Vec<NetworkBinding>,
    pub health_status: Option<String>,
}

/// What happened to a task on the agent. Timestamps are epoch seconds; unset ones leave the server's value alone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskStateChange {
    pub task_arn: String,
    pub last_status: String,
    pub containers: Vec<ContainerStateChange>,
    pub health_status: Option<String>,
    pub pull_started_at: Option<f64>,
    pub pull_stopped_at: Option<f64>,
    pub started_at: Option<f64>,
    pub execution_stopped_at: Option<f64>,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LogEvent {
    /// Epoch milliseconds.
    pub timestamp: i64,
    pub message: String,
}

/// Log lines of one container for the `awslogs` driver.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LogBatch {
    pub log_group: String,
    pub log_stream: String,
    /// `awslogs-create-group`: create the group when missing instead of dropping the batch.
    pub create_group: bool,
    pub events: Vec<LogEvent>,
    /// Where the agent is in the container's output (Docker's nanosecond timestamp of the last line in the
    /// batch), kept by the server so that the agent resumes there after a restart.
    pub cursor: Option<String>,
}

/// A login for the registry an image comes from, handed out by the server for its own registry so that tasks pull
/// from it without the user logging in (as the ECS agent gets ECR credentials).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RegistryCredentials {
    /// The registry host, as in the image reference (`localhost:4566`).
    pub server: String,
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct AgentError {
    pub message: String,
    /// False when retrying cannot help (the instance was deregistered, the request is malformed).
    pub retryable: bool,
}

impl AgentError {
    pub fn retryable(message: impl Into<String>) -> Self {
        AgentError {
            message: message.into(),
            retryable: true,
        }
    }

    pub fn fatal(message: impl Into<String>) -> Self {
        AgentError {
            message: message.into(),
            retryable: false,
        }
    }
}

/// The server side of the agent protocol, as the agent sees it.
pub trait AgentApi: Send + Sync + 'static {
    fn register(
        &self,
        req: RegisterRequest,
    ) -> impl Future<Output = Result<RegisterResponse, AgentError>> + Send;

    /// Answers at once when the desired state's index differs from `index`, otherwise after a change or `wait`.
    fn poll(
        &self,
        container_instance_arn: &str,
        index: u64,
        wait: Duration,
    ) -> impl Future<Output = Result<DesiredState, AgentError>> + Send;

    fn report(
        &self,
        container_instance_arn: &str,
        change: TaskStateChange,
    ) -> impl Future<Output = Result<(), AgentError>> + Send;

    fn put_logs(&self, batch: LogBatch) -> impl Future<Output = Result<(), AgentError>> + Send;

    /// The cursor of the last batch stored for a stream, if any.
    fn log_cursor(
        &self,
        log_group: &str,
        log_stream: &str,
    ) -> impl Future<Output = Result<Option<String>, AgentError>> + Send;

    /// Credentials to pull `image`, when it comes from the server's own registry; `None` for any other image.
    fn registry_credentials(
        &self,
        image: &str,
    ) -> impl Future<Output = Result<Option<RegistryCredentials>, AgentError>> + Send;
}
