//! The `gantry` binary: command line, configuration and wiring of the subsystems; nothing else.

mod agent_http;
mod config;
mod embedded;
mod lb_bridge;
mod server;
mod vpc_bridge;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gantry",
    version,
    about = "AWS's container platform, self-hosted in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole platform: AWS APIs, controllers, and an embedded agent for this host.
    Server(config::ServerArgs),
    /// Add this host (or one more virtual instance of it) to a server's cluster: register a container instance
    /// and run its tasks on the local Docker engine.
    Agent(config::AgentArgs),
}

fn tokio_runtime() -> Result<tokio::runtime::Runtime, std::process::ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("gantry: cannot start the runtime: {e}");
            std::process::ExitCode::FAILURE
        })
}

fn run_agent(args: config::AgentArgs) -> std::process::ExitCode {
    let config = match config::RemoteAgentConfig::load(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gantry agent: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let api = match gantry_agent::HttpAgentApi::new(&config.server, &config.token) {
        Ok(api) => api,
        Err(e) => {
            eprintln!("gantry agent: --server: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(host) = &config.docker_host {
        // Read by the Docker client when it connects; set before any thread starts.
        std::env::set_var("DOCKER_HOST", host);
    }
    config::init_tracing(config.log_json);
    let runtime = match tokio_runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    match runtime.block_on(run_remote_agent(api, config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gantry agent: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Connects to Docker (waiting for it), then runs the agent until SIGTERM / Ctrl-C (containers keep running and
/// are re-adopted by the next start) or until its container instance is deregistered.
async fn run_remote_agent(
    api: gantry_agent::HttpAgentApi,
    config: config::RemoteAgentConfig,
) -> Result<(), String> {
    tracing::info!(
        server = %api.server(),
        cluster = %config.agent.cluster,
        data_dir = %config.agent.data_dir.display(),
        "gantry agent starting"
    );
    let mut delay = std::time::Duration::from_secs(1);
    let runtime = loop {
        match gantry_agent::DockerRuntime::connect().await {
            Ok(r) => break r,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "Docker is not reachable; waiting for it");
                tokio::select! {
                    _ = server::shutdown_signal() => return Ok(()),
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(std::time::Duration::from_secs(30));
            }
        }
    };
    let agent = gantry_agent::Agent::new(
        std::sync::Arc::new(api),
        std::sync::Arc::new(runtime),
        config.agent,
    );
    agent
        .run_until(server::shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("gantry agent stopped");
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => {
            let config = match config::ServerConfig::load(args) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("gantry: {e}");
                    return std::process::ExitCode::from(2);
                }
            };
            config::init_tracing(config.log_json);
            let runtime = match tokio_runtime() {
                Ok(r) => r,
                Err(code) => return code,
            };
            match runtime.block_on(server::run(config)) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("gantry: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        Command::Agent(args) => run_agent(args),
    }
}
