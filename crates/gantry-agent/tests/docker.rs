//! The agent against the real Docker engine, with an in-memory server. The test image is built here from scratch
//! with a static busybox (nothing is pulled from any registry); every container a test makes carries a label
//! unique to the test, and the test removes them when it ends, even when it fails.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use gantry_agent::testing::FakeApi;
use gantry_agent::{Agent, AgentConfig, AgentRunError, DockerRuntime, Runtime};
use gantry_model::agent::{ContainerStateChange, TaskSpec, TaskStateChange};
use gantry_model::ecs::{
    status, stop_code, ContainerDefinition, HealthCheck, KeyValuePair, LogConfiguration,
    PortMapping,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const IMAGE: &str = "gantry-agent-test/busybox:latest";
const TEST_LABEL: &str = "gantry.test";
const WAIT: Duration = Duration::from_secs(30);

fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn find_busybox() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("busybox"))
        .find(|p| p.is_file())
}

/// Builds the test image once per test binary: `FROM scratch`, a static busybox, its applets installed.
fn ensure_image() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let busybox = find_busybox().ok_or("busybox is not installed (Debian: busybox-static)")?;
        let dir = std::env::temp_dir().join(format!("gantry-agent-image-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        std::fs::copy(&busybox, dir.join("busybox")).map_err(|e| e.to_string())?;
        std::fs::write(
            dir.join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
        )
        .map_err(|e| e.to_string())?;
        let dir_str = dir.to_string_lossy().into_owned();
        let result = docker(&["build", "-q", "-t", IMAGE, &dir_str]).map(|_| ());
        let _ = std::fs::remove_dir_all(&dir);
        result
    });
    if let Err(e) = built {
        panic!("cannot build the test image (is Docker running?): {e}");
    }
}

/// One test's world: a fake server, the Docker runtime, a data dir, and a label for cleanup.
struct World {
    api: Arc<FakeApi>,
    runtime: Arc<DockerRuntime>,
    dir: PathBuf,
    label: String,
}

impl World {
    async fn new() -> World {
        ensure_image();
        let runtime = DockerRuntime::connect().await.expect("Docker is reachable");
        World {
            api: Arc::new(FakeApi::new()),
            runtime: Arc::new(runtime),
            dir: std::env::temp_dir().join(format!(
                "gantry-agent-docker-{}",
                uuid::Uuid::new_v4().simple()
            )),
            label: format!("agent-{}", uuid::Uuid::new_v4().simple()),
        }
    }

    fn config(&self) -> AgentConfig {
        let mut config = AgentConfig::new("default", self.dir.clone());
        config.poll_wait = Duration::from_secs(1);
        config.watch_interval = Duration::from_millis(200);
        config.retry_initial = Duration::from_millis(100);
        config.retry_max = Duration::from_secs(1);
        config.log_flush_interval = Duration::from_millis(200);
        config.task_cleanup_wait = Duration::ZERO;
        config
    }

    fn start_agent(&self) -> RunningAgent {
        let (tx, rx) = oneshot::channel::<()>();
        let agent = Agent::new(self.api.clone(), self.runtime.clone(), self.config());
        let join = tokio::spawn(agent.run_until(async {
            let _ = rx.await;
        }));
        RunningAgent {
            shutdown: Some(tx),
            join,
        }
    }

    fn container(&self, name: &str, command: &str) -> ContainerDefinition {
        ContainerDefinition {
            name: Some(name.into()),
            image: Some(IMAGE.into()),
            command: Some(vec!["sh".into(), "-c".into(), command.into()]),
            docker_labels: Some(BTreeMap::from([(
                TEST_LABEL.to_string(),
                self.label.clone(),
            )])),
            stop_timeout: Some(1),
            ..Default::default()
        }
    }

    fn task(&self, containers: Vec<ContainerDefinition>) -> TaskSpec {
        TaskSpec {
            task_arn: format!(
                "arn:aws:ecs:us-east-1:000000000000:task/default/{}",
                gantry_model::new_id()
            ),
            cluster_arn: "arn:aws:ecs:us-east-1:000000000000:cluster/default".into(),
            cluster_name: "default".into(),
            family: "agent-test".into(),
            revision: 1,
            desired_status: status::RUNNING.into(),
            last_status: status::PENDING.into(),
            network_mode: "bridge".into(),
            containers,
            ..Default::default()
        }
    }

    fn container_ids(&self) -> Vec<String> {
        let filter = format!("label={TEST_LABEL}={}", self.label);
        docker(&["ps", "-aq", "--filter", &filter])
            .map(|out| out.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let ids = self.container_ids();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(ids.iter().map(String::as_str));
            let _ = docker(&args);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct RunningAgent {
    shutdown: Option<oneshot::Sender<()>>,
    join: JoinHandle<Result<(), AgentRunError>>,
}

impl RunningAgent {
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

fn container_of<'a>(report: &'a TaskStateChange, name: &str) -> &'a ContainerStateChange {
    report
        .containers
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} in {report:?}"))
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("an address").port()
}

async fn http_get(port: u16) -> Result<String, std::io::Error> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    Ok(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_runs_with_its_ports_env_and_command() {
    let world = World::new().await;
    let port = free_port();
    let mut web = world.container(
        "web",
        "mkdir -p /www && echo \"$GREETING from $HOSTNAME\" > /www/index.html && exec httpd -f -p 8080 -h /www",
    );
    web.environment = vec![KeyValuePair {
        name: Some("GREETING".into()),
        value: Some("hello-gantry".into()),
    }];
    web.port_mappings = vec![PortMapping {
        container_port: Some(8080),
        host_port: Some(i64::from(port)),
        ..Default::default()
    }];
    web.hostname = Some("webhost".into());
    let t = world.task(vec![web]);
    world.api.set_tasks(vec![t.clone()]);
    let agent = world.start_agent();

    assert!(
        world
            .api
            .wait_for_status(&t.task_arn, status::RUNNING, WAIT)
            .await,
        "{:?}",
        world.api.reports()
    );
    let running = world
        .api
        .reports_for(&t.task_arn)
        .into_iter()
        .find(|r| r.last_status == status::RUNNING)
        .unwrap();
    let web = container_of(&running, "web");
    assert!(web.runtime_id.is_some());
    assert_eq!(web.network_bindings.len(), 1, "{web:?}");
    assert_eq!(web.network_bindings[0].host_port, Some(i64::from(port)));
    assert_eq!(web.network_bindings[0].container_port, Some(8080));
    assert_eq!(web.network_bindings[0].bind_ip.as_deref(), Some("0.0.0.0"));

    let deadline = Instant::now() + WAIT;
    let body = loop {
        match http_get(port).await {
            Ok(body) if body.contains("hello-gantry") => break body,
            other if Instant::now() > deadline => panic!("no answer on port {port}: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    assert!(body.contains("hello-gantry from webhost"), "{body}");

    world
        .api
        .stop_task(&t.task_arn, stop_code::USER_INITIATED, "done");
    assert!(
        world
            .api
            .wait_for_status(&t.task_arn, status::STOPPED, WAIT)
            .await
    );
    let stopped = world.api.stopped_report(&t.task_arn).unwrap();
    assert_eq!(
        stopped.stop_code.as_deref(),
        Some(stop_code::USER_INITIATED)
    );
    assert!(container_of(&stopped, "web").exit_code.is_some());

    world.api.remove_task(&t.task_arn);
    let removed = world
        .api
        .wait_for(WAIT, |_| world.container_ids().is_empty())
        .await;
    assert!(
        removed,
        "containers are removed once the server forgets the task"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_essential_exit_stops_the_task_with_its_exit_code() {
    let world = World::new().await;
    let app = world.container("app", "sleep 1; exit 3");
    let mut side = world.container("side", "exec sleep 300");
    side.essential = Some(false);
    let t = world.task(vec![app, side]);
    world.api.set_tasks(vec![t.clone()]);
    let agent = world.start_agent();

    assert!(
        world
            .api
            .wait_for_status(&t.task_arn, status::STOPPED, WAIT)
            .await,
        "{:?}",
        world.api.reports()
    );
    let stopped = world.api.stopped_report(&t.task_arn).unwrap();
    assert_eq!(
        stopped.stop_code.as_deref(),
        Some(stop_code::ESSENTIAL_CONTAINER_EXITED)
    );
    assert_eq!(
        stopped.stopped_reason.as_deref(),
        Some("Essential container in task exited")
    );
    assert_eq!(container_of(&stopped, "app").exit_code, Some(3));
    let side = container_of(&stopped, "side");
    assert_eq!(side.last_status, status::STOPPED);
    assert!(side.exit_code.is_some());
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_that_ignores_sigterm_is_killed_after_its_stop_timeout() {
    let world = World::new().await;
    let mut stubborn = world.container(
        "stubborn",
        "trap 'echo ignoring TERM' TERM; while true; do sleep 0.2; done",
    );
    stubborn.stop_timeout = Some(3);
    let t = world.task(vec![stubborn]);
    world.api.set_tasks(vec![t.clone()]);
    let agent = world.start_agent();
    assert!(
        world
            .api
            .wait_for_status(&t.task_arn, status::RUNNING, WAIT)
            .await,
        "{:?}",
        world.api.reports()
    );

    let asked = Instant::now();
    world
        .api
        .stop_task(&t.task_arn, stop_code::USER_INITIATED, "stop");
    assert!(
        world
            .api
            .wait_for_status(&t.task_arn, status::STOPPED, WAIT)
            .await
    );
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_secs(3),
        "killed before its stop timeout: {took:?}"
    );
    assert!(
        took < Duration::from_secs(15),
        "not killed after its stop timeout: {took:?}"
    );
    let stopped = world.api.stopped_report(&t.task_arn).unwrap();
    assert_eq!(container_of(&stopped, "stubborn").exit_code, Some(137));
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_check_turns_healthy() {
    let world = World::new().await;
    let mut app = world.container(
        "app",
        "mkdir -p /tmp; sleep 1; touch /tmp/ready; exec sleep 300",
    );
    app.health_check = Some(HealthCheck {
        command: vec!["CMD-SHELL".into(), "test -f /tmp/ready".into()],
        interval: Some(1),
        timeout: Some(1),
        retries: Some(3),
        start_period: Some(0),
    });
    let t = world.task(vec![app]);
    world.api.set_tasks(vec![t.clone()]);
    let agent = world.start_agent();
    let healthy = |api: &FakeApi| {
        api.reports_for(&t.task_arn).iter().any(|r| {
            r.health_status.as_deref() == Some("HEALTHY")
                && r.containers
                    .iter()
                    .any(|c| c.name == "app" && c.health_status.as_deref() == Some("HEALTHY"))
        })
    };
    assert!(
        world.api.wait_for(WAIT, healthy).await,
        "{:?}",
        world.api.reports()
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_shipped_and_resumed_after_an_agent_restart_without_duplicates() {
    let world = World::new().await;
    let mut app = world.container(
        "app",
        "i=0; while [ $i -lt 30 ]; do echo \"line $i\"; i=$((i+1)); sleep 0.1; done; echo finished >&2; exec sleep 300",
    );
    app.log_configuration = Some(LogConfiguration {
        log_driver: "awslogs".into(),
        options: Some(BTreeMap::from([
            (
                "awslogs-group".to_string(),
                "/gantry/agent-test".to_string(),
            ),
            ("awslogs-stream-prefix".to_string(), "test".to_string()),
            ("awslogs-create-group".to_string(), "true".to_string()),
        ])),
        secret_options: None,
    });
    let t = world.task(vec![app]);
    let stream = format!(
        "test/app/{}",
        t.task_arn.rsplit('/').next().unwrap_or_default()
    );
    world.api.set_tasks(vec![t.clone()]);
    let agent = world.start_agent();
    let shipped = |n: usize| {
        let stream = stream.clone();
        move |api: &FakeApi| api.log_events("/gantry/agent-test", &stream).len() >= n
    };
    assert!(
        world.api.wait_for(WAIT, shipped(3)).await,
        "{:?}",
        world.api.batches()
    );
    agent.stop().await;
    let shipped_before = world.api.log_events("/gantry/agent-test", &stream).len();
    assert!(
        shipped_before < 31,
        "the restart happens while the container still writes"
    );

    // Lines written while no agent runs arrive after the restart, once.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let agent = world.start_agent();
    assert!(
        world.api.wait_for(WAIT, shipped(31)).await,
        "{:?}",
        world.api.batches()
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let messages: Vec<String> = world
        .api
        .log_events("/gantry/agent-test", &stream)
        .into_iter()
        .map(|e| e.message)
        .collect();
    let mut expected: Vec<String> = (0..30).map(|i| format!("line {i}")).collect();
    expected.push("finished".into());
    assert_eq!(messages, expected);
    let batches = world.api.batches();
    assert!(batches.iter().all(|b| b.create_group && b.cursor.is_some()));
    let last_cursor = batches
        .last()
        .and_then(|b| b.cursor.clone())
        .unwrap_or_default();
    assert!(
        last_cursor.ends_with('Z') && last_cursor.contains('T'),
        "an RFC3339 cursor: {last_cursor}"
    );
    assert_eq!(
        world.container_ids().len(),
        1,
        "the restarted agent adopted the container, it did not start another"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_fails_with_cannot_pull_container_error() {
    let world = World::new().await;
    let mut app = world.container("app", "true");
    // A registry on a closed local port: the pull fails at once, and no traffic leaves the machine.
    app.image = Some("127.0.0.1:1/gantry-agent-test/missing:nope".into());
    let t = world.task(vec![app]);
    world.api.set_tasks(vec![t.clone()]);
    let agent = world.start_agent();
    assert!(
        world
            .api
            .wait_for_status(&t.task_arn, status::STOPPED, WAIT)
            .await,
        "{:?}",
        world.api.reports()
    );
    let stopped = world.api.stopped_report(&t.task_arn).unwrap();
    assert_eq!(
        stopped.stop_code.as_deref(),
        Some(stop_code::TASK_FAILED_TO_START)
    );
    let reason = stopped.stopped_reason.unwrap_or_default();
    assert!(reason.starts_with("CannotPullContainerError: "), "{reason}");
    assert!(
        reason.len() > "CannotPullContainerError: ".len(),
        "the engine's message is kept: {reason}"
    );
    assert!(world.container_ids().is_empty());
    assert!(!world
        .runtime
        .image_present("127.0.0.1:1/gantry-agent-test/missing:nope")
        .await
        .unwrap_or(true));
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_agent_reports_exits_it_missed_and_removes_orphans() {
    let world = World::new().await;
    world.api.drop_stopped_tasks(true);
    let short = world.task(vec![world.container("app", "sleep 3; exit 4")]);
    let forgotten = world.task(vec![world.container("app", "exec sleep 300")]);
    world.api.set_tasks(vec![short.clone(), forgotten.clone()]);
    let agent = world.start_agent();
    assert!(
        world
            .api
            .wait_for_status(&short.task_arn, status::RUNNING, WAIT)
            .await,
        "{:?}",
        world.api.reports()
    );
    assert!(
        world
            .api
            .wait_for_status(&forgotten.task_arn, status::RUNNING, WAIT)
            .await
    );
    agent.stop().await;
    let running = world
        .api
        .reports_for(&short.task_arn)
        .into_iter()
        .find(|r| r.last_status == status::RUNNING);
    let id = running
        .and_then(|r| r.containers[0].runtime_id.clone())
        .expect("a runtime id");

    // While no agent runs, the short task's container exits and the server forgets the other task.
    let deadline = Instant::now() + WAIT;
    while world
        .runtime
        .inspect_container(&id)
        .await
        .map(|s| s.is_running())
        .unwrap_or(false)
    {
        assert!(Instant::now() < deadline, "the container did not exit");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    world.api.remove_task(&forgotten.task_arn);

    let agent = world.start_agent();
    assert!(
        world
            .api
            .wait_for_status(&short.task_arn, status::STOPPED, WAIT)
            .await,
        "{:?}",
        world.api.reports()
    );
    let stopped = world.api.stopped_report(&short.task_arn).unwrap();
    assert_eq!(
        stopped.stop_code.as_deref(),
        Some(stop_code::ESSENTIAL_CONTAINER_EXITED)
    );
    assert_eq!(container_of(&stopped, "app").exit_code, Some(4));
    assert!(world
        .api
        .reports_for(&forgotten.task_arn)
        .iter()
        .all(|r| r.last_status != status::STOPPED));
    let all_gone = world
        .api
        .wait_for(WAIT, |_| world.container_ids().is_empty())
        .await;
    assert!(
        all_gone,
        "the orphan and the stopped task's container are removed: {:?}",
        world.container_ids()
    );
    agent.stop().await;
}
