//! Configuration: a TOML file, overridden by `GANTRY_*` environment variables, overridden by flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;

#[derive(Args, Debug, Default)]
pub struct ServerArgs {
    /// TOML configuration file.
    #[arg(long, env = "GANTRY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address of the API port (AWS APIs, registry, admin).
    #[arg(long, env = "GANTRY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Where state lives.
    #[arg(long, env = "GANTRY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Accepted access keys, `ID:SECRET[,ID:SECRET...]` (default `test:test`).
    #[arg(long, env = "GANTRY_ACCESS_KEYS")]
    pub access_keys: Option<String>,
    /// Account id in ARNs.
    #[arg(long, env = "GANTRY_ACCOUNT")]
    pub account: Option<String>,
    /// Region of the embedded agent's container instance.
    #[arg(long, env = "GANTRY_REGION")]
    pub region: Option<String>,
    /// Enable the admin endpoints (`POST /_gantry/reset`).
    #[arg(long, env = "GANTRY_ADMIN")]
    pub enable_admin: bool,
    /// Do not run the embedded agent.
    #[arg(long, env = "GANTRY_NO_AGENT")]
    pub no_agent: bool,
    /// Cluster the embedded agent registers into.
    #[arg(long, env = "GANTRY_CLUSTER")]
    pub cluster: Option<String>,
    /// Log as JSON lines.
    #[arg(long, env = "GANTRY_LOG_JSON")]
    pub log_json: bool,
    /// Seconds the containers of a stopped task are kept before removal (ECS's default: 3 hours).
    #[arg(long, env = "GANTRY_TASK_CLEANUP_WAIT")]
    pub task_cleanup_wait: Option<u64>,
    /// Seconds between registry garbage collection passes (0: none; `POST /_gantry/registry/gc` still runs one).
    #[arg(long, env = "GANTRY_REGISTRY_GC_INTERVAL")]
    pub registry_gc_interval: Option<u64>,
    /// Seconds a blob linked by a push that no manifest references is kept before the GC may take it.
    #[arg(long, env = "GANTRY_REGISTRY_GC_GRACE")]
    pub registry_gc_grace: Option<u64>,
    /// Seconds an upload session may stay idle before the GC ends it.
    #[arg(long, env = "GANTRY_REGISTRY_UPLOAD_EXPIRY")]
    pub registry_upload_expiry: Option<u64>,
    /// Seconds between two runs of the registry's lifecycle policies (expiring images).
    #[arg(long, env = "GANTRY_REGISTRY_LIFECYCLE_INTERVAL")]
    pub registry_lifecycle_interval: Option<u64>,
    /// The join token remote agents register with (default: a random one kept in DATA_DIR/agent-token).
    #[arg(long, env = "GANTRY_AGENT_TOKEN", hide_env_values = true)]
    pub agent_token: Option<String>,
    /// Seconds after which a container instance whose agent was not heard from shows agentConnected=false.
    #[arg(long, env = "GANTRY_AGENT_TIMEOUT")]
    pub agent_timeout: Option<u64>,
    /// The IPv4 range load balancers get their addresses from, one each (default 127.0.1.0/24: the loopback).
    #[arg(long, env = "GANTRY_LB_ADDRESSES")]
    pub lb_addresses: Option<String>,
}

/// The file form; every member optional.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    account: Option<String>,
    region: Option<String>,
    enable_admin: Option<bool>,
    agent: Option<bool>,
    cluster: Option<String>,
    log_json: Option<bool>,
    task_cleanup_wait: Option<u64>,
    registry_gc_interval: Option<u64>,
    registry_gc_grace: Option<u64>,
    registry_upload_expiry: Option<u64>,
    registry_lifecycle_interval: Option<u64>,
    access_keys: Option<Vec<AccessKey>>,
    agent_token: Option<String>,
    agent_timeout: Option<u64>,
    lb_addresses: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct AccessKey {
    id: String,
    secret: String,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub access_keys: Vec<(String, String)>,
    pub account: String,
    pub region: String,
    pub enable_admin: bool,
    pub agent: bool,
    pub cluster: String,
    pub log_json: bool,
    pub task_cleanup_wait: std::time::Duration,
    /// Zero: no periodic pass.
    pub registry_gc_interval: std::time::Duration,
    pub registry_gc: gantry_registry::gc::GcOptions,
    pub registry_lifecycle_interval: std::time::Duration,
    /// The join token of remote agents; `None`: generated once and kept in the data dir.
    pub agent_token: Option<String>,
    pub agent_timeout: std::time::Duration,
    /// The first address of the load balancers' range, and how many it has.
    pub lb_addresses: (std::net::Ipv4Addr, u32),
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("invalid configuration file {0}: {1}")]
    Parse(PathBuf, String),
    #[error("invalid access keys {0:?}: expected ID:SECRET[,ID:SECRET...]")]
    AccessKeys(String),
    #[error("invalid account id {0:?}: expected 12 digits")]
    Account(String),
    #[error("invalid agent token: it must not be empty nor contain spaces")]
    AgentToken,
    #[error("invalid agent timeout 0: expected a number of seconds, at least 1")]
    AgentTimeout,
    #[error("invalid load balancer address range {0:?}: expected an IPv4 CIDR such as 127.0.1.0/24, /8 to /30")]
    LbAddresses(String),
}

/// The usable addresses of a CIDR: without its network and broadcast addresses.
fn parse_lb_addresses(s: &str) -> Result<(std::net::Ipv4Addr, u32), ConfigError> {
    let bad = || ConfigError::LbAddresses(s.to_string());
    let (ip, bits) = s.split_once('/').ok_or_else(bad)?;
    let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let bits: u32 = bits.parse().map_err(|_| bad())?;
    if !(8..=30).contains(&bits) {
        return Err(bad());
    }
    let network = u32::from(ip) & (u32::MAX << (32 - bits));
    Ok((
        std::net::Ipv4Addr::from(network + 1),
        (1u32 << (32 - bits)) - 2,
    ))
}

fn parse_access_keys(s: &str) -> Result<Vec<(String, String)>, ConfigError> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| match pair.trim().split_once(':') {
            Some((id, secret)) if !id.is_empty() && !secret.is_empty() => {
                Ok((id.to_string(), secret.to_string()))
            }
            _ => Err(ConfigError::AccessKeys(s.to_string())),
        })
        .collect()
}

impl ServerConfig {
    pub fn load(args: ServerArgs) -> Result<ServerConfig, ConfigError> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::Read(path.clone(), e))?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| ConfigError::Parse(path.clone(), e.to_string()))?
            }
            None => FileConfig::default(),
        };
        let access_keys = match (&args.access_keys, &file.access_keys) {
            (Some(s), _) => parse_access_keys(s)?,
            (None, Some(keys)) => keys
                .iter()
                .map(|k| (k.id.clone(), k.secret.clone()))
                .collect(),
            (None, None) => vec![("test".into(), "test".into())],
        };
        if access_keys.is_empty() {
            return Err(ConfigError::AccessKeys(String::new()));
        }
        let account = args
            .account
            .or(file.account)
            .unwrap_or_else(|| "000000000000".into());
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::Account(account));
        }
        let agent_token = args.agent_token.or(file.agent_token);
        if agent_token
            .as_deref()
            .is_some_and(|t| t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(ConfigError::AgentToken);
        }
        let agent_timeout = args.agent_timeout.or(file.agent_timeout).unwrap_or(60);
        if agent_timeout == 0 {
            return Err(ConfigError::AgentTimeout);
        }
        let lb_addresses = parse_lb_addresses(
            args.lb_addresses
                .as_deref()
                .or(file.lb_addresses.as_deref())
                .unwrap_or("127.0.1.0/24"),
        )?;
        Ok(ServerConfig {
            lb_addresses,
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 4566))),
            data_dir: args
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("gantry-data")),
            access_keys,
            account,
            region: args
                .region
                .or(file.region)
                .unwrap_or_else(|| "us-east-1".into()),
            enable_admin: args.enable_admin || file.enable_admin.unwrap_or(false),
            agent: !args.no_agent && file.agent.unwrap_or(true),
            cluster: args
                .cluster
                .or(file.cluster)
                .unwrap_or_else(|| "default".into()),
            log_json: args.log_json || file.log_json.unwrap_or(false),
            task_cleanup_wait: std::time::Duration::from_secs(
                args.task_cleanup_wait
                    .or(file.task_cleanup_wait)
                    .unwrap_or(3 * 3600),
            ),
            registry_gc_interval: std::time::Duration::from_secs(
                args.registry_gc_interval
                    .or(file.registry_gc_interval)
                    .unwrap_or(3600),
            ),
            registry_gc: gantry_registry::gc::GcOptions {
                link_grace_secs: args
                    .registry_gc_grace
                    .or(file.registry_gc_grace)
                    .unwrap_or(3600),
                upload_expiry_secs: args
                    .registry_upload_expiry
                    .or(file.registry_upload_expiry)
                    .unwrap_or(3600),
            },
            // At least a second: a zero interval would spin.
            registry_lifecycle_interval: std::time::Duration::from_secs(
                args.registry_lifecycle_interval
                    .or(file.registry_lifecycle_interval)
                    .unwrap_or(3600)
                    .max(1),
            ),
            agent_token,
            agent_timeout: std::time::Duration::from_secs(agent_timeout),
        })
    }
}

/// `gantry agent`: a remote agent that registers this host (or one virtual instance of it) with a server.
#[derive(Args, Debug, Default)]
pub struct AgentArgs {
    /// The server's API endpoint, e.g. http://10.0.0.5:4566.
    #[arg(long, env = "GANTRY_SERVER")]
    pub server: Option<String>,
    /// The cluster to register in.
    #[arg(long, env = "GANTRY_CLUSTER", default_value = "default")]
    pub cluster: String,
    /// The server's join token (its --agent-token, or the contents of its DATA_DIR/agent-token).
    #[arg(long, env = "GANTRY_AGENT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Where this agent keeps its identity; one per agent (several agents on a host need several).
    #[arg(
        long,
        env = "GANTRY_AGENT_DATA_DIR",
        default_value = "gantry-agent-data"
    )]
    pub data_dir: PathBuf,
    /// CPU units to offer (1024 a core; default: all of the host's).
    #[arg(long, env = "GANTRY_AGENT_CPU")]
    pub cpu: Option<i64>,
    /// Memory to offer in MiB (default: all of the host's).
    #[arg(long, env = "GANTRY_AGENT_MEMORY")]
    pub memory: Option<i64>,
    /// An attribute of the container instance, `name=value` or `name` alone; repeatable
    /// (e.g. --attribute ecs.availability-zone=us-east-1b).
    #[arg(
        long = "attribute",
        env = "GANTRY_AGENT_ATTRIBUTES",
        value_delimiter = ','
    )]
    pub attributes: Vec<String>,
    /// The instance id to report as ec2InstanceId (default: a generated i-..., kept in the data dir).
    #[arg(long, env = "GANTRY_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// The Docker engine to use, e.g. unix:///run/user/1000/podman/podman.sock (default: DOCKER_HOST or the
    /// local socket).
    #[arg(long, env = "GANTRY_DOCKER_HOST")]
    pub docker_host: Option<String>,
    /// Seconds the containers of a stopped task are kept before removal (ECS's default: 3 hours).
    #[arg(long, env = "GANTRY_TASK_CLEANUP_WAIT")]
    pub task_cleanup_wait: Option<u64>,
    /// Log as JSON lines.
    #[arg(long, env = "GANTRY_LOG_JSON")]
    pub log_json: bool,
}

#[derive(Debug, Clone)]
pub struct RemoteAgentConfig {
    pub server: String,
    pub token: String,
    pub agent: gantry_agent::AgentConfig,
    pub docker_host: Option<String>,
    pub log_json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentConfigError {
    #[error("--server is required: the URL of the gantry server's API port, e.g. --server http://10.0.0.5:4566")]
    MissingServer,
    #[error("--token is required: the server's join token (its --agent-token, or the file agent-token in its data directory)")]
    MissingToken,
    #[error("--cluster must not be empty")]
    Cluster,
    #[error("invalid --{0} {1}: expected a positive number")]
    Resource(&'static str, i64),
    #[error("invalid --attribute {0:?}: {1}")]
    Attribute(String, &'static str),
    #[error("invalid --instance-id {0:?}: expected 1 to 255 letters, digits, '-', '_' or '.'")]
    InstanceId(String),
}

fn attribute_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./@".contains(c))
}

fn attribute_value_ok(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./@: ".contains(c))
}

/// `name=value` or `name` (an attribute without a value, like the ECS agent's capabilities).
pub fn parse_attribute(s: &str) -> Result<gantry_model::ecs::Attribute, AgentConfigError> {
    let (name, value) = match s.split_once('=') {
        Some((n, v)) => (n.trim(), Some(v.trim())),
        None => (s.trim(), None),
    };
    if !attribute_name_ok(name) {
        return Err(AgentConfigError::Attribute(
            s.to_string(),
            "the name must be 1 to 128 letters, digits, '-', '_', '.', '/' or '@'",
        ));
    }
    if value.is_some_and(|v| !attribute_value_ok(v)) {
        return Err(AgentConfigError::Attribute(
            s.to_string(),
            "the value must be 1 to 128 letters, digits, spaces, '-', '_', '.', '/', ':' or '@'",
        ));
    }
    Ok(gantry_model::ecs::Attribute {
        name: name.to_string(),
        value: value.map(str::to_string),
        ..Default::default()
    })
}

impl RemoteAgentConfig {
    pub fn load(args: AgentArgs) -> Result<RemoteAgentConfig, AgentConfigError> {
        let server = args
            .server
            .filter(|s| !s.trim().is_empty())
            .ok_or(AgentConfigError::MissingServer)?;
        let token = args
            .token
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .ok_or(AgentConfigError::MissingToken)?;
        if args.cluster.trim().is_empty() {
            return Err(AgentConfigError::Cluster);
        }
        for (flag, value) in [("cpu", args.cpu), ("memory", args.memory)] {
            if let Some(v) = value.filter(|v| *v <= 0) {
                return Err(AgentConfigError::Resource(flag, v));
            }
        }
        if let Some(id) = &args.instance_id {
            let ok = !id.is_empty()
                && id.len() <= 255
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok {
                return Err(AgentConfigError::InstanceId(id.clone()));
            }
        }
        let attributes = args
            .attributes
            .iter()
            .filter(|a| !a.trim().is_empty())
            .map(|a| parse_attribute(a))
            .collect::<Result<Vec<_>, _>>()?;
        let mut agent = gantry_agent::AgentConfig::new(args.cluster.trim(), args.data_dir);
        agent.instance_id = args.instance_id;
        agent.cpu = args.cpu;
        agent.memory = args.memory;
        agent.attributes = attributes;
        if let Some(wait) = args.task_cleanup_wait {
            agent.task_cleanup_wait = std::time::Duration::from_secs(wait);
        }
        Ok(RemoteAgentConfig {
            server,
            token,
            agent,
            docker_host: args.docker_host.filter(|h| !h.trim().is_empty()),
            log_json: args.log_json,
        })
    }
}

pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GANTRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_keys_parse() {
        assert_eq!(
            parse_access_keys("a:b, c:d").unwrap(),
            vec![("a".into(), "b".into()), ("c".into(), "d".into())]
        );
        assert!(parse_access_keys("nocolon").is_err());
        assert!(parse_access_keys("a:").is_err());
    }

    #[test]
    fn agent_flags() {
        let args = AgentArgs {
            server: Some("http://127.0.0.1:4566".into()),
            token: Some("secret".into()),
            cluster: "prod".into(),
            data_dir: "a1".into(),
            cpu: Some(2048),
            attributes: vec!["ecs.availability-zone=us-east-1b".into(), "gpu".into()],
            ..Default::default()
        };
        let c = RemoteAgentConfig::load(args).unwrap();
        assert_eq!(c.agent.cluster, "prod");
        assert_eq!(c.agent.cpu, Some(2048));
        assert_eq!(c.agent.attributes[0].name, "ecs.availability-zone");
        assert_eq!(c.agent.attributes[0].value.as_deref(), Some("us-east-1b"));
        assert_eq!(c.agent.attributes[1].name, "gpu");
        assert_eq!(c.agent.attributes[1].value, None);
        let base = || AgentArgs {
            server: Some("http://127.0.0.1:4566".into()),
            token: Some("secret".into()),
            cluster: "default".into(),
            ..Default::default()
        };
        assert!(matches!(
            RemoteAgentConfig::load(AgentArgs {
                server: None,
                ..base()
            }),
            Err(AgentConfigError::MissingServer)
        ));
        assert!(matches!(
            RemoteAgentConfig::load(AgentArgs {
                token: Some(" ".into()),
                ..base()
            }),
            Err(AgentConfigError::MissingToken)
        ));
        assert!(RemoteAgentConfig::load(AgentArgs {
            memory: Some(0),
            ..base()
        })
        .is_err());
        for bad in ["=x", "a b=c", "zone=", "zone=a,b"] {
            assert!(parse_attribute(bad).is_err(), "{bad}");
        }
        assert!(RemoteAgentConfig::load(AgentArgs {
            instance_id: Some("i 1".into()),
            ..base()
        })
        .is_err());
    }

    #[test]
    fn lb_address_ranges() {
        assert_eq!(
            parse_lb_addresses("127.0.1.0/24").unwrap(),
            (std::net::Ipv4Addr::new(127, 0, 1, 1), 254)
        );
        assert_eq!(
            parse_lb_addresses("10.1.2.3/30").unwrap(),
            (std::net::Ipv4Addr::new(10, 1, 2, 1), 2)
        );
        for bad in ["127.0.1.0", "x/24", "127.0.1.0/31", "127.0.1.0/4"] {
            assert!(parse_lb_addresses(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn agent_timeout_and_token() {
        let c = ServerConfig::load(ServerArgs::default()).unwrap();
        assert_eq!(c.agent_timeout, std::time::Duration::from_secs(60));
        assert_eq!(c.agent_token, None);
        let c = ServerConfig::load(ServerArgs {
            agent_timeout: Some(3),
            agent_token: Some("tok".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.agent_timeout, std::time::Duration::from_secs(3));
        assert_eq!(c.agent_token.as_deref(), Some("tok"));
        assert!(ServerConfig::load(ServerArgs {
            agent_timeout: Some(0),
            ..Default::default()
        })
        .is_err());
        assert!(ServerConfig::load(ServerArgs {
            agent_token: Some("a b".into()),
            ..Default::default()
        })
        .is_err());
    }

    #[test]
    fn flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("gantry-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gantry.toml");
        std::fs::write(&path, "region = \"eu-west-1\"\naccount = \"123456789012\"\n[[access_keys]]\nid = \"k\"\nsecret = \"s\"\n").unwrap();
        let c = ServerConfig::load(ServerArgs {
            config: Some(path.clone()),
            region: Some("us-west-2".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.region, "us-west-2");
        assert_eq!(c.account, "123456789012");
        assert_eq!(c.access_keys, vec![("k".to_string(), "s".to_string())]);
        std::fs::write(&path, "bogus = 1\n").unwrap();
        assert!(ServerConfig::load(ServerArgs {
            config: Some(path),
            ..Default::default()
        })
        .is_err());
    }
}
