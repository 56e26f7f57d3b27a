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
        Ok(ServerConfig {
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
