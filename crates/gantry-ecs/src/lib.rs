//! The ECS API (clusters, task definitions, tasks, container instances, tags) and the server side of the agent
//! protocol. Handlers validate input, read the in-memory store, decide with pure functions (placement lives in
//! `gantry-scheduler`, resource accounting in `resources`) and write in one compare-and-swap transaction.
//! It knows nothing of Docker or HTTP: agents reach it through the `agent_*` methods (the server side of the
//! agent protocol).

mod agent_server;
mod attributes;
pub mod capacity_providers;
mod cleanup;
mod clusters;
mod container_instances;
mod error;
mod events;
pub mod fargate;
mod index;
mod keyed_lock;
mod keys;
pub mod load_balancing;
pub mod networking;
mod placement;
mod records;
mod refs;
mod repo;
mod resources;
mod services;
mod tags;
mod task_definitions;
mod task_interfaces;
mod tasks;
mod validate;

use std::sync::Arc;
use std::time::{Duration, Instant};

use gantry_aws::{AwsError, JsonService, RequestContext, ServiceFuture};
use gantry_store::Store;
use serde_json::Value;

pub use cleanup::STOPPED_TASK_RETENTION;
pub use error::EcsError;
pub use events::{EVENT_RETENTION, MAX_EVENTS_PER_REGION};
pub use records::TaskRecord;

use error::Result;
use repo::Repo;

#[derive(Debug, Clone)]
pub struct EcsConfig {
    pub account: String,
    /// The region agents register in (an agent's requests carry no SigV4 scope).
    pub region: String,
    /// An agent not heard from for this long counts as disconnected.
    pub agent_timeout: Duration,
}

impl Default for EcsConfig {
    fn default() -> Self {
        EcsConfig {
            account: "000000000000".into(),
            region: "us-east-1".into(),
            agent_timeout: Duration::from_secs(60),
        }
    }
}

/// The ECS API over a store.
pub struct EcsService<S> {
    repo: Repo<S>,
    config: EcsConfig,
    /// Placement reads what instances have left and then records its tasks in the index; one at a time so two
    /// calls cannot both take the last free resources. An async lock, so that a call waiting for its turn leaves
    /// its thread to other work (the index's own lock would block it). (One server: with several servers this
    /// becomes a lease.)
    placement: tokio::sync::Mutex<()>,
    /// A RunTask with a client token holds its token's lock until its tasks are committed, so that a retry finds
    /// them.
    client_tokens: keyed_lock::KeyedLocks,
    /// Instances and tasks of every cluster, as placement and the agent's poll read them.
    index: Arc<index::Index>,
    /// Wakes the service controller after a change it should act on.
    services_changed: tokio::sync::Notify,
    launch_backoff: services::backoff::LaunchBackoff,
    /// Services the controller found steady, and what it saw then (see `reconcile_service`).
    quiet_services: std::sync::Mutex<
        std::collections::HashMap<services::controller::QuietKey, services::controller::Quiet>,
    >,
    /// The load balancers services register their tasks with, once the binary has connected them.
    load_balancing: std::sync::RwLock<Option<Arc<dyn load_balancing::LoadBalancing>>>,
    /// The VPC awsvpc tasks take their interfaces from, once the binary has connected it.
    networking: std::sync::RwLock<Option<Arc<dyn networking::TaskNetworking>>>,
    /// Spreads awsvpc tasks over their subnets.
    subnet_turn: std::sync::atomic::AtomicUsize,
    /// Interfaces the last sweep found without a task (see `sweep_interfaces`).
    interface_suspects: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Rung when security groups or their members changed: every agent's poll looks again (an awsvpc task's
    /// firewall is part of its desired state).
    network_changed: tokio::sync::Notify,
}

impl<S: Store> EcsService<S> {
    pub fn new(store: Arc<S>, config: EcsConfig) -> Arc<Self> {
        let index = index::Index::attach(&*store);
        Arc::new(EcsService {
            index,
            repo: Repo { store },
            config,
            placement: tokio::sync::Mutex::new(()),
            client_tokens: Default::default(),
            services_changed: tokio::sync::Notify::new(),
            launch_backoff: Default::default(),
            quiet_services: Default::default(),
            load_balancing: Default::default(),
            networking: Default::default(),
            subnet_turn: Default::default(),
            interface_suspects: Default::default(),
            network_changed: tokio::sync::Notify::new(),
        })
    }

    /// Services with `loadBalancers` register their tasks through `lb` from now on.
    pub fn set_load_balancing(&self, lb: Arc<dyn load_balancing::LoadBalancing>) {
        *self
            .load_balancing
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(lb);
    }

    /// awsvpc tasks take their network interfaces from `net` from now on.
    pub fn set_networking(&self, net: Arc<dyn networking::TaskNetworking>) {
        *self.networking.write().unwrap_or_else(|p| p.into_inner()) = Some(net);
    }

    pub(crate) fn networking(&self) -> Option<Arc<dyn networking::TaskNetworking>> {
        self.networking
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn load_balancing(&self) -> Option<Arc<dyn load_balancing::LoadBalancing>> {
        self.load_balancing
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The regions that have services: the configured one and every one a service was created in.
    pub(crate) fn regions(&self) -> Vec<String> {
        let prefix = keys::regions();
        let mut regions: Vec<String> = self
            .repo
            .store
            .range(&prefix)
            .into_iter()
            .map(|kv| kv.key[prefix.len()..].to_string())
            .collect();
        if !regions.contains(&self.config.region) {
            regions.push(self.config.region.clone());
        }
        regions
    }

    /// Security groups, their rules or their members changed: agents learn their tasks' firewalls again.
    pub fn network_changed(&self) {
        self.network_changed.notify_waiters();
    }

    /// Tells the service controller to look again.
    pub(crate) fn wake_services(&self) {
        self.services_changed.notify_one();
    }

    pub(crate) fn mark_seen(&self, instance_arn: &str) {
        if let Ok((region, cluster, _)) = agent_server::instance_parts(instance_arn) {
            self.index.with(&region, &cluster, |c| {
                c.mark_seen(instance_arn, Instant::now())
            });
        }
    }

    /// When the instance's agent was last heard from by this server (`None`: not since it started).
    pub(crate) fn last_seen(&self, instance_arn: &str) -> Option<Instant> {
        let (region, cluster, _) = agent_server::instance_parts(instance_arn).ok()?;
        self.index
            .with(&region, &cluster, |c| c.last_seen(instance_arn))
    }

    pub(crate) fn is_connected(&self, instance_arn: &str) -> bool {
        self.last_seen(instance_arn)
            .is_some_and(|t| t.elapsed() < self.config.agent_timeout)
    }

    async fn dispatch(&self, ctx: &RequestContext, op: &str, body: &[u8]) -> Result<Value> {
        let scope = &ctx.scope;
        match op {
            "CreateCluster" => self.create_cluster(scope, body).await,
            "DescribeClusters" => self.describe_clusters(scope, body),
            "ListClusters" => self.list_clusters(scope, body),
            "DeleteCluster" => self.delete_cluster(scope, body).await,
            "UpdateClusterSettings" | "UpdateCluster" => self.update_cluster(scope, body).await,
            "PutClusterCapacityProviders" => self.put_cluster_capacity_providers(scope, body).await,
            "DescribeCapacityProviders" => self.describe_capacity_providers(scope, body),
            "RegisterTaskDefinition" => self.register_task_definition(scope, body).await,
            "DescribeTaskDefinition" => self.describe_task_definition(scope, body),
            "ListTaskDefinitions" => self.list_task_definitions(scope, body),
            "ListTaskDefinitionFamilies" => self.list_task_definition_families(scope, body),
            "DeregisterTaskDefinition" => self.deregister_task_definition(scope, body).await,
            "DeleteTaskDefinitions" => self.delete_task_definitions(scope, body).await,
            "RunTask" => self.run_task(scope, body).await,
            "StartTask" => self.start_task(scope, body).await,
            "StopTask" => self.stop_task(scope, body).await,
            "DescribeTasks" => self.describe_tasks(scope, body),
            "ListTasks" => self.list_tasks(scope, body),
            "DescribeContainerInstances" => self.describe_container_instances(scope, body),
            "ListContainerInstances" => self.list_container_instances(scope, body),
            "DeregisterContainerInstance" => self.deregister_container_instance(scope, body).await,
            "UpdateContainerInstancesState" => {
                self.update_container_instances_state(scope, body).await
            }
            "CreateService" => self.create_service(scope, body).await,
            "UpdateService" => self.update_service(scope, body).await,
            "DeleteService" => self.delete_service(scope, body).await,
            "DescribeServices" => self.describe_services(scope, body),
            "ListServices" => self.list_services(scope, body),
            "ListServiceDeployments" => self.list_service_deployments(scope, body),
            "DescribeServiceDeployments" => self.describe_service_deployments(scope, body),
            "PutAttributes" => self.put_attributes(scope, body).await,
            "ListAttributes" => self.list_attributes(scope, body),
            "DeleteAttributes" => self.delete_attributes(scope, body).await,
            "TagResource" => self.tag_resource(scope, body).await,
            "UntagResource" => self.untag_resource(scope, body).await,
            "ListTagsForResource" => self.list_tags_for_resource(scope, body),
            _ => Err(AwsError::unknown_operation(op).into()),
        }
    }
}

impl<S: Store> JsonService for EcsService<S> {
    fn target_prefix(&self) -> &'static str {
        "AmazonEC2ContainerServiceV20141113"
    }

    fn call<'a>(
        &'a self,
        ctx: &'a RequestContext,
        operation: &'a str,
        body: &'a [u8],
    ) -> ServiceFuture<'a> {
        Box::pin(async move {
            self.dispatch(ctx, operation, body)
                .await
                .map_err(AwsError::from)
        })
    }
}
