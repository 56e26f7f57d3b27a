//! The agent's configuration and the host resources and attributes it registers with.

use std::path::PathBuf;
use std::time::Duration;

use gantry_model::ecs::Attribute;

use crate::logs::LogSettings;
use crate::runtime::RuntimeInfo;

#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The cluster to register in (name or ARN).
    pub cluster: String,
    /// The instance id to report; default: the one saved in the data dir, or a fresh `i-...`.
    pub instance_id: Option<String>,
    /// CPU units to offer; default: the host's cpu count * 1024.
    pub cpu: Option<i64>,
    /// Memory in MiB to offer; default: the host's memory.
    pub memory: Option<i64>,
    /// Extra attributes (e.g. `ecs.availability-zone`); they win over the defaults of the same name.
    pub attributes: Vec<Attribute>,
    /// Where the agent keeps its state file.
    pub data_dir: PathBuf,
    /// How long a poll may wait on the server.
    pub poll_wait: Duration,
    /// How often running containers are inspected (exits, health).
    pub watch_interval: Duration,
    /// First and longest delay between retries against the server or the runtime.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Log batches go out this often, or sooner when they reach `log_batch_bytes`.
    pub log_flush_interval: Duration,
    pub log_batch_bytes: usize,
    /// How long a stopped task waits for its last log lines to be shipped before its containers are removed.
    pub log_drain_timeout: Duration,
    /// How long the containers of a stopped task are kept for `docker logs` and `docker inspect` (ECS:
    /// `ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION`, 3 hours). A task the server forgets while it runs is removed at once.
    pub task_cleanup_wait: Duration,
}

impl AgentConfig {
    pub fn new(cluster: impl Into<String>, data_dir: impl Into<PathBuf>) -> AgentConfig {
        AgentConfig {
            cluster: cluster.into(),
            instance_id: None,
            cpu: None,
            memory: None,
            attributes: Vec::new(),
            data_dir: data_dir.into(),
            poll_wait: Duration::from_secs(30),
            watch_interval: Duration::from_secs(1),
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
            log_flush_interval: Duration::from_secs(1),
            log_batch_bytes: 1024 * 1024,
            log_drain_timeout: Duration::from_secs(10),
            task_cleanup_wait: Duration::from_secs(3 * 3600),
        }
    }

    pub(crate) fn log_settings(&self) -> LogSettings {
        LogSettings {
            flush_interval: self.log_flush_interval,
            batch_bytes: self.log_batch_bytes,
            retry_initial: self.retry_initial,
            retry_max: self.retry_max,
        }
    }
}

/// CPU units to register: configured, else 1024 per core the runtime (or the OS) sees.
pub fn cpu_units(config: &AgentConfig, info: &RuntimeInfo) -> i64 {
    if let Some(cpu) = config.cpu {
        return cpu;
    }
    let cores = if info.cpus > 0 {
        info.cpus
    } else {
        std::thread::available_parallelism()
            .map(|n| n.get() as i64)
            .unwrap_or(1)
    };
    cores * 1024
}

/// Memory in MiB to register: configured, else what the runtime (or /proc/meminfo) reports.
pub fn memory_mib(config: &AgentConfig, info: &RuntimeInfo) -> i64 {
    if let Some(memory) = config.memory {
        return memory;
    }
    if info.memory_bytes > 0 {
        return info.memory_bytes / (1024 * 1024);
    }
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| meminfo_total_mib(&s))
        .unwrap_or(0)
}

/// `MemTotal` of /proc/meminfo, in MiB.
pub fn meminfo_total_mib(meminfo: &str) -> Option<i64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

fn attribute(name: &str, value: Option<&str>) -> Attribute {
    Attribute {
        name: name.to_string(),
        value: value.map(str::to_string),
        ..Default::default()
    }
}

/// The attributes the agent registers: what the ECS agent advertises for the features this agent implements,
/// then the configured ones (which replace defaults of the same name).
pub fn attributes(config: &AgentConfig) -> Vec<Attribute> {
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        other => other,
    };
    let mut out = vec![
        attribute("ecs.os-type", Some("linux")),
        attribute("ecs.cpu-architecture", Some(arch)),
    ];
    for minor in 17..=41 {
        out.push(attribute(
            &format!("com.amazonaws.ecs.capability.docker-remote-api.1.{minor}"),
            None,
        ));
    }
    for name in [
        "com.amazonaws.ecs.capability.logging-driver.awslogs",
        "com.amazonaws.ecs.capability.logging-driver.json-file",
        "com.amazonaws.ecs.capability.privileged-container",
        "ecs.capability.container-health-check",
        "ecs.capability.container-ordering",
        "ecs.capability.docker-plugin.local",
    ] {
        out.push(attribute(name, None));
    }
    for a in &config.attributes {
        out.retain(|d| d.name != a.name);
        out.push(a.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_default_to_the_host() {
        let mut config = AgentConfig::new("default", "data");
        let info = RuntimeInfo {
            cpus: 4,
            memory_bytes: 8 * 1024 * 1024 * 1024,
            version: "20.10".into(),
        };
        assert_eq!(cpu_units(&config, &info), 4096);
        assert_eq!(memory_mib(&config, &info), 8192);
        config.cpu = Some(512);
        config.memory = Some(1000);
        assert_eq!(cpu_units(&config, &info), 512);
        assert_eq!(memory_mib(&config, &info), 1000);
        assert_eq!(
            meminfo_total_mib("MemTotal:       16384000 kB\nMemFree: 1 kB\n"),
            Some(16000)
        );
    }

    #[test]
    fn configured_attributes_win() {
        let mut config = AgentConfig::new("default", "data");
        config.attributes = vec![
            attribute("ecs.availability-zone", Some("us-east-1b")),
            attribute("ecs.os-type", Some("plan9")),
        ];
        let attrs = attributes(&config);
        assert_eq!(attrs.iter().filter(|a| a.name == "ecs.os-type").count(), 1);
        assert!(attrs
            .iter()
            .any(|a| a.name == "ecs.os-type" && a.value.as_deref() == Some("plan9")));
        assert!(attrs.iter().any(|a| a.name == "ecs.availability-zone"));
        assert!(attrs
            .iter()
            .any(|a| a.name == "ecs.capability.container-ordering"));
    }
}
