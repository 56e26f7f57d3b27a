//! [`Runtime`] on Docker's Engine API with bollard (Podman's Docker API works too).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bollard::auth::DockerCredentials;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerInspectResponse, ContainerStateStatusEnum, HealthStatusEnum, Ipam, IpamConfig,
    NetworkCreateRequest, PortMap, VolumeCreateOptions,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, InspectNetworkOptions, ListContainersOptions,
    ListNetworksOptions, LogsOptions, RemoveContainerOptions, RemoveVolumeOptions,
    StopContainerOptions,
};
use bollard::Docker;
use futures_util::stream::{BoxStream, StreamExt};
use gantry_model::agent::RegistryCredentials;
use gantry_model::ecs::NetworkBinding;

use crate::translate::LABEL_SUBNET;

use super::{
    ContainerInfo, ContainerSpec, ContainerState, ContainerStatus, Health, LogChunk, NetworkSpec,
    Runtime, RuntimeError, RuntimeInfo, VolumeSpec,
};

/// Longer than the longest stop timeout ECS allows (120 s), so that a stop request is never cut short.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(200);

/// The Docker runtime. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
    /// One network creation at a time: the engine reserves a network's addresses before it records the network,
    /// so a second creation of the same network meanwhile fails with "Pool overlaps" instead of finding it.
    networks: Arc<tokio::sync::Mutex<()>>,
    /// Whether the engine's cgroup driver takes a cgroup-parent path (`cgroupfs`), asked once.
    cgroup_paths: Arc<tokio::sync::OnceCell<bool>>,
}

impl DockerRuntime {
    /// Connects to the local engine (`DOCKER_HOST` or the default socket) and negotiates the API version, so that
    /// older engines (Debian's 20.10 speaks API 1.41) are talked to in their own version.
    pub async fn connect() -> Result<DockerRuntime, RuntimeError> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(|e| RuntimeError::Unavailable(e.to_string()))?
            .with_timeout(REQUEST_TIMEOUT);
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| RuntimeError::Unavailable(e.to_string()))?;
        Ok(DockerRuntime::from_client(docker))
    }

    /// Wraps a client the caller configured.
    pub fn from_client(docker: Docker) -> DockerRuntime {
        DockerRuntime {
            docker,
            networks: Default::default(),
            cgroup_paths: Default::default(),
        }
    }

    pub fn client(&self) -> &Docker {
        &self.docker
    }
}

fn engine_error(e: BollardError) -> RuntimeError {
    match e {
        BollardError::DockerResponseServerError {
            status_code: 404,
            message,
        } => RuntimeError::NotFound(message),
        BollardError::DockerResponseServerError { message, .. } => RuntimeError::Engine(message),
        BollardError::DockerStreamError { error } => RuntimeError::Engine(error),
        BollardError::IOError { err } => RuntimeError::Unavailable(err.to_string()),
        BollardError::HyperResponseError { err } => RuntimeError::Unavailable(err.to_string()),
        BollardError::RequestTimeoutError => RuntimeError::Unavailable("request timed out".into()),
        BollardError::SocketNotFoundError(path) => {
            RuntimeError::Unavailable(format!("no socket at {path}"))
        }
        other => RuntimeError::Engine(other.to_string()),
    }
}

/// `name[:tag]` or `name@digest` split as the pull API wants it (an empty tag would pull every tag).
pub(crate) fn split_image_reference(image: &str) -> (String, String) {
    if image.contains('@') {
        return (image.to_string(), String::new());
    }
    let last_slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[last_slash..].rfind(':') {
        Some(i) => (
            image[..last_slash + i].to_string(),
            image[last_slash + i + 1..].to_string(),
        ),
        None => (image.to_string(), "latest".to_string()),
    }
}

/// The IPv4 port bindings Docker made, as ECS network bindings.
pub(crate) fn network_bindings(ports: Option<&PortMap>) -> Vec<NetworkBinding> {
    let mut out = Vec::new();
    let Some(ports) = ports else { return out };
    for (key, bindings) in ports {
        let (port, protocol) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let Ok(container_port) = port.parse::<i64>() else {
            continue;
        };
        for b in bindings.iter().flatten() {
            let ip = b.host_ip.clone().unwrap_or_default();
            if ip.contains(':') {
                continue; // IPv6 twin of an IPv4 binding
            }
            let Some(host_port) = b.host_port.as_deref().and_then(|p| p.parse::<i64>().ok()) else {
                continue;
            };
            out.push(NetworkBinding {
                bind_ip: Some(if ip.is_empty() { "0.0.0.0".into() } else { ip }),
                container_port: Some(container_port),
                host_port: Some(host_port),
                protocol: Some(protocol.to_string()),
            });
        }
    }
    out.sort_by(|a, b| (a.container_port, &a.protocol).cmp(&(b.container_port, &b.protocol)));
    out
}

pub(crate) fn container_state(r: ContainerInspectResponse) -> ContainerState {
    let state = r.state.unwrap_or_default();
    let status = match state.status {
        Some(ContainerStateStatusEnum::CREATED) => ContainerStatus::Created,
        Some(ContainerStateStatusEnum::RUNNING)
        | Some(ContainerStateStatusEnum::PAUSED)
        | Some(ContainerStateStatusEnum::RESTARTING) => ContainerStatus::Running,
        _ if state.running == Some(true) => ContainerStatus::Running,
        _ => ContainerStatus::Exited,
    };
    let health = state.health.as_ref().and_then(|h| match h.status {
        Some(HealthStatusEnum::STARTING) => Some(Health::Starting),
        Some(HealthStatusEnum::HEALTHY) => Some(Health::Healthy),
        Some(HealthStatusEnum::UNHEALTHY) => Some(Health::Unhealthy),
        _ => None,
    });
    let config = r.config.unwrap_or_default();
    let labels: BTreeMap<String, String> = config.labels.unwrap_or_default().into_iter().collect();
    let volumes = r
        .mounts
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.name)
        .collect();
    let port_bindings =
        network_bindings(r.network_settings.as_ref().and_then(|n| n.ports.as_ref()));
    ContainerState {
        id: r.id.unwrap_or_default(),
        name: r
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        status,
        exit_code: if status == ContainerStatus::Exited {
            state.exit_code
        } else {
            None
        },
        error: state.error.filter(|e| !e.is_empty()),
        oom_killed: state.oom_killed.unwrap_or(false),
        health,
        port_bindings,
        labels,
        image_id: r.image,
        volumes,
    }
}

impl DockerRuntime {
    /// Removes the subnet networks of other subnets with the same CIDR block and no container on them: left behind
    /// by a server or agent that went away (another server's default VPC has the same blocks). Returns how many.
    async fn remove_stale_networks(&self, spec: &NetworkSpec) -> usize {
        let filters = HashMap::from([("label".to_string(), vec![LABEL_SUBNET.to_string()])]);
        let Ok(networks) = self
            .docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filters),
            }))
            .await
        else {
            return 0;
        };
        let mut removed = 0;
        for n in networks {
            let Some(name) = n.name.filter(|name| *name != spec.name) else {
                continue;
            };
            let same_block = n
                .ipam
                .and_then(|i| i.config)
                .is_some_and(|c| c.iter().any(|c| c.subnet.as_deref() == Some(&spec.subnet)));
            if !same_block {
                continue;
            }
            let idle = self
                .docker
                .inspect_network(&name, None::<InspectNetworkOptions>)
                .await
                .is_ok_and(|i| i.containers.is_none_or(|c| c.is_empty()));
            if idle && self.docker.remove_network(&name).await.is_ok() {
                tracing::info!(network = %name, subnet = %spec.subnet, "removed a left-over subnet network");
                removed += 1;
            }
        }
        removed
    }
}

impl Runtime for DockerRuntime {
    async fn info(&self) -> Result<RuntimeInfo, RuntimeError> {
        let info = self.docker.info().await.map_err(engine_error)?;
        Ok(RuntimeInfo {
            cpus: info.ncpu.unwrap_or(0),
            memory_bytes: info.mem_total.unwrap_or(0),
            version: info.server_version.unwrap_or_default(),
        })
    }

    async fn image_present(&self, image: &str) -> Result<bool, RuntimeError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) => match engine_error(e) {
                RuntimeError::NotFound(_) => Ok(false),
                other => Err(other),
            },
        }
    }

    async fn pull_image(
        &self,
        image: &str,
        credentials: Option<&RegistryCredentials>,
    ) -> Result<(), RuntimeError> {
        let (from_image, tag) = split_image_reference(image);
        let options = CreateImageOptions {
            from_image: Some(from_image),
            tag: if tag.is_empty() { None } else { Some(tag) },
            ..Default::default()
        };
        let credentials = credentials.map(|c| DockerCredentials {
            username: Some(c.username.clone()),
            password: Some(c.password.clone()),
            serveraddress: Some(c.server.clone()),
            ..Default::default()
        });
        let mut progress = self.docker.create_image(Some(options), None, credentials);
        while let Some(item) = progress.next().await {
            match item {
                Ok(info) => {
                    if let Some(error) = info.error.or(info.error_detail.and_then(|d| d.message)) {
                        return Err(RuntimeError::Pull {
                            image: image.to_string(),
                            message: error,
                        });
                    }
                }
                Err(e) => {
                    let message = match engine_error(e) {
                        RuntimeError::NotFound(m)
                        | RuntimeError::Engine(m)
                        | RuntimeError::Unavailable(m) => m,
                        RuntimeError::Pull { message, .. } => message,
                    };
                    return Err(RuntimeError::Pull {
                        image: image.to_string(),
                        message,
                    });
                }
            }
        }
        Ok(())
    }

    async fn import_image(
        &self,
        reference: &str,
        rootfs: Vec<u8>,
        changes: Vec<String>,
    ) -> Result<(), RuntimeError> {
        let (repo, tag) = split_image_reference(reference);
        let options = CreateImageOptions {
            from_src: Some("-".into()),
            repo: Some(repo),
            tag: Some(tag),
            changes,
            ..Default::default()
        };
        let body = bollard::body_full(rootfs.into());
        let mut progress = self.docker.create_image(Some(options), Some(body), None);
        while let Some(item) = progress.next().await {
            let info = item.map_err(engine_error)?;
            if let Some(error) = info.error.or(info.error_detail.and_then(|d| d.message)) {
                return Err(RuntimeError::Engine(error));
            }
        }
        Ok(())
    }

    async fn ensure_network(&self, spec: &NetworkSpec) -> Result<(), RuntimeError> {
        let _one_at_a_time = self.networks.lock().await;
        match self
            .docker
            .inspect_network(&spec.name, None::<InspectNetworkOptions>)
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) => match engine_error(e) {
                RuntimeError::NotFound(_) => {}
                other => return Err(other),
            },
        }
        let request = NetworkCreateRequest {
            name: spec.name.clone(),
            driver: Some("bridge".into()),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(spec.subnet.clone()),
                    gateway: Some(spec.gateway.clone()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            options: Some(HashMap::from([(
                "com.docker.network.bridge.name".to_string(),
                spec.bridge.clone(),
            )])),
            labels: Some(spec.labels.clone().into_iter().collect()),
            ..Default::default()
        };
        let mut result = self.docker.create_network(request.clone()).await;
        if result.is_err() && self.remove_stale_networks(spec).await > 0 {
            result = self.docker.create_network(request).await;
        }
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                // Another agent of this host made it meanwhile (the engine then says that the address pool
                // overlaps, or that the name exists), and may not have finished.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let exists = self
                    .docker
                    .inspect_network(&spec.name, None::<InspectNetworkOptions>)
                    .await
                    .is_ok();
                if exists {
                    Ok(())
                } else {
                    Err(engine_error(e))
                }
            }
        }
    }

    async fn remove_network(&self, name: &str) -> Result<(), RuntimeError> {
        match self.docker.remove_network(name).await {
            Ok(()) => Ok(()),
            Err(e) => match engine_error(e) {
                RuntimeError::NotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn set_firewall(
        &self,
        address: std::net::Ipv4Addr,
        firewall: &gantry_model::agent::TaskFirewall,
    ) -> Result<(), RuntimeError> {
        let firewall = firewall.clone();
        blocking(move || crate::firewall::iptables::apply(address, &firewall)).await
    }

    async fn task_cgroup(
        &self,
        task_id: &str,
        cpu: Option<i64>,
        memory_mib: Option<i64>,
    ) -> Result<Option<String>, RuntimeError> {
        let paths = self
            .cgroup_paths
            .get_or_try_init(|| async {
                let info = self.docker.info().await.map_err(engine_error)?;
                let systemd =
                    info.cgroup_driver == Some(bollard::models::SystemInfoCgroupDriverEnum::SYSTEMD);
                if systemd {
                    tracing::warn!("the engine's systemd cgroup driver takes no cgroup-parent path: task limits are the containers' own");
                }
                Ok::<bool, RuntimeError>(!systemd)
            })
            .await?;
        if !*paths {
            return Ok(None);
        }
        let task_id = task_id.to_string();
        tokio::task::spawn_blocking(move || crate::cgroup::create(&task_id, cpu, memory_mib))
            .await
            .map_err(|e| RuntimeError::Engine(e.to_string()))?
            .map(Some)
            .map_err(RuntimeError::Engine)
    }

    async fn remove_task_cgroup(&self, task_id: &str) -> Result<(), RuntimeError> {
        // The engine removes each container's cgroup as it stops, a moment after the stop returns.
        let mut last = Ok(());
        for _ in 0..20 {
            let id = task_id.to_string();
            last = tokio::task::spawn_blocking(move || crate::cgroup::remove(&id))
                .await
                .map_err(|e| RuntimeError::Engine(e.to_string()))?
                .map_err(RuntimeError::Engine);
            if last.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        last
    }

    async fn remove_firewall(&self, address: std::net::Ipv4Addr) -> Result<(), RuntimeError> {
        blocking(move || crate::firewall::iptables::remove(address)).await
    }

    async fn volume_exists(&self, name: &str) -> Result<bool, RuntimeError> {
        match self.docker.inspect_volume(name).await {
            Ok(_) => Ok(true),
            Err(e) => match engine_error(e) {
                RuntimeError::NotFound(_) => Ok(false),
                other => Err(other),
            },
        }
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<(), RuntimeError> {
        let options = VolumeCreateOptions {
            name: Some(spec.name.clone()),
            driver: spec.driver.clone(),
            driver_opts: Some(spec.driver_opts.clone().into_iter().collect()),
            labels: Some(spec.labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.docker
            .create_volume(options)
            .await
            .map_err(engine_error)?;
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<(), RuntimeError> {
        match self
            .docker
            .remove_volume(name, Some(RemoveVolumeOptions { force: false }))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => match engine_error(e) {
                RuntimeError::NotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let options = CreateContainerOptions {
            name: Some(spec.name.clone()),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(options), spec.config.clone())
            .await
            .map_err(engine_error)?;
        Ok(created.id)
    }

    async fn start_container(&self, id: &str) -> Result<(), RuntimeError> {
        self.docker
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .map_err(engine_error)
    }

    async fn stop_container(
        &self,
        id: &str,
        timeout: Option<Duration>,
    ) -> Result<(), RuntimeError> {
        let t = timeout.map(|t| i32::try_from(t.as_secs()).unwrap_or(i32::MAX));
        // An engine answers 304 for a container that is not running; the client takes that as success.
        self.docker
            .stop_container(id, Some(StopContainerOptions { t, signal: None }))
            .await
            .map_err(engine_error)
    }

    async fn inspect_container(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        let r = self
            .docker
            .inspect_container(
                id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .map_err(engine_error)?;
        Ok(container_state(r))
    }

    async fn list_containers(&self, label: &str) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let mut filters = HashMap::new();
        filters.insert("label".to_string(), vec![label.to_string()]);
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let list = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(engine_error)?;
        Ok(list
            .into_iter()
            .map(|c| ContainerInfo {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_string(),
                labels: c.labels.unwrap_or_default().into_iter().collect(),
            })
            .collect())
    }

    async fn remove_container(&self, id: &str) -> Result<(), RuntimeError> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            link: false,
        };
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) => match engine_error(e) {
                RuntimeError::NotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }

    fn logs(
        &self,
        id: &str,
        since: i64,
        follow: bool,
    ) -> BoxStream<'static, Result<LogChunk, RuntimeError>> {
        let options = LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            since: i32::try_from(since.max(0)).unwrap_or(i32::MAX),
            timestamps: true,
            ..Default::default()
        };
        self.docker
            .logs(id, Some(options))
            .map(|item| {
                item.map(|out| out.into_bytes().to_vec())
                    .map_err(engine_error)
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::PortBinding;

    #[test]
    fn splits_image_references() {
        assert_eq!(
            split_image_reference("busybox"),
            ("busybox".into(), "latest".into())
        );
        assert_eq!(
            split_image_reference("busybox:1.36"),
            ("busybox".into(), "1.36".into())
        );
        assert_eq!(
            split_image_reference("localhost:4566/team/app"),
            ("localhost:4566/team/app".into(), "latest".into())
        );
        assert_eq!(
            split_image_reference("localhost:4566/app:v2"),
            ("localhost:4566/app".into(), "v2".into())
        );
        assert_eq!(
            split_image_reference("app@sha256:abcd"),
            ("app@sha256:abcd".into(), String::new())
        );
    }

    #[test]
    fn reports_ipv4_bindings_only() {
        let mut ports: PortMap = HashMap::new();
        ports.insert(
            "80/tcp".into(),
            Some(vec![
                PortBinding {
                    host_ip: Some("0.0.0.0".into()),
                    host_port: Some("49153".into()),
                },
                PortBinding {
                    host_ip: Some("::".into()),
                    host_port: Some("49153".into()),
                },
            ]),
        );
        ports.insert(
            "53/udp".into(),
            Some(vec![PortBinding {
                host_ip: None,
                host_port: Some("5353".into()),
            }]),
        );
        ports.insert("9000/tcp".into(), None);
        let b = network_bindings(Some(&ports));
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].container_port, Some(53));
        assert_eq!(b[0].protocol.as_deref(), Some("udp"));
        assert_eq!(b[0].bind_ip.as_deref(), Some("0.0.0.0"));
        assert_eq!(b[1].host_port, Some(49153));
    }
}

/// Runs a packet filter change (a few short processes) off the async threads.
async fn blocking(
    f: impl FnOnce() -> Result<(), String> + Send + 'static,
) -> Result<(), RuntimeError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RuntimeError::Engine(e.to_string()))?
        .map_err(RuntimeError::Engine)
}
