//! CreateService, UpdateService, DeleteService, DescribeServices, ListServices, ListServiceDeployments,
//! DescribeServiceDeployments. The handlers only record what is wanted; the service controller
//! (`services::controller`) starts and stops the tasks.

use std::collections::HashMap;

use gantry_aws::{paginate, parse_input};
use gantry_model::ecs::{
    deployment_status, rollout_state, service_status, DeploymentConfiguration,
    DeploymentController, Failure, NetworkConfiguration, PlacementConstraint, PlacementStrategy,
    Service, Tag, Unsupported,
};
use gantry_model::{time, Scope};
use gantry_store::{Compare, Store, Txn};
use serde::Deserialize;
use serde_json::{json, Value};

use super::record::{
    new_deployment_id, service_deployment_status, DeploymentRecord, ServiceRecord, TaskCounts,
};
use super::validate;
use crate::clusters::WithoutNulls;
use crate::error::{invalid, reject_unsupported, EcsError, Result};
use crate::repo::{encode, Versioned};
use crate::{keys, refs, tags, EcsService};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct CreateServiceInput {
    cluster: Option<String>,
    service_name: Option<String>,
    task_definition: Option<String>,
    desired_count: Option<i64>,
    client_token: Option<String>,
    launch_type: Option<String>,
    deployment_configuration: Option<DeploymentConfiguration>,
    placement_constraints: Vec<PlacementConstraint>,
    placement_strategy: Vec<PlacementStrategy>,
    health_check_grace_period_seconds: Option<i64>,
    scheduling_strategy: Option<String>,
    deployment_controller: Option<DeploymentController>,
    tags: Vec<Tag>,
    #[serde(rename = "enableECSManagedTags", alias = "enableEcsManagedTags")]
    enable_ecs_managed_tags: bool,
    propagate_tags: Option<String>,
    enable_execute_command: bool,
    load_balancers: Vec<gantry_model::ecs::LoadBalancer>,
    network_configuration: Option<NetworkConfiguration>,
    // Accepted when empty: Terraform and the SDKs send empty lists.
    service_registries: Vec<Value>,
    capacity_provider_strategy: Vec<gantry_model::ecs::CapacityProviderStrategyItem>,
    #[serde(flatten)]
    unsupported: Unsupported,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct UpdateServiceInput {
    cluster: Option<String>,
    service: Option<String>,
    desired_count: Option<i64>,
    task_definition: Option<String>,
    deployment_configuration: Option<DeploymentConfiguration>,
    placement_constraints: Option<Vec<PlacementConstraint>>,
    placement_strategy: Option<Vec<PlacementStrategy>>,
    force_new_deployment: bool,
    health_check_grace_period_seconds: Option<i64>,
    enable_execute_command: Option<bool>,
    #[serde(rename = "enableECSManagedTags", alias = "enableEcsManagedTags")]
    enable_ecs_managed_tags: Option<bool>,
    propagate_tags: Option<String>,
    load_balancers: Option<Vec<gantry_model::ecs::LoadBalancer>>,
    network_configuration: Option<NetworkConfiguration>,
    service_registries: Option<Vec<Value>>,
    capacity_provider_strategy: Option<Vec<Value>>,
    #[serde(flatten)]
    unsupported: Unsupported,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct DeleteServiceInput {
    cluster: Option<String>,
    service: Option<String>,
    force: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct DescribeServicesInput {
    cluster: Option<String>,
    services: Option<Vec<String>>,
    include: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ListServicesInput {
    cluster: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
    launch_type: Option<String>,
    scheduling_strategy: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct CreatedAtFilter {
    before: Option<f64>,
    after: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ListServiceDeploymentsInput {
    service: Option<String>,
    cluster: Option<String>,
    status: Vec<String>,
    created_at: Option<CreatedAtFilter>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct DescribeServiceDeploymentsInput {
    service_deployment_arns: Option<Vec<String>>,
}

/// Running and pending task counts per deployment id.
pub(crate) struct DeploymentCounts(HashMap<String, TaskCounts>);

impl DeploymentCounts {
    pub(crate) fn of(&self, deployment_id: &str) -> TaskCounts {
        self.0.get(deployment_id).copied().unwrap_or_default()
    }
}

/// The service name from a name or a service ARN (`service/{cluster}/{name}` or the old `service/{name}`).
pub(crate) fn service_name_of(reference: &str) -> Result<String> {
    let name = if reference.starts_with("arn:") {
        let arn = gantry_model::Arn::parse(reference)
            .ok_or_else(|| invalid(format!("Invalid service ARN: {reference}")))?;
        let rest = arn
            .resource
            .strip_prefix("service/")
            .ok_or_else(|| invalid(format!("Invalid service ARN: {reference}")))?;
        rest.rsplit('/').next().unwrap_or(rest).to_string()
    } else {
        reference.to_string()
    };
    validate::service_name(&name)?;
    Ok(name)
}

fn reject_non_empty(name: &str, list: &[Value]) -> Result<()> {
    if list.is_empty() {
        Ok(())
    } else {
        Err(EcsError::Unsupported(name.to_string()))
    }
}

impl<S: Store> EcsService<S> {
    pub(crate) fn find_service(
        &self,
        scope: &Scope,
        cluster: &str,
        name: &str,
    ) -> Option<Versioned<ServiceRecord>> {
        self.repo.get(&keys::service(&scope.region, cluster, name))
    }

    /// Running and pending counts per deployment id of the cluster's service tasks.
    /// Running and pending tasks per deployment of one service, from the index's summaries of the service's task
    /// group (no task record is read).
    pub(crate) fn deployment_counts(
        &self,
        region: &str,
        cluster: &str,
        service: &str,
    ) -> DeploymentCounts {
        let tasks = self.index.with(region, cluster, |c| {
            c.group_summaries(&format!("service:{service}"))
        });
        let mut counts: HashMap<String, TaskCounts> = HashMap::new();
        for (_, t) in tasks.iter() {
            let Some(by) = t
                .started_by
                .as_deref()
                .filter(|s| s.starts_with("ecs-svc/"))
            else {
                continue;
            };
            let c = counts.entry(by.to_string()).or_default();
            if t.running {
                c.running += 1;
            } else if t.holds && !t.stopping {
                c.pending += 1;
            }
        }
        DeploymentCounts(counts)
    }

    /// `{"service": ...}` with the service's current task counts, as Create/Update/DeleteService answer.
    fn service_response(&self, region: &str, cluster: &str, record: &ServiceRecord) -> Value {
        let counts = self.deployment_counts(region, cluster, &record.service.service_name);
        let service = record.to_wire(|id| counts.of(id));
        json!({ "service": gantry_model::json::to_value(&service) })
    }

    pub(crate) async fn create_service(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let input: CreateServiceInput = parse_input(body)?;
        reject_unsupported("", &input.unsupported)?;
        reject_non_empty("serviceRegistries", &input.service_registries)?;
        let name = gantry_aws::required(&input.service_name, "serviceName")?.to_string();
        validate::service_name(&name)?;
        let cluster = refs::cluster_name(input.cluster.as_deref())?;
        let scheduling = validate::scheduling_strategy(input.scheduling_strategy.as_deref())?;
        validate::launch_type(input.launch_type.as_deref())?;
        match input
            .deployment_controller
            .as_ref()
            .and_then(|c| c.kind.as_deref())
        {
            None | Some("ECS") => {}
            Some(other) => {
                return Err(EcsError::Unsupported(format!(
                    "deploymentController type {other}"
                )))
            }
        }
        if input.enable_execute_command {
            return Err(EcsError::Unsupported("enableExecuteCommand".into()));
        }
        validate::desired_count(input.desired_count)?;
        let desired = match (scheduling, input.desired_count) {
            (validate::DAEMON, Some(_)) => {
                return Err(invalid(
                    "The desiredCount parameter is not valid for a service with the DAEMON scheduling strategy.",
                ))
            }
            (validate::DAEMON, None) => 0,
            (_, Some(c)) => c,
            (_, None) => {
                return Err(invalid(
                    "desiredCount is required for a service with the REPLICA scheduling strategy",
                ))
            }
        };
        let deployment_configuration =
            validate::deployment_configuration(input.deployment_configuration, scheduling)?;
        validate::placement(
            &input.placement_strategy,
            &input.placement_constraints,
            scheduling,
        )?;
        validate::grace_period(input.health_check_grace_period_seconds)?;
        match input.propagate_tags.as_deref() {
            None | Some("NONE" | "SERVICE" | "TASK_DEFINITION") => {}
            Some(other) => return Err(invalid(format!("Invalid propagateTags: {other}"))),
        }
        if input.client_token.as_ref().is_some_and(|t| t.len() > 36) {
            return Err(invalid("clientToken may be at most 36 characters"));
        }
        tags::validate(&input.tags)?;
        let found = self.find_cluster(scope, &cluster)?;
        let strategy = crate::capacity_providers::requested(
            &found.value,
            Some(&input.capacity_provider_strategy),
            input.launch_type.as_deref(),
        )?;
        if !strategy.is_empty() {
            return Err(crate::capacity_providers::unsupported(&strategy));
        }
        let reference = gantry_aws::required(&input.task_definition, "taskDefinition")?;
        let definition = self.resolve_task_definition(scope, reference)?.value;
        let td = &definition.task_definition;
        if td.status != "ACTIVE" {
            return Err(EcsError::Client(format!(
                "TaskDefinition is inactive: {}",
                td.task_definition_arn
            )));
        }
        super::load_balancers::validate(
            self.load_balancing().as_deref(),
            &scope.region,
            &input.load_balancers,
            td,
        )?;
        let network_configuration = self
            .awsvpc(
                &scope.region,
                input.network_configuration.as_ref(),
                td.network_mode(),
                false,
            )?
            .map(|a| a.network_configuration());
        let now = time::now();
        let key = keys::service(&scope.region, &cluster, &name);
        let existing = self.repo.get::<ServiceRecord>(&key);
        if let Some(e) = &existing {
            if e.value.service.status != service_status::INACTIVE {
                let same_token =
                    input.client_token.is_some() && e.value.client_token == input.client_token;
                if same_token {
                    return Ok(self.service_response(&scope.region, &cluster, &e.value));
                }
                return Err(invalid("Creation of service was not idempotent."));
            }
        }
        let deployment = DeploymentRecord {
            id: new_deployment_id(),
            status: deployment_status::PRIMARY.into(),
            task_definition: td.task_definition_arn.clone(),
            created_at: now,
            updated_at: now,
            rollout_state: rollout_state::IN_PROGRESS.into(),
            rollout_state_reason: Some("ECS deployment ecs-svc in progress.".into()),
            service_deployment_status: service_deployment_status::PENDING.into(),
            deployment_configuration: deployment_configuration.clone(),
            ..Default::default()
        };
        let service = Service {
            service_arn: scope.arn("ecs", &format!("service/{cluster}/{name}")),
            service_name: name.clone(),
            cluster_arn: scope.arn("ecs", &format!("cluster/{cluster}")),
            status: service_status::ACTIVE.into(),
            desired_count: desired,
            launch_type: Some(input.launch_type.unwrap_or_else(|| "EC2".into())),
            task_definition: Some(td.task_definition_arn.clone()),
            deployment_configuration: Some(deployment_configuration),
            network_configuration,
            created_at: Some(now),
            placement_constraints: input.placement_constraints,
            placement_strategy: input.placement_strategy,
            load_balancers: input.load_balancers,
            health_check_grace_period_seconds: input.health_check_grace_period_seconds,
            scheduling_strategy: Some(scheduling.into()),
            deployment_controller: Some(DeploymentController {
                kind: Some("ECS".into()),
            }),
            tags: input.tags,
            created_by: Some(format!("arn:aws:iam::{}:root", scope.account)),
            enable_ecs_managed_tags: input.enable_ecs_managed_tags,
            propagate_tags: Some(input.propagate_tags.unwrap_or_else(|| "NONE".into())),
            ..Default::default()
        };
        let mut record = ServiceRecord {
            service,
            deployments: vec![deployment],
            client_token: input.client_token,
        };
        record.service.current_service_deployment =
            Some(record.deployment_arn(&record.deployments[0]));
        let guard = match &existing {
            Some(e) => e.unchanged(),
            None => Compare::absent(key.clone()),
        };
        let txn = Txn::new()
            .compare(guard)
            .put(key, encode(&record))
            .put(keys::region(&scope.region), Vec::new());
        if !self.repo.commit(txn).await? {
            return Err(invalid("Creation of service was not idempotent."));
        }
        self.wake_services();
        let service = record.to_wire(|_| TaskCounts::default());
        Ok(json!({ "service": gantry_model::json::to_value(&service) }))
    }

    pub(crate) async fn update_service(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let input: UpdateServiceInput = parse_input(body)?;
        reject_unsupported("", &input.unsupported)?;
        for (name, list) in [
            ("serviceRegistries", &input.service_registries),
            (
                "capacityProviderStrategy",
                &input.capacity_provider_strategy,
            ),
        ] {
            reject_non_empty(name, list.as_deref().unwrap_or_default())?;
        }
        if input.enable_execute_command == Some(true) {
            return Err(EcsError::Unsupported("enableExecuteCommand".into()));
        }
        let name = service_name_of(gantry_aws::required(&input.service, "service")?)?;
        let cluster = refs::cluster_name(input.cluster.as_deref())?;
        validate::desired_count(input.desired_count)?;
        validate::grace_period(input.health_check_grace_period_seconds)?;
        self.find_cluster(scope, &cluster)?;
        let new_definition = match &input.task_definition {
            Some(reference) => {
                let d = self.resolve_task_definition(scope, reference)?.value;
                if d.task_definition.status != "ACTIVE" {
                    return Err(EcsError::Client(format!(
                        "TaskDefinition is inactive: {}",
                        d.task_definition.task_definition_arn
                    )));
                }
                Some(d.task_definition)
            }
            None => None,
        };
        loop {
            let current = self
                .find_service(scope, &cluster, &name)
                .filter(|s| s.value.service.status != service_status::INACTIVE)
                .ok_or(EcsError::ServiceNotFound)?;
            if current.value.service.status != service_status::ACTIVE {
                return Err(EcsError::ServiceNotActive);
            }
            let mut record = current.value.clone();
            let scheduling = record
                .service
                .scheduling_strategy
                .clone()
                .unwrap_or_else(|| validate::REPLICA.into());
            if scheduling == validate::DAEMON && input.desired_count.is_some() {
                return Err(invalid(
                    "The desiredCount parameter is not valid for a service with the DAEMON scheduling strategy.",
                ));
            }
            let mut new_deployment = input.force_new_deployment;
            if let Some(c) = input.desired_count {
                record.service.desired_count = c;
            }
            if let Some(config) = input.deployment_configuration.clone() {
                record.service.deployment_configuration = Some(validate::deployment_configuration(
                    Some(config),
                    &scheduling,
                )?);
            }
            if let Some(strategies) = &input.placement_strategy {
                record.service.placement_strategy = strategies.clone();
                new_deployment = true;
            }
            if let Some(constraints) = &input.placement_constraints {
                record.service.placement_constraints = constraints.clone();
                new_deployment = true;
            }
            validate::placement(
                &record.service.placement_strategy,
                &record.service.placement_constraints,
                &scheduling,
            )?;
            if let Some(g) = input.health_check_grace_period_seconds {
                record.service.health_check_grace_period_seconds = Some(g);
            }
            if let Some(t) = input.enable_ecs_managed_tags {
                record.service.enable_ecs_managed_tags = t;
            }
            if let Some(p) = &input.propagate_tags {
                record.service.propagate_tags = Some(p.clone());
            }
            if let Some(td) = &new_definition {
                let arn = &td.task_definition_arn;
                if record.service.task_definition.as_deref() != Some(arn.as_str()) {
                    new_deployment = true;
                }
                record.service.task_definition = Some(arn.clone());
            }
            // The load balancers and the network are checked against the task definition the service will run.
            if input.load_balancers.is_some()
                || input.network_configuration.is_some()
                || new_definition.is_some()
            {
                let td = match &new_definition {
                    Some(td) => td.clone(),
                    None => {
                        let arn = record.service.task_definition.clone().unwrap_or_default();
                        self.resolve_task_definition(scope, &arn)?
                            .value
                            .task_definition
                    }
                };
                let list = input
                    .load_balancers
                    .clone()
                    .unwrap_or_else(|| record.service.load_balancers.clone());
                super::load_balancers::validate(
                    self.load_balancing().as_deref(),
                    &scope.region,
                    &list,
                    &td,
                )?;
                if list != record.service.load_balancers {
                    record.service.load_balancers = list;
                    new_deployment = true;
                }
                let given = input
                    .network_configuration
                    .as_ref()
                    .or(record.service.network_configuration.as_ref());
                let network = self
                    .awsvpc(&scope.region, given, td.network_mode(), false)?
                    .map(|a| a.network_configuration());
                if network != record.service.network_configuration {
                    record.service.network_configuration = network;
                    new_deployment = true;
                }
            }
            if new_deployment {
                start_deployment(&mut record, time::now(), None);
            }
            let txn = Txn::new()
                .compare(current.unchanged())
                .put(current.kv.key.clone(), encode(&record));
            if self.repo.commit(txn).await? {
                self.wake_services();
                return Ok(self.service_response(&scope.region, &cluster, &record));
            }
        }
    }

    pub(crate) async fn delete_service(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let input: DeleteServiceInput = parse_input(body)?;
        let name = service_name_of(gantry_aws::required(&input.service, "service")?)?;
        let cluster = refs::cluster_name(input.cluster.as_deref())?;
        self.find_cluster(scope, &cluster)?;
        loop {
            let current = self
                .find_service(scope, &cluster, &name)
                .filter(|s| s.value.service.status != service_status::INACTIVE)
                .ok_or(EcsError::ServiceNotFound)?;
            let mut record = current.value.clone();
            let daemon = record.service.scheduling_strategy.as_deref() == Some(validate::DAEMON);
            if record.service.desired_count > 0 && !daemon && input.force != Some(true) {
                return Err(invalid(
                    "The service cannot be stopped while it is scaled above 0.",
                ));
            }
            record.service.status = service_status::DRAINING.into();
            record.service.desired_count = 0;
            let txn = Txn::new()
                .compare(current.unchanged())
                .put(current.kv.key.clone(), encode(&record));
            if self.repo.commit(txn).await? {
                self.wake_services();
                return Ok(self.service_response(&scope.region, &cluster, &record));
            }
        }
    }

    pub(crate) fn describe_services(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let input: DescribeServicesInput = parse_input(body)?;
        let references = input.services.unwrap_or_default();
        if references.is_empty() || references.len() > 10 {
            return Err(invalid("services must list between 1 and 10 services"));
        }
        let cluster = refs::cluster_name(input.cluster.as_deref())?;
        self.find_cluster(scope, &cluster)?;
        let with_tags = input.include.iter().any(|i| i == "TAGS");
        let (mut services, mut failures) = (Vec::new(), Vec::new());
        for reference in &references {
            let found = service_name_of(reference)
                .ok()
                .and_then(|n| self.find_service(scope, &cluster, &n));
            match found {
                Some(s) => {
                    let counts = self.deployment_counts(
                        &scope.region,
                        &cluster,
                        &s.value.service.service_name,
                    );
                    let mut service = s.value.to_wire(|id| counts.of(id));
                    if !with_tags {
                        service.tags.clear();
                    }
                    services.push(gantry_model::json::to_value(&service));
                }
                None => failures.push(Failure::missing(if reference.starts_with("arn:") {
                    reference.clone()
                } else {
                    scope.arn("ecs", &format!("service/{cluster}/{reference}"))
                })),
            }
        }
        Ok(json!({ "services": services, "failures": gantry_model::json::to_value(&failures) }))
    }

    pub(crate) fn list_services(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let input: ListServicesInput = parse_input(body)?;
        let cluster = refs::cluster_name(input.cluster.as_deref())?;
        self.find_cluster(scope, &cluster)?;
        let scheduling = input
            .scheduling_strategy
            .as_deref()
            .map(|s| validate::scheduling_strategy(Some(s)))
            .transpose()?;
        let arns: Vec<String> = self
            .repo
            .list::<ServiceRecord>(&keys::services(&scope.region, &cluster))
            .into_iter()
            .map(|s| s.value.service)
            .filter(|s| s.status != service_status::INACTIVE)
            .filter(|s| {
                input
                    .launch_type
                    .as_deref()
                    .is_none_or(|l| s.launch_type.as_deref() == Some(l))
            })
            .filter(|s| scheduling.is_none_or(|k| s.scheduling_strategy.as_deref() == Some(k)))
            .map(|s| s.service_arn)
            .collect();
        let page = paginate(
            arns,
            input.next_token.as_deref(),
            input.max_results,
            10,
            100,
        )?;
        Ok(json!({ "serviceArns": page.items, "nextToken": page.next_token }).without_nulls())
    }

    pub(crate) fn list_service_deployments(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let input: ListServiceDeploymentsInput = parse_input(body)?;
        let name = service_name_of(gantry_aws::required(&input.service, "service")?)?;
        let cluster = refs::cluster_name(input.cluster.as_deref())?;
        self.find_cluster(scope, &cluster)?;
        let record = self
            .find_service(scope, &cluster, &name)
            .ok_or(EcsError::ServiceNotFound)?
            .value;
        let window = input.created_at.unwrap_or_default();
        let briefs: Vec<Value> = record
            .deployments
            .iter()
            .rev()
            .filter(|d| {
                input.status.is_empty() || input.status.contains(&d.service_deployment_status)
            })
            .filter(|d| window.before.is_none_or(|b| d.created_at < b))
            .filter(|d| window.after.is_none_or(|a| d.created_at > a))
            .map(|d| gantry_model::json::to_value(&record.brief(d)))
            .collect();
        let page = paginate(
            briefs,
            input.next_token.as_deref(),
            input.max_results,
            20,
            100,
        )?;
        Ok(
            json!({ "serviceDeployments": page.items, "nextToken": page.next_token })
                .without_nulls(),
        )
    }

    pub(crate) fn describe_service_deployments(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let input: DescribeServiceDeploymentsInput = parse_input(body)?;
        let arns = input.service_deployment_arns.unwrap_or_default();
        if arns.is_empty() || arns.len() > 20 {
            return Err(invalid(
                "serviceDeploymentArns must list between 1 and 20 ARNs",
            ));
        }
        let (mut found, mut failures) = (Vec::new(), Vec::new());
        for arn in &arns {
            // arn:...:service-deployment/{cluster}/{service}/{digits}
            let parsed = gantry_model::Arn::parse(arn).and_then(|a| {
                let rest = a.resource.strip_prefix("service-deployment/")?.to_string();
                let mut parts = rest.splitn(3, '/');
                let (c, s, d) = (parts.next()?, parts.next()?, parts.next()?);
                Some((c.to_string(), s.to_string(), format!("ecs-svc/{d}")))
            });
            let hit = parsed.and_then(|(cluster, service, id)| {
                let record = self.find_service(scope, &cluster, &service)?.value;
                let d = record.deployments.iter().find(|d| d.id == id)?.clone();
                let counts = self.deployment_counts(&scope.region, &cluster, &service);
                Some(record.service_deployment(&d, |id| counts.of(id)))
            });
            match hit {
                Some(d) => found.push(gantry_model::json::to_value(&d)),
                None => failures.push(Failure::missing(arn.clone())),
            }
        }
        Ok(
            json!({ "serviceDeployments": found, "failures": gantry_model::json::to_value(&failures) }),
        )
    }
}

/// Makes a new PRIMARY deployment of the service's task definition; the old primary becomes ACTIVE (its tasks
/// are replaced by the controller) and, if its rollout was still going, its service deployment is STOPPED.
pub(crate) fn start_deployment(record: &mut ServiceRecord, now: f64, rollback_of: Option<String>) {
    let mut sources = Vec::new();
    for d in record.deployments.iter_mut().filter(|d| d.is_live()) {
        if d.status == deployment_status::PRIMARY {
            d.status = deployment_status::ACTIVE.into();
            d.updated_at = now;
            if d.service_deployment_status == service_deployment_status::IN_PROGRESS
                || d.service_deployment_status == service_deployment_status::PENDING
            {
                d.service_deployment_status = service_deployment_status::STOPPED.into();
                d.status_reason = Some("Superseded by a newer deployment.".into());
                d.stopped_at = Some(now);
                d.finished_at = Some(now);
            }
        }
        if !sources.contains(&d.task_definition) {
            sources.push(d.task_definition.clone());
        }
    }
    let config = record
        .service
        .deployment_configuration
        .clone()
        .unwrap_or_default();
    let deployment = DeploymentRecord {
        id: new_deployment_id(),
        status: deployment_status::PRIMARY.into(),
        task_definition: record.service.task_definition.clone().unwrap_or_default(),
        created_at: now,
        updated_at: now,
        rollout_state: rollout_state::IN_PROGRESS.into(),
        rollout_state_reason: Some("ECS deployment in progress.".into()),
        service_deployment_status: service_deployment_status::PENDING.into(),
        source_task_definitions: sources,
        rollback_of,
        deployment_configuration: config,
        ..Default::default()
    };
    record.service.current_service_deployment = Some(record.deployment_arn(&deployment));
    record.deployments.push(deployment);
    record.prune_deployments();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_references() {
        assert_eq!(service_name_of("web").unwrap(), "web");
        assert_eq!(
            service_name_of("arn:aws:ecs:us-east-1:1:service/c/web").unwrap(),
            "web"
        );
        assert_eq!(
            service_name_of("arn:aws:ecs:us-east-1:1:service/web").unwrap(),
            "web"
        );
        assert!(service_name_of("arn:aws:ecs:us-east-1:1:task/c/x").is_err());
        assert!(service_name_of("a/b").is_err());
    }

    #[test]
    fn a_new_deployment_supersedes_the_primary() {
        let mut r = ServiceRecord::default();
        r.service.service_arn = "arn:aws:ecs:r:1:service/c/web".into();
        r.service.task_definition = Some("td:1".into());
        start_deployment(&mut r, 1.0, None);
        r.deployments[0].service_deployment_status = service_deployment_status::IN_PROGRESS.into();
        r.service.task_definition = Some("td:2".into());
        start_deployment(&mut r, 2.0, None);
        assert_eq!(r.deployments.len(), 2);
        assert_eq!(r.deployments[0].status, deployment_status::ACTIVE);
        assert_eq!(
            r.deployments[0].service_deployment_status,
            service_deployment_status::STOPPED
        );
        assert_eq!(r.primary().unwrap().task_definition, "td:2");
        assert_eq!(r.primary().unwrap().source_task_definitions, vec!["td:1"]);
        assert!(r
            .service
            .current_service_deployment
            .as_deref()
            .unwrap()
            .contains(":service-deployment/c/web/"));
    }
}
