//! The task lifecycle end to end with the in-memory runtime and server.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gantry_model::agent::{TaskSpec, TaskStateChange};
use gantry_model::ecs::{
    status, stop_code, ContainerDefinition, ContainerDependency, HealthCheck, LogConfiguration,
    MountPoint, PortMapping, Volume,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::runtime::{FakeBehaviour, FakeRuntime, Health};
use crate::testing::FakeApi;
use crate::translate::{LABEL_INSTANCE, LABEL_TASK_ARN};
use crate::{Agent, AgentConfig, AgentRunError};

const WAIT: Duration = Duration::from_secs(5);
const IMAGE: &str = "busybox:latest";

fn config(dir: &Path) -> AgentConfig {
    let mut config = AgentConfig::new("default", dir);
    config.poll_wait = Duration::from_millis(200);
    config.watch_interval = Duration::from_millis(10);
    config.retry_initial = Duration::from_millis(10);
    config.retry_max = Duration::from_millis(50);
    config.log_flush_interval = Duration::from_millis(30);
    config.log_drain_timeout = Duration::from_secs(2);
    config.task_cleanup_wait = Duration::ZERO;
    config
}

/// A data dir removed when the test ends.
struct DataDir(PathBuf);

impl std::ops::Deref for DataDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn data_dir() -> DataDir {
    let id = uuid::Uuid::new_v4().simple();
    DataDir(std::env::temp_dir().join(format!("gantry-agent-test-{id}")))
}

struct Running {
    shutdown: Option<oneshot::Sender<()>>,
    join: JoinHandle<Result<(), AgentRunError>>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let result = tokio::time::timeout(WAIT, &mut self.join).await;
        assert!(
            matches!(result, Ok(Ok(Ok(())))),
            "agent ended badly: {result:?}"
        );
    }
}

fn start_agent(api: &Arc<FakeApi>, runtime: &Arc<FakeRuntime>, dir: &Path) -> Running {
    start_agent_with(api, runtime, config(dir))
}

fn start_agent_with(
    api: &Arc<FakeApi>,
    runtime: &Arc<FakeRuntime>,
    config: AgentConfig,
) -> Running {
    let (tx, rx) = oneshot::channel::<()>();
    let agent = Agent::new(api.clone(), runtime.clone(), config);
    let join = tokio::spawn(agent.run_until(async {
        let _ = rx.await;
    }));
    Running {
        shutdown: Some(tx),
        join,
    }
}

fn container(name: &str) -> ContainerDefinition {
    ContainerDefinition {
        name: Some(name.into()),
        image: Some(IMAGE.into()),
        ..Default::default()
    }
}

fn depends(mut def: ContainerDefinition, on: &str, condition: &str) -> ContainerDefinition {
    def.depends_on
        .get_or_insert_with(Vec::new)
        .push(ContainerDependency {
            container_name: on.into(),
            condition: condition.into(),
        });
    def
}

fn health_check() -> Option<HealthCheck> {
    Some(HealthCheck {
        command: vec!["CMD-SHELL".into(), "true".into()],
        ..Default::default()
    })
}

fn task(id: &str, containers: Vec<ContainerDefinition>) -> TaskSpec {
    TaskSpec {
        task_arn: format!("arn:aws:ecs:us-east-1:000000000000:task/default/{id}"),
        cluster_arn: "arn:aws:ecs:us-east-1:000000000000:cluster/default".into(),
        cluster_name: "default".into(),
        family: "web".into(),
        revision: 1,
        desired_status: status::RUNNING.into(),
        last_status: status::PENDING.into(),
        network_mode: "bridge".into(),
        containers,
        ..Default::default()
    }
}

fn setup() -> (Arc<FakeApi>, Arc<FakeRuntime>, DataDir) {
    let runtime = FakeRuntime::new();
    runtime.add_image(IMAGE);
    (Arc::new(FakeApi::new()), Arc::new(runtime), data_dir())
}

fn container_of<'a>(
    report: &'a TaskStateChange,
    name: &str,
) -> &'a gantry_model::agent::ContainerStateChange {
    report
        .containers
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} in {report:?}"))
}

fn running_report(api: &FakeApi, arn: &str) -> TaskStateChange {
    api.reports_for(arn)
        .into_iter()
        .find(|r| r.last_status == status::RUNNING)
        .expect("a RUNNING report")
}

fn position(calls: &[String], call: &str) -> usize {
    calls
        .iter()
        .position(|c| c == call)
        .unwrap_or_else(|| panic!("no call {call} in {calls:?}"))
}

#[tokio::test]
async fn starts_in_dependency_order_and_reports_running() {
    let (api, runtime, dir) = setup();
    runtime.behave(
        "db",
        FakeBehaviour {
            health_on_start: Some(Health::Starting),
            ..Default::default()
        },
    );
    runtime.behave(
        "init",
        FakeBehaviour {
            exit_on_start: Some(0),
            ..Default::default()
        },
    );
    let mut db = container("db");
    db.health_check = health_check();
    let mut web = depends(
        depends(container("web"), "db", "HEALTHY"),
        "init",
        "SUCCESS",
    );
    web.port_mappings = vec![PortMapping {
        container_port: Some(80),
        host_port: Some(49200),
        ..Default::default()
    }];
    let mut init = depends(container("init"), "db", "START");
    init.essential = Some(false);
    let t = task("t1", vec![web, db, init]);
    api.set_tasks(vec![t.clone()]);
    let agent = start_agent(&api, &runtime, &dir);

    assert!(
        api.wait_for(WAIT, |_| runtime
            .calls()
            .contains(&"start init".to_string()))
            .await
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !runtime.calls().contains(&"start web".to_string()),
        "web waits for db to be healthy"
    );
    runtime.set_health("db", Health::Healthy);
    assert!(
        api.wait_for_status(&t.task_arn, status::RUNNING, WAIT)
            .await
    );

    let calls = runtime.calls();
    assert!(
        !calls.iter().any(|c| c.starts_with("pull")),
        "images in the local store are not pulled: {calls:?}"
    );
    assert!(position(&calls, "start db") < position(&calls, "start init"));
    assert!(position(&calls, "start init") < position(&calls, "start web"));

    let pending = &api.reports_for(&t.task_arn)[0];
    assert_eq!(pending.last_status, status::PENDING);
    assert!(pending.pull_started_at.is_some() && pending.pull_stopped_at.is_some());

    let running = running_report(&api, &t.task_arn);
    assert!(running.started_at.is_some());
    assert_eq!(running.health_status.as_deref(), Some("HEALTHY"));
    let web = container_of(&running, "web");
    assert_eq!(web.last_status, status::RUNNING);
    assert!(web.runtime_id.is_some());
    assert_eq!(web.network_bindings.len(), 1);
    assert_eq!(web.network_bindings[0].host_port, Some(49200));
    assert_eq!(web.network_bindings[0].bind_ip.as_deref(), Some("0.0.0.0"));
    assert_eq!(
        container_of(&running, "db").health_status.as_deref(),
        Some("HEALTHY")
    );
    let init = container_of(&running, "init");
    assert_eq!(
        (init.last_status.as_str(), init.exit_code),
        (status::STOPPED, Some(0))
    );

    let labels = runtime.live_containers()[0]
        .spec
        .config
        .labels
        .clone()
        .unwrap_or_default();
    assert_eq!(labels.get(LABEL_TASK_ARN), Some(&t.task_arn));
    assert_eq!(
        labels.get(LABEL_INSTANCE),
        api.container_instance_arn().as_ref()
    );
    agent.stop().await;
    assert_eq!(
        runtime.live_containers().len(),
        3,
        "stopping the agent leaves containers alone"
    );
}

#[tokio::test]
async fn essential_exit_stops_the_others() {
    let (api, runtime, dir) = setup();
    runtime.behave(
        "side",
        FakeBehaviour {
            ignores_sigterm: true,
            ..Default::default()
        },
    );
    let mut side = container("side");
    side.stop_timeout = Some(7);
    let t = task("t2", vec![container("app"), side]);
    api.set_tasks(vec![t.clone()]);
    let agent = start_agent(&api, &runtime, &dir);
    assert!(
        api.wait_for_status(&t.task_arn, status::RUNNING, WAIT)
            .await
    );

    assert_eq!(runtime.exit("app", 3), 1);
    assert!(
        api.wait_for_status(&t.task_arn, status::STOPPED, WAIT)
            .await
    );
    let stopped = api.stopped_report(&t.task_arn).unwrap();
    assert_eq!(
        stopped.stop_code.as_deref(),
        Some(stop_code::ESSENTIAL_CONTAINER_EXITED)
    );
    assert_eq!(
        stopped.stopped_reason.as_deref(),
        Some("Essential container in task exited")
    );
    assert!(stopped.execution_stopped_at.is_some());
    assert_eq!(container_of(&stopped, "app").exit_code, Some(3));
    assert_eq!(container_of(&stopped, "side").exit_code, Some(137));
    assert!(stopped
        .containers
        .iter()
        .all(|c| c.last_status == status::STOPPED));
    let side = runtime
        .live_containers()
        .into_iter()
        .find(|c| c.ecs_name() == "side")
        .unwrap();
    assert_eq!(side.stops, vec![Some(Duration::from_secs(7))]);
    agent.stop().await;
}

#[tokio::test]
async fn a_non_essential_exit_is_reported_for_that_container_only() {
    let (api, runtime, dir) = setup();
    let mut job = container("job");
    job.essential = Some(false);
    let t = task("t3", vec![container("app"), job]);
    api.set_tasks(vec![t.clone()]);
    let agent = start_agent(&api, &runtime, &dir);
    assert!(
        api.wait_for_status(&t.task_arn, status::RUNNING, WAIT)
            .await
    );
    let before = api.reports_for(&t.task_arn).len();
    runtime.exit("job", 2);
    assert!(
        api.wait_for(WAIT, |api| api.reports_for(&t.task_arn).len() > before)
            .await
    );
    let report = api.reports_for(&t.task_arn).pop().unwrap();
    assert_eq!(report.last_status, status::RUNNING);
    assert_eq!(report.containers.len(), 1);
    assert_eq!(report.containers[0].name, "job");
    assert_eq!(report.containers[0].exit_code, Some(2));
    assert_eq!(report.containers[0].last_status, status::STOPPED);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(api.stopped_report(&t.task_arn).is_none());
    agent.stop().await;
}

#[tokio::test]
async fn a_stop_from_the_server_honours_stop_timeouts_and_keeps_its_reason() {
    let (api, runtime, dir) = setup();
    runtime.behave(
        "stubborn",
        FakeBehaviour {
            ignores_sigterm: true,
            ..Default::default()
        },
    );
    let mut stubborn = container("stubborn");
    stubborn.stop_timeout = Some(2);
    let t = task("t4", vec![container("app"), stubborn]);
    api.set_tasks(vec![t.clone()]);
    let agent = start_agent(&api, &runtime, &dir);
    assert!(
        api.wait_for_status(&t.task_arn, status::RUNNING, WAIT)
            .await
    );

    api.stop_task(
        &t.task_arn,
        stop_code::USER_INITIATED,
        "Task stopped by user",
    );
    assert!(
        api.wait_for_status(&t.task_arn, status::STOPPED, WAIT)
            .await
    );
    let stopped = api.stopped_report(&t.task_arn).unwrap();
    assert_eq!(
        stopped.stop_code.as_deref(),
        Some(stop_code::USER_INITIATED)
    );
    assert_eq!(
        stopped.stopped_reason.as_deref(),
        Some("Task stopped by user")
    );
    assert_eq!(container_of(&stopped, "app").exit_code, Some(143));
    assert_eq!(container_of(&stopped, "stubborn").exit_code, Some(137));
    for c in runtime.live_containers() {
        let expected = if c.ecs_name() == "stubborn" { 2 } else { 30 };
        assert_eq!(
            c.stops,
            vec![Some(Duration::from_secs(expected))],
            "{}",
            c.ecs_name()
        );
    }

    // Once the server forgets the task, its containers go.
    api.remove_task(&t.task_arn);
    assert!(
        api.wait_for(WAIT, |_| runtime.live_containers().is_empty())
            .await
    );
    agent.stop().await;
}

#[tokio::test]
async fn a_failed_pull_fails_the_task() {
    let (api, runtime, dir) = setup();
    runtime.fail_pull(
        "ghost:1",
        "manifest for ghost:1 not found: manifest unknown",
    );
    let mut ghost = container("ghost");
    ghost.image = Some("ghost:1".into());
    let t = task("t5", vec![container("app"), ghost]);
    api.set_tasks(vec![t.clone()]);
    let agent = start_agent(&api, &runtime, &dir);
    assert!(
        api.wait_for_status(&t.task_arn, status::STOPPED, WAIT)
            .await
    );
    let stopped = api.stopped_report(&t.task_arn).unwrap();
    assert_eq!(
        stopped.stop_code.as_deref(),
        Some(stop_code::TASK_FAILED_TO_START)
    );
    assert_eq!(
        stopped.stopped_reason.as_deref(),
        Some("CannotPullContainerError: manifest for ghost:1 not found: manifest unknown")
    );
    assert!(stopped.pull_started_at.is_some() && stopped.pull_stopped_at.is_some());
    let ghost = container_of(&stopped, "ghost");
    assert_eq!(ghost.last_status, status::STOPPED);
    assert!(ghost
        .reason
        .as_deref()
        .is_some_and(|r| r.starts_with("CannotPullContainerError")));
    assert!(
        runtime.containers().is_empty(),
        "nothing is created: {:?}",
        runtime.calls()
    );
    agent.stop().await;
}

#[tokio::test]
async fn images_of_the_servers_registry_are_pulled_with_its_credentials() {
    let (api, runtime, dir) = setup();
    api.set_registry_credentials(gantry_model::agent::RegistryCredentials {
        server: "localhost:4566".into(),
        username: "AWS".into(),
        password: "token".into(),
    });
    let mut own = container("own");
    own.image = Some("localhost:4566/web:1".into());
    let mut other = container("other");
    other.image = Some("elsewhere.example/web:1".into());
    let t = task("t6", vec![own, other]);
    api.set_tasks(vec![t.clone()]);
    let agent = start_agent(&api, &runtime, &dir);
    assert!(
        api.wait_for_status(&t.task_arn, status::RUNNING, WAIT)
            .await
    );
    let pulls: Vec<String> = runtime
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("pull "))
        .collect();
    assert_eq!(
        pulls,
        vec![
            "pull localhost:4566/web:1 as AWS".to_string(),
            "pull elsewhere.example/web:1".to_string()
        ]
    );
    agent.stop().await;
}

#[tokio::test]
async fn a_dependency_that_can_never_be_met_fails_the_task() {
    let (api, runtime, dir) = setup();
    runtime.behave(
        "migrate",
        FakeBehaviour {
            exit_on_start: Some(1),
            ..Default::default()
        },
    );
    let mut migrate = container("migrate");
    migrate.essential = Some(false);
    let t = task(
        "t6",
        vec![depends(container("app"), "migrate", "SUCCESS"), migrate],
    );
    api.set_tasks(vec![t.clone()]);
    let agent = start_agent(&api, &runtime, &dir);
    assert!(
        api.wait_for_status(&t.task_arn, status::STOPPED, WAIT)
            .await
    );
    let stopped = api.stopped_report(&t.task_arn).unwrap();
    assert_eq!(
        stopped.stop_code.as_deref(),
        Some(stop_code::TASK_FAILED_TO_START)
    );
    assert!(
        stopped
            .stopped_reason
            .as_deref()
            .is_some_and(|r| r.starts_with("DependencyError")),
        "{stopped:?}"
    );
    assert_eq!(container_of(&stopped, "migrate").exit_code, Some(1));
    assert_eq!(container_of(&stopped, "app").exit_code, None);
    assert!(!runtime.calls().contains(&"start app".to_string()));
    agent.stop().await;
}

#[tokio::test]
async fn a_task_stopped_before_it_started_is_reported_without_running_anything() {
    let (api, runtime, dir) = setup();
    let mut t = task("t7", vec![container("app")]);
    t.desired_status = status::STOPPED.into();
    t.stop_code = Some(stop_code::USER_INITIATED.into());
    api.set_tasks(vec![t.clone()]);
    let agent = start_agent(&api, &runtime, &dir);
    assert!(
        api.wait_for_status(&t.task_arn, status::STOPPED, WAIT)
            .await
    );
    assert_eq!(
        api.stopped_report(&t.task_arn)
            .unwrap()
            .stop_code
            .as_deref(),
        Some(stop_code::USER_INITIATED)
    );
    assert!(runtime.containers().is_empty());
    agent.stop().await;
}

#[tokio::test]
async fn health_changes_are_reported() {
    let (api, runtime, dir) = setup();
    runtime.behave(
        "app",
        FakeBehaviour {
            health_on_start: Some(Health::Starting),
            ..Default::default()
        },
    );
    let mut app = container("app");
    app.health_check = health_check();
    let t = task("t8", vec![app, container("side")]);
    api.set_tasks(vec![t.clone()]);
    let agent = start_agent(&api, &runtime, &dir);
    assert!(
        api.wait_for_status(&t.task_arn, status::RUNNING, WAIT)
            .await
    );
    let running = running_report(&api, &t.task_arn);
    assert_eq!(running.health_status.as_deref(), Some("UNKNOWN"));
    assert_eq!(
        container_of(&running, "app").health_status.as_deref(),
        Some("UNKNOWN")
    );
    assert_eq!(container_of(&running, "side").health_status, None);

    runtime.set_health("app", Health::Healthy);
    let healthy = |api: &FakeApi| {
        api.reports_for(&t.task_arn)
            .last()
            .is_some_and(|r| r.health_status.as_deref() == Some("HEALTHY"))
    };
    assert!(api.wait_for(WAIT, healthy).await);
    let report = api.reports_for(&t.task_arn).pop().unwrap();
    assert_eq!(report.containers.len(), 1);
    assert_eq!(
        report.containers[0].health_status.as_deref(),
        Some("HEALTHY")
    );

    runtime.set_health("app", Health::Unhealthy);
    let unhealthy = |api: &FakeApi| {
        api.reports_for(&t.task_arn)
            .last()
            .is_some_and(|r| r.health_status.as_deref() == Some("UNHEALTHY"))
    };
    assert!(api.wait_for(WAIT, unhealthy).await);
    agent.stop().await;
}

#[tokio::test]
async fn a_restarted_agent_keeps_its_identity_and_adopts_running_containers() {
    let (api, runtime, dir) = setup();
    let t = task("t9", vec![container("app"), container("side")]);
    api.set_tasks(vec![t.clone()]);
    let agent = start_agent(&api, &runtime, &dir);
    assert!(
        api.wait_for_status(&t.task_arn, status::RUNNING, WAIT)
            .await
    );
    agent.stop().await;
    let calls_before = runtime.calls().len();
    let reports_before = api.reports().len();

    let agent = start_agent(&api, &runtime, &dir);
    assert!(
        api.wait_for(WAIT, |api| api.reports().len() > reports_before)
            .await
    );
    let registrations = api.registrations();
    assert_eq!(registrations.len(), 2);
    assert_eq!(registrations[1].instance_id, registrations[0].instance_id);
    assert_eq!(
        registrations[1].container_instance_arn,
        api.container_instance_arn()
    );
    let new_calls = runtime.calls()[calls_before..].to_vec();
    assert!(
        new_calls.is_empty(),
        "nothing created or started twice: {new_calls:?}"
    );
    let report = api.reports().pop().unwrap();
    assert_eq!(report.last_status, status::RUNNING);
    assert!(
        report.started_at.is_none(),
        "the start time stays the server's"
    );

    api.stop_task(&t.task_arn, stop_code::USER_INITIATED, "bye");
    assert!(
        api.wait_for_status(&t.task_arn, status::STOPPED, WAIT)
            .await
    );
    assert_eq!(
        container_of(&api.stopped_report(&t.task_arn).unwrap(), "app").exit_code,
        Some(143)
    );
    agent.stop().await;
}

#[tokio::test]
async fn containers_that_exited_while_the_agent_was_away_are_reported_with_their_exit_codes() {
    let (api, runtime, dir) = setup();
    let t = task("t10", vec![container("app"), container("side")]);
    api.set_tasks(vec![t.clone()]);
    let agent = start_agent(&api, &runtime, &dir);
    assert!(
        api.wait_for_status(&t.task_arn, status::RUNNING, WAIT)
            .await
    );
    agent.stop().await;
    runtime.exit("app", 5);
    let calls_before = runtime.calls().len();

    let agent = start_agent(&api, &runtime, &dir);
    assert!(
        api.wait_for_status(&t.task_arn, status::STOPPED, WAIT)
            .await
    );
    let stopped = api.stopped_report(&t.task_arn).unwrap();
    assert_eq!(
        stopped.stop_code.as_deref(),
        Some(stop_code::ESSENTIAL_CONTAINER_EXITED)
    );
    assert_eq!(container_of(&stopped, "app").exit_code, Some(5));
    assert_eq!(container_of(&stopped, "side").exit_code, Some(143));
    let new_calls = runtime.calls()[calls_before..].to_vec();
    assert_eq!(new_calls, vec!["stop side".to_string()]);
    agent.stop().await;
}

#[tokio::test]
async fn orphans_are_removed_and_other_instances_containers_are_left_alone() {
    let (api, runtime, dir) = setup();
    let t = task("t11", vec![container("app")]);
    api.set_tasks(vec![t.clone()]);
    let agent = start_agent(&api, &runtime, &dir);
    assert!(
        api.wait_for_status(&t.task_arn, status::RUNNING, WAIT)
            .await
    );
    agent.stop().await;

    // Another agent on the same host, with its own server-side identity.
    let other_api = Arc::new(FakeApi::new());
    let other = task("t12", vec![container("app")]);
    other_api.set_tasks(vec![other.clone()]);
    let other_dir = data_dir();
    let other_agent = start_agent(&other_api, &runtime, &other_dir);
    assert!(
        other_api
            .wait_for_status(&other.task_arn, status::RUNNING, WAIT)
            .await
    );
    other_agent.stop().await;

    // The server forgot t11 while the first agent was away.
    api.set_tasks(vec![]);
    let agent = start_agent(&api, &runtime, &dir);
    let gone = |_: &FakeApi| {
        runtime
            .live_containers()
            .iter()
            .all(|c| c.label(LABEL_TASK_ARN) != Some(&t.task_arn))
    };
    assert!(api.wait_for(WAIT, gone).await);
    let removed = runtime
        .containers()
        .into_iter()
        .find(|c| c.label(LABEL_TASK_ARN) == Some(&t.task_arn))
        .unwrap();
    assert_eq!(
        removed.stops,
        vec![None],
        "an orphan stops with its own stop timeout"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(runtime.live_containers().len(), 1);
    assert_eq!(
        runtime.live_containers()[0].label(LABEL_TASK_ARN),
        Some(other.task_arn.as_str())
    );
    assert!(api.reports().iter().all(|r| r.task_arn == t.task_arn));
    agent.stop().await;
}

#[tokio::test]
async fn containers_of_an_ended_task_stay_for_the_cleanup_wait() {
    let (api, runtime, dir) = setup();
    let t = task("t20", vec![container("app")]);
    api.set_tasks(vec![t.clone()]);
    api.drop_stopped_tasks(true);
    let mut config = config(&dir);
    config.task_cleanup_wait = Duration::from_millis(700);
    let agent = start_agent_with(&api, &runtime, config);
    assert!(
        api.wait_for_status(&t.task_arn, status::RUNNING, WAIT)
            .await
    );
    runtime.exit("app", 3);
    assert!(
        api.wait_for_status(&t.task_arn, status::STOPPED, WAIT)
            .await
    );
    // Kept for inspection a while...
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(runtime.live_containers().len(), 1);
    // ...then removed.
    assert!(
        api.wait_for(WAIT, |_| runtime.live_containers().is_empty())
            .await
    );
    agent.stop().await;
}

#[tokio::test]
async fn task_volumes_are_created_and_removed_with_the_task() {
    let (api, runtime, dir) = setup();
    let mut app = container("app");
    app.mount_points = vec![MountPoint {
        source_volume: Some("scratch".into()),
        container_path: Some("/scratch".into()),
        read_only: None,
    }];
    let mut t = task("t13", vec![app]);
    t.volumes = vec![Volume {
        name: Some("scratch".into()),
        ..Default::default()
    }];
    api.set_tasks(vec![t.clone()]);
    api.drop_stopped_tasks(true);
    let agent = start_agent(&api, &runtime, &dir);
    assert!(
        api.wait_for_status(&t.task_arn, status::RUNNING, WAIT)
            .await
    );
    assert_eq!(runtime.volumes(), vec!["ecs-t13-scratch".to_string()]);
    let binds = runtime.live_containers()[0]
        .spec
        .config
        .host_config
        .clone()
        .unwrap()
        .binds
        .unwrap();
    assert_eq!(binds, vec!["ecs-t13-scratch:/scratch".to_string()]);
    runtime.exit("app", 0);
    assert!(
        api.wait_for(WAIT, |_| runtime.live_containers().is_empty()
            && runtime.volumes().is_empty())
            .await
    );
    agent.stop().await;
}

#[tokio::test]
async fn logs_are_shipped_and_resumed_after_a_restart_without_duplicates() {
    let (api, runtime, dir) = setup();
    let mut app = container("app");
    app.log_configuration = Some(LogConfiguration {
        log_driver: "awslogs".into(),
        options: Some(
            [
                ("awslogs-group".to_string(), "/ecs/web".to_string()),
                ("awslogs-stream-prefix".to_string(), "web".to_string()),
            ]
            .into(),
        ),
        secret_options: None,
    });
    let t = task("t14", vec![app]);
    api.set_tasks(vec![t.clone()]);
    let stream = "web/app/t14";
    let agent = start_agent(&api, &runtime, &dir);
    assert!(
        api.wait_for_status(&t.task_arn, status::RUNNING, WAIT)
            .await
    );
    for i in 0..5 {
        runtime.log("app", &format!("line {i}"));
    }
    assert!(
        api.wait_for(WAIT, |api| api.log_events("/ecs/web", stream).len() == 5)
            .await
    );
    agent.stop().await;

    for i in 5..8 {
        runtime.log("app", &format!("line {i}"));
    }
    let agent = start_agent(&api, &runtime, &dir);
    assert!(
        api.wait_for(WAIT, |api| api.log_events("/ecs/web", stream).len() >= 8)
            .await
    );
    runtime.log("app", "line 8");
    assert!(
        api.wait_for(WAIT, |api| api.log_events("/ecs/web", stream).len() >= 9)
            .await
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let messages: Vec<String> = api
        .log_events("/ecs/web", stream)
        .into_iter()
        .map(|e| e.message)
        .collect();
    let expected: Vec<String> = (0..9).map(|i| format!("line {i}")).collect();
    assert_eq!(messages, expected);
    let batches = api.batches();
    assert!(batches
        .iter()
        .all(|b| b.cursor.is_some() && !b.create_group));
    agent.stop().await;
}

#[tokio::test]
async fn the_agent_reconnects_after_server_errors() {
    let (api, runtime, dir) = setup();
    api.fail_next(3);
    let t = task("t15", vec![container("app")]);
    api.set_tasks(vec![t.clone()]);
    let agent = start_agent(&api, &runtime, &dir);
    assert!(
        api.wait_for_status(&t.task_arn, status::RUNNING, WAIT)
            .await
    );
    api.fail_next(2);
    runtime.exit("app", 0);
    assert!(
        api.wait_for_status(&t.task_arn, status::STOPPED, WAIT)
            .await
    );
    agent.stop().await;
}

#[tokio::test]
async fn deregistration_ends_the_agent() {
    let (api, runtime, dir) = setup();
    let agent = start_agent(&api, &runtime, &dir);
    assert!(
        api.wait_for(WAIT, |api| !api.registrations().is_empty())
            .await
    );
    api.deregister();
    let result = tokio::time::timeout(WAIT, agent.join).await;
    assert!(matches!(result, Ok(Ok(Ok(())))));
    let saved = crate::state_file::load(&dir).unwrap().unwrap();
    assert_eq!(saved.container_instance_arn, api.container_instance_arn());
    assert_eq!(api.registrations()[0].cpu, 2048);
    assert_eq!(api.registrations()[0].memory, 4096);
}

fn awsvpc_task(id: &str) -> TaskSpec {
    let mut t = task(id, vec![container("app"), container("side")]);
    t.network_mode = "awsvpc".into();
    t.network = Some(gantry_model::ecs::TaskNetwork {
        attachment_id: "att-1".into(),
        network_interface_id: "eni-1".into(),
        subnet_id: "subnet-0123456789abcdef0".into(),
        vpc_id: "vpc-1".into(),
        subnet_cidr: "172.31.0.0/20".into(),
        private_ipv4_address: "172.31.0.9".into(),
        mac_address: "0e:00:00:00:00:01".into(),
        private_dns_name: "ip-172-31-0-9.ec2.internal".into(),
        security_groups: vec!["sg-1".into()],
    });
    t
}

#[tokio::test]
async fn an_awsvpc_task_runs_in_its_pause_container_namespace_and_adopts_it_after_a_restart() {
    let (api, runtime, dir) = setup();
    let t = awsvpc_task("v1");
    api.set_tasks(vec![t.clone()]);
    let agent = start_agent(&api, &runtime, &dir);
    assert!(
        api.wait_for_status(&t.task_arn, status::RUNNING, WAIT)
            .await
    );
    let calls = runtime.calls();
    let pause = crate::pause::PAUSE_CONTAINER_NAME;
    // The image is made, not pulled; the network and the pause container come before the task's containers.
    assert!(
        position(&calls, &format!("import {}", crate::pause::PAUSE_IMAGE))
            < position(&calls, &format!("create {pause}"))
    );
    assert!(
        position(&calls, "ensure network gantry-subnet-0123456789abcdef0")
            < position(&calls, &format!("create {pause}"))
    );
    assert!(position(&calls, &format!("start {pause}")) < position(&calls, "create app"));
    let live = runtime.live_containers();
    let pause_name = live
        .iter()
        .find(|c| c.ecs_name() == pause)
        .map(|c| c.spec.name.clone())
        .unwrap();
    for c in live.iter().filter(|c| c.ecs_name() != pause) {
        let mode = c
            .spec
            .config
            .host_config
            .as_ref()
            .and_then(|h| h.network_mode.clone());
        assert_eq!(mode, Some(format!("container:{pause_name}")));
    }
    assert_eq!(runtime.networks()[0].gateway, "172.31.0.1");

    // A restarted agent adopts the pause container with the rest.
    agent.stop().await;
    let calls_before = runtime.calls().len();
    let reports_before = api.reports().len();
    let agent = start_agent(&api, &runtime, &dir);
    assert!(
        api.wait_for(WAIT, |api| api.reports().len() > reports_before)
            .await
    );
    let new_calls = runtime.calls()[calls_before..].to_vec();
    assert!(new_calls.is_empty(), "nothing made twice: {new_calls:?}");

    // Stopping: the task's containers, then the pause container (at once: it ignores SIGTERM), then its network.
    api.stop_task(&t.task_arn, stop_code::USER_INITIATED, "bye");
    assert!(
        api.wait_for_status(&t.task_arn, status::STOPPED, WAIT)
            .await
    );
    assert!(
        api.wait_for(WAIT, |_| runtime.networks().is_empty()).await,
        "the network is removed with its last task"
    );
    let calls = runtime.calls();
    assert!(position(&calls, "stop app") < position(&calls, &format!("stop {pause}")));
    let stopped_pause = runtime
        .containers()
        .into_iter()
        .find(|c| c.ecs_name() == pause)
        .unwrap();
    assert_eq!(stopped_pause.stops, vec![Some(Duration::ZERO)]);
    agent.stop().await;
}

#[tokio::test]
async fn a_network_the_engine_refuses_fails_the_task_with_a_resource_error() {
    let (api, runtime, dir) = setup();
    let mut t = awsvpc_task("v2");
    if let Some(n) = t.network.as_mut() {
        n.subnet_cidr = "not-a-cidr".into();
    }
    api.set_tasks(vec![t.clone()]);
    let agent = start_agent(&api, &runtime, &dir);
    assert!(
        api.wait_for_status(&t.task_arn, status::STOPPED, WAIT)
            .await
    );
    let stopped = api.stopped_report(&t.task_arn).unwrap();
    assert_eq!(
        stopped.stop_code.as_deref(),
        Some(stop_code::TASK_FAILED_TO_START)
    );
    assert!(
        stopped
            .stopped_reason
            .as_deref()
            .is_some_and(|r| r.starts_with("ResourceInitializationError:")),
        "{stopped:?}"
    );
    agent.stop().await;
}

#[tokio::test]
async fn an_awsvpc_task_s_security_groups_hold_before_it_starts_follow_changes_and_go_before_it_is_stopped(
) {
    use gantry_model::agent::{FirewallRule, TaskFirewall};
    let (api, runtime, dir) = setup();
    let rules = |port: i32| TaskFirewall {
        vpc_cidr: "172.31.0.0/16".into(),
        ingress: vec![FirewallRule {
            protocol: "tcp".into(),
            from_port: Some(port),
            to_port: Some(port),
            cidrs: vec!["172.31.0.0/16".into()],
            marks: vec![],
        }],
        egress: vec![],
    };
    let mut t = awsvpc_task("fw");
    t.firewall = Some(rules(80));
    api.set_tasks(vec![t.clone()]);
    let agent = start_agent(&api, &runtime, &dir);
    assert!(
        api.wait_for_status(&t.task_arn, status::RUNNING, WAIT)
            .await
    );
    let address: std::net::Ipv4Addr = "172.31.0.9".parse().unwrap();
    let calls = runtime.calls();
    assert!(position(&calls, "set firewall 172.31.0.9") < position(&calls, "start app"));
    assert_eq!(runtime.firewalls().get(&address), Some(&rules(80)));

    // A rule changed on the server reaches the running task.
    t.firewall = Some(rules(443));
    api.set_tasks(vec![t.clone()]);
    assert!(
        api.wait_for(WAIT, |_| runtime.firewalls().get(&address)
            == Some(&rules(443)))
            .await
    );

    api.stop_task(&t.task_arn, stop_code::USER_INITIATED, "bye");
    assert!(
        api.wait_for_status(&t.task_arn, status::STOPPED, WAIT)
            .await
    );
    // Removed before the report: the address may go to another task as soon as the server hears of the stop.
    assert!(runtime.firewalls().is_empty());
    agent.stop().await;
}

#[tokio::test]
async fn task_level_cpu_and_memory_are_one_cgroup_over_the_task_s_containers() {
    let (api, runtime, dir) = setup();
    let mut t = task("sized", vec![container("app"), container("side")]);
    t.cpu = Some(256);
    t.memory = Some(512);
    api.set_tasks(vec![t.clone()]);
    let agent = start_agent(&api, &runtime, &dir);
    assert!(
        api.wait_for_status(&t.task_arn, status::RUNNING, WAIT)
            .await
    );
    let calls = runtime.calls();
    assert!(position(&calls, "task cgroup sized") < position(&calls, "create app"));
    assert_eq!(runtime.cgroups()["sized"], (Some(256), Some(512)));
    for c in runtime.live_containers() {
        let parent = c
            .spec
            .config
            .host_config
            .as_ref()
            .and_then(|h| h.cgroup_parent.clone());
        assert_eq!(parent.as_deref(), Some("/ecs/sized"), "{}", c.ecs_name());
    }
    api.stop_task(&t.task_arn, stop_code::USER_INITIATED, "bye");
    assert!(
        api.wait_for_status(&t.task_arn, status::STOPPED, WAIT)
            .await
    );
    assert!(runtime.cgroups().is_empty());
    agent.stop().await;
}
