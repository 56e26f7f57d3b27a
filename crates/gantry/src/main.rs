//! The `gantry` binary: command line, configuration and wiring of the subsystems; nothing else.

mod config;
mod embedded;
mod server;

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
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("gantry: cannot start the runtime: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            match runtime.block_on(server::run(config)) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("gantry: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}
