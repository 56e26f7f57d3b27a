//! A service as stored: its wire shape without the parts that are derived at read time (task counts), plus every
//! deployment it has had (DescribeServices shows the live ones, the service deployment API all of them).

use gantry_model::ecs::{
    deployment_status, rollout_state, Deployment, DeploymentConfiguration, Service,
    ServiceDeployment, ServiceDeploymentBrief, ServiceDeploymentCircuitBreaker, ServiceEvent,
    ServiceRevisionSummary,
};
use serde::{Deserialize, Serialize};

/// ECS keeps the newest 100 events of a service.
pub const MAX_EVENTS: usize = 100;
/// Finished deployments kept for ListServiceDeployments.
pub const MAX_FINISHED_DEPLOYMENTS: usize = 50;

/// The newer API's statuses of a service deployment.
pub mod service_deployment_status {
    pub const PENDING: &str = "PENDING";
    pub const IN_PROGRESS: &str = "IN_PROGRESS";
    pub const SUCCESSFUL: &str = "SUCCESSFUL";
    pub const STOPPED: &str = "STOPPED";
    pub const ROLLBACK_IN_PROGRESS: &str = "ROLLBACK_IN_PROGRESS";
    pub const ROLLBACK_SUCCESSFUL: &str = "ROLLBACK_SUCCESSFUL";
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeploymentRecord {
    /// `ecs-svc/` and 19 digits: also the `startedBy` of the deployment's tasks.
    pub id: String,
    /// PRIMARY, ACTIVE (an older one still with tasks) or INACTIVE (finished).
    pub status: String,
    pub task_definition: String,
    pub created_at: f64,
    pub updated_at: f64,
    pub rollout_state: String,
    pub rollout_state_reason: Option<String>,
    /// Tasks of this deployment that failed to start or stopped unexpectedly (the circuit breaker's count).
    pub failed_tasks: i64,
    /// The circuit breaker no longer watches once a task of the deployment reached RUNNING and passed its checks.
    pub healthy_once: bool,
    /// The newer API's view: status, reason and times.
    pub service_deployment_status: String,
    pub status_reason: Option<String>,
    pub finished_at: Option<f64>,
    pub stopped_at: Option<f64>,
    /// The deployments this one replaces (their task definitions), for `sourceServiceRevisions`.
    pub source_task_definitions: Vec<String>,
    /// Set on a deployment started by a circuit-breaker rollback: the failed deployment's id.
    pub rollback_of: Option<String>,
    pub deployment_configuration: DeploymentConfiguration,
}

impl DeploymentRecord {
    pub fn is_live(&self) -> bool {
        self.status != deployment_status::INACTIVE
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceRecord {
    /// The wire shape; `deployments`, `runningCount` and `pendingCount` are filled in at read time.
    pub service: Service,
    /// Every deployment, oldest first; the PRIMARY is the last live one.
    pub deployments: Vec<DeploymentRecord>,
    pub client_token: Option<String>,
}

/// Counts of a deployment's tasks that are not STOPPED.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskCounts {
    pub running: i64,
    pub pending: i64,
}

impl ServiceRecord {
    pub fn primary(&self) -> Option<&DeploymentRecord> {
        self.deployments
            .iter()
            .rev()
            .find(|d| d.status == deployment_status::PRIMARY)
    }

    pub fn primary_mut(&mut self) -> Option<&mut DeploymentRecord> {
        self.deployments
            .iter_mut()
            .rev()
            .find(|d| d.status == deployment_status::PRIMARY)
    }

    /// Adds an event, newest first, keeping the newest [`MAX_EVENTS`].
    pub fn add_event(&mut self, message: String, now: f64) {
        self.service.events.insert(
            0,
            ServiceEvent {
                id: gantry_model::new_id(),
                created_at: Some(now),
                message,
            },
        );
        self.service.events.truncate(MAX_EVENTS);
    }

    /// Drops the oldest finished deployments beyond [`MAX_FINISHED_DEPLOYMENTS`].
    pub fn prune_deployments(&mut self) {
        let finished = self.deployments.iter().filter(|d| !d.is_live()).count();
        let mut excess = finished.saturating_sub(MAX_FINISHED_DEPLOYMENTS);
        self.deployments.retain(|d| {
            if excess > 0 && !d.is_live() {
                excess -= 1;
                return false;
            }
            true
        });
    }

    /// The wire shape with live deployments and counts from `counts(deployment id)`.
    pub fn to_wire(&self, counts: impl Fn(&str) -> TaskCounts) -> Service {
        let mut service = self.service.clone();
        let mut running = 0;
        let mut pending = 0;
        service.deployments = self
            .deployments
            .iter()
            .rev()
            .filter(|d| d.is_live())
            .map(|d| {
                let c = counts(&d.id);
                running += c.running;
                pending += c.pending;
                Deployment {
                    id: d.id.clone(),
                    status: d.status.clone(),
                    task_definition: d.task_definition.clone(),
                    desired_count: if d.status == deployment_status::PRIMARY {
                        service.desired_count
                    } else {
                        c.running + c.pending
                    },
                    pending_count: c.pending,
                    running_count: c.running,
                    failed_tasks: d.failed_tasks,
                    created_at: Some(d.created_at),
                    updated_at: Some(d.updated_at),
                    launch_type: service.launch_type.clone(),
                    rollout_state: Some(d.rollout_state.clone()),
                    rollout_state_reason: d.rollout_state_reason.clone(),
                }
            })
            .collect();
        service.running_count = running;
        service.pending_count = pending;
        service
    }

    pub fn deployment_arn(&self, d: &DeploymentRecord) -> String {
        deployment_arn(&self.service.service_arn, &d.id)
    }

    /// The newer API's view of one deployment.
    pub fn service_deployment(
        &self,
        d: &DeploymentRecord,
        counts: impl Fn(&str) -> TaskCounts,
    ) -> ServiceDeployment {
        let c = counts(&d.id);
        let breaker = d
            .deployment_configuration
            .deployment_circuit_breaker
            .as_ref()
            .filter(|b| b.enable);
        ServiceDeployment {
            service_deployment_arn: self.deployment_arn(d),
            service_arn: self.service.service_arn.clone(),
            cluster_arn: self.service.cluster_arn.clone(),
            created_at: Some(d.created_at),
            started_at: Some(d.created_at),
            finished_at: d.finished_at,
            stopped_at: d.stopped_at,
            updated_at: Some(d.updated_at),
            source_service_revisions: d
                .source_task_definitions
                .iter()
                .map(|td| ServiceRevisionSummary {
                    arn: Some(td.clone()),
                    ..Default::default()
                })
                .collect(),
            target_service_revision: Some(ServiceRevisionSummary {
                arn: Some(d.task_definition.clone()),
                requested_task_count: if d.status == deployment_status::PRIMARY {
                    self.service.desired_count
                } else {
                    0
                },
                running_task_count: c.running,
                pending_task_count: c.pending,
            }),
            status: d.service_deployment_status.clone(),
            status_reason: d.status_reason.clone(),
            deployment_configuration: Some(d.deployment_configuration.clone()),
            rollback: None,
            deployment_circuit_breaker: Some(ServiceDeploymentCircuitBreaker {
                status: Some(
                    match (breaker, d.rollout_state.as_str()) {
                        (None, _) => "DISABLED",
                        (Some(_), rollout_state::FAILED) => "TRIGGERED",
                        (Some(_), rollout_state::IN_PROGRESS) => "MONITORING",
                        (Some(_), _) => "MONITORING_COMPLETE",
                    }
                    .to_string(),
                ),
                failure_count: d.failed_tasks,
                threshold: crate::services::rollout::failure_threshold(
                    self.service.desired_count.max(0) as u32,
                ) as i64,
            }),
        }
    }

    pub fn brief(&self, d: &DeploymentRecord) -> ServiceDeploymentBrief {
        ServiceDeploymentBrief {
            service_deployment_arn: self.deployment_arn(d),
            service_arn: self.service.service_arn.clone(),
            cluster_arn: self.service.cluster_arn.clone(),
            started_at: Some(d.created_at),
            created_at: Some(d.created_at),
            finished_at: d.finished_at,
            target_service_revision_arn: Some(d.task_definition.clone()),
            status: d.service_deployment_status.clone(),
            status_reason: d.status_reason.clone(),
        }
    }
}

/// `arn:...:service-deployment/{cluster}/{service}/{id digits}` from the service ARN and a deployment id.
pub fn deployment_arn(service_arn: &str, deployment_id: &str) -> String {
    let digits = deployment_id.trim_start_matches("ecs-svc/");
    match service_arn.split_once(":service/") {
        Some((head, path)) => format!("{head}:service-deployment/{path}/{digits}"),
        None => format!("{service_arn}/{digits}"),
    }
}

/// A deployment id as ECS makes them: `ecs-svc/` and 19 digits.
pub fn new_deployment_id() -> String {
    use rand::Rng;
    format!(
        "ecs-svc/{:019}",
        rand::thread_rng().gen_range(0..10u64.pow(19))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_arns_and_ids() {
        let id = new_deployment_id();
        assert_eq!(id.len(), "ecs-svc/".len() + 19);
        assert_eq!(
            deployment_arn("arn:aws:ecs:us-east-1:1:service/c/web", "ecs-svc/123"),
            "arn:aws:ecs:us-east-1:1:service-deployment/c/web/123"
        );
    }

    #[test]
    fn events_are_newest_first_and_capped() {
        let mut r = ServiceRecord::default();
        for i in 0..150 {
            r.add_event(format!("e{i}"), i as f64);
        }
        assert_eq!(r.service.events.len(), MAX_EVENTS);
        assert_eq!(r.service.events[0].message, "e149");
    }
}
