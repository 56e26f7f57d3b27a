//! The Gantry agent: it registers one container instance, long-polls the tasks the server wants on it, runs them
//! as Docker containers (pull, create, start in dependency order, watch exits and health, stop with SIGTERM,
//! stopTimeout, SIGKILL), reports every task and container state change, ships `awslogs` output, and re-adopts
//! its containers after a restart by their labels.
//!
//! It owns the container runtime ([`runtime::Runtime`], [`runtime::DockerRuntime`]), the translation of ECS
//! container definitions to Docker, and the task lifecycle. It knows nothing of the store or the AWS APIs: it
//! talks to the server only through the protocol types and the [`AgentApi`](gantry_model::agent::AgentApi) trait
//! of `gantry-model`, which the embedded agent implements in-process and [`HttpAgentApi`] over HTTP for a remote
//! agent.
//!
//! ```no_run
//! # async fn example<A: gantry_model::agent::AgentApi>(api: A) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use gantry_agent::{Agent, AgentConfig, DockerRuntime};
//!
//! let runtime = DockerRuntime::connect().await?;
//! let config = AgentConfig::new("default", "agent-data");
//! Agent::new(Arc::new(api), Arc::new(runtime), config).run_until(async {
//!     let _ = tokio::signal::ctrl_c().await;
//! }).await?;
//! # Ok(()) }
//! ```

mod agent;
mod backoff;
pub mod cgroup;
pub mod config;
pub mod deps;
pub mod firewall;
pub mod health;
pub mod http_client;
pub mod logs;
pub mod pause;
mod reconcile;
pub mod runtime;
pub mod state_file;
mod task_runner;
pub mod testing;
pub mod translate;

pub use agent::{Agent, AgentRunError, Registration};
pub use config::AgentConfig;
pub use http_client::HttpAgentApi;
pub use runtime::{DockerRuntime, FakeRuntime, Runtime, RuntimeError};

#[cfg(test)]
mod lifecycle_tests;
