//! The service controller: for every service, compare its tasks with what its deployments want and act, level-
//! triggered. It wakes on API changes and agent reports, and at least every [`RESYNC`] (instances that stop
//! answering show only with time). One pass per service reads the service and its tasks, asks `rollout` for a
//! plan, starts and stops tasks, and writes the service's new state with compare-and-swap; a conflict just means
//! the next pass sees newer facts.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use gantry_model::ecs::{deployment_status, rollout_state, service_status, stop_code};
use gantry_model::{time, Scope};
use gantry_store::{Store, Txn};

use super::api::start_deployment;
use super::record::{service_deployment_status, DeploymentRecord, ServiceRecord, MAX_EVENTS};
use super::rollout::{self, RolloutInput, ServiceTask, TaskState};
use super::targets;
use crate::error::Result;
use crate::events::{self, Origin, ServiceChange};
use crate::index::TaskSummary;
use crate::placement::Placement;
use crate::records::TaskRecord;
use crate::repo::encode;
use crate::tasks::request_stop;
use crate::{keys, EcsService};

/// The longest the controller sleeps without a wake-up.
pub const RESYNC: Duration = Duration::from_secs(1);

/// (region, cluster, service name).
pub(crate) type QuietKey = (String, String, String);

/// What a service's pass saw when it changed nothing and waited on nothing but changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quiet {
    service_revision: u64,
    /// `ClusterIndex::changes` of the service's group.
    changes: (u64, u64),
}

/// The stop reason of a task the scheduler replaces because its health checks failed.
const UNHEALTHY_REASON: &str = "Task failed container health checks.";

/// Seconds a task without container health checks must have been RUNNING before it counts as healthy. An agent
/// notices an exited container only at its next look (about a second later): a task whose container exits at once
/// is RUNNING that long, and counting it healthy would stop the old tasks for it, complete the rollout and keep
/// the circuit breaker from ever seeing the failures.
pub const STABLE_AFTER_SECS: f64 = 3.0;

/// How a task of the service counts for its rollout: healthy once RUNNING with its container health checks
/// passing, or, without checks, once it has been RUNNING for [`STABLE_AFTER_SECS`]; settling before that.
fn task_state(t: &TaskSummary, now: f64) -> TaskState {
    if t.stopping {
        return TaskState::Stopping;
    }
    if !t.running {
        return TaskState::Starting;
    }
    if t.health_checks {
        return match t.health_status.as_deref() {
            Some("HEALTHY") => TaskState::Healthy,
            Some("UNHEALTHY") => TaskState::Unhealthy,
            _ => TaskState::Settling,
        };
    }
    let stable = t
        .started_at
        .is_none_or(|started| now - started >= STABLE_AFTER_SECS);
    if stable {
        TaskState::Healthy
    } else {
        TaskState::Settling
    }
}

/// The start of the stop reason of a task whose load balancer health checks failed, as ECS writes it.
const ELB_UNHEALTHY_REASON: &str = "Task failed ELB health checks in";

/// Whether a task stopped with this code and reason failed (the circuit breaker counts these), rather than being
/// stopped by the scheduler or a user.
pub(crate) fn is_failure(stop_code: Option<&str>, stopped_reason: Option<&str>) -> bool {
    matches!(
        stop_code,
        Some(stop_code::TASK_FAILED_TO_START) | Some(stop_code::ESSENTIAL_CONTAINER_EXITED)
    ) || stopped_reason == Some(UNHEALTHY_REASON)
        || stopped_reason.is_some_and(|r| r.starts_with(ELB_UNHEALTHY_REASON))
}

impl<S: Store> EcsService<S> {
    /// Runs the controller whenever this server holds `lease`, until the process ends.
    pub fn spawn_service_controller(
        self: Arc<Self>,
        lease: gantry_store::lease::Lease,
    ) -> tokio::task::JoinHandle<()> {
        gantry_store::lease::spawn_leased(lease, move || {
            let svc = self.clone();
            async move { svc.run_service_controller().await }
        })
    }

    async fn run_service_controller(self: Arc<Self>) {
        let started = std::time::Instant::now();
        loop {
            let _ = tokio::time::timeout(RESYNC, self.services_changed.notified()).await;
            // Agents get a whole agent timeout after a (re)start, or after this server took the lease, to be heard
            // from again.
            let judge_unseen = started.elapsed() >= self.config.agent_timeout;
            for (region, cluster, name) in self.all_services() {
                if let Err(e) = self
                    .reconcile_service(&region, &cluster, &name, judge_unseen)
                    .await
                {
                    tracing::warn!(service = %name, error = %e, "service reconcile failed");
                }
            }
        }
    }

    /// (region, cluster, name) of every service that is not INACTIVE.
    fn all_services(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for region in self.regions() {
            let prefix = format!("/ecs/{region}/services/");
            for kv in self.repo.store.range(&prefix) {
                let Some((cluster, name)) = kv.key[prefix.len()..].split_once('/') else {
                    continue;
                };
                let live = serde_json::from_slice::<ServiceRecord>(&kv.value)
                    .is_ok_and(|r| r.service.status != service_status::INACTIVE);
                if live {
                    out.push((region.clone(), cluster.to_string(), name.to_string()));
                }
            }
        }
        out
    }

    /// Whether an instance's tasks count as lost: its agent was heard from since this server started but not
    /// within the agent timeout, or (`judge_unseen`, once the server has run a whole agent timeout) never. Right
    /// after a restart nobody has been heard from yet; that alone must not stop every service task.
    fn instance_lost(&self, instance_arn: &str, judge_unseen: bool) -> bool {
        self.lost(self.last_seen(instance_arn), judge_unseen)
    }

    /// `instance_lost` from when the instance was last heard from.
    fn lost(&self, last_seen: Option<std::time::Instant>, judge_unseen: bool) -> bool {
        match last_seen {
            Some(t) => t.elapsed() >= self.config.agent_timeout,
            None => judge_unseen,
        }
    }

    /// One pass over one service.
    pub(crate) async fn reconcile_service(
        &self,
        region: &str,
        cluster: &str,
        name: &str,
        judge_unseen: bool,
    ) -> Result<()> {
        let Some(current) = self
            .repo
            .get::<ServiceRecord>(&keys::service(region, cluster, name))
        else {
            return Ok(());
        };
        let group = format!("service:{name}");
        // A service whose last pass changed nothing and waited on nothing but changes (see `waits_on_time`) is
        // left alone while neither it, its tasks, the instance records nor any agent's connection changed: a
        // pass over 50,000 tasks a second for nothing would take a core.
        let quiet_key = (region.to_string(), cluster.to_string(), name.to_string());
        let (timeout, instant) = (self.config.agent_timeout, std::time::Instant::now());
        let (changes_seen, all_heard) = self.index.with(region, cluster, |c| {
            (c.changes(&group), c.all_heard_within(instant, timeout))
        });
        let mark = Quiet {
            service_revision: current.kv.mod_revision,
            changes: changes_seen,
        };
        if all_heard && self.quiet(|q| q.get(&quiet_key) == Some(&mark)) {
            return Ok(());
        }
        self.quiet(|q| q.remove(&quiet_key));
        let mut record = current.value.clone();
        let scope = Scope::new(region, account_of(&record.service.service_arn));
        let now = time::now();
        // The index's summaries, not the records: a pass over a service of thousands of tasks decodes nothing.
        let all_tasks: crate::index::GroupList = self
            .index
            .with(region, cluster, |c| c.group_summaries(&group));
        let deployment_ids: Vec<String> = record.deployments.iter().map(|d| d.id.clone()).collect();
        let ours = |t: &TaskSummary| {
            t.started_by
                .as_ref()
                .is_some_and(|by| deployment_ids.contains(by))
        };

        // Failures per deployment, from the stopped tasks still kept.
        let mut failures: HashMap<&str, i64> = HashMap::new();
        for (_, t) in all_tasks.iter().filter(|(_, t)| ours(t) && t.failed) {
            *failures
                .entry(t.started_by.as_deref().unwrap_or_default())
                .or_default() += 1;
        }
        for d in record.deployments.iter_mut() {
            d.failed_tasks = d
                .failed_tasks
                .max(failures.get(d.id.as_str()).copied().unwrap_or(0));
        }

        let grace = record
            .service
            .health_check_grace_period_seconds
            .unwrap_or(0) as f64;
        let draining: HashSet<String> = self
            .index
            .with(region, cluster, |c| c.instances_with_status("DRAINING"))
            .into_iter()
            .collect();
        // When each instance the service runs on was last heard from, under one lock.
        let instances: HashSet<&str> = all_tasks
            .iter()
            .filter_map(|(_, t)| t.instance.as_deref())
            .collect();
        let last_seen: HashMap<&str, Option<std::time::Instant>> =
            self.index.with(region, cluster, |c| {
                instances.iter().map(|a| (*a, c.last_seen(a))).collect()
            });
        let mut lost: HashSet<&str> = HashSet::new();
        let mut unhealthy: HashSet<&str> = HashSet::new();
        let mut live: Vec<ServiceTask> = Vec::new();
        for (id, t) in all_tasks.iter().filter(|(_, t)| ours(t) && t.holds) {
            let instance = t.instance.as_deref().unwrap_or_default();
            let seen = last_seen.get(instance).copied().flatten();
            if self.lost(seen, judge_unseen) && !t.stopping {
                lost.insert(id);
                continue;
            }
            // Unhealthy after its grace period: replaced, and counted as a failure.
            let started = t.started_at.unwrap_or(now);
            if t.health_status.as_deref() == Some("UNHEALTHY")
                && !t.stopping
                && now - started >= grace
            {
                unhealthy.insert(id);
                continue;
            }
            let mut task = ServiceTask {
                id: id.clone(),
                deployment: t.started_by.clone().unwrap_or_default(),
                state: task_state(t, now),
            };
            // Tasks on a draining instance are replaced like those of an older deployment.
            if draining.contains(instance) && task.state != TaskState::Stopping {
                task.deployment = "draining".into();
            }
            live.push(task);
        }

        // Load balancers: target health gates the rollout; unhealthy targets after the grace period stop the task.
        let recent = now - 120.0;
        let lb_tasks: Vec<(&String, &TaskSummary)> = all_tasks
            .iter()
            .filter(|(_, t)| ours(t) && (t.holds || t.stopped_at.is_some_and(|at| at >= recent)))
            .map(|(id, t)| (id, &**t))
            .collect();
        let mut lb_view = self.lb_view(region, cluster, &record, &lb_tasks);
        let mut elb_unhealthy: HashMap<String, String> = HashMap::new();
        if let Some(view) = &lb_view {
            targets::gate_all(&mut live, view);
            for t in &live {
                let (Some(targets), Some(summary)) = (
                    view.tasks.get(&t.id),
                    all_tasks.iter().find(|(i, _)| *i == t.id),
                ) else {
                    continue;
                };
                let started = summary.1.started_at.unwrap_or(now);
                let groups = targets::unhealthy_groups(targets);
                if t.state == TaskState::Unhealthy && !groups.is_empty() && now - started >= grace {
                    let named: Vec<String> = groups
                        .iter()
                        .map(|g| format!("(target-group {g})"))
                        .collect();
                    elb_unhealthy.insert(
                        t.id.clone(),
                        format!("{ELB_UNHEALTHY_REASON} {}", named.join(" ")),
                    );
                }
            }
            live.retain(|t| !elb_unhealthy.contains_key(&t.id));
        }

        let daemon = record.service.scheduling_strategy.as_deref() == Some("DAEMON");
        let (min, max) = record
            .service
            .deployment_configuration
            .as_ref()
            .map(|c| {
                (
                    c.minimum_healthy_percent.unwrap_or(100),
                    c.maximum_percent.unwrap_or(200),
                )
            })
            .unwrap_or((100, 200));
        let primary = record.primary().cloned();
        let primary_id = primary.as_ref().map(|p| p.id.clone()).unwrap_or_default();
        // A deleted (DRAINING) DAEMON service wants nothing, like any other.
        let desired = if daemon && record.service.status != service_status::DRAINING {
            self.daemon_desired_count(&scope, cluster, &record, judge_unseen)
        } else {
            record.service.desired_count.max(0) as u32
        };
        let input = RolloutInput {
            desired_count: desired,
            minimum_healthy_percent: min.clamp(0, 100) as u32,
            maximum_percent: max.max(0) as u32,
            primary: &primary_id,
            tasks: &live,
        };
        let mut plan = rollout::plan(&input);
        let complete = rollout::is_complete(&input);
        let primary_failed = primary
            .as_ref()
            .is_some_and(|p| p.rollout_state == rollout_state::FAILED);
        if primary_failed {
            plan.start = 0;
        }
        // What could change with time alone: tasks to start (resources freed elsewhere, a back-off running
        // out) and running tasks not yet healthy (a task without health checks becomes healthy after a while).
        // Target health changes without a store write: a service behind a load balancer is never left quiet.
        let waits_on_time = plan.start > 0
            || lb_view.is_some()
            || live
                .iter()
                .any(|t| matches!(t.state, TaskState::Settling | TaskState::Unhealthy));

        // Stop: the plan's tasks and the lost ones, in one transaction guarded on each task as it was decided on.
        let summaries: HashMap<&str, &TaskSummary> =
            all_tasks.iter().map(|(i, t)| (i.as_str(), &**t)).collect();
        let mut txn = Txn::new();
        let mut stopped_ids = Vec::new();
        let mut draining_started = 0;
        let to_stop = plan
            .stop
            .iter()
            .map(String::as_str)
            .chain(lost.iter().copied())
            .chain(unhealthy.iter().copied())
            .chain(elb_unhealthy.keys().map(String::as_str));
        for id in to_stop {
            let Some(current) = self
                .repo
                .get::<TaskRecord>(&keys::task(region, cluster, id))
                .filter(|t| summaries.get(id) == Some(&&TaskSummary::of(&t.value)))
            else {
                return Ok(()); // the task changed since the summary: the next pass decides again
            };
            let reason = if lost.contains(id) {
                "Task stopped because its container instance lost its connection.".to_string()
            } else if unhealthy.contains(id) {
                UNHEALTHY_REASON.to_string()
            } else if let Some(reason) = elb_unhealthy.get(id) {
                reason.clone()
            } else {
                format!("Scaling activity initiated by (deployment {})", primary_id)
            };
            let mut stopped = current.value.clone();
            request_stop(
                &mut stopped,
                stop_code::SERVICE_SCHEDULER_INITIATED,
                &reason,
            );
            // A task its target groups still send to is drained first; a lost one has nobody to drain.
            let in_service = lb_view
                .as_ref()
                .and_then(|v| v.tasks.get(id))
                .is_some_and(|t| t.in_service());
            if in_service && !lost.contains(id) {
                targets::start_draining(&mut stopped);
                draining_started += 1;
            }
            txn = txn
                .compare(current.unchanged())
                .put(current.kv.key.clone(), encode(&stopped));
            stopped_ids.push(id.to_string());
        }
        if !stopped_ids.is_empty() && !self.repo.commit(txn).await? {
            return Ok(()); // a task changed meanwhile: the next pass decides again
        }

        // Start the primary's missing tasks (after a failure, not before the back-off allows).
        let mut started_ids = Vec::new();
        let mut placement_failure = None;
        let mut placement_reasons: Vec<String> = Vec::new();
        let failed_total: i64 = record.deployments.iter().map(|d| d.failed_tasks).sum();
        if plan.start > 0
            && self
                .launch_backoff
                .allows(&record.service.service_arn, failed_total, complete, now)
        {
            if let Some(p) = &primary {
                let (created, failures) = self
                    .start_service_tasks(&scope, cluster, &record, p, plan.start as usize)
                    .await?;
                started_ids = created.iter().map(|t| t.task.id().to_string()).collect();
                placement_failure = failures.first().and_then(|f| f.reason.clone());
                for reason in failures.iter().filter_map(|f| f.reason.clone()) {
                    if !placement_reasons.contains(&reason) {
                        placement_reasons.push(reason);
                    }
                }
            }
        }

        // Targets: the tasks just asked to stop are deregistered at once, running ones registered.
        let mut target_events = Vec::new();
        if let Some(view) = lb_view.as_mut() {
            for id in &stopped_ids {
                if let Some(t) = view.tasks.get_mut(id) {
                    t.stopping = true;
                    t.draining = t.draining || !lost.contains(id.as_str());
                }
            }
            target_events = self.sync_targets(region, cluster, name, view).await?;
        }

        // The service's new state: events, rollout states, deployments that are done.
        let before = record.clone();
        if draining_started > 0 {
            record.add_event(
                format!(
                    "(service {name}) has begun draining connections on {draining_started} tasks."
                ),
                now,
            );
        }
        for e in target_events {
            record.add_event(e, now);
        }
        // ECS shows a DAEMON service's desiredCount as the number of instances it runs on.
        if daemon {
            record.service.desired_count = desired as i64;
        }
        // ECS names at most ten tasks an event; a bigger batch is told in several (only the newest are kept).
        for (verb, ids) in [("started", &started_ids), ("stopped", &stopped_ids)] {
            let chunks: Vec<&[String]> = ids.chunks(10).collect();
            for chunk in &chunks[chunks.len().saturating_sub(MAX_EVENTS)..] {
                let tasks: Vec<String> = chunk.iter().map(|i| format!("(task {i})")).collect();
                let running = if verb == "stopped" { " running" } else { "" };
                record.add_event(
                    format!(
                        "(service {name}) has {verb} {}{running} tasks: {}.",
                        chunk.len(),
                        tasks.join(" ")
                    ),
                    now,
                );
            }
        }
        // Changes that become events on the bus, in the order they are told.
        let mut placement_change = None;
        if let Some(reason) = placement_failure {
            let message = format!(
                "(service {name}) was unable to place a task because no container instance met all of its requirements. Reason: {reason}."
            );
            // Said once, not every second.
            if record.service.events.first().map(|e| e.message.as_str()) != Some(message.as_str()) {
                record.add_event(message, now);
                placement_change = Some(ServiceChange::PlacementFailure {
                    reasons: placement_reasons,
                });
            }
        }
        if plan.blocked {
            let message = format!("(service {name}) was unable to stop or start tasks during a deployment because of the service deployment configuration. Update the minimumHealthyPercent or maximumPercent value and try again.");
            if record.service.events.first().map(|e| e.message.as_str()) != Some(message.as_str()) {
                record.add_event(message, now);
            }
        }
        let mut changes = self.advance_deployments(&mut record, &live, complete, desired, now);
        changes.extend(placement_change);
        if record.service.status == service_status::DRAINING
            && live.is_empty()
            && all_tasks.iter().all(|(_, t)| !t.holds)
        {
            record.service.status = service_status::INACTIVE.into();
        }
        if record != before {
            let txn = Txn::new()
                .compare(current.unchanged())
                .put(current.kv.key.clone(), encode(&record));
            // The events go with the change that causes them: both commit or neither.
            let origin = Origin {
                account: &scope.account,
                region,
                service_arn: &record.service.service_arn,
                cluster_arn: &record.service.cluster_arn,
            };
            let txn = events::put_events(txn, &origin, &changes, now);
            self.repo.commit(txn).await?;
        } else if !waits_on_time && started_ids.is_empty() && stopped_ids.is_empty() {
            self.quiet(|q| q.insert(quiet_key, mark));
        }
        Ok(())
    }

    fn quiet<T>(&self, f: impl FnOnce(&mut HashMap<QuietKey, Quiet>) -> T) -> T {
        let mut quiet = self
            .quiet_services
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        f(&mut quiet)
    }

    /// Rollout states: the primary completes, fails (circuit breaker, maybe rolling back), older deployments
    /// without tasks end. Returns the changes to tell on the event bus.
    fn advance_deployments(
        &self,
        record: &mut ServiceRecord,
        live: &[ServiceTask],
        complete: bool,
        desired: u32,
        now: f64,
    ) -> Vec<ServiceChange> {
        let name = record.service.service_name.clone();
        let threshold = rollout::failure_threshold(desired) as i64;
        let mut events = Vec::new();
        let mut rollback_to: Option<(String, String)> = None;
        let mut changes = Vec::new();
        // A rollback's IN_PROGRESS event names the deployment whose task definition it restores.
        let restored = record.primary().and_then(|p| {
            p.rollback_of.as_ref()?;
            record
                .deployments
                .iter()
                .rev()
                .find(|d| {
                    d.id != p.id
                        && d.rollout_state == rollout_state::COMPLETED
                        && d.task_definition == p.task_definition
                })
                .map(|d| d.id.clone())
        });
        if let Some(p) = record.primary_mut() {
            if p.service_deployment_status == service_deployment_status::PENDING {
                p.service_deployment_status = service_deployment_status::IN_PROGRESS.into();
                p.updated_at = now;
                let reason = match (&p.rollback_of, restored) {
                    (Some(_), Some(to)) => {
                        format!(
                            "ECS deployment circuit breaker: rolling back to deploymentId {to}."
                        )
                    }
                    (Some(_), None) => format!(
                        "ECS deployment circuit breaker: rolling back to deploymentId {}.",
                        p.id
                    ),
                    (None, _) => format!("ECS deployment {} in progress.", p.id),
                };
                changes.push(ServiceChange::DeploymentInProgress {
                    deployment_id: p.id.clone(),
                    reason,
                });
            }
            if p.rollout_state == rollout_state::IN_PROGRESS {
                let breaker = p
                    .deployment_configuration
                    .deployment_circuit_breaker
                    .clone()
                    .filter(|b| b.enable);
                if complete {
                    p.rollout_state = rollout_state::COMPLETED.into();
                    p.rollout_state_reason = Some(format!("ECS deployment {} completed.", p.id));
                    p.service_deployment_status = service_deployment_status::SUCCESSFUL.into();
                    p.finished_at = Some(now);
                    p.updated_at = now;
                    events.push(format!(
                        "(service {name}) (deployment {}) deployment completed.",
                        p.id
                    ));
                    changes.push(ServiceChange::DeploymentCompleted {
                        deployment_id: p.id.clone(),
                        reason: format!("ECS deployment {} completed.", p.id),
                    });
                } else if let Some(b) = breaker.filter(|_| p.failed_tasks >= threshold) {
                    p.rollout_state = rollout_state::FAILED.into();
                    p.rollout_state_reason =
                        Some("ECS deployment circuit breaker: tasks failed to start.".to_string());
                    p.updated_at = now;
                    events.push(format!(
                        "(service {name}) (deployment {}) deployment failed: tasks failed to start.",
                        p.id
                    ));
                    changes.push(ServiceChange::DeploymentFailed {
                        deployment_id: p.id.clone(),
                        reason: p.rollout_state_reason.clone().unwrap_or_default(),
                    });
                    if b.rollback {
                        p.service_deployment_status =
                            service_deployment_status::ROLLBACK_IN_PROGRESS.into();
                        rollback_to = Some((p.id.clone(), String::new()));
                    } else {
                        p.service_deployment_status = service_deployment_status::STOPPED.into();
                        p.status_reason = p.rollout_state_reason.clone();
                        p.stopped_at = Some(now);
                        p.finished_at = Some(now);
                    }
                }
            }
        }
        if let Some((failed_id, _)) = rollback_to {
            let target = record
                .deployments
                .iter()
                .rev()
                .find(|d| d.id != failed_id && d.rollout_state == rollout_state::COMPLETED)
                .map(|d| d.task_definition.clone());
            match target {
                Some(td) => {
                    record.service.task_definition = Some(td.clone());
                    start_deployment(record, now, Some(failed_id.clone()));
                    if let Some(p) = record.primary_mut() {
                        p.rollout_state_reason =
                            Some(format!("Rolling back to {td} after {failed_id} failed."));
                    }
                    events.push(format!(
                        "(service {name}) rolling back to deployment with task definition {td}."
                    ));
                }
                None => {
                    // Nothing to return to: the failed deployment stays and starts nothing more.
                    if let Some(p) = record.primary_mut() {
                        p.service_deployment_status = service_deployment_status::STOPPED.into();
                        p.status_reason = Some("No completed deployment to roll back to.".into());
                        p.finished_at = Some(now);
                    }
                }
            }
        }
        // A rollback that completed settles the deployment it undid.
        let completed_rollbacks: Vec<String> = record
            .deployments
            .iter()
            .filter(|d| d.rollout_state == rollout_state::COMPLETED)
            .filter_map(|d| d.rollback_of.clone())
            .collect();
        for d in record.deployments.iter_mut() {
            if completed_rollbacks.contains(&d.id)
                && d.service_deployment_status == service_deployment_status::ROLLBACK_IN_PROGRESS
            {
                d.service_deployment_status = service_deployment_status::ROLLBACK_SUCCESSFUL.into();
                d.finished_at = Some(now);
            }
        }
        // Older deployments end once their last task is gone.
        for d in record.deployments.iter_mut() {
            if d.status == deployment_status::ACTIVE && !live.iter().any(|t| t.deployment == d.id) {
                end_deployment(d, now);
            }
        }
        let steady = complete && record.deployments.iter().filter(|d| d.is_live()).count() == 1;
        let was_steady = record
            .service
            .events
            .first()
            .is_some_and(|e| e.message.ends_with("has reached a steady state."));
        for e in events {
            record.add_event(e, now);
        }
        if steady && !was_steady {
            record.add_event(format!("(service {name}) has reached a steady state."), now);
            changes.push(ServiceChange::SteadyState);
        }
        changes
    }

    /// A DAEMON service wants one task on every active, connected instance its memberOf constraints select.
    fn daemon_desired_count(
        &self,
        scope: &Scope,
        cluster: &str,
        record: &ServiceRecord,
        judge_unseen: bool,
    ) -> u32 {
        let definition_constraints = record
            .primary()
            .and_then(|p| self.resolve_task_definition(scope, &p.task_definition).ok())
            .map(|td| td.value.task_definition.placement_constraints)
            .unwrap_or_default();
        let Ok(placement) = Placement::parse(
            &[],
            &record.service.placement_constraints,
            &definition_constraints,
        ) else {
            return 0;
        };
        self.cluster_instances(&scope.region, cluster)
            .into_iter()
            .filter(|i| {
                let ci = &i.value;
                ci.status == "ACTIVE"
                    && !self.instance_lost(&ci.container_instance_arn, judge_unseen)
                    && placement.selects(&crate::placement::facts(ci))
            })
            .count() as u32
    }
}

fn end_deployment(d: &mut DeploymentRecord, now: f64) {
    d.status = deployment_status::INACTIVE.into();
    d.updated_at = now;
    if d.service_deployment_status == service_deployment_status::IN_PROGRESS
        || d.service_deployment_status == service_deployment_status::PENDING
    {
        d.service_deployment_status = service_deployment_status::STOPPED.into();
        d.stopped_at = Some(now);
    }
    d.finished_at.get_or_insert(now);
}

/// The account id in an ARN (`arn:aws:ecs:{region}:{account}:...`).
fn account_of(arn: &str) -> String {
    arn.split(':').nth(4).unwrap_or("000000000000").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_model::ecs::{status, ContainerDefinition, HealthCheck};

    fn running(started_at: f64, health_check: bool, health_status: Option<&str>) -> TaskSummary {
        let mut t = TaskRecord::default();
        t.task.last_status = status::RUNNING.into();
        t.task.desired_status = status::RUNNING.into();
        t.task.started_at = Some(started_at);
        t.task.health_status = health_status.map(String::from);
        t.containers = vec![ContainerDefinition {
            health_check: health_check.then(HealthCheck::default),
            ..Default::default()
        }];
        TaskSummary::of(&t)
    }

    #[test]
    fn a_task_without_checks_is_healthy_once_it_has_run_a_while() {
        let t = running(100.0, false, None);
        // Just RUNNING: its container may have exited already without the agent knowing.
        assert_eq!(task_state(&t, 100.5), TaskState::Settling);
        assert_eq!(
            task_state(&t, 100.0 + STABLE_AFTER_SECS),
            TaskState::Healthy
        );
        let mut stopping = t.clone();
        stopping.stopping = true;
        assert_eq!(task_state(&stopping, 200.0), TaskState::Stopping);
        let mut pending = t.clone();
        pending.running = false;
        assert_eq!(task_state(&pending, 200.0), TaskState::Starting);
    }

    #[test]
    fn a_task_with_checks_is_healthy_when_they_pass() {
        assert_eq!(
            task_state(&running(100.0, true, Some("HEALTHY")), 100.1),
            TaskState::Healthy
        );
        assert_eq!(
            task_state(&running(100.0, true, Some("UNKNOWN")), 500.0),
            TaskState::Settling
        );
        assert_eq!(
            task_state(&running(100.0, true, Some("UNHEALTHY")), 500.0),
            TaskState::Unhealthy
        );
    }
}
