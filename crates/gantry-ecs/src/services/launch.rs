//! Starting a service's tasks: the same placement and task records as RunTask, with the service's group
//! (`service:NAME`) and the deployment's id as `startedBy`.

use gantry_model::ecs::{Failure, Tag, TaskOverride};
use gantry_model::Scope;
use gantry_store::Store;

use super::record::{DeploymentRecord, ServiceRecord};
use crate::error::{EcsError, Result};
use crate::placement::Placement;
use crate::records::TaskRecord;
use crate::tasks::{apply_overrides, Launch, Targets, NO_INSTANCES};
use crate::{tags, EcsService};

impl<S: Store> EcsService<S> {
    /// Places and stores up to `count` tasks of the deployment (one per instance that lacks one, for a DAEMON
    /// service); what could not be placed comes back as failures.
    pub(crate) async fn start_service_tasks(
        &self,
        scope: &Scope,
        cluster: &str,
        record: &ServiceRecord,
        deployment: &DeploymentRecord,
        count: usize,
    ) -> Result<(Vec<TaskRecord>, Vec<Failure>)> {
        let definition = self
            .resolve_task_definition(scope, &deployment.task_definition)?
            .value;
        let td = &definition.task_definition;
        let overrides = TaskOverride::default();
        let containers = apply_overrides(&td.container_definitions, &overrides)?;
        let service = &record.service;
        let placement = Placement::parse(
            &service.placement_strategy,
            &service.placement_constraints,
            &td.placement_constraints,
        )?;
        let targets = if service.scheduling_strategy.as_deref() == Some(super::validate::DAEMON) {
            Targets::Daemon
        } else {
            Targets::Cluster(count)
        };
        let mut task_tags: Vec<Tag> = Vec::new();
        match service.propagate_tags.as_deref() {
            Some("SERVICE") => tags::merge(&mut task_tags, service.tags.clone()),
            Some("TASK_DEFINITION") => tags::merge(&mut task_tags, definition.tags.clone()),
            _ => {}
        }
        if service.enable_ecs_managed_tags {
            task_tags.push(Tag {
                key: Some("aws:ecs:clusterName".into()),
                value: Some(cluster.to_string()),
            });
            task_tags.push(Tag {
                key: Some("aws:ecs:serviceName".into()),
                value: Some(service.service_name.clone()),
            });
        }
        let launch = Launch {
            cluster: cluster.to_string(),
            task_cpu: td.cpu.as_deref().and_then(crate::validate::parse_task_cpu),
            task_memory: td
                .memory
                .as_deref()
                .and_then(crate::validate::parse_task_memory),
            containers,
            overrides,
            group: format!("service:{}", service.service_name),
            started_by: Some(deployment.id.clone()),
            tags: task_tags,
            client_token: None,
            placement,
            awsvpc: self.awsvpc(
                &scope.region,
                service.network_configuration.as_ref(),
                td.network_mode(),
                false,
            )?,
            definition: definition.clone(),
        };
        match self.place_tasks(scope, &launch, targets).await {
            Err(EcsError::InvalidParameter(m)) if m == NO_INSTANCES => Ok((
                Vec::new(),
                vec![Failure {
                    arn: None,
                    reason: Some("No Container Instances were found in your cluster".into()),
                    detail: None,
                }],
            )),
            other => other,
        }
    }
}
