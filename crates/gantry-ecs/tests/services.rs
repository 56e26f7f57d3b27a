//! The service API through `JsonService::call`: what CreateService, UpdateService, DeleteService record, how
//! Describe/List show it, and the errors.

use std::sync::Arc;

use gantry_aws::{JsonService, RequestContext};
use gantry_ecs::{EcsConfig, EcsService};
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

async fn call(ecs: &EcsService<WalStore>, op: &str, body: Value) -> Result<Value, String> {
    ecs.call(&ctx(), op, body.to_string().as_bytes())
        .await
        .map_err(|e| e.code)
}

async fn setup() -> Arc<EcsService<WalStore>> {
    let ecs = EcsService::new(
        Arc::new(WalStore::in_memory().unwrap()),
        EcsConfig::default(),
    );
    call(&ecs, "CreateCluster", json!({"clusterName": "default"}))
        .await
        .unwrap();
    for _ in 0..2 {
        let td = json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "img", "memory": 64}]});
        call(&ecs, "RegisterTaskDefinition", td).await.unwrap();
    }
    ecs
}

#[tokio::test]
async fn create_describe_update_and_delete() {
    let ecs = setup().await;
    let created = call(
        &ecs,
        "CreateService",
        json!({"serviceName": "api", "taskDefinition": "web:1", "desiredCount": 2, "clientToken": "t1",
               "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true}}}),
    )
    .await
    .unwrap()["service"]
        .clone();
    assert_eq!(created["status"], "ACTIVE");
    assert_eq!(created["desiredCount"], 2);
    assert_eq!(created["schedulingStrategy"], "REPLICA");
    assert_eq!(created["deploymentConfiguration"]["maximumPercent"], 200);
    assert_eq!(
        created["deploymentConfiguration"]["minimumHealthyPercent"],
        100
    );
    let deployments = created["deployments"].as_array().unwrap();
    assert_eq!(deployments.len(), 1);
    assert_eq!(deployments[0]["status"], "PRIMARY");
    assert_eq!(deployments[0]["rolloutState"], "IN_PROGRESS");
    assert!(deployments[0]["id"]
        .as_str()
        .unwrap()
        .starts_with("ecs-svc/"));

    // The same call again with the same token is the same service; without it, a conflict.
    let again = call(
        &ecs,
        "CreateService",
        json!({"serviceName": "api", "taskDefinition": "web:1", "desiredCount": 2, "clientToken": "t1"}),
    )
    .await
    .unwrap();
    assert_eq!(again["service"]["serviceArn"], created["serviceArn"]);
    assert_eq!(
        call(
            &ecs,
            "CreateService",
            json!({"serviceName": "api", "taskDefinition": "web:1", "desiredCount": 2}),
        )
        .await,
        Err("InvalidParameterException".into())
    );

    let listed = call(&ecs, "ListServices", json!({})).await.unwrap();
    assert_eq!(listed["serviceArns"], json!([created["serviceArn"]]));

    // A scale alone keeps the deployment; a new task definition starts one.
    let scaled = call(
        &ecs,
        "UpdateService",
        json!({"service": "api", "desiredCount": 3}),
    )
    .await
    .unwrap();
    assert_eq!(
        scaled["service"]["deployments"].as_array().unwrap().len(),
        1
    );
    let updated = call(
        &ecs,
        "UpdateService",
        json!({"service": created["serviceArn"], "taskDefinition": "web:2"}),
    )
    .await
    .unwrap()["service"]
        .clone();
    let deployments = updated["deployments"].as_array().unwrap();
    assert_eq!(deployments.len(), 2);
    assert_eq!(deployments[0]["status"], "PRIMARY");
    assert!(deployments[0]["taskDefinition"]
        .as_str()
        .unwrap()
        .ends_with("web:2"));
    assert_eq!(deployments[1]["status"], "ACTIVE");

    // The newer deployment API: the superseded one is STOPPED, the current one listed first.
    let listed = call(&ecs, "ListServiceDeployments", json!({"service": "api"}))
        .await
        .unwrap();
    let briefs = listed["serviceDeployments"].as_array().unwrap();
    assert_eq!(briefs.len(), 2);
    assert_eq!(briefs[1]["status"], "STOPPED");
    let arns: Vec<Value> = briefs
        .iter()
        .map(|b| b["serviceDeploymentArn"].clone())
        .chain([json!(
            "arn:aws:ecs:us-east-1:000000000000:service-deployment/default/api/1"
        )])
        .collect();
    let described = call(
        &ecs,
        "DescribeServiceDeployments",
        json!({"serviceDeploymentArns": arns}),
    )
    .await
    .unwrap();
    assert_eq!(described["serviceDeployments"].as_array().unwrap().len(), 2);
    assert_eq!(described["failures"][0]["reason"], "MISSING");
    assert_eq!(
        described["serviceDeployments"][0]["deploymentCircuitBreaker"]["threshold"],
        3
    );

    // Delete needs force while scaled up; then DRAINING.
    assert_eq!(
        call(&ecs, "DeleteService", json!({"service": "api"})).await,
        Err("InvalidParameterException".into())
    );
    let deleted = call(
        &ecs,
        "DeleteService",
        json!({"service": "api", "force": true}),
    )
    .await
    .unwrap();
    assert_eq!(deleted["service"]["status"], "DRAINING");
    assert_eq!(deleted["service"]["desiredCount"], 0);
    assert_eq!(
        call(
            &ecs,
            "UpdateService",
            json!({"service": "api", "desiredCount": 1})
        )
        .await,
        Err("ServiceNotActiveException".into())
    );
    let described = call(
        &ecs,
        "DescribeServices",
        json!({"services": ["api", "nope"]}),
    )
    .await
    .unwrap();
    assert_eq!(described["services"][0]["status"], "DRAINING");
    assert_eq!(described["failures"][0]["reason"], "MISSING");
}

#[tokio::test]
async fn bad_input_is_refused() {
    let ecs = setup().await;
    let cases = [
        (
            json!({"taskDefinition": "web"}),
            "InvalidParameterException",
        ),
        (
            json!({"serviceName": "bad name", "taskDefinition": "web", "desiredCount": 1}),
            "InvalidParameterException",
        ),
        (
            json!({"serviceName": "a", "desiredCount": 1}),
            "InvalidParameterException",
        ),
        (
            json!({"serviceName": "a", "taskDefinition": "nope", "desiredCount": 1}),
            "ClientException",
        ),
        (
            json!({"serviceName": "a", "taskDefinition": "web"}),
            "InvalidParameterException",
        ),
        (
            json!({"serviceName": "a", "taskDefinition": "web", "desiredCount": -1}),
            "InvalidParameterException",
        ),
        (
            json!({"serviceName": "a", "taskDefinition": "web", "desiredCount": 1, "cluster": "nope"}),
            "ClusterNotFoundException",
        ),
        (
            json!({"serviceName": "a", "taskDefinition": "web", "desiredCount": 1, "launchType": "FARGATE"}),
            "UnsupportedFeatureException",
        ),
        (
            json!({"serviceName": "a", "taskDefinition": "web", "desiredCount": 1, "loadBalancers": [{"targetGroupArn": "x"}]}),
            "UnsupportedFeatureException",
        ),
        (
            json!({"serviceName": "a", "taskDefinition": "web", "desiredCount": 1, "schedulingStrategy": "DAEMON"}),
            "InvalidParameterException",
        ),
        (
            json!({"serviceName": "a", "taskDefinition": "web", "schedulingStrategy": "DAEMON", "placementStrategy": [{"type": "spread", "field": "instanceId"}]}),
            "InvalidParameterException",
        ),
        (
            json!({"serviceName": "a", "taskDefinition": "web", "desiredCount": 1, "deploymentConfiguration": {"maximumPercent": 50}}),
            "InvalidParameterException",
        ),
        (
            json!({"serviceName": "a", "taskDefinition": "web", "desiredCount": 1, "deploymentController": {"type": "CODE_DEPLOY"}}),
            "UnsupportedFeatureException",
        ),
        (
            json!({"serviceName": "a", "taskDefinition": "web", "desiredCount": 1, "serviceConnectConfiguration": {"enabled": true}}),
            "UnsupportedFeatureException",
        ),
        (
            json!({"serviceName": "a", "taskDefinition": "web", "desiredCount": "x"}),
            "SerializationException",
        ),
    ];
    for (body, code) in cases {
        assert_eq!(
            call(&ecs, "CreateService", body.clone())
                .await
                .err()
                .as_deref(),
            Some(code),
            "{body}"
        );
    }
    assert_eq!(
        call(
            &ecs,
            "UpdateService",
            json!({"service": "nope", "desiredCount": 1})
        )
        .await,
        Err("ServiceNotFoundException".into())
    );
    assert_eq!(
        call(&ecs, "DeleteService", json!({"service": "nope"})).await,
        Err("ServiceNotFoundException".into())
    );
    assert_eq!(
        call(&ecs, "DescribeServices", json!({"services": []})).await,
        Err("InvalidParameterException".into())
    );
    assert_eq!(
        call(&ecs, "ListServiceDeployments", json!({"service": "nope"})).await,
        Err("ServiceNotFoundException".into())
    );
    // A DAEMON service without a count is fine.
    call(
        &ecs,
        "CreateService",
        json!({"serviceName": "d", "taskDefinition": "web", "schedulingStrategy": "DAEMON"}),
    )
    .await
    .unwrap();
}

mod controller {
    use super::*;
    use gantry_model::agent::{RegisterRequest, TaskStateChange};
    use std::time::Duration;

    /// A hand-driven agent: registers, and reports every desired task as RUNNING (or, for images named
    /// `crash`, as exited at once) and every task asked to stop as STOPPED.
    async fn agent(ecs: &Arc<EcsService<WalStore>>) -> String {
        let reg = ecs
            .agent_register(RegisterRequest {
                cluster: "default".into(),
                instance_id: "i-1".into(),
                cpu: 4096,
                memory: 4096,
                agent_version: "test".into(),
                docker_version: "test".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let arn = reg.container_instance_arn;
        let (ecs2, arn2) = (ecs.clone(), arn.clone());
        tokio::spawn(async move {
            let mut index = 0;
            loop {
                let Ok(state) = ecs2
                    .agent_poll(&arn2, index, Duration::from_millis(200))
                    .await
                else {
                    return;
                };
                index = state.index;
                for t in state.tasks {
                    let crash = t
                        .containers
                        .iter()
                        .any(|c| c.image.as_deref() == Some("crash"));
                    // Runs, and exits a second later (the agent notices an exit only at its next look).
                    let crash_late = t
                        .containers
                        .iter()
                        .any(|c| c.image.as_deref() == Some("crash-late"));
                    if crash_late && t.desired_status == "RUNNING" && t.last_status == "PENDING" {
                        let now = gantry_model::time::now();
                        let running = TaskStateChange {
                            task_arn: t.task_arn.clone(),
                            last_status: "RUNNING".into(),
                            started_at: Some(now),
                            ..Default::default()
                        };
                        let _ = ecs2.agent_report(&arn2, running).await;
                        let (ecs3, arn3, task_arn) =
                            (ecs2.clone(), arn2.clone(), t.task_arn.clone());
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            let exited = TaskStateChange {
                                task_arn,
                                last_status: "STOPPED".into(),
                                stop_code: Some("EssentialContainerExited".into()),
                                ..Default::default()
                            };
                            let _ = ecs3.agent_report(&arn3, exited).await;
                        });
                        continue;
                    }
                    let next = match (t.desired_status.as_str(), t.last_status.as_str()) {
                        ("RUNNING", "PENDING" | "PROVISIONING") if crash => {
                            Some(("STOPPED", Some("EssentialContainerExited")))
                        }
                        ("RUNNING", "PENDING" | "PROVISIONING") => Some(("RUNNING", None)),
                        ("STOPPED", s) if s != "STOPPED" => Some(("STOPPED", None)),
                        _ => None,
                    };
                    if let Some((last, code)) = next {
                        let change = TaskStateChange {
                            task_arn: t.task_arn.clone(),
                            last_status: last.into(),
                            started_at: (last == "RUNNING").then_some(1.0),
                            stop_code: code.map(String::from),
                            ..Default::default()
                        };
                        let _ = ecs2.agent_report(&arn2, change).await;
                    }
                }
            }
        });
        arn
    }

    async fn describe(ecs: &EcsService<WalStore>, name: &str) -> Value {
        call(ecs, "DescribeServices", json!({"services": [name]}))
            .await
            .unwrap()["services"][0]
            .clone()
    }

    async fn wait_for(
        ecs: &EcsService<WalStore>,
        name: &str,
        what: &str,
        ok: impl Fn(&Value) -> bool,
    ) -> Value {
        for _ in 0..200 {
            let s = describe(ecs, name).await;
            if ok(&s) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "timed out waiting for {what}: {}",
            describe(ecs, name).await
        );
    }

    fn steady(s: &Value, n: i64) -> bool {
        s["runningCount"] == n
            && s["desiredCount"] == n
            && s["deployments"].as_array().is_some_and(|d| d.len() == 1)
            && s["deployments"][0]["rolloutState"] == "COMPLETED"
    }

    #[tokio::test]
    async fn keeps_the_count_rolls_out_and_rolls_back() {
        let ecs = setup().await;
        ecs.clone()
            .spawn_service_controller(gantry_store::lease::Lease::single_server(
                "ecs/service-controller",
            ));
        agent(&ecs).await;
        call(
            &ecs,
            "CreateService",
            json!({"serviceName": "api", "taskDefinition": "web:1", "desiredCount": 2,
                   "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true}}}),
        )
        .await
        .unwrap();
        let s = wait_for(&ecs, "api", "steady state", |s| steady(s, 2)).await;
        let messages: Vec<&str> = s["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap())
            .collect();
        assert!(
            messages[0].ends_with("has reached a steady state."),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("has started 2 tasks")),
            "{messages:?}"
        );

        // A task stopped by hand is replaced.
        let tasks = call(&ecs, "ListTasks", json!({"serviceName": "api"}))
            .await
            .unwrap();
        let first = tasks["taskArns"][0].clone();
        call(&ecs, "StopTask", json!({"task": first}))
            .await
            .unwrap();
        wait_for(&ecs, "api", "a replacement", |s| {
            s["runningCount"] == 2
                && s["events"][1]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("has started 1 tasks"))
        })
        .await;

        // A new task definition rolls out and completes.
        call(
            &ecs,
            "UpdateService",
            json!({"service": "api", "taskDefinition": "web:2"}),
        )
        .await
        .unwrap();
        let s = wait_for(&ecs, "api", "the rollout", |s| {
            steady(s, 2) && s["taskDefinition"].as_str().unwrap().ends_with(":2")
        })
        .await;
        assert!(s["deployments"][0]["taskDefinition"]
            .as_str()
            .unwrap()
            .ends_with("web:2"));

        // A task definition whose tasks crash: the circuit breaker fails it and rolls back to web:2.
        call(&ecs, "RegisterTaskDefinition", json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "crash", "memory": 64}]})).await.unwrap();
        call(
            &ecs,
            "UpdateService",
            json!({"service": "api", "taskDefinition": "web:3"}),
        )
        .await
        .unwrap();
        let s = wait_for(&ecs, "api", "the rollback", |s| {
            steady(s, 2) && s["taskDefinition"].as_str().unwrap().ends_with(":2")
        })
        .await;
        let listed = call(&ecs, "ListServiceDeployments", json!({"service": "api"}))
            .await
            .unwrap();
        let statuses: Vec<&str> = listed["serviceDeployments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["status"].as_str().unwrap())
            .collect();
        assert!(statuses.contains(&"ROLLBACK_SUCCESSFUL"), "{statuses:?}");
        assert!(s["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["message"].as_str().unwrap().contains("deployment failed")));

        // Delete: DRAINING, then INACTIVE once the tasks are gone.
        call(
            &ecs,
            "DeleteService",
            json!({"service": "api", "force": true}),
        )
        .await
        .unwrap();
        wait_for(&ecs, "api", "INACTIVE", |s| s["status"] == "INACTIVE").await;
        assert_eq!(
            call(&ecs, "ListServices", json!({})).await.unwrap()["serviceArns"],
            json!([])
        );
    }

    /// A task whose container runs for a moment and exits is not a healthy task: the old task stays, the rollout
    /// does not complete, and the circuit breaker fails the deployment.
    #[tokio::test]
    async fn a_task_that_exits_soon_after_running_trips_the_circuit_breaker() {
        let ecs = setup().await;
        ecs.clone()
            .spawn_service_controller(gantry_store::lease::Lease::single_server(
                "ecs/service-controller",
            ));
        agent(&ecs).await;
        call(
            &ecs,
            "CreateService",
            json!({"serviceName": "api", "taskDefinition": "web:1", "desiredCount": 1,
                   "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": false}}}),
        )
        .await
        .unwrap();
        wait_for(&ecs, "api", "steady state", |s| steady(s, 1)).await;
        let old = call(&ecs, "ListTasks", json!({"serviceName": "api"}))
            .await
            .unwrap()["taskArns"][0]
            .clone();
        call(&ecs, "RegisterTaskDefinition", json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "crash-late", "memory": 64}]})).await.unwrap();
        call(
            &ecs,
            "UpdateService",
            json!({"service": "api", "taskDefinition": "web:3"}),
        )
        .await
        .unwrap();
        for _ in 0..300 {
            let s = describe(&ecs, "api").await;
            let state = s["deployments"][0]["rolloutState"].clone();
            assert_ne!(state, "COMPLETED", "a crashing deployment completed: {s}");
            if state == "FAILED" {
                let running = call(&ecs, "ListTasks", json!({"serviceName": "api"}))
                    .await
                    .unwrap();
                assert_eq!(running["taskArns"], json!([old]));
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the circuit breaker did not fail the deployment");
    }

    /// The controller's state changes are events on the bus (`/events/`), written with the change: a rollout
    /// tells IN_PROGRESS, COMPLETED and the steady state in that order, the circuit breaker FAILED, and a task
    /// no instance can take a placement failure.
    #[tokio::test]
    async fn service_changes_become_events() {
        let ecs = setup().await;
        ecs.clone()
            .spawn_service_controller(gantry_store::lease::Lease::single_server(
                "ecs/service-controller",
            ));
        agent(&ecs).await;
        call(
            &ecs,
            "CreateService",
            json!({"serviceName": "api", "taskDefinition": "web:1", "desiredCount": 2,
                   "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": false}}}),
        )
        .await
        .unwrap();
        let s = wait_for(&ecs, "api", "steady state", |s| steady(s, 2)).await;
        let names = |events: &[Value]| -> Vec<String> {
            events
                .iter()
                .map(|e| e["detail"]["eventName"].as_str().unwrap().to_string())
                .collect()
        };
        let events = ecs.events(None);
        assert_eq!(
            names(&events),
            [
                "SERVICE_DEPLOYMENT_IN_PROGRESS",
                "SERVICE_DEPLOYMENT_COMPLETED",
                "SERVICE_STEADY_STATE"
            ],
            "{events:?}"
        );
        let deployment = s["deployments"][0]["id"].clone();
        for e in &events {
            assert_eq!(e["source"], "aws.ecs");
            assert_eq!(e["region"], "us-east-1");
            assert_eq!(e["account"], "000000000000");
            assert_eq!(e["resources"], json!([s["serviceArn"]]));
        }
        assert_eq!(events[0]["detail-type"], "ECS Deployment State Change");
        assert_eq!(events[0]["detail"]["deploymentId"], deployment);
        assert_eq!(events[1]["detail"]["deploymentId"], deployment);
        assert_eq!(events[2]["detail-type"], "ECS Service Action");
        assert_eq!(events[2]["detail"]["clusterArn"], s["clusterArn"]);
        // `since` gives those after an id.
        let later = ecs.events(events[0]["id"].as_str());
        assert_eq!(later, events[1..]);

        // A deployment whose tasks crash: the circuit breaker fails it.
        call(&ecs, "RegisterTaskDefinition", json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "crash", "memory": 64}]})).await.unwrap();
        call(
            &ecs,
            "UpdateService",
            json!({"service": "api", "taskDefinition": "web:3"}),
        )
        .await
        .unwrap();
        let s = wait_for(&ecs, "api", "the circuit breaker", |s| {
            s["deployments"][0]["rolloutState"] == "FAILED"
        })
        .await;
        let failed_id = s["deployments"][0]["id"].clone();
        let events = ecs.events(events[2]["id"].as_str());
        assert_eq!(
            names(&events),
            [
                "SERVICE_DEPLOYMENT_IN_PROGRESS",
                "SERVICE_DEPLOYMENT_FAILED"
            ],
            "{events:?}"
        );
        assert_eq!(events[1]["detail"]["deploymentId"], failed_id);
        assert_eq!(events[1]["detail"]["eventType"], "ERROR");

        // A task larger than any instance: one placement failure, not one a second.
        call(&ecs, "RegisterTaskDefinition", json!({"family": "big", "containerDefinitions": [{"name": "big", "image": "img", "memory": 8192}]})).await.unwrap();
        call(
            &ecs,
            "CreateService",
            json!({"serviceName": "big", "taskDefinition": "big", "desiredCount": 1}),
        )
        .await
        .unwrap();
        wait_for(&ecs, "big", "a placement failure", |s| {
            s["events"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("was unable to place a task"))
        })
        .await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let failures: Vec<Value> = ecs
            .events(None)
            .into_iter()
            .filter(|e| e["detail"]["eventName"] == "SERVICE_TASK_PLACEMENT_FAILURE")
            .collect();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(failures[0]["detail"]["eventType"], "ERROR");
        assert_eq!(failures[0]["detail"]["reasons"], json!(["RESOURCE:MEMORY"]));
    }

    /// After a restart no agent has been heard from yet: the service's tasks are not taken for lost (and stopped)
    /// before the agent timeout has passed.
    #[tokio::test]
    async fn a_restart_does_not_take_every_task_for_lost() {
        let store = Arc::new(WalStore::in_memory().unwrap());
        let before = EcsService::new(store.clone(), EcsConfig::default());
        call(&before, "CreateCluster", json!({"clusterName": "default"}))
            .await
            .unwrap();
        let td = json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "img", "memory": 64}]});
        call(&before, "RegisterTaskDefinition", td).await.unwrap();
        let controller =
            before
                .clone()
                .spawn_service_controller(gantry_store::lease::Lease::single_server(
                    "ecs/service-controller",
                ));
        agent(&before).await;
        call(
            &before,
            "CreateService",
            json!({"serviceName": "api", "taskDefinition": "web:1", "desiredCount": 2}),
        )
        .await
        .unwrap();
        wait_for(&before, "api", "steady state", |s| steady(s, 2)).await;
        controller.abort();

        // The same store, a new server whose agent has not come back yet.
        let after = EcsService::new(store, EcsConfig::default());
        after
            .clone()
            .spawn_service_controller(gantry_store::lease::Lease::single_server(
                "ecs/service-controller",
            ));
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let listed = call(&after, "ListTasks", json!({"serviceName": "api"}))
            .await
            .unwrap();
        assert_eq!(listed["taskArns"].as_array().unwrap().len(), 2, "{listed}");
        let s = describe(&after, "api").await;
        assert!(steady(&s, 2), "{s}");
    }
}
