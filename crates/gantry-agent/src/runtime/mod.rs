//! The container runtime as the agent needs it: a small async trait over images, volumes, containers and logs.
//! [`DockerRuntime`] talks to Docker (or Podman's Docker API); [`FakeRuntime`] keeps everything in memory for
//! tests of the lifecycle logic.

mod docker;
mod fake;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use bollard::models::ContainerCreateBody;
use futures_util::stream::BoxStream;
use gantry_model::agent::{RegistryCredentials, TaskFirewall};
use gantry_model::ecs::NetworkBinding;

pub use docker::DockerRuntime;
pub use fake::{FakeBehaviour, FakeContainer, FakeRuntime};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuntimeError {
    /// The container, image or volume does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Pulling an image failed; `message` is the engine's own words.
    #[error("cannot pull {image}: {message}")]
    Pull { image: String, message: String },
    /// The engine refused or failed a request.
    #[error("{0}")]
    Engine(String),
    /// The engine could not be reached.
    #[error("cannot reach the container runtime: {0}")]
    Unavailable(String),
}

/// What the host offers, as the runtime sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeInfo {
    pub cpus: i64,
    pub memory_bytes: i64,
    /// The engine's version, e.g. `20.10.24`.
    pub version: String,
}

/// A container ready to be created: its name and the Docker create body, fully resolved (see
/// [`crate::translate`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerSpec {
    pub name: String,
    pub config: ContainerCreateBody,
}

/// A Docker volume to create.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VolumeSpec {
    pub name: String,
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// A bridge network on the host for one VPC subnet: its CIDR, with the gateway (the subnet's router address, as
/// in AWS) on the host's side so that the host reaches the tasks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkSpec {
    pub name: String,
    pub subnet: String,
    pub gateway: String,
    /// The Linux bridge's name (at most 15 characters).
    pub bridge: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerStatus {
    /// Created, never started.
    Created,
    Running,
    /// Started once and no longer running (exited, dead).
    Exited,
}

/// The result of Docker's HEALTHCHECK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Starting,
    Healthy,
    Unhealthy,
}

/// A container as inspected.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerState {
    pub id: String,
    /// Without Docker's leading `/`.
    pub name: String,
    pub status: ContainerStatus,
    pub exit_code: Option<i64>,
    /// Why the engine could not run it (e.g. a start error), if it says.
    pub error: Option<String>,
    pub oom_killed: bool,
    /// `None` when the container has no health check.
    pub health: Option<Health>,
    /// The ports Docker actually bound (IPv4 only, as ECS reports them).
    pub port_bindings: Vec<NetworkBinding>,
    pub labels: BTreeMap<String, String>,
    /// The image id (`sha256:...`).
    pub image_id: Option<String>,
    /// Names of the Docker volumes it mounts.
    pub volumes: Vec<String>,
}

impl ContainerState {
    pub fn is_running(&self) -> bool {
        self.status == ContainerStatus::Running
    }

    /// True once the container was started, whether it still runs or not.
    pub fn was_started(&self) -> bool {
        self.status != ContainerStatus::Created
    }
}

/// A container as listed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// One piece of a container's output as the engine sends it: with timestamps on, each line starts with the
/// RFC3339Nano time Docker recorded it at (`2024-05-01T12:00:00.123456789Z message\n`).
pub type LogChunk = Vec<u8>;

/// The container runtime. Every call is independent; ids are the runtime's container ids (names work too).
pub trait Runtime: Send + Sync + 'static {
    fn info(&self) -> impl Future<Output = Result<RuntimeInfo, RuntimeError>> + Send;

    /// True when the image is in the local store (then it is used without pulling).
    fn image_present(&self, image: &str)
        -> impl Future<Output = Result<bool, RuntimeError>> + Send;

    /// Pulls an image, logging in with `credentials` when given; fails with [`RuntimeError::Pull`] carrying the
    /// engine's message.
    fn pull_image(
        &self,
        image: &str,
        credentials: Option<&RegistryCredentials>,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Imports a root file system (a tar archive) as image `reference`, with Dockerfile-style `changes`
    /// (`CMD ["/pause"]`).
    fn import_image(
        &self,
        reference: &str,
        rootfs: Vec<u8>,
        changes: Vec<String>,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Creates the network unless one of that name exists.
    fn ensure_network(
        &self,
        spec: &NetworkSpec,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Removes a network; a missing one is not an error, one still in use is.
    fn remove_network(&self, name: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Enforces `firewall` (its security groups) for the awsvpc task at `address` in the host's packet filter,
    /// replacing the rules it had.
    fn set_firewall(
        &self,
        address: std::net::Ipv4Addr,
        firewall: &TaskFirewall,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Makes (or updates) the cgroup of task `task_id` with its task-level limits; returns the cgroup-parent of
    /// its containers, or `None` where the engine cannot take one (its systemd cgroup driver).
    fn task_cgroup(
        &self,
        task_id: &str,
        cpu: Option<i64>,
        memory_mib: Option<i64>,
    ) -> impl Future<Output = Result<Option<String>, RuntimeError>> + Send;

    /// Removes the cgroup of task `task_id` once its containers have stopped; none is not an error.
    fn remove_task_cgroup(
        &self,
        task_id: &str,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Removes the packet filter rules of the task at `address`; none is not an error.
    fn remove_firewall(
        &self,
        address: std::net::Ipv4Addr,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    fn volume_exists(&self, name: &str) -> impl Future<Output = Result<bool, RuntimeError>> + Send;

    /// Creates a volume; creating one that exists is not an error.
    fn create_volume(
        &self,
        spec: &VolumeSpec,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Removes a volume; a missing one is not an error.
    fn remove_volume(&self, name: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Creates a container and returns its id.
    fn create_container(
        &self,
        spec: &ContainerSpec,
    ) -> impl Future<Output = Result<String, RuntimeError>> + Send;

    fn start_container(&self, id: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Sends SIGTERM (or the image's stop signal), then SIGKILL after `timeout`; `None` uses the container's own
    /// stop timeout. Stopping a container that is not running is not an error.
    fn stop_container(
        &self,
        id: &str,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    fn inspect_container(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<ContainerState, RuntimeError>> + Send;

    /// Containers in any state carrying a label: `key` alone, or `key=value`.
    fn list_containers(
        &self,
        label: &str,
    ) -> impl Future<Output = Result<Vec<ContainerInfo>, RuntimeError>> + Send;

    /// Removes a container (forcibly) with its anonymous volumes; a missing one is not an error.
    fn remove_container(&self, id: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// The container's stdout and stderr with timestamps, from `since` (epoch seconds; 0 for all); with `follow`
    /// the stream goes on until the container stops.
    fn logs(
        &self,
        id: &str,
        since: i64,
        follow: bool,
    ) -> BoxStream<'static, Result<LogChunk, RuntimeError>>;
}
