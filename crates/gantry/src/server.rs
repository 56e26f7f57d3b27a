//! `gantry server`: opens the store, builds the services, serves the edge and the admin endpoints, and runs the
//! embedded agent.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use gantry_agent::{Agent, AgentConfig, DockerRuntime};
use gantry_aws::{Credentials, Edge, EdgeConfig, JsonService};
use gantry_ecs::{EcsConfig, EcsService};
use gantry_logs::LogsService;
use gantry_model::Scope;
use gantry_store::lease::Leases;
use gantry_store::{Store, Txn, WalStore};

use crate::agent_http::{self, AgentAuth, AgentHttp};
use crate::config::ServerConfig;
use crate::embedded::Embedded;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot use the data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error(
        "cannot open the state store: {0} (is another gantry server using this data directory?)"
    )]
    Store(#[from] gantry_store::StoreError),
    #[error("cannot listen on {0}: {1}")]
    Listen(String, std::io::Error),
    #[error("cannot open the log storage: {0}")]
    Logs(#[from] gantry_logs::LogsError),
    #[error("cannot open the registry storage: {0}")]
    Registry(#[from] gantry_registry::RegistryError),
    #[error("server error: {0}")]
    Serve(std::io::Error),
    #[error("cannot make the default VPC: {0}")]
    DefaultVpc(String),
    #[error("cannot read or create the agent join token in {0}: {1}")]
    AgentToken(String, std::io::Error),
}

#[derive(Clone)]
struct Admin {
    store: Arc<WalStore>,
    logs: Arc<LogsService<WalStore>>,
    ecs: Arc<EcsService<WalStore>>,
    /// Remakes the default VPC after a reset, as a fresh server has one.
    vpc: Arc<gantry_vpc::VpcService<WalStore>>,
    region: String,
    embedded: Option<Arc<Embedded>>,
    enabled: bool,
}

/// Ready once the API serves and, with the embedded agent, once this host is registered: a test suite that waits
/// for 200 can run tasks at once.
async fn health(State(admin): State<Admin>) -> Response {
    let json = [("content-type", "application/json")];
    match &admin.embedded {
        Some(e) if !e.is_registered() => (
            StatusCode::SERVICE_UNAVAILABLE,
            json,
            r#"{"status":"starting","detail":"the embedded agent has not registered this host yet (is Docker running?)"}"#,
        )
            .into_response(),
        _ => (StatusCode::OK, json, r#"{"status":"ok"}"#).into_response(),
    }
}

/// Deletes all state in one transaction. The embedded agent sees its tasks vanish and removes their containers.
async fn reset(State(admin): State<Admin>) -> Response {
    if !admin.enabled {
        return (
            StatusCode::NOT_FOUND,
            "the admin endpoints are off; start the server with --enable-admin\n",
        )
            .into_response();
    }
    let started = std::time::Instant::now();
    let wiped = match admin.store.txn(Txn::new().delete_prefix("/")).await {
        Ok(_) => match admin.logs.reset_events().await {
            Ok(()) => admin
                .vpc
                .ensure_default_vpc(&admin.region)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    // The host stays registered, as on a fresh server: the answer comes once the default cluster is back.
    let wiped = match (wiped, &admin.embedded) {
        (Ok(()), Some(embedded)) => embedded
            .restore_after_reset()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        (other, _) => other,
    };
    match wiped {
        Ok(()) => {
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "state reset"
            );
            (
                StatusCode::OK,
                [("content-type", "application/json")],
                r#"{"reset":true}"#,
            )
                .into_response()
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reset failed: {e}\n"),
        )
            .into_response(),
    }
}

#[derive(serde::Deserialize)]
struct EventsQuery {
    since: Option<String>,
}

/// The events on the internal bus, oldest first; `?since=<id>` for those after an event.
async fn events(State(admin): State<Admin>, Query(q): Query<EventsQuery>) -> Response {
    if !admin.enabled {
        return (
            StatusCode::NOT_FOUND,
            "the admin endpoints are off; start the server with --enable-admin\n",
        )
            .into_response();
    }
    let body = serde_json::json!({ "events": admin.ecs.events(q.since.as_deref()) });
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

pub async fn run(config: ServerConfig) -> Result<(), ServerError> {
    let dir = config.data_dir.display().to_string();
    std::fs::create_dir_all(&config.data_dir).map_err(|e| ServerError::DataDir(dir.clone(), e))?;
    if config.data_dir.join("state.redb").exists() {
        tracing::warn!(
            "{dir}/state.redb is the state file of an earlier version and is not read; this version keeps its \
             state in {dir}/state/"
        );
    }
    let store = Arc::new(WalStore::open(&config.data_dir.join("state"))?);
    let ecs = EcsService::new(
        store.clone(),
        EcsConfig {
            account: config.account.clone(),
            region: config.region.clone(),
            agent_timeout: config.agent_timeout,
        },
    );
    // One server holds every lease; several servers on etcd will share them out (DESIGN.md §6).
    let leases = gantry_store::lease::SingleServer;
    ecs.clone().spawn_cleanup(leases.lease("ecs/cleanup"));
    ecs.clone()
        .spawn_service_controller(leases.lease("ecs/service-controller"));
    let logs = Arc::new(LogsService::open((*store).clone(), &config.data_dir)?);
    logs.clone().spawn_retention(leases.lease("logs/retention"));
    let registry = Arc::new(gantry_registry::Registry::open(
        (*store).clone(),
        &config.data_dir,
    )?);
    let ecr = gantry_registry::ecr::EcrService::new(
        registry.clone(),
        gantry_registry::ecr::EcrConfig {
            port: config.listen.port(),
        },
    );
    gantry_registry::lifecycle::spawn_lifecycle(
        registry.clone(),
        config.registry_lifecycle_interval,
        leases.lease("ecr/lifecycle"),
    );
    if !config.registry_gc_interval.is_zero() {
        registry.clone().spawn_gc(
            config.registry_gc_interval,
            config.registry_gc,
            leases.lease("ecr/gc"),
        );
    }
    let lb = gantry_lb::LbService::new(
        store.clone(),
        gantry_lb::LbConfig {
            first_address: config.lb_addresses.0,
            address_count: config.lb_addresses.1,
            ..Default::default()
        },
    );
    lb.set_instance_resolver(Arc::new(crate::lb_bridge::InstanceAddresses(ecs.clone())));
    ecs.set_load_balancing(Arc::new(crate::lb_bridge::EcsTargets(lb.clone())));
    lb.clone()
        .spawn_controller(leases.lease("elbv2/deregistrations"));
    let acm = gantry_lb::acm::AcmService::new(lb.clone(), config.data_dir.join("acm"));
    let vpc = gantry_vpc::VpcService::new(store.clone(), config.account.clone());
    vpc.ensure_default_vpc(&config.region)
        .await
        .map_err(|e| ServerError::DefaultVpc(e.to_string()))?;
    ecs.set_networking(Arc::new(crate::vpc_bridge::EcsInterfaces {
        vpc: vpc.clone(),
        lb: lb.clone(),
    }));
    lb.set_vpc_lookup(Arc::new(crate::vpc_bridge::LbVpcs(vpc.clone())));
    crate::vpc_bridge::forward_group_changes(&vpc, &lb, &ecs);
    let services: Vec<Arc<dyn JsonService>> = vec![ecs.clone(), logs.clone(), ecr.clone(), acm];
    let edge = Edge::new(
        EdgeConfig {
            credentials: Credentials::new(config.access_keys.clone()),
            account: config.account.clone(),
        },
        services,
    )
    .with_query_services(vec![lb.clone(), vpc.clone()]);
    let scope = Scope::new(config.region.clone(), config.account.clone());
    let adapter = |embedded_agent: bool| {
        Arc::new(Embedded::new(
            ecs.clone(),
            logs.clone(),
            ecr.clone(),
            scope.clone(),
            embedded_agent,
            config.agent_timeout,
        ))
    };
    let embedded = config.agent.then(|| adapter(true));
    let (join_token, token_file) =
        agent_http::join_token(config.agent_token.as_deref(), &config.data_dir)
            .map_err(|e| ServerError::AgentToken(dir.clone(), e))?;
    let remote_agents = Arc::new(AgentHttp {
        api: adapter(false),
        auth: AgentAuth::new(&join_token),
    });
    let admin = Admin {
        embedded: embedded.clone(),
        store: store.clone(),
        logs: logs.clone(),
        ecs: ecs.clone(),
        vpc: vpc.clone(),
        region: config.region.clone(),
        enabled: config.enable_admin,
    };
    let metrics = {
        let (edge, lb) = (edge.clone(), lb.clone());
        move || async move {
            let mut out = String::new();
            edge.render_metrics(&mut out);
            lb.render_metrics(&mut out);
            ([("content-type", "text/plain; version=0.0.4")], out)
        }
    };
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/_gantry/health", get(health))
        .route("/_gantry/reset", post(reset))
        .route("/_gantry/events", get(events))
        .with_state(admin)
        .merge(gantry_registry::gc::admin::admin_router(
            registry.clone(),
            config.enable_admin,
            config.registry_gc,
        ))
        .merge(gantry_registry::router(registry))
        .merge(agent_http::router(remote_agents))
        .merge(edge.router());

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| ServerError::Listen(config.listen.to_string(), e))?;
    let addr = listener.local_addr().map_err(ServerError::Serve)?;
    let keys: Vec<&str> = config
        .access_keys
        .iter()
        .map(|(id, _)| id.as_str())
        .collect();
    println!(
        "Gantry is ready: AWS_ENDPOINT_URL=http://{addr}  access keys: {}  region: {}",
        keys.join(","),
        config.region
    );
    tracing::info!(%addr, data_dir = %dir, "listening");
    match &token_file {
        Some(path) => tracing::info!(
            file = %path.display(),
            "remote agents join with the token in this file: gantry agent --server http://{addr} --token \"$(cat {})\"",
            path.display()
        ),
        None => tracing::info!("remote agents join with the configured --agent-token"),
    }

    if let Some(embedded) = &embedded {
        let mut agent_config =
            AgentConfig::new(config.cluster.clone(), config.data_dir.join("agent"));
        agent_config.task_cleanup_wait = config.task_cleanup_wait;
        tokio::spawn(run_embedded_agent(embedded.clone(), agent_config));
    }

    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(ServerError::Serve)
}

/// Runs the embedded agent for this host. Without a Docker engine the API still serves; the agent keeps trying to
/// reach Docker and starts once it answers.
async fn run_embedded_agent(api: Arc<Embedded>, config: AgentConfig) {
    let mut delay = Duration::from_secs(1);
    let runtime = loop {
        match DockerRuntime::connect().await {
            Ok(r) => break r,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "Docker is not reachable; the embedded agent waits for it");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    };
    let agent = Agent::new(api, Arc::new(runtime), config);
    match agent.run().await {
        Ok(()) => {
            tracing::info!("the embedded agent stopped: its container instance was deregistered")
        }
        Err(e) => tracing::error!(error = %e, "the embedded agent stopped"),
    }
}
