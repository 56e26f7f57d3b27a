//! The ECS API through `JsonService::call`, with the agent side driven by hand: placement and its failures,
//! resource accounting, the long-poll and the reports.

use std::sync::Arc;
use std::time::Duration;

use gantry_aws::{JsonService, RequestContext};
use gantry_ecs::{EcsConfig, EcsService};
use gantry_model::agent::{ContainerStateChange, RegisterRequest, TaskStateChange};
use gantry_model::Scope;
use gantry_store::WalStore;
use serde_json::{json, Value};

fn ctx() -> RequestContext {
    RequestContext {
        request_id: "r".into(),
        scope: Scope::new("us-east-1", "000000000000"),
        access_key: "test".into(),
    }
}

async fn call(
    ecs: &EcsService<WalStore>,
    op: &str,
    body: Value,
) -> Result<Value, gantry_aws::AwsError> {
    ecs.call(&ctx(), op, body.to_string().as_bytes()).await
}

async fn setup(cpu: i64, memory: i64) -> (Arc<EcsService<WalStore>>, String) {
    let store = Arc::new(WalStore::in_memory().unwrap());
    let ecs = EcsService::new(store, EcsConfig::default());
    let reg = ecs
        .agent_register(RegisterRequest {
            cluster: "default".into(),
            instance_id: "i-1".into(),
            cpu,
            memory,
            agent_version: "test".into(),
            docker_version: "test".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let td = json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "img", "memory": 300, "cpu": 256,
        "portMappings": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81}]}]});
    call(&ecs, "RegisterTaskDefinition", td).await.unwrap();
    (ecs, reg.container_instance_arn)
}

/// The agent's report that a task stopped.
async fn report_stopped(ecs: &EcsService<WalStore>, instance: &str, task_arn: &str) {
    let stopped = TaskStateChange {
        task_arn: task_arn.to_string(),
        last_status: "STOPPED".into(),
        ..Default::default()
    };
    ecs.agent_report(instance, stopped).await.unwrap();
}

fn remaining(instance: &Value, name: &str) -> Value {
    instance["remainingResources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn placement_fails_with_the_ecs_reasons_and_resources_come_back() {
    let (ecs, instance) = setup(1024, 1000).await;
    let first = call(&ecs, "RunTask", json!({"taskDefinition": "web"}))
        .await
        .unwrap();
    assert_eq!(first["tasks"].as_array().unwrap().len(), 1);
    let task = first["tasks"][0].clone();
    let bindings_port = task["containers"][0]["networkBindings"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or(0);
    assert_eq!(
        bindings_port, 0,
        "bindings come from the agent once the container runs"
    );

    // Port 8080 is taken now.
    let second = call(&ecs, "RunTask", json!({"taskDefinition": "web"}))
        .await
        .unwrap();
    assert_eq!(second["failures"][0]["reason"], "RESOURCE:PORTS");
    assert_eq!(second["failures"][0]["arn"], instance.as_str());

    let ci = call(
        &ecs,
        "DescribeContainerInstances",
        json!({"containerInstances": [instance]}),
    )
    .await
    .unwrap();
    let ci = &ci["containerInstances"][0];
    assert_eq!(remaining(ci, "CPU")["integerValue"], 1024 - 256);
    assert_eq!(remaining(ci, "MEMORY")["integerValue"], 1000 - 300);
    let ports = remaining(ci, "PORTS")["stringSetValue"]
        .as_array()
        .unwrap()
        .clone();
    assert!(ports.contains(&json!("8080")));
    assert_eq!(ci["pendingTasksCount"], 1);
    let cluster = call(&ecs, "DescribeClusters", json!({})).await.unwrap();
    assert_eq!(cluster["clusters"][0]["pendingTasksCount"], 1);
    assert_eq!(cluster["clusters"][0]["runningTasksCount"], 0);

    // Too much memory for anything.
    let big = json!({"taskDefinition": "web", "overrides": {"containerOverrides": [{"name": "web", "memory": 5000}]}});
    let out = call(&ecs, "RunTask", big).await.unwrap();
    assert_eq!(out["failures"][0]["reason"], "RESOURCE:MEMORY");
    let cpu = json!({"taskDefinition": "web", "overrides": {"containerOverrides": [{"name": "web", "cpu": 4096}]}});
    assert_eq!(
        call(&ecs, "RunTask", cpu).await.unwrap()["failures"][0]["reason"],
        "RESOURCE:CPU"
    );

    // The agent reports the task stopped: its resources are free again.
    let arn = task["taskArn"].as_str().unwrap().to_string();
    report_stopped(&ecs, &instance, &arn).await;
    let ci = call(
        &ecs,
        "DescribeContainerInstances",
        json!({"containerInstances": [instance]}),
    )
    .await
    .unwrap();
    assert_eq!(
        remaining(&ci["containerInstances"][0], "MEMORY")["integerValue"],
        1000
    );
    assert!(call(&ecs, "RunTask", json!({"taskDefinition": "web"}))
        .await
        .unwrap()["failures"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn poll_answers_at_once_on_change_and_waits_otherwise() {
    let (ecs, instance) = setup(4096, 4096).await;
    let empty = ecs
        .agent_poll(&instance, 0, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(empty.registered && empty.tasks.is_empty());

    // Nothing changes: the poll waits for the whole wait.
    let started = std::time::Instant::now();
    let same = ecs
        .agent_poll(&instance, empty.index, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(same.index, empty.index);
    assert!(started.elapsed() >= Duration::from_millis(290));

    // A RunTask during the wait wakes the poll.
    let waiter = {
        let ecs = ecs.clone();
        let instance = instance.clone();
        tokio::spawn(async move {
            ecs.agent_poll(&instance, empty.index, Duration::from_secs(10))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    call(&ecs, "RunTask", json!({"taskDefinition": "web"}))
        .await
        .unwrap();
    let state = waiter.await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(state.tasks.len(), 1);
    let spec = &state.tasks[0];
    assert_eq!(spec.desired_status, "RUNNING");
    // The dynamic port was chosen by the server, in ECS's range.
    let dynamic = spec.containers[0].port_mappings[1].host_port.unwrap();
    assert!((49153..=65535).contains(&dynamic));

    // The agent's own report does not wake it; a stop does.
    let arn = spec.task_arn.clone();
    let running = TaskStateChange {
        task_arn: arn.clone(),
        last_status: "RUNNING".into(),
        started_at: Some(1.0),
        containers: vec![ContainerStateChange {
            name: "web".into(),
            last_status: "RUNNING".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    ecs.agent_report(&instance, running).await.unwrap();
    let quiet = ecs
        .agent_poll(&instance, state.index, Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(quiet.index, state.index);
    call(&ecs, "StopTask", json!({"task": arn})).await.unwrap();
    let stopping = ecs
        .agent_poll(&instance, state.index, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(stopping.tasks[0].desired_status, "STOPPED");
    assert_eq!(
        stopping.tasks[0].stop_code.as_deref(),
        Some("UserInitiated")
    );

    // Deregistered: the poll says so.
    let dereg = call(
        &ecs,
        "DeregisterContainerInstance",
        json!({"containerInstance": instance, "force": true}),
    )
    .await
    .unwrap();
    assert_eq!(dereg["containerInstance"]["status"], "INACTIVE");
    assert!(
        !ecs.agent_poll(&instance, stopping.index, Duration::from_secs(1))
            .await
            .unwrap()
            .registered
    );
}

#[tokio::test]
async fn deregistration_waits_for_the_instance_s_tasks_unless_forced() {
    let (ecs, instance) = setup(1024, 1000).await;
    let run = call(&ecs, "RunTask", json!({"taskDefinition": "web"}))
        .await
        .unwrap();
    let arn = run["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    let refused = call(
        &ecs,
        "DeregisterContainerInstance",
        json!({"containerInstance": instance}),
    )
    .await
    .unwrap_err();
    assert!(refused.message.contains("use force"), "{refused:?}");
    report_stopped(&ecs, &instance, &arn).await;
    let done = call(
        &ecs,
        "DeregisterContainerInstance",
        json!({"containerInstance": instance}),
    )
    .await
    .unwrap();
    assert_eq!(done["containerInstance"]["status"], "INACTIVE");
    assert_eq!(done["containerInstance"]["pendingTasksCount"], 0);
    assert_eq!(
        remaining(&done["containerInstance"], "MEMORY")["integerValue"],
        1000
    );
}

#[tokio::test]
async fn reports_for_unknown_tasks_are_refused_for_good() {
    let (ecs, instance) = setup(1024, 1024).await;
    let err = ecs
        .agent_report(
            &instance,
            TaskStateChange {
                task_arn: "arn:aws:ecs:us-east-1:000000000000:task/default/abc".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(!err.retryable);
}

#[tokio::test]
async fn draining_instances_get_no_new_tasks_and_clusters_with_tasks_are_not_deleted() {
    let (ecs, instance) = setup(4096, 4096).await;
    call(&ecs, "RunTask", json!({"taskDefinition": "web"}))
        .await
        .unwrap();
    let err = call(&ecs, "DeleteCluster", json!({"cluster": "default"}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "ClusterContainsTasksException");
    let out = call(
        &ecs,
        "UpdateContainerInstancesState",
        json!({"containerInstances": [instance], "status": "DRAINING"}),
    )
    .await
    .unwrap();
    assert_eq!(out["containerInstances"][0]["status"], "DRAINING");
    let err = call(&ecs, "RunTask", json!({"taskDefinition": "web"}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "InvalidParameterException");
    let listed = call(
        &ecs,
        "ListContainerInstances",
        json!({"status": "DRAINING"}),
    )
    .await
    .unwrap();
    assert_eq!(listed["containerInstanceArns"][0], instance.as_str());
}

#[tokio::test]
async fn stopped_tasks_are_forgotten_after_the_retention() {
    let (ecs, instance) = setup(4096, 4096).await;
    let out = call(&ecs, "RunTask", json!({"taskDefinition": "web"}))
        .await
        .unwrap();
    let arn = out["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    report_stopped(&ecs, &instance, &arn).await;
    let now = gantry_model::time::now();
    assert_eq!(ecs.forget_stopped_tasks(now).await.unwrap(), 0);
    let later = now + gantry_ecs::STOPPED_TASK_RETENTION.as_secs_f64() + 1.0;
    assert_eq!(ecs.forget_stopped_tasks(later).await.unwrap(), 1);
    let described = call(&ecs, "DescribeTasks", json!({"tasks": [arn]}))
        .await
        .unwrap();
    assert_eq!(described["failures"][0]["reason"], "MISSING");
}
