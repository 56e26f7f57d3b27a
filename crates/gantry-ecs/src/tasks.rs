//! RunTask, StartTask, StopTask, DescribeTasks, ListTasks.

use std::time::Instant;

use gantry_aws::{paginate, parse_input};
use gantry_model::ecs::{
    status, stop_code, AwsVpcConfiguration, Container, ContainerDefinition, Failure, KeyValuePair,
    NetworkConfiguration, PlacementConstraint, PlacementStrategy, Tag, TaskOverride, Unsupported,
};
use gantry_model::{new_id, time, Scope};
use gantry_scheduler::{
    plan, plan_daemon, plan_prepared, Candidate, Demand, PlacementRequest, Unplaced,
};
use gantry_store::{Store, Txn};
use rand::SeedableRng;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::clusters::WithoutNulls;
use crate::error::{invalid, reject_unsupported, EcsError, Result};
use crate::index::{ClusterIndex, TaskSummary};
use crate::networking::{self, SubnetFacts};
use crate::placement::Placement;
use crate::records::{TaskDefinitionRecord, TaskRecord};
use crate::repo::{encode, Versioned};
use crate::{keys, refs, tags, validate, EcsService};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RunTaskInput {
    cluster: Option<String>,
    count: Option<i64>,
    container_instances: Option<Vec<String>>,
    group: Option<String>,
    launch_type: Option<String>,
    overrides: Option<TaskOverride>,
    placement_constraints: Vec<PlacementConstraint>,
    placement_strategy: Vec<PlacementStrategy>,
    started_by: Option<String>,
    tags: Vec<Tag>,
    task_definition: Option<String>,
    #[serde(rename = "enableECSManagedTags", alias = "enableEcsManagedTags")]
    enable_ecs_managed_tags: bool,
    enable_execute_command: bool,
    propagate_tags: Option<String>,
    reference_id: Option<String>,
    client_token: Option<String>,
    network_configuration: Option<NetworkConfiguration>,
    capacity_provider_strategy: Option<Vec<gantry_model::ecs::CapacityProviderStrategyItem>>,
    platform_version: Option<String>,
    #[serde(flatten)]
    unsupported: Unsupported,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct StopTaskInput {
    cluster: Option<String>,
    task: Option<String>,
    reason: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct DescribeTasksInput {
    cluster: Option<String>,
    tasks: Option<Vec<String>>,
    include: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ListTasksInput {
    cluster: Option<String>,
    container_instance: Option<String>,
    family: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
    started_by: Option<String>,
    service_name: Option<String>,
    desired_status: Option<String>,
    launch_type: Option<String>,
}

/// The containers of a task definition with a RunTask `overrides` applied.
pub(crate) fn apply_overrides(
    defs: &[ContainerDefinition],
    overrides: &TaskOverride,
) -> Result<Vec<ContainerDefinition>> {
    reject_unsupported("overrides", &overrides.unsupported)?;
    let mut out = defs.to_vec();
    for o in &overrides.container_overrides {
        reject_unsupported("overrides.containerOverrides", &o.unsupported)?;
        let name = o.name.as_deref().unwrap_or("");
        let c = out.iter_mut().find(|c| c.name() == name).ok_or_else(|| {
            invalid(format!(
                "Override for container named {name} is not a container in the TaskDefinition."
            ))
        })?;
        if let Some(cmd) = &o.command {
            c.command = Some(cmd.clone());
        }
        for var in o.environment.iter().flatten() {
            match c.environment.iter_mut().find(|e| e.name == var.name) {
                Some(e) => e.value = var.value.clone(),
                None => c.environment.push(KeyValuePair {
                    name: var.name.clone(),
                    value: var.value.clone(),
                }),
            }
        }
        if let Some(cpu) = o.cpu {
            c.cpu = cpu;
        }
        if o.memory.is_some() {
            c.memory = o.memory;
        }
        if o.memory_reservation.is_some() {
            c.memory_reservation = o.memory_reservation;
        }
        if c.memory
            .zip(c.memory_reservation)
            .is_some_and(|(m, r)| r > m)
        {
            return Err(invalid(format!(
                "Container {name}: memoryReservation may not exceed memory"
            )));
        }
    }
    Ok(out)
}

/// What a task reserves on its instance: task-level sizes when given, otherwise the sum of its containers.
pub(crate) fn demand(
    containers: &[ContainerDefinition],
    network_mode: &str,
    task_cpu: Option<i64>,
    task_memory: Option<i64>,
) -> Demand {
    let cpu = task_cpu.unwrap_or_else(|| containers.iter().map(|c| c.cpu).sum());
    let memory = task_memory.unwrap_or_else(|| {
        containers
            .iter()
            .map(|c| c.memory.or(c.memory_reservation).unwrap_or(0))
            .sum()
    });
    let mut d = Demand {
        cpu,
        memory,
        ..Default::default()
    };
    // An awsvpc task's ports are on its own address, not the instance's.
    if network_mode == "none" || network_mode == "awsvpc" {
        return d;
    }
    for p in containers.iter().flat_map(|c| c.port_mappings.iter()) {
        let udp = p.protocol.as_deref() == Some("udp");
        let container_port = p.container_port.unwrap_or(0) as u16;
        match (network_mode, p.host_port) {
            ("host", _) => d.fixed_ports.push((container_port, udp)),
            (_, Some(hp)) if hp != 0 => d.fixed_ports.push((hp as u16, udp)),
            _ => d.dynamic_ports.push(udp),
        }
    }
    d
}

/// Writes the chosen host ports into the port mappings, in the order `demand` listed them.
fn assign_ports(containers: &mut [ContainerDefinition], network_mode: &str, dynamic: &[u16]) {
    let mut dynamic = dynamic.iter();
    for p in containers
        .iter_mut()
        .flat_map(|c| c.port_mappings.iter_mut())
    {
        match (network_mode, p.host_port) {
            ("none", _) => {}
            ("host" | "awsvpc", _) => p.host_port = p.container_port,
            (_, Some(hp)) if hp != 0 => {}
            _ => p.host_port = dynamic.next().map(|p| *p as i64),
        }
        if p.protocol.is_none() {
            p.protocol = Some("tcp".into());
        }
    }
}

pub(crate) const NO_INSTANCES: &str = "No Container Instances were found in your cluster.";

/// Task records made before placement at most; more are made while placing.
const PREMADE_TASKS: usize = 256;

/// Puts a task made by `unplaced_task` on `instance`, with the dynamic host ports placement chose.
fn put_on(record: &mut TaskRecord, instance: &Candidate, dynamic_ports: &[u16]) {
    assign_ports(&mut record.containers, &record.network_mode, dynamic_ports);
    record.task.container_instance_arn = Some(instance.id.clone());
    record.task.availability_zone = instance
        .facts
        .attribute("ecs.availability-zone")
        .cloned()
        .flatten();
}

/// What one placement call produced.
#[derive(Default)]
pub(crate) struct Placed {
    created: Vec<TaskRecord>,
    failures: Vec<Failure>,
    /// Records made before placement (see `unplaced_task`), used before any more are made.
    premade: Vec<TaskRecord>,
}

/// Where tasks may go.
pub(crate) enum Targets {
    /// `count` tasks anywhere in the cluster, by the placement strategies and constraints (RunTask, services).
    Cluster(usize),
    /// One task on each named instance, strategies and constraints aside (StartTask).
    Instances(Vec<String>),
    /// One task on every instance that satisfies the constraints and has none of the group (DAEMON services).
    Daemon,
}

/// Where awsvpc tasks take their interfaces: the configuration with its security groups filled in, and its
/// subnets.
#[derive(Debug, Clone)]
pub(crate) struct AwsVpc {
    pub(crate) config: AwsVpcConfiguration,
    pub(crate) subnets: Vec<SubnetFacts>,
}

impl AwsVpc {
    /// The configuration as a service keeps it (its security groups filled in).
    pub(crate) fn network_configuration(self) -> NetworkConfiguration {
        NetworkConfiguration {
            awsvpc_configuration: Some(self.config),
            ..Default::default()
        }
    }
}

/// A resolved, validated request to start tasks, shared by RunTask, StartTask and services.
pub(crate) struct Launch {
    pub(crate) cluster: String,
    pub(crate) definition: TaskDefinitionRecord,
    pub(crate) containers: Vec<ContainerDefinition>,
    pub(crate) overrides: TaskOverride,
    pub(crate) task_cpu: Option<i64>,
    pub(crate) task_memory: Option<i64>,
    pub(crate) group: String,
    pub(crate) started_by: Option<String>,
    pub(crate) tags: Vec<Tag>,
    pub(crate) client_token: Option<String>,
    pub(crate) placement: Placement,
    pub(crate) awsvpc: Option<AwsVpc>,
}

impl<S: Store> EcsService<S> {
    fn prepare_launch(&self, scope: &Scope, input: RunTaskInput) -> Result<Launch> {
        reject_unsupported("", &input.unsupported)?;
        let reference = gantry_aws::required(&input.task_definition, "taskDefinition")?;
        let cluster = refs::cluster_name(input.cluster.as_deref())?;
        match input.launch_type.as_deref() {
            None | Some("EC2") | Some("EXTERNAL") => {}
            Some("FARGATE") | Some("MANAGED_INSTANCES") => {
                return Err(EcsError::Unsupported("launchType FARGATE".into()))
            }
            Some(other) => return Err(invalid(format!("Invalid launchType: {other}"))),
        }
        if input.platform_version.is_some() {
            return Err(invalid(
                "The platform version must be null when specifying an EC2 launch type.",
            ));
        }
        if input.enable_execute_command {
            return Err(EcsError::Unsupported("enableExecuteCommand".into()));
        }
        if input.started_by.as_ref().is_some_and(|s| s.len() > 128) {
            return Err(invalid("startedBy may be at most 128 characters"));
        }
        if input
            .group
            .as_ref()
            .is_some_and(|g| g.is_empty() || g.len() > 255)
        {
            return Err(invalid("group must be between 1 and 255 characters"));
        }
        if input.client_token.as_ref().is_some_and(|t| t.len() > 64) {
            return Err(invalid("clientToken may be at most 64 characters"));
        }
        tags::validate(&input.tags)?;
        let found = self.find_cluster(scope, &cluster)?;
        let strategy = crate::capacity_providers::requested(
            &found.value,
            input.capacity_provider_strategy.as_deref(),
            input.launch_type.as_deref(),
        )?;
        if !strategy.is_empty() {
            return Err(crate::capacity_providers::unsupported(&strategy));
        }
        let definition = self.resolve_task_definition(scope, reference)?.value;
        let td = &definition.task_definition;
        if td.status != "ACTIVE" {
            return Err(EcsError::Client(format!(
                "TaskDefinition is inactive: {}",
                td.task_definition_arn
            )));
        }
        let placement = Placement::parse(
            &input.placement_strategy,
            &input.placement_constraints,
            &td.placement_constraints,
        )?;
        let awsvpc = self.awsvpc(
            &scope.region,
            input.network_configuration.as_ref(),
            td.network_mode(),
            false,
        )?;
        let overrides = input.overrides.unwrap_or_default();
        let containers = apply_overrides(&td.container_definitions, &overrides)?;
        let task_cpu_str = overrides.cpu.clone().or(td.cpu.clone());
        let task_memory_str = overrides.memory.clone().or(td.memory.clone());
        let task_cpu = match &task_cpu_str {
            Some(s) => Some(
                validate::parse_task_cpu(s)
                    .ok_or_else(|| invalid(format!("Invalid cpu override: {s}")))?,
            ),
            None => None,
        };
        let task_memory = match &task_memory_str {
            Some(s) => Some(
                validate::parse_task_memory(s)
                    .ok_or_else(|| invalid(format!("Invalid memory override: {s}")))?,
            ),
            None => None,
        };
        let mut tags = input.tags;
        match input.propagate_tags.as_deref() {
            None | Some("NONE") => {}
            Some("TASK_DEFINITION") => tags::merge(&mut tags, definition.tags.clone()),
            Some(other) => return Err(invalid(format!("Invalid propagateTags: {other}"))),
        }
        if input.enable_ecs_managed_tags {
            tags.push(Tag {
                key: Some("aws:ecs:clusterName".into()),
                value: Some(cluster.clone()),
            });
        }
        Ok(Launch {
            group: input
                .group
                .unwrap_or_else(|| format!("family:{}", td.family)),
            cluster,
            containers,
            overrides,
            task_cpu,
            task_memory,
            started_by: input.started_by,
            tags,
            client_token: input.client_token,
            placement,
            definition,
            awsvpc,
        })
    }

    /// The checked awsvpc configuration of tasks of a definition in `network_mode`, its subnets and groups found.
    pub(crate) fn awsvpc(
        &self,
        region: &str,
        given: Option<&NetworkConfiguration>,
        network_mode: &str,
        fargate: bool,
    ) -> Result<Option<AwsVpc>> {
        let Some(config) = networking::awsvpc_configuration(given, network_mode, fargate)? else {
            return Ok(None);
        };
        let net = self.networking().ok_or_else(|| {
            EcsError::Unsupported("networkMode awsvpc: this server has no VPC".into())
        })?;
        let (config, subnets) = networking::resolve(&*net, region, config)?;
        Ok(Some(AwsVpc { config, subnets }))
    }

    /// A task of `launch` with everything but where it runs: built before placement takes its lock.
    fn unplaced_task(&self, scope: &Scope, launch: &Launch) -> TaskRecord {
        let td = &launch.definition.task_definition;
        let id = new_id();
        let task_arn = scope.arn("ecs", &format!("task/{}/{id}", launch.cluster));
        let containers = launch.containers.clone();
        // Cpu and memory do not depend on the host ports placement will assign.
        let d = demand(
            &containers,
            td.network_mode(),
            launch.task_cpu,
            launch.task_memory,
        );
        let wire_containers = containers
            .iter()
            .map(|c| Container {
                container_arn: Some(scope.arn(
                    "ecs",
                    &format!("container/{}/{id}/{}", launch.cluster, new_id()),
                )),
                task_arn: Some(task_arn.clone()),
                name: c.name.clone(),
                image: c.image.clone(),
                last_status: Some(status::PENDING.into()),
                health_status: c.health_check.as_ref().map(|_| "UNKNOWN".into()),
                cpu: Some(c.cpu.to_string()),
                memory: c.memory.map(|m| m.to_string()),
                memory_reservation: c.memory_reservation.map(|m| m.to_string()),
                ..Default::default()
            })
            .collect();
        let task = gantry_model::ecs::Task {
            task_arn,
            cluster_arn: scope.arn("ecs", &format!("cluster/{}", launch.cluster)),
            task_definition_arn: td.task_definition_arn.clone(),
            containers: wire_containers,
            cpu: launch.task_cpu.map(|c| c.to_string()),
            memory: launch.task_memory.map(|m| m.to_string()),
            created_at: Some(time::now()),
            desired_status: status::RUNNING.into(),
            last_status: status::PENDING.into(),
            group: Some(launch.group.clone()),
            health_status: Some("UNKNOWN".into()),
            launch_type: Some("EC2".into()),
            overrides: launch.overrides.clone(),
            started_by: launch.started_by.clone(),
            tags: launch.tags.clone(),
            version: 1,
            ..Default::default()
        };
        TaskRecord {
            task,
            family: td.family.clone(),
            revision: td.revision,
            network_mode: td.network_mode().to_string(),
            pid_mode: td.pid_mode.clone(),
            ipc_mode: td.ipc_mode.clone(),
            network: None,
            containers,
            volumes: td.volumes.clone(),
            reserved_cpu: d.cpu,
            reserved_memory: d.memory,
            client_token: launch.client_token.clone(),
            draining: false,
        }
    }

    /// Places and stores tasks, answering as RunTask does.
    async fn launch(&self, scope: &Scope, launch: Launch, targets: Targets) -> Result<Value> {
        let (created, failures) = self.place_tasks(scope, &launch, targets).await?;
        let tasks: Vec<Value> = created
            .iter()
            .map(|r| gantry_model::json::to_value(&r.task))
            .collect();
        // Built in place: `json!` would copy every task's JSON once more.
        let mut out = serde_json::Map::new();
        out.insert("tasks".into(), Value::Array(tasks));
        out.insert("failures".into(), gantry_model::json::to_value(&failures));
        Ok(Value::Object(out))
    }

    /// Turns placement results into task records, recorded in the index at once. `positions` maps the planned
    /// candidates to the index's.
    fn record_placements(
        &self,
        scope: &Scope,
        launch: &Launch,
        index: &mut ClusterIndex,
        position: impl Fn(usize) -> usize,
        results: Vec<std::result::Result<gantry_scheduler::Placement, Unplaced>>,
        placed: &mut Placed,
    ) {
        for result in results {
            match result {
                Ok(p) => {
                    let instance = index.candidate(position(p.candidate));
                    let mut record = placed
                        .premade
                        .pop()
                        .unwrap_or_else(|| self.unplaced_task(scope, launch));
                    put_on(&mut record, instance, &p.dynamic_ports);
                    index.put_placed_task(record.task.id(), TaskSummary::of(&record));
                    placed.created.push(record);
                }
                Err(u) => {
                    let arn = u
                        .candidate
                        .map(|i| index.candidate(position(i)).id.clone())
                        .unwrap_or_default();
                    placed.failures.push(Failure::new(arn, u.reason()));
                }
            }
        }
    }

    /// Places and stores tasks. A retried RunTask with the same client token gets the tasks of the first.
    /// Placement works on the cluster's index in place and records the tasks there before committing them, so
    /// the next placement sees them even before the commit returns.
    pub(crate) async fn place_tasks(
        &self,
        scope: &Scope,
        launch: &Launch,
        targets: Targets,
    ) -> Result<(Vec<TaskRecord>, Vec<Failure>)> {
        let (region, cluster) = (scope.region.as_str(), launch.cluster.as_str());
        // The records are made before any lock is taken (ids, ARNs, containers); placement only says where. Not
        // too many: a service's tasks that do not fit would be made on every pass for nothing.
        let expected = match &targets {
            Targets::Cluster(count) => *count,
            Targets::Instances(names) => names.len(),
            Targets::Daemon => 0,
        }
        .min(PREMADE_TASKS);
        let premade: Vec<TaskRecord> = (0..expected)
            .map(|_| self.unplaced_task(scope, launch))
            .collect();
        let _token = match &launch.client_token {
            Some(token) => Some(
                self.client_tokens
                    .lock(&format!("{region}/{cluster}/{token}"))
                    .await,
            ),
            None => None,
        };
        let placing = self.placement.lock().await;
        if let Some(token) = &launch.client_token {
            let earlier: Vec<TaskRecord> = self
                .index
                .with(region, cluster, |c| c.tasks_with_token(token))
                .iter()
                .filter_map(|id| {
                    self.repo
                        .get::<TaskRecord>(&keys::task(region, cluster, id))
                })
                .map(|t| t.value)
                .collect();
            if !earlier.is_empty() {
                return Ok((earlier, Vec::new()));
            }
        }
        let td = &launch.definition.task_definition;
        let mut demand = demand(
            &launch.containers,
            td.network_mode(),
            launch.task_cpu,
            launch.task_memory,
        );
        demand.required_attributes = td
            .requires_attributes
            .iter()
            .map(|a| (a.name.clone(), a.value.clone()))
            .collect();
        let request = PlacementRequest {
            group: launch.group.clone(),
            demand,
            strategies: launch.placement.strategies.clone(),
            constraints: launch.placement.constraints.clone(),
        };
        let mut rng = rand::rngs::StdRng::from_entropy();
        let (now, timeout) = (Instant::now(), self.config.agent_timeout);
        let placed = {
            self.index.with(region, cluster, |index| {
                let mut placed = Placed {
                    premade,
                    ..Default::default()
                };
                match targets {
                    Targets::Cluster(_) | Targets::Daemon if !index.any_active() => {
                        return Err(invalid(NO_INSTANCES));
                    }
                    Targets::Cluster(count) => {
                        let (all, prepared) = index.prepare(&request, now, timeout);
                        let results = plan_prepared(all, &request, count, &mut rng, prepared);
                        self.record_placements(scope, launch, index, |i| i, results, &mut placed);
                    }
                    Targets::Daemon => {
                        // Only instances that take tasks are considered; the others are no failure.
                        let (all, _) = index.prepare(&request, now, timeout);
                        let chosen: Vec<usize> = (0..all.len())
                            .filter(|&i| all[i].facts.agent_connected)
                            .collect();
                        let mut copies: Vec<Candidate> =
                            chosen.iter().map(|&i| all[i].clone()).collect();
                        let results = plan_daemon(&mut copies, &request, &mut rng);
                        self.record_placements(
                            scope,
                            launch,
                            index,
                            |i| chosen[i],
                            results,
                            &mut placed,
                        );
                    }
                    Targets::Instances(names) => {
                        // StartTask bypasses strategies and constraints; resources and ports still have to fit.
                        let request = PlacementRequest {
                            strategies: Vec::new(),
                            constraints: Vec::new(),
                            ..request
                        };
                        for name in names {
                            let arn = refs::member_id(&name, "container-instance", cluster)
                                .filter(|(c, _)| c == cluster)
                                .map(|(c, id)| {
                                    scope.arn("ecs", &format!("container-instance/{c}/{id}"))
                                });
                            match arn.as_deref().and_then(|a| index.position(a)) {
                                Some(i) if index.is_active(i) => {
                                    let mut one =
                                        [index.prepare(&request, now, timeout).0[i].clone()];
                                    let results = plan(&mut one, &request, 1, &mut rng);
                                    self.record_placements(
                                        scope,
                                        launch,
                                        index,
                                        |_| i,
                                        results,
                                        &mut placed,
                                    );
                                }
                                Some(i) => placed
                                    .failures
                                    .push(Failure::new(&index.candidate(i).id, "INACTIVE")),
                                None => placed.failures.push(Failure::missing(name)),
                            }
                        }
                    }
                }
                Ok(placed)
            })
        };
        let Placed {
            mut created,
            mut failures,
            ..
        } = placed?;
        if let Some(vpc) = &launch.awsvpc {
            created = self
                .attach_interfaces(scope, cluster, vpc, created, &mut failures)
                .await;
        }
        // The index holds the new tasks already, so the next placement may go on while these commit (and their
        // commits share a disk sync). A client token's lock is kept: a retry must find these tasks in the store.
        drop(placing);
        let mut txn = Txn::new();
        for r in &created {
            txn = txn.put(keys::task(region, cluster, r.task.id()), encode(r));
        }
        if !created.is_empty() {
            if let Err(e) = self.repo.commit(txn).await {
                // Nothing was written: take the tasks back out of the index.
                self.index.with(region, cluster, |index| {
                    for r in &created {
                        index.put_task(r.task.id(), None);
                    }
                });
                for r in &created {
                    self.release_interface(region, r).await;
                }
                return Err(e);
            }
        }
        Ok((created, failures))
    }

    pub(crate) async fn run_task(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let mut input: RunTaskInput = parse_input(body)?;
        if input.container_instances.is_some() {
            return Err(invalid("Unknown parameter containerInstances for RunTask"));
        }
        input.reference_id = None;
        let count = input.count.unwrap_or(1);
        if !(1..=10).contains(&count) {
            return Err(invalid("count must be between 1 and 10"));
        }
        let launch = self.prepare_launch(scope, input)?;
        self.launch(scope, launch, Targets::Cluster(count as usize))
            .await
    }

    pub(crate) async fn start_task(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let mut input: RunTaskInput = parse_input(body)?;
        let targets = input.container_instances.take().unwrap_or_default();
        if targets.is_empty() || targets.len() > 10 {
            return Err(invalid(
                "containerInstances must list between 1 and 10 container instances",
            ));
        }
        if input.count.is_some() {
            return Err(invalid("Unknown parameter count for StartTask"));
        }
        input.reference_id = None;
        if !input.placement_constraints.is_empty() || !input.placement_strategy.is_empty() {
            return Err(invalid(
                "StartTask places tasks on the named container instances: placementConstraints and placementStrategy are not parameters of StartTask",
            ));
        }
        let launch = self.prepare_launch(scope, input)?;
        self.launch(scope, launch, Targets::Instances(targets))
            .await
    }

    pub(crate) fn find_task(
        &self,
        scope: &Scope,
        cluster: &str,
        reference: &str,
    ) -> Option<Versioned<TaskRecord>> {
        let (c, id) = refs::member_id(reference, "task", cluster)?;
        if c != cluster {
            return None;
        }
        self.repo.get(&keys::task(&scope.region, cluster, &id))
    }

    pub(crate) async fn stop_task(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let input: StopTaskInput = parse_input(body)?;
        let reference = gantry_aws::required(&input.task, "task")?;
        if input.reason.as_ref().is_some_and(|r| r.len() > 255) {
            return Err(invalid("reason may be at most 255 characters"));
        }
        let cluster = refs::cluster_name(input.cluster.as_deref())?;
        self.find_cluster(scope, &cluster)?;
        loop {
            let current = self
                .find_task(scope, &cluster, reference)
                .ok_or_else(|| invalid("The referenced task was not found."))?;
            let mut record = current.value.clone();
            if record.task.desired_status == status::STOPPED {
                return Ok(json!({ "task": gantry_model::json::to_value(&record.task) }));
            }
            request_stop(
                &mut record,
                stop_code::USER_INITIATED,
                input.reason.as_deref().unwrap_or("Task stopped by user"),
            );
            // A service task a load balancer sends to is drained first, as ECS does.
            if self.sent_traffic(&scope.region, &cluster, &record) {
                crate::services::start_draining(&mut record);
                self.wake_services();
            }
            let key = keys::task(&scope.region, &cluster, record.task.id());
            if self
                .repo
                .commit(
                    Txn::new()
                        .compare(current.unchanged())
                        .put(key, encode(&record)),
                )
                .await?
            {
                return Ok(json!({ "task": gantry_model::json::to_value(&record.task) }));
            }
        }
    }

    pub(crate) fn describe_tasks(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let input: DescribeTasksInput = parse_input(body)?;
        let references = input.tasks.unwrap_or_default();
        if references.is_empty() || references.len() > 100 {
            return Err(invalid("tasks must list between 1 and 100 tasks"));
        }
        let cluster = refs::cluster_name(input.cluster.as_deref())?;
        self.find_cluster(scope, &cluster)?;
        let with_tags = input.include.iter().any(|i| i == "TAGS");
        let (mut tasks, mut failures) = (Vec::new(), Vec::new());
        for reference in &references {
            match self.find_task(scope, &cluster, reference) {
                Some(t) => {
                    let mut task = t.value.task;
                    if !with_tags {
                        task.tags.clear();
                    }
                    tasks.push(gantry_model::json::to_value(&task));
                }
                None => failures.push(Failure::missing(if reference.starts_with("arn:") {
                    reference.clone()
                } else {
                    scope.arn("ecs", &format!("task/{cluster}/{reference}"))
                })),
            }
        }
        // Built in place: `json!` would copy every task's JSON once more.
        let mut out = serde_json::Map::new();
        out.insert("tasks".into(), Value::Array(tasks));
        out.insert("failures".into(), gantry_model::json::to_value(&failures));
        Ok(Value::Object(out))
    }

    pub(crate) fn list_tasks(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let input: ListTasksInput = parse_input(body)?;
        let cluster = refs::cluster_name(input.cluster.as_deref())?;
        self.find_cluster(scope, &cluster)?;
        let desired = input.desired_status.as_deref().unwrap_or(status::RUNNING);
        if ![status::RUNNING, status::PENDING, status::STOPPED].contains(&desired) {
            return Err(invalid(format!("Invalid desiredStatus: {desired}")));
        }
        // A service's tasks are those of its group.
        let group = match &input.service_name {
            Some(s) => {
                let name = crate::services::api::service_name_of(s)?;
                self.find_service(scope, &cluster, &name)
                    .ok_or(EcsError::ServiceNotFound)?;
                Some(format!("service:{name}"))
            }
            None => None,
        };
        let instance_arn = match &input.container_instance {
            Some(r) => Some(
                refs::member_id(r, "container-instance", &cluster)
                    .map(|(c, id)| scope.arn("ecs", &format!("container-instance/{c}/{id}")))
                    .ok_or_else(|| invalid(format!("Invalid containerInstance: {r}")))?,
            ),
            None => None,
        };
        let mut tasks: Vec<TaskRecord> = self
            .cluster_tasks(&scope.region, &cluster)
            .into_iter()
            .map(|t| t.value)
            .filter(|t| match desired {
                // PENDING lists tasks whose desired status is RUNNING but that are not running yet.
                status::PENDING => {
                    t.task.desired_status == status::RUNNING
                        && crate::resources::is_pending(&t.task.last_status)
                }
                d => t.task.desired_status == d,
            })
            .filter(|t| input.family.as_ref().is_none_or(|f| &t.family == f))
            .filter(|t| group.is_none() || t.task.group == group)
            .filter(|t| {
                input
                    .started_by
                    .as_ref()
                    .is_none_or(|s| t.task.started_by.as_ref() == Some(s))
            })
            .filter(|t| {
                instance_arn
                    .as_ref()
                    .is_none_or(|a| t.task.container_instance_arn.as_ref() == Some(a))
            })
            .filter(|t| {
                input
                    .launch_type
                    .as_ref()
                    .is_none_or(|l| t.task.launch_type.as_ref() == Some(l))
            })
            .collect();
        tasks.sort_by(|a, b| {
            a.task
                .created_at
                .partial_cmp(&b.task.created_at)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let arns: Vec<String> = tasks.into_iter().map(|t| t.task.task_arn).collect();
        let page = paginate(
            arns,
            input.next_token.as_deref(),
            input.max_results,
            100,
            100,
        )?;
        Ok(json!({ "taskArns": page.items, "nextToken": page.next_token }).without_nulls())
    }
}

/// Marks a task to stop: the agent sees the desired status change and stops its containers.
pub(crate) fn request_stop(record: &mut TaskRecord, code: &str, reason: &str) {
    let t = &mut record.task;
    t.desired_status = status::STOPPED.into();
    t.stopping_at.get_or_insert(time::now());
    t.stop_code.get_or_insert_with(|| code.to_string());
    t.stopped_reason.get_or_insert_with(|| reason.to_string());
    t.version += 1;
}

#[cfg(test)]
mod tests {
    use gantry_model::ecs::{ContainerOverride, PortMapping};

    use super::*;

    fn c(name: &str, ports: Vec<(i64, Option<i64>)>) -> ContainerDefinition {
        ContainerDefinition {
            name: Some(name.into()),
            cpu: 128,
            memory: Some(100),
            port_mappings: ports
                .into_iter()
                .map(|(cp, hp)| PortMapping {
                    container_port: Some(cp),
                    host_port: hp,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn demand_sums_containers_unless_task_sizes_are_given() {
        let cs = [
            c("a", vec![(80, Some(0)), (443, Some(8443))]),
            c("b", vec![(81, None)]),
        ];
        let d = demand(&cs, "bridge", None, None);
        assert_eq!((d.cpu, d.memory), (256, 200));
        assert_eq!(d.fixed_ports, vec![(8443, false)]);
        assert_eq!(d.dynamic_ports.len(), 2);
        let d = demand(&cs, "host", Some(1024), Some(2048));
        assert_eq!((d.cpu, d.memory), (1024, 2048));
        assert_eq!(d.fixed_ports.len(), 3);
        assert!(demand(&cs, "none", None, None).fixed_ports.is_empty());
    }

    #[test]
    fn ports_are_assigned_in_demand_order() {
        let mut cs = vec![
            c("a", vec![(80, Some(0)), (443, Some(8443))]),
            c("b", vec![(81, None)]),
        ];
        assign_ports(&mut cs, "bridge", &[50000, 50001]);
        assert_eq!(cs[0].port_mappings[0].host_port, Some(50000));
        assert_eq!(cs[0].port_mappings[1].host_port, Some(8443));
        assert_eq!(cs[1].port_mappings[0].host_port, Some(50001));
    }

    #[test]
    fn overrides_replace_and_merge() {
        let mut base = c("a", vec![]);
        base.environment = vec![KeyValuePair {
            name: Some("A".into()),
            value: Some("1".into()),
        }];
        let o = TaskOverride {
            container_overrides: vec![ContainerOverride {
                name: Some("a".into()),
                command: Some(vec!["x".into()]),
                environment: Some(vec![
                    KeyValuePair {
                        name: Some("A".into()),
                        value: Some("2".into()),
                    },
                    KeyValuePair {
                        name: Some("B".into()),
                        value: Some("3".into()),
                    },
                ]),
                memory: Some(300),
                ..Default::default()
            }],
            ..Default::default()
        };
        let out = apply_overrides(&[base.clone()], &o).unwrap();
        assert_eq!(out[0].command, Some(vec!["x".to_string()]));
        assert_eq!(out[0].environment.len(), 2);
        assert_eq!(out[0].environment[0].value.as_deref(), Some("2"));
        assert_eq!(out[0].memory, Some(300));
        let bad = TaskOverride {
            container_overrides: vec![ContainerOverride {
                name: Some("nope".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(apply_overrides(&[base], &bad).is_err());
    }
}
