//! The rolling-update arithmetic of a REPLICA service, as plain functions: given the service's tasks and its
//! deployment configuration, how many tasks of the primary deployment to start and which tasks to stop now.
//! The service controller applies the plan and asks again when anything changes (level-triggered).
//!
//! The rules are ECS's: at most `floor(desired * maximumPercent / 100)` tasks exist at once (tasks still stopping
//! count, so that a sampled count never exceeds the maximum), and stopping a healthy task never takes the healthy
//! count below `ceil(desired * minimumHealthyPercent / 100)`. Tasks of older deployments that are not running yet
//! or fail their health checks go first; a task that runs but has not proven itself yet (see
//! [`TaskState::Settling`]) is neither stopped for free nor counted towards the minimum. A primary deployment above
//! the desired count (a scale-in) loses its least useful tasks regardless of the minimum, as ECS does.

/// Where a service task stands, as far as the rollout cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Placed, not running yet (PROVISIONING, PENDING, ACTIVATING).
    Starting,
    /// RUNNING, not proven yet: its health checks have not reported, or it has none and has run only a moment.
    /// Stopping it is not free (it may well be healthy), but it does not count towards the minimum either (it may
    /// be about to crash: counting it would stop the tasks it replaces for nothing).
    Settling,
    /// RUNNING with its container health checks passing, or without checks and running a while.
    Healthy,
    /// RUNNING with its container health checks failing.
    Unhealthy,
    /// Asked to stop, not STOPPED yet.
    Stopping,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTask {
    pub id: String,
    pub deployment: String,
    pub state: TaskState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutInput<'a> {
    pub desired_count: u32,
    pub minimum_healthy_percent: u32,
    pub maximum_percent: u32,
    /// The deployment whose tasks should run.
    pub primary: &'a str,
    /// Every task of the service that is not STOPPED.
    pub tasks: &'a [ServiceTask],
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RolloutPlan {
    /// Tasks of the primary deployment to start now.
    pub start: u32,
    /// Tasks to stop now, by id.
    pub stop: Vec<String>,
    /// Nothing can move although the rollout is not done: the deployment configuration allows neither a start
    /// nor a stop (ECS writes a service event saying so).
    pub blocked: bool,
}

/// At most this many tasks of the service may exist (rounded down, as ECS).
pub fn maximum_tasks(desired: u32, maximum_percent: u32) -> u32 {
    (desired as u64 * maximum_percent as u64 / 100) as u32
}

/// At least this many tasks must stay healthy (rounded up, as ECS).
pub fn minimum_healthy_tasks(desired: u32, minimum_healthy_percent: u32) -> u32 {
    (desired as u64 * minimum_healthy_percent as u64).div_ceil(100) as u32
}

/// The number of failed tasks after which the circuit breaker fails a deployment: half the desired count,
/// rounded up, kept between 3 and 200.
pub fn failure_threshold(desired: u32) -> u32 {
    desired.div_ceil(2).clamp(3, 200)
}

/// Whether the rollout is over: the primary runs the desired count, all healthy, and nothing else is left.
pub fn is_complete(input: &RolloutInput) -> bool {
    let healthy = input
        .tasks
        .iter()
        .filter(|t| t.deployment == input.primary && t.state == TaskState::Healthy)
        .count() as u32;
    healthy == input.desired_count && input.tasks.len() as u32 == input.desired_count
}

/// What to do now.
pub fn plan(input: &RolloutInput) -> RolloutPlan {
    let desired = input.desired_count;
    let max_total = maximum_tasks(desired, input.maximum_percent);
    let min_healthy = minimum_healthy_tasks(desired, input.minimum_healthy_percent);
    let live = |t: &&ServiceTask| t.state != TaskState::Stopping;
    let is_primary = |t: &&ServiceTask| t.deployment == input.primary;
    let healthy = |t: &ServiceTask| t.state == TaskState::Healthy;
    // Stopping these takes nothing from the service: they do not run, or run and fail their checks.
    let free = |t: &ServiceTask| matches!(t.state, TaskState::Starting | TaskState::Unhealthy);

    let mut stop: Vec<String> = Vec::new();
    let mut healthy_left = input.tasks.iter().filter(|t| healthy(t)).count() as u32;

    // Older deployments: the tasks that are not running or fail their checks cost nothing to stop; healthy ones
    // go only down to the minimum; settling ones wait until they are one or the other.
    let old: Vec<&ServiceTask> = input
        .tasks
        .iter()
        .filter(live)
        .filter(|t| !is_primary(t))
        .collect();
    for t in old.iter().filter(|t| free(t)) {
        stop.push(t.id.clone());
    }
    let mut old_healthy: Vec<&&ServiceTask> = old.iter().filter(|t| healthy(t)).collect();

    // The primary: above the desired count, its least useful tasks go (starting first, then unhealthy).
    let mut primary: Vec<&ServiceTask> =
        input.tasks.iter().filter(live).filter(is_primary).collect();
    primary.sort_by_key(|t| match t.state {
        TaskState::Starting => 0,
        TaskState::Unhealthy => 1,
        TaskState::Settling => 2,
        _ => 3,
    });
    let excess = (primary.len() as u32).saturating_sub(desired) as usize;
    for t in primary.drain(..excess) {
        if healthy(t) {
            healthy_left -= 1;
        }
        stop.push(t.id.clone());
    }

    let mut start = desired.saturating_sub(primary.len() as u32);

    // Stop old healthy tasks down to the minimum: that makes room for new ones.
    while let Some(t) = old_healthy.last() {
        if healthy_left <= min_healthy {
            break;
        }
        healthy_left -= 1;
        stop.push(t.id.clone());
        old_healthy.pop();
    }
    // Room: every task that exists counts, also the ones asked to stop (by this plan or earlier) until they are
    // STOPPED.
    start = start.min(max_total.saturating_sub(input.tasks.len() as u32));

    // Blocked: nothing in flux to wait for, and still nothing may move.
    let settled = input.tasks.iter().all(healthy);
    let blocked = start == 0 && stop.is_empty() && settled && !is_complete(input);
    RolloutPlan {
        start,
        stop,
        blocked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskState::*;

    fn tasks(spec: &[(&str, TaskState, usize)]) -> Vec<ServiceTask> {
        let mut out = Vec::new();
        for (deployment, state, n) in spec {
            for _ in 0..*n {
                out.push(ServiceTask {
                    id: format!("{deployment}-{}", out.len()),
                    deployment: deployment.to_string(),
                    state: *state,
                });
            }
        }
        out
    }

    fn input<'a>(desired: u32, min: u32, max: u32, tasks: &'a [ServiceTask]) -> RolloutInput<'a> {
        RolloutInput {
            desired_count: desired,
            minimum_healthy_percent: min,
            maximum_percent: max,
            primary: "new",
            tasks,
        }
    }

    const UP: TaskState = Healthy;

    #[test]
    fn limits_round_as_ecs() {
        assert_eq!(minimum_healthy_tasks(4, 50), 2);
        assert_eq!(minimum_healthy_tasks(2, 75), 2);
        assert_eq!(minimum_healthy_tasks(3, 50), 2);
        assert_eq!(maximum_tasks(4, 200), 8);
        assert_eq!(maximum_tasks(3, 125), 3);
        assert_eq!(failure_threshold(1), 3);
        assert_eq!(failure_threshold(25), 13);
        assert_eq!(failure_threshold(400), 200);
        assert_eq!(failure_threshold(800), 200);
    }

    #[test]
    fn a_new_service_starts_its_desired_count() {
        let t = tasks(&[]);
        let p = plan(&input(3, 100, 200, &t));
        assert_eq!((p.start, p.stop.len(), p.blocked), (3, 0, false));
    }

    #[test]
    fn replaces_lost_tasks() {
        let t = tasks(&[("new", UP, 2)]);
        assert_eq!(plan(&input(3, 100, 200, &t)).start, 1);
    }

    #[test]
    fn rolls_with_surge_then_stops_old_ones() {
        // 4 old healthy, min 100 max 200: start 4 new, stop nothing yet.
        let t = tasks(&[("old", UP, 4)]);
        let p = plan(&input(4, 100, 200, &t));
        assert_eq!((p.start, p.stop.len()), (4, 0));
        // New ones healthy: all old ones may go.
        let t = tasks(&[("old", UP, 4), ("new", UP, 4)]);
        let p = plan(&input(4, 100, 200, &t));
        assert_eq!((p.start, p.stop.len()), (0, 4));
        assert!(p.stop.iter().all(|id| id.starts_with("old")));
    }

    #[test]
    fn rolls_without_surge_by_stopping_down_to_the_minimum() {
        // min 50 max 100, 4 old: stop 2 first, start none (no room until they are gone).
        let t = tasks(&[("old", UP, 4)]);
        let p = plan(&input(4, 50, 100, &t));
        assert_eq!((p.start, p.stop.len()), (0, 2));
        // Once the two are stopped: start 2.
        let t = tasks(&[("old", UP, 2)]);
        let p = plan(&input(4, 50, 100, &t));
        assert_eq!((p.start, p.stop.len()), (2, 0));
        // While they are still stopping, they still count against the maximum.
        let t = tasks(&[("old", UP, 2), ("old", Stopping, 2)]);
        assert_eq!(plan(&input(4, 50, 100, &t)).start, 0);
    }

    #[test]
    fn unhealthy_old_tasks_go_at_once() {
        let t = tasks(&[("old", Unhealthy, 2), ("old", Starting, 1)]);
        let p = plan(&input(3, 100, 200, &t));
        assert_eq!(p.stop.len(), 3);
        assert_eq!(p.start, 3);
    }

    #[test]
    fn scale_in_stops_the_least_useful_first() {
        let t = tasks(&[("new", UP, 3), ("new", Starting, 1), ("new", Unhealthy, 1)]);
        let p = plan(&input(3, 100, 200, &t));
        assert_eq!(p.start, 0);
        assert_eq!(p.stop, vec!["new-3".to_string(), "new-4".to_string()]);
        // Down to zero, whatever the minimum.
        let p = plan(&input(0, 100, 200, &t));
        assert_eq!(p.stop.len(), 5);
    }

    #[test]
    fn a_configuration_that_allows_nothing_is_blocked() {
        let t = tasks(&[("old", UP, 2)]);
        let p = plan(&input(2, 100, 100, &t));
        assert_eq!((p.start, p.stop.len(), p.blocked), (0, 0, true));
    }

    #[test]
    fn completes_when_only_the_primary_runs_healthy() {
        let t = tasks(&[("new", UP, 2)]);
        assert!(is_complete(&input(2, 100, 200, &t)));
        let t = tasks(&[("new", UP, 2), ("old", Stopping, 1)]);
        assert!(!is_complete(&input(2, 100, 200, &t)));
        let t = tasks(&[("new", UP, 1), ("new", Starting, 1)]);
        assert!(!is_complete(&input(2, 100, 200, &t)));
    }

    #[test]
    fn settling_old_tasks_are_not_stopped_for_free() {
        // The previous deployment's six tasks all just started (one replaced a killed task, or it is itself
        // still rolling out): none is proven, none fails. Nothing of it stops until they prove themselves.
        let t = tasks(&[("old", Settling, 6)]);
        let p = plan(&input(6, 50, 150, &t));
        assert_eq!((p.start, p.stop.len(), p.blocked), (3, 0, false));
        // One settling among healthy ones: the healthy go down to the minimum, the settling one stays.
        let t = tasks(&[("old", UP, 5), ("old", Settling, 1)]);
        let p = plan(&input(6, 50, 150, &t));
        assert_eq!(p.stop.len(), 2);
        assert!(!p.stop.contains(&"old-5".to_string()));
        // Starting and failing ones still go at once.
        let t = tasks(&[
            ("old", Starting, 1),
            ("old", Unhealthy, 1),
            ("old", Settling, 1),
        ]);
        assert_eq!(plan(&input(3, 100, 200, &t)).stop, vec!["old-0", "old-1"]);
    }

    #[test]
    fn settling_primary_tasks_do_not_replace_healthy_ones() {
        // Four new tasks run but are not proven: the old healthy ones stay at the minimum (here all of them).
        let t = tasks(&[("old", UP, 4), ("new", Settling, 4)]);
        let p = plan(&input(4, 100, 200, &t));
        assert_eq!((p.start, p.stop.len(), p.blocked), (0, 0, false));
        // A scale-in drops settling ones before healthy ones.
        let t = tasks(&[("new", UP, 2), ("new", Settling, 1)]);
        assert_eq!(plan(&input(2, 100, 200, &t)).stop, vec!["new-2"]);
    }

    /// Simulates whole rollouts step by step for many configurations, starting from an older deployment with none,
    /// one or all of its tasks still settling (the update came while it was itself rolling out or replacing a
    /// task). Each step, stopping tasks go, tasks asked to stop stop, starting ones settle and settling ones become
    /// healthy. At every step at most the maximum exist, at least the minimum run (healthy or settling, not asked
    /// to stop), and the rollout finishes.
    #[test]
    fn rollouts_respect_the_limits_and_finish() {
        for desired in 0..8u32 {
            for min in [0u32, 25, 50, 75, 100] {
                for max in [100u32, 125, 150, 200] {
                    for settling in [0, 1, desired as usize] {
                        simulate(desired, min, max, settling.min(desired as usize));
                    }
                }
            }
        }
    }

    fn simulate(desired: u32, min: u32, max: u32, settling: usize) {
        let case = format!("d{desired} min{min} max{max} settling{settling}");
        // Neither a stop nor a start is allowed: blocked once nothing is in flux (tested above).
        let stuck = minimum_healthy_tasks(desired, min) >= desired
            && maximum_tasks(desired, max) <= desired;
        let mut t = tasks(&[
            ("old", Settling, settling),
            ("old", UP, desired as usize - settling),
        ]);
        let running = |t: &[ServiceTask]| {
            t.iter()
                .filter(|x| matches!(x.state, UP | Settling))
                .count() as u32
        };
        let mut next = 1000;
        let mut steps = 0;
        loop {
            let i = input(desired, min, max, &t);
            if is_complete(&i) {
                break;
            }
            let p = plan(&i);
            let settled = t.iter().all(|x| x.state == UP);
            assert_eq!(p.blocked, stuck && settled, "{case} {t:?}");
            if p.blocked {
                break;
            }
            // Apply: stopping tasks go, stopped ones are asked, the others move one state on.
            t.retain(|x| x.state != Stopping);
            for x in t.iter_mut() {
                x.state = if p.stop.contains(&x.id) {
                    Stopping
                } else {
                    match x.state {
                        Starting => Settling,
                        Settling => UP,
                        s => s,
                    }
                };
            }
            assert!(
                running(&t) >= minimum_healthy_tasks(desired, min),
                "under min: {case} {t:?}"
            );
            for _ in 0..p.start {
                next += 1;
                t.push(ServiceTask {
                    id: format!("new-{next}"),
                    deployment: "new".into(),
                    state: Starting,
                });
            }
            assert!(
                t.len() as u32 <= maximum_tasks(desired, max),
                "over max: {case} {t:?}"
            );
            steps += 1;
            assert!(steps < 50, "no progress: {case}");
        }
    }
}
