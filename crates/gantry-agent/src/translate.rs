//! From the ECS shapes to Docker's: a container definition of a task becomes a container create body, and the
//! task's volumes become bind mounts or Docker volumes. Pure functions, no I/O.

use std::collections::{BTreeMap, HashMap};

use std::net::Ipv4Addr;

use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HealthConfig, HostConfig,
    HostConfigLogConfig, NetworkingConfig, PortBinding, ResourcesUlimits,
};
use gantry_model::agent::TaskSpec;
use gantry_model::ecs::{ContainerDefinition, HealthCheck, TaskNetwork, Volume};

use crate::pause::{PAUSE_COMMAND, PAUSE_CONTAINER_NAME, PAUSE_IMAGE};
use crate::runtime::{ContainerSpec, NetworkSpec, VolumeSpec};

pub const LABEL_CLUSTER: &str = "com.amazonaws.ecs.cluster";
pub const LABEL_TASK_ARN: &str = "com.amazonaws.ecs.task-arn";
pub const LABEL_CONTAINER_NAME: &str = "com.amazonaws.ecs.container-name";
pub const LABEL_FAMILY: &str = "com.amazonaws.ecs.task-definition-family";
pub const LABEL_VERSION: &str = "com.amazonaws.ecs.task-definition-version";
/// The container instance ARN of the agent that owns the container.
pub const LABEL_INSTANCE: &str = "gantry.instance";
/// On a subnet's host network: the subnet and its VPC.
pub const LABEL_SUBNET: &str = "gantry.subnet";
pub const LABEL_VPC: &str = "gantry.vpc";

/// ECS's default stop timeout.
pub const DEFAULT_STOP_TIMEOUT_SECS: i64 = 30;
/// Docker's smallest cpu shares; ECS gives it to containers with cpu 0.
const MIN_CPU_SHARES: i64 = 2;
const MIB: i64 = 1024 * 1024;
const NANOS: i64 = 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    #[error("container {0} has no image")]
    NoImage(String),
    #[error("container {container}: mount point names unknown volume {volume}")]
    UnknownVolume { container: String, volume: String },
    #[error("container {0}: a mount point has no containerPath")]
    NoContainerPath(String),
    #[error("the subnet's CIDR block {0} is not valid")]
    BadSubnet(String),
    #[error(
        "container {0}: the task's pause container (awsvpc, pidMode or ipcMode task) is missing"
    )]
    NoPause(String),
    #[error("container {container} refers to unknown container {reference}")]
    UnknownContainer {
        container: String,
        reference: String,
    },
}

/// The task's id: the last element of its ARN.
pub fn task_id(task_arn: &str) -> &str {
    task_arn.rsplit('/').next().unwrap_or(task_arn)
}

/// A fresh Docker name for a container: `ecs-{family}-{revision}-{container}-{random}`, as the ECS agent names them.
pub fn docker_container_name(family: &str, revision: i64, container: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("ecs-{family}-{revision}-{container}-{}", &random[..20]);
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The Docker volume of a task-scoped volume: one per task, removed with it.
pub fn task_volume_name(task_arn: &str, volume: &str) -> String {
    format!("ecs-{}-{volume}", task_id(task_arn))
}

/// The network mode of a task as the agent runs it: `host`, `none` and `awsvpc` (with its interface) as asked,
/// `bridge` otherwise.
pub fn network_mode(task: &TaskSpec) -> &'static str {
    match task.network_mode.as_str() {
        "host" => "host",
        "none" => "none",
        "awsvpc" if task.network.is_some() => "awsvpc",
        _ => "bridge",
    }
}

/// Whether the task needs a pause container: to hold an awsvpc task's address, or the PID or IPC namespace its
/// containers share (`pidMode`/`ipcMode: task`), as the ECS agent does.
pub fn needs_pause(task: &TaskSpec) -> bool {
    network_mode(task) == "awsvpc"
        || task.pid_mode.as_deref() == Some("task")
        || task.ipc_mode.as_deref() == Some("task")
}

/// The host network of a VPC subnet: one per subnet on a host, shared by the agents there.
pub fn subnet_network(network: &TaskNetwork) -> Result<NetworkSpec, TranslateError> {
    let bad = || TranslateError::BadSubnet(network.subnet_cidr.clone());
    let (address, prefix) = network.subnet_cidr.split_once('/').ok_or_else(bad)?;
    let address: Ipv4Addr = address.parse().map_err(|_| bad())?;
    let prefix: u32 = prefix
        .parse()
        .ok()
        .filter(|p| (1..=28).contains(p))
        .ok_or_else(bad)?;
    let first = u32::from(address) & (u32::MAX << (32 - prefix));
    // The subnet's router address in AWS (the first after the network address); here the host's side.
    let gateway = Ipv4Addr::from(first + 1);
    // Linux names a bridge in at most 15 bytes: the id's last 12 characters (ids are ASCII hex).
    let id = network.subnet_id.as_str();
    let short = id.get(id.len().saturating_sub(12)..).unwrap_or(id);
    Ok(NetworkSpec {
        name: format!("gantry-{}", network.subnet_id),
        subnet: format!("{}/{prefix}", Ipv4Addr::from(first)),
        gateway: gateway.to_string(),
        bridge: format!("gs-{short}"),
        labels: BTreeMap::from([
            (LABEL_SUBNET.to_string(), network.subnet_id.clone()),
            (LABEL_VPC.to_string(), network.vpc_id.clone()),
        ]),
    })
}

/// The pause container of an awsvpc task: it holds the task's address (and MAC address, host name, DNS settings)
/// in its network namespace, which the task's containers join.
pub fn pause_spec(
    ctx: &Context<'_>,
    network: Option<&TaskNetwork>,
    docker_name: &str,
) -> Result<ContainerSpec, TranslateError> {
    let pause = ContainerDefinition {
        name: Some(PAUSE_CONTAINER_NAME.into()),
        ..Default::default()
    };
    // Others join its IPC namespace only if it lets them.
    let ipc_mode = (ctx.task.ipc_mode.as_deref() == Some("task")).then(|| "shareable".to_string());
    let Some(network) = network else {
        // Namespaces only: the task's containers keep their own network.
        let config = ContainerCreateBody {
            image: Some(PAUSE_IMAGE.into()),
            cmd: Some(vec![PAUSE_COMMAND.into()]),
            labels: Some(labels(ctx, &pause)),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                ipc_mode,
                log_config: Some(HostConfigLogConfig {
                    typ: Some("none".into()),
                    config: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        return Ok(ContainerSpec {
            name: docker_name.to_string(),
            config,
        });
    };
    let net = subnet_network(network)?;
    let defs = &ctx.task.containers;
    let extra_hosts: Vec<String> = defs
        .iter()
        .flat_map(|d| d.extra_hosts.iter().flatten())
        .map(|h| format!("{}:{}", h.hostname, h.ip_address))
        .collect();
    let dns = defs
        .iter()
        .find_map(|d| d.dns_servers.clone().filter(|d| !d.is_empty()));
    let dns_search = defs
        .iter()
        .find_map(|d| d.dns_search_domains.clone().filter(|d| !d.is_empty()));
    let mac = Some(network.mac_address.clone()).filter(|m| !m.is_empty());
    let endpoint = EndpointSettings {
        ipam_config: Some(EndpointIpamConfig {
            ipv4_address: Some(network.private_ipv4_address.clone()),
            ..Default::default()
        }),
        mac_address: mac.clone(),
        ..Default::default()
    };
    let config = ContainerCreateBody {
        hostname: Some(network.private_dns_name.clone()).filter(|h| !h.is_empty()),
        // Engines before API 1.44 take the MAC address here only.
        mac_address: mac,
        image: Some(PAUSE_IMAGE.into()),
        cmd: Some(vec![PAUSE_COMMAND.into()]),
        labels: Some(labels(ctx, &pause)),
        host_config: Some(HostConfig {
            network_mode: Some(net.name.clone()),
            ipc_mode,
            extra_hosts: (!extra_hosts.is_empty()).then_some(extra_hosts),
            dns,
            dns_search,
            log_config: Some(HostConfigLogConfig {
                typ: Some("none".into()),
                config: None,
            }),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(net.name, endpoint)])),
        }),
        ..Default::default()
    };
    Ok(ContainerSpec {
        name: docker_name.to_string(),
        config,
    })
}

/// The name the cluster label carries.
pub fn cluster_name(task: &TaskSpec) -> &str {
    if !task.cluster_name.is_empty() {
        &task.cluster_name
    } else {
        task.cluster_arn
            .rsplit('/')
            .next()
            .unwrap_or(&task.cluster_arn)
    }
}

/// What a task volume is on the host.
#[derive(Debug, Clone, PartialEq)]
pub enum VolumePlan {
    /// A host directory, bind-mounted.
    Host { name: String, path: String },
    /// A Docker volume created for the task and removed after it (scope `task`, or no host path at all).
    Task(VolumeSpec),
    /// A Docker volume shared across tasks (scope `shared`), created when missing if `autoprovision`.
    Shared {
        spec: VolumeSpec,
        autoprovision: bool,
    },
}

impl VolumePlan {
    /// What a bind string names as the source: the host path or the Docker volume.
    pub fn source(&self) -> &str {
        match self {
            VolumePlan::Host { path, .. } => path,
            VolumePlan::Task(spec) | VolumePlan::Shared { spec, .. } => &spec.name,
        }
    }
}

fn volume_plan(task: &TaskSpec, instance_arn: &str, volume: &Volume) -> VolumePlan {
    let name = volume.name.clone().unwrap_or_default();
    if let Some(path) = volume
        .host
        .as_ref()
        .and_then(|h| h.source_path.clone())
        .filter(|p| !p.is_empty())
    {
        return VolumePlan::Host { name, path };
    }
    let config = volume
        .docker_volume_configuration
        .clone()
        .unwrap_or_default();
    let mut labels: BTreeMap<String, String> = config.labels.clone().unwrap_or_default();
    let driver_opts = config.driver_opts.clone().unwrap_or_default();
    if config.scope.as_deref() == Some("shared") {
        let spec = VolumeSpec {
            name,
            driver: config.driver.clone(),
            driver_opts,
            labels,
        };
        return VolumePlan::Shared {
            spec,
            autoprovision: config.autoprovision.unwrap_or(false),
        };
    }
    labels.insert(LABEL_TASK_ARN.into(), task.task_arn.clone());
    labels.insert(LABEL_INSTANCE.into(), instance_arn.to_string());
    VolumePlan::Task(VolumeSpec {
        name: task_volume_name(&task.task_arn, &name),
        driver: config.driver.clone(),
        driver_opts,
        labels,
    })
}

/// The task's volumes, by name.
pub fn volume_plans(task: &TaskSpec, instance_arn: &str) -> BTreeMap<String, VolumePlan> {
    task.volumes
        .iter()
        .filter(|v| v.name.as_deref().is_some_and(|n| !n.is_empty()))
        .map(|v| {
            (
                v.name.clone().unwrap_or_default(),
                volume_plan(task, instance_arn, v),
            )
        })
        .collect()
}

/// Docker's health check from the ECS one: `CMD` and `CMD-SHELL` forms, seconds to nanoseconds, ECS defaults.
pub fn health_config(hc: &HealthCheck) -> HealthConfig {
    let test = match hc.command.first().map(String::as_str) {
        Some("CMD") | Some("NONE") => hc.command.clone(),
        Some("CMD-SHELL") => vec!["CMD-SHELL".to_string(), hc.command[1..].join(" ")],
        _ => vec!["CMD-SHELL".to_string(), hc.command.join(" ")],
    };
    HealthConfig {
        test: Some(test),
        interval: Some(hc.interval.unwrap_or(30) * NANOS),
        timeout: Some(hc.timeout.unwrap_or(5) * NANOS),
        retries: Some(hc.retries.unwrap_or(3)),
        start_period: Some(hc.start_period.unwrap_or(0) * NANOS),
        start_interval: None,
    }
}

/// The stop timeout of a container, in seconds.
pub fn stop_timeout_secs(def: &ContainerDefinition) -> i64 {
    def.stop_timeout
        .filter(|t| *t > 0)
        .unwrap_or(DEFAULT_STOP_TIMEOUT_SECS)
}

/// Everything a container's translation needs besides its definition.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub task: &'a TaskSpec,
    pub instance_arn: &'a str,
    /// The Docker names of the task's containers, by ECS container name.
    pub docker_names: &'a BTreeMap<String, String>,
    pub volumes: &'a BTreeMap<String, VolumePlan>,
    /// The Docker name of the task's pause container (awsvpc, pidMode or ipcMode task).
    pub pause: Option<&'a str>,
    /// The task's cgroup (task-level cpu or memory), which its containers' cgroups go under.
    pub cgroup_parent: Option<&'a str>,
}

impl Context<'_> {
    fn docker_name_of(&self, container: &str, reference: &str) -> Result<&str, TranslateError> {
        self.docker_names
            .get(reference)
            .map(String::as_str)
            .ok_or_else(|| TranslateError::UnknownContainer {
                container: container.to_string(),
                reference: reference.to_string(),
            })
    }
}

/// The labels of a container: its `dockerLabels`, then the ECS labels and the owning instance.
pub fn labels(ctx: &Context<'_>, def: &ContainerDefinition) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = def
        .docker_labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let task = ctx.task;
    labels.insert(LABEL_CLUSTER.into(), cluster_name(task).to_string());
    labels.insert(LABEL_TASK_ARN.into(), task.task_arn.clone());
    labels.insert(LABEL_CONTAINER_NAME.into(), def.name().to_string());
    labels.insert(LABEL_FAMILY.into(), task.family.clone());
    labels.insert(LABEL_VERSION.into(), task.revision.to_string());
    labels.insert(LABEL_INSTANCE.into(), ctx.instance_arn.to_string());
    labels
}

/// The container to create for `def`, named `docker_name`.
pub fn container_spec(
    ctx: &Context<'_>,
    def: &ContainerDefinition,
    docker_name: &str,
) -> Result<ContainerSpec, TranslateError> {
    let name = def.name();
    let image = def
        .image
        .clone()
        .filter(|i| !i.is_empty())
        .ok_or_else(|| TranslateError::NoImage(name.into()))?;
    let mode = network_mode(ctx.task);
    // An awsvpc task's containers live in the pause container's namespace: Docker takes no ports, host name, DNS
    // or hosts of their own there (the pause container has them).
    let docker_mode = match mode {
        "awsvpc" => format!(
            "container:{}",
            ctx.pause
                .ok_or_else(|| TranslateError::NoPause(name.into()))?
        ),
        other => other.to_string(),
    };
    let own_network = mode != "awsvpc";
    // `task`: the pause container's namespace, shared by the task's containers.
    let shared = |m: Option<&str>| -> Result<Option<String>, TranslateError> {
        Ok(match m {
            Some("task") => Some(format!(
                "container:{}",
                ctx.pause
                    .ok_or_else(|| TranslateError::NoPause(name.into()))?
            )),
            Some(other @ ("host" | "none")) => Some(other.to_string()),
            _ => None,
        })
    };
    let (pid_mode, ipc_mode) = (
        shared(ctx.task.pid_mode.as_deref())?,
        shared(ctx.task.ipc_mode.as_deref())?,
    );

    let env: Vec<String> = def
        .environment
        .iter()
        .filter_map(|kv| {
            kv.name
                .as_ref()
                .map(|n| format!("{n}={}", kv.value.clone().unwrap_or_default()))
        })
        .collect();

    let mut exposed: HashMap<String, HashMap<(), ()>> = HashMap::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    if mode != "none" && own_network {
        for pm in &def.port_mappings {
            let Some(container_port) = pm.container_port else {
                continue;
            };
            let protocol = pm.protocol.as_deref().unwrap_or("tcp").to_ascii_lowercase();
            let key = format!("{container_port}/{protocol}");
            exposed.insert(key.clone(), HashMap::new());
            if mode == "bridge" {
                let host_port = pm
                    .host_port
                    .filter(|p| *p > 0)
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                let binding = PortBinding {
                    host_ip: Some("0.0.0.0".into()),
                    host_port: Some(host_port),
                };
                bindings
                    .entry(key)
                    .or_insert_with(|| Some(Vec::new()))
                    .get_or_insert_with(Vec::new)
                    .push(binding);
            }
        }
    }

    let mut binds = Vec::new();
    for mp in &def.mount_points {
        let volume = mp.source_volume.clone().unwrap_or_default();
        let plan = ctx
            .volumes
            .get(&volume)
            .ok_or_else(|| TranslateError::UnknownVolume {
                container: name.into(),
                volume: volume.clone(),
            })?;
        let path = mp.container_path.clone().filter(|p| !p.is_empty());
        let path = path.ok_or_else(|| TranslateError::NoContainerPath(name.into()))?;
        let mode = if mp.read_only == Some(true) {
            ":ro"
        } else {
            ""
        };
        binds.push(format!("{}:{path}{mode}", plan.source()));
    }

    let mut volumes_from = Vec::new();
    for vf in &def.volumes_from {
        let source = vf.source_container.clone().unwrap_or_default();
        let docker_name = ctx.docker_name_of(name, &source)?;
        let mode = if vf.read_only == Some(true) {
            "ro"
        } else {
            "rw"
        };
        volumes_from.push(format!("{docker_name}:{mode}"));
    }

    let mut links = Vec::new();
    for link in def.links.iter().flatten() {
        let (target, alias) = link
            .split_once(':')
            .unwrap_or((link.as_str(), link.as_str()));
        links.push(format!("{}:{alias}", ctx.docker_name_of(name, target)?));
    }

    let ulimits: Vec<ResourcesUlimits> = def
        .ulimits
        .iter()
        .flatten()
        .map(|u| ResourcesUlimits {
            name: Some(u.name.clone()),
            soft: Some(u.soft_limit),
            hard: Some(u.hard_limit),
        })
        .collect();

    let extra_hosts: Vec<String> = def
        .extra_hosts
        .iter()
        .flatten()
        .map(|h| format!("{}:{}", h.hostname, h.ip_address))
        .collect();

    let host_config = HostConfig {
        cpu_shares: Some(def.cpu.max(MIN_CPU_SHARES)),
        memory: def.memory.filter(|m| *m > 0).map(|m| m * MIB),
        memory_reservation: def.memory_reservation.filter(|m| *m > 0).map(|m| m * MIB),
        ulimits: (!ulimits.is_empty()).then_some(ulimits),
        privileged: def.privileged,
        readonly_rootfs: def.readonly_root_filesystem,
        network_mode: Some(docker_mode),
        cgroup_parent: ctx.cgroup_parent.map(String::from),
        pid_mode,
        ipc_mode,
        port_bindings: (!bindings.is_empty()).then_some(bindings),
        binds: (!binds.is_empty()).then_some(binds),
        volumes_from: (!volumes_from.is_empty()).then_some(volumes_from),
        links: (!links.is_empty()).then_some(links),
        extra_hosts: (!extra_hosts.is_empty() && own_network).then_some(extra_hosts),
        dns: def
            .dns_servers
            .clone()
            .filter(|d| !d.is_empty() && own_network),
        dns_search: def
            .dns_search_domains
            .clone()
            .filter(|d| !d.is_empty() && own_network),
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".into()),
            config: None,
        }),
        ..Default::default()
    };

    let config = ContainerCreateBody {
        // Docker refuses a hostname in host mode and in another container's namespace.
        hostname: def
            .hostname
            .clone()
            .filter(|_| mode != "host" && own_network),
        user: def.user.clone(),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        tty: def.pseudo_terminal,
        open_stdin: def.interactive,
        env: (!env.is_empty()).then_some(env),
        cmd: def.command.clone(),
        entrypoint: def.entry_point.clone(),
        healthcheck: def.health_check.as_ref().map(health_config),
        image: Some(image),
        working_dir: def.working_directory.clone(),
        network_disabled: def.disable_networking,
        labels: Some(labels(ctx, def)),
        stop_timeout: Some(stop_timeout_secs(def)),
        host_config: Some(host_config),
        ..Default::default()
    };
    Ok(ContainerSpec {
        name: docker_name.to_string(),
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_model::ecs::{
        DockerVolumeConfiguration, HostEntry, HostVolumeProperties, KeyValuePair, MountPoint,
        PortMapping, Ulimit, VolumeFrom,
    };

    fn task() -> TaskSpec {
        TaskSpec {
            task_arn:
                "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef0123456789abcdef"
                    .into(),
            cluster_arn: "arn:aws:ecs:us-east-1:000000000000:cluster/default".into(),
            cluster_name: "default".into(),
            family: "web".into(),
            revision: 3,
            desired_status: "RUNNING".into(),
            network_mode: "bridge".into(),
            volumes: vec![
                Volume {
                    name: Some("data".into()),
                    host: Some(HostVolumeProperties {
                        source_path: Some("/srv/data".into()),
                    }),
                    ..Default::default()
                },
                Volume {
                    name: Some("scratch".into()),
                    ..Default::default()
                },
                Volume {
                    name: Some("cache".into()),
                    docker_volume_configuration: Some(DockerVolumeConfiguration {
                        scope: Some("shared".into()),
                        autoprovision: Some(true),
                        driver: Some("local".into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    fn def() -> ContainerDefinition {
        ContainerDefinition {
            name: Some("app".into()),
            image: Some("busybox:latest".into()),
            cpu: 0,
            memory: Some(128),
            memory_reservation: Some(64),
            port_mappings: vec![
                PortMapping {
                    container_port: Some(8080),
                    host_port: Some(49153),
                    ..Default::default()
                },
                PortMapping {
                    container_port: Some(53),
                    host_port: Some(5353),
                    protocol: Some("udp".into()),
                    ..Default::default()
                },
            ],
            command: Some(vec!["httpd".into(), "-f".into()]),
            entry_point: Some(vec!["/bin/sh".into(), "-c".into()]),
            environment: vec![KeyValuePair {
                name: Some("A".into()),
                value: Some("1".into()),
            }],
            mount_points: vec![
                MountPoint {
                    source_volume: Some("data".into()),
                    container_path: Some("/data".into()),
                    read_only: Some(true),
                },
                MountPoint {
                    source_volume: Some("scratch".into()),
                    container_path: Some("/scratch".into()),
                    read_only: None,
                },
                MountPoint {
                    source_volume: Some("cache".into()),
                    container_path: Some("/cache".into()),
                    read_only: None,
                },
            ],
            volumes_from: vec![VolumeFrom {
                source_container: Some("sidecar".into()),
                read_only: Some(true),
            }],
            links: Some(vec!["db:database".into(), "sidecar".into()]),
            working_directory: Some("/app".into()),
            user: Some("1000".into()),
            hostname: Some("apphost".into()),
            stop_timeout: Some(5),
            ulimits: Some(vec![Ulimit {
                name: "nofile".into(),
                soft_limit: 1024,
                hard_limit: 2048,
            }]),
            extra_hosts: Some(vec![HostEntry {
                hostname: "api".into(),
                ip_address: "10.0.0.1".into(),
            }]),
            dns_servers: Some(vec!["1.1.1.1".into()]),
            privileged: Some(false),
            readonly_root_filesystem: Some(true),
            docker_labels: Some(BTreeMap::from([
                ("team".to_string(), "blue".to_string()),
                (LABEL_CLUSTER.to_string(), "spoofed".to_string()),
            ])),
            health_check: Some(HealthCheck {
                command: vec!["CMD-SHELL".into(), "wget -q -O- localhost:8080".into()],
                interval: Some(5),
                timeout: None,
                retries: Some(2),
                start_period: Some(1),
            }),
            ..Default::default()
        }
    }

    fn names() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app".to_string(), "ecs-web-3-app-aaaa".to_string()),
            ("db".to_string(), "ecs-web-3-db-bbbb".to_string()),
            ("sidecar".to_string(), "ecs-web-3-sidecar-cccc".to_string()),
        ])
    }

    fn translate(
        task: &TaskSpec,
        def: &ContainerDefinition,
    ) -> Result<ContainerSpec, TranslateError> {
        let names = names();
        let volumes = volume_plans(task, "arn:instance");
        let ctx = Context {
            task,
            instance_arn: "arn:instance",
            docker_names: &names,
            volumes: &volumes,
            pause: Some("ecs-web-3-internalecspause-dddd"),
            cgroup_parent: Some("/ecs/abc"),
        };
        container_spec(&ctx, def, "ecs-web-3-app-aaaa")
    }

    #[test]
    fn translates_a_full_definition() {
        let spec = translate(&task(), &def()).unwrap();
        assert_eq!(spec.name, "ecs-web-3-app-aaaa");
        let c = &spec.config;
        assert_eq!(c.image.as_deref(), Some("busybox:latest"));
        assert_eq!(c.cmd, Some(vec!["httpd".to_string(), "-f".to_string()]));
        assert_eq!(
            c.entrypoint,
            Some(vec!["/bin/sh".to_string(), "-c".to_string()])
        );
        assert_eq!(c.env, Some(vec!["A=1".to_string()]));
        assert_eq!(c.working_dir.as_deref(), Some("/app"));
        assert_eq!(c.user.as_deref(), Some("1000"));
        assert_eq!(c.hostname.as_deref(), Some("apphost"));
        assert_eq!(c.stop_timeout, Some(5));
        let labels = c.labels.as_ref().unwrap();
        assert_eq!(labels["team"], "blue");
        assert_eq!(labels[LABEL_CLUSTER], "default");
        assert_eq!(labels[LABEL_TASK_ARN], task().task_arn);
        assert_eq!(labels[LABEL_CONTAINER_NAME], "app");
        assert_eq!(labels[LABEL_FAMILY], "web");
        assert_eq!(labels[LABEL_VERSION], "3");
        assert_eq!(labels[LABEL_INSTANCE], "arn:instance");
        assert!(c.exposed_ports.as_ref().unwrap().contains_key("8080/tcp"));
        assert!(c.exposed_ports.as_ref().unwrap().contains_key("53/udp"));

        let hc = c.healthcheck.as_ref().unwrap();
        assert_eq!(
            hc.test,
            Some(vec![
                "CMD-SHELL".to_string(),
                "wget -q -O- localhost:8080".to_string()
            ])
        );
        assert_eq!(hc.interval, Some(5_000_000_000));
        assert_eq!(hc.timeout, Some(5_000_000_000));
        assert_eq!(hc.retries, Some(2));
        assert_eq!(hc.start_period, Some(1_000_000_000));

        let h = c.host_config.as_ref().unwrap();
        assert_eq!(h.cpu_shares, Some(2));
        assert_eq!(h.memory, Some(128 * MIB));
        assert_eq!(h.memory_reservation, Some(64 * MIB));
        assert_eq!(h.network_mode.as_deref(), Some("bridge"));
        let ports = h.port_bindings.as_ref().unwrap();
        let web = ports["8080/tcp"].as_ref().unwrap();
        assert_eq!(web[0].host_port.as_deref(), Some("49153"));
        assert_eq!(web[0].host_ip.as_deref(), Some("0.0.0.0"));
        assert_eq!(
            ports["53/udp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("5353")
        );
        assert_eq!(
            h.binds,
            Some(vec![
                "/srv/data:/data:ro".to_string(),
                "ecs-0123456789abcdef0123456789abcdef-scratch:/scratch".to_string(),
                "cache:/cache".to_string(),
            ])
        );
        assert_eq!(
            h.volumes_from,
            Some(vec!["ecs-web-3-sidecar-cccc:ro".to_string()])
        );
        assert_eq!(
            h.links,
            Some(vec![
                "ecs-web-3-db-bbbb:database".to_string(),
                "ecs-web-3-sidecar-cccc:sidecar".to_string()
            ])
        );
        assert_eq!(h.extra_hosts, Some(vec!["api:10.0.0.1".to_string()]));
        assert_eq!(h.dns, Some(vec!["1.1.1.1".to_string()]));
        assert_eq!(h.readonly_rootfs, Some(true));
        let ulimit = &h.ulimits.as_ref().unwrap()[0];
        assert_eq!(
            (ulimit.name.as_deref(), ulimit.soft, ulimit.hard),
            (Some("nofile"), Some(1024), Some(2048))
        );
        assert_eq!(
            h.log_config.as_ref().and_then(|l| l.typ.as_deref()),
            Some("json-file")
        );
    }

    #[test]
    fn host_mode_exposes_without_binding_and_drops_hostname() {
        let mut t = task();
        t.network_mode = "host".into();
        let spec = translate(&t, &def()).unwrap();
        let h = spec.config.host_config.as_ref().unwrap();
        assert_eq!(h.network_mode.as_deref(), Some("host"));
        assert!(h.port_bindings.is_none());
        assert!(spec.config.hostname.is_none());
    }

    #[test]
    fn awsvpc_without_an_interface_runs_bridged_and_none_binds_nothing() {
        let mut t = task();
        t.network_mode = "awsvpc".into();
        assert_eq!(
            translate(&t, &def())
                .unwrap()
                .config
                .host_config
                .unwrap()
                .network_mode
                .as_deref(),
            Some("bridge")
        );
        t.network_mode = "none".into();
        let spec = translate(&t, &def()).unwrap();
        assert!(spec.config.exposed_ports.is_none());
        assert!(spec.config.host_config.unwrap().port_bindings.is_none());
    }

    fn interface() -> TaskNetwork {
        TaskNetwork {
            attachment_id: "att".into(),
            network_interface_id: "eni-0123".into(),
            subnet_id: "subnet-0123456789abcdef0".into(),
            vpc_id: "vpc-1".into(),
            subnet_cidr: "172.31.16.0/20".into(),
            private_ipv4_address: "172.31.16.4".into(),
            mac_address: "0e:01:02:03:04:05".into(),
            private_dns_name: "ip-172-31-16-4.ec2.internal".into(),
            security_groups: vec!["sg-1".into()],
        }
    }

    #[test]
    fn pid_and_ipc_modes_share_the_pause_container_s_namespaces() {
        let mut t = task();
        assert!(!needs_pause(&t));
        let h = |t: &TaskSpec| translate(t, &def()).unwrap().config.host_config.unwrap();
        assert_eq!((h(&t).pid_mode, h(&t).ipc_mode), (None, None));
        t.pid_mode = Some("task".into());
        t.ipc_mode = Some("host".into());
        assert!(needs_pause(&t));
        let pause = "container:ecs-web-3-internalecspause-dddd";
        assert_eq!(h(&t).pid_mode.as_deref(), Some(pause));
        assert_eq!(h(&t).ipc_mode.as_deref(), Some("host"));
        assert_eq!(
            h(&t).network_mode.as_deref(),
            Some("bridge"),
            "the network stays the task's own"
        );
        t.ipc_mode = Some("task".into());
        assert_eq!(h(&t).ipc_mode.as_deref(), Some(pause));

        // A pause container without a network holds the namespaces only, and lets others join its IPC one.
        let (names, volumes) = (BTreeMap::new(), BTreeMap::new());
        let ctx = Context {
            task: &t,
            instance_arn: "arn:instance",
            docker_names: &names,
            volumes: &volumes,
            pause: None,
            cgroup_parent: None,
        };
        let spec = pause_spec(&ctx, None, "p").unwrap();
        let ph = spec.config.host_config.unwrap();
        assert_eq!(ph.network_mode.as_deref(), Some("none"));
        assert_eq!(ph.ipc_mode.as_deref(), Some("shareable"));
        assert!(matches!(
            container_spec(&ctx, &def(), "x"),
            Err(TranslateError::NoPause(_))
        ));
    }

    #[test]
    fn awsvpc_containers_join_the_pause_container_which_holds_the_address() {
        let mut t = task();
        t.network_mode = "awsvpc".into();
        t.network = Some(interface());
        t.containers = vec![def()];
        let spec = translate(&t, &def()).unwrap();
        let h = spec.config.host_config.as_ref().unwrap();
        assert_eq!(
            h.network_mode.as_deref(),
            Some("container:ecs-web-3-internalecspause-dddd")
        );
        assert!(h.port_bindings.is_none() && h.extra_hosts.is_none() && h.dns.is_none());
        assert!(spec.config.exposed_ports.is_none() && spec.config.hostname.is_none());

        let net = subnet_network(&interface()).unwrap();
        assert_eq!(net.name, "gantry-subnet-0123456789abcdef0");
        assert_eq!(net.subnet, "172.31.16.0/20");
        assert_eq!(net.gateway, "172.31.16.1");
        assert_eq!(net.bridge, "gs-56789abcdef0");

        let (names, volumes) = (BTreeMap::new(), BTreeMap::new());
        let ctx = Context {
            task: &t,
            instance_arn: "arn:instance",
            docker_names: &names,
            volumes: &volumes,
            pause: None,
            cgroup_parent: None,
        };
        let pause = pause_spec(&ctx, Some(&interface()), "p").unwrap();
        let c = &pause.config;
        assert_eq!(c.image.as_deref(), Some(PAUSE_IMAGE));
        assert_eq!(c.hostname.as_deref(), Some("ip-172-31-16-4.ec2.internal"));
        assert_eq!(c.mac_address.as_deref(), Some("0e:01:02:03:04:05"));
        assert_eq!(
            c.labels.as_ref().unwrap()[LABEL_CONTAINER_NAME],
            PAUSE_CONTAINER_NAME
        );
        let h = c.host_config.as_ref().unwrap();
        assert_eq!(h.network_mode.as_deref(), Some(net.name.as_str()));
        assert!(h.extra_hosts.as_ref().is_some_and(|e| !e.is_empty()));
        let endpoints = c
            .networking_config
            .as_ref()
            .unwrap()
            .endpoints_config
            .as_ref()
            .unwrap();
        let address = endpoints[&net.name]
            .ipam_config
            .as_ref()
            .unwrap()
            .ipv4_address
            .as_deref();
        assert_eq!(address, Some("172.31.16.4"));

        let mut bad = interface();
        bad.subnet_cidr = "nonsense".into();
        assert!(subnet_network(&bad).is_err());
    }

    #[test]
    fn defaults_follow_ecs() {
        let d = ContainerDefinition {
            name: Some("app".into()),
            image: Some("busybox".into()),
            cpu: 512,
            port_mappings: vec![PortMapping {
                container_port: Some(80),
                ..Default::default()
            }],
            health_check: Some(HealthCheck {
                command: vec!["CMD".into(), "true".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let spec = translate(&task(), &d).unwrap();
        assert_eq!(spec.config.stop_timeout, Some(30));
        let h = spec.config.host_config.as_ref().unwrap();
        assert_eq!(h.cpu_shares, Some(512));
        assert_eq!(h.memory, None);
        // hostPort absent: Docker picks one
        assert_eq!(
            h.port_bindings.as_ref().unwrap()["80/tcp"]
                .as_ref()
                .unwrap()[0]
                .host_port
                .as_deref(),
            Some("")
        );
        let hc = spec.config.healthcheck.unwrap();
        assert_eq!(hc.test, Some(vec!["CMD".to_string(), "true".to_string()]));
        assert_eq!(
            (hc.interval, hc.timeout, hc.retries, hc.start_period),
            (Some(30 * NANOS), Some(5 * NANOS), Some(3), Some(0))
        );
        assert!(spec.config.env.is_none());
    }

    #[test]
    fn bad_references_are_errors() {
        let mut d = def();
        d.mount_points[0].source_volume = Some("nope".into());
        assert!(matches!(
            translate(&task(), &d),
            Err(TranslateError::UnknownVolume { .. })
        ));
        let mut d = def();
        d.links = Some(vec!["ghost".into()]);
        assert!(matches!(
            translate(&task(), &d),
            Err(TranslateError::UnknownContainer { .. })
        ));
        let mut d = def();
        d.image = None;
        assert_eq!(
            translate(&task(), &d),
            Err(TranslateError::NoImage("app".into()))
        );
    }

    #[test]
    fn plans_volumes() {
        let plans = volume_plans(&task(), "arn:instance");
        assert_eq!(
            plans["data"],
            VolumePlan::Host {
                name: "data".into(),
                path: "/srv/data".into()
            }
        );
        match &plans["scratch"] {
            VolumePlan::Task(spec) => {
                assert_eq!(spec.name, "ecs-0123456789abcdef0123456789abcdef-scratch");
                assert_eq!(spec.labels[LABEL_INSTANCE], "arn:instance");
            }
            other => panic!("unexpected {other:?}"),
        }
        match &plans["cache"] {
            VolumePlan::Shared {
                spec,
                autoprovision,
            } => {
                assert_eq!(spec.name, "cache");
                assert!(autoprovision);
                assert_eq!(spec.driver.as_deref(), Some("local"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn docker_names_are_valid_and_unique() {
        let a = docker_container_name("web", 3, "app");
        let b = docker_container_name("web", 3, "app");
        assert!(a.starts_with("ecs-web-3-app-"));
        assert_eq!(a.len(), "ecs-web-3-app-".len() + 20);
        assert_ne!(a, b);
    }
}
