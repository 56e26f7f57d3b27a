//! Placement through the ECS API: strategies and constraints on RunTask, task definition constraints, custom
//! attributes (Put/List/DeleteAttributes), ListContainerInstances filters, and DAEMON services, with instances
//! registered by hand (no agent runs the tasks).

use std::collections::BTreeMap;
use std::sync::Arc;

use gantry_aws::{JsonService, RequestContext};
use gantry_ecs::{EcsConfig, EcsService};
use gantry_model::agent::RegisterRequest;
use gantry_model::ecs::Attribute;
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
        .map_err(|e| format!("{} {}", e.code, e.message))
}

/// Six instances, two per zone; `memory` MiB each. Returns the ARNs in zone order (a, a, b, b, c, c).
async fn cluster(memory: i64) -> (Arc<EcsService<WalStore>>, Vec<String>) {
    let store = Arc::new(WalStore::in_memory().unwrap());
    let ecs = EcsService::new(store, EcsConfig::default());
    let mut arns = Vec::new();
    for (i, zone) in ["a", "a", "b", "b", "c", "c"].iter().enumerate() {
        let reg = ecs
            .agent_register(RegisterRequest {
                cluster: "default".into(),
                instance_id: format!("i-{i}"),
                cpu: 4096,
                memory,
                attributes: vec![Attribute {
                    name: "ecs.availability-zone".into(),
                    value: Some(format!("zone-{zone}")),
                    ..Default::default()
                }],
                agent_version: "1.2.3".into(),
                docker_version: "test".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        arns.push(reg.container_instance_arn);
    }
    let td = json!({"family": "app", "containerDefinitions": [{"name": "app", "image": "img", "memory": 256}]});
    call(&ecs, "RegisterTaskDefinition", td).await.unwrap();
    (ecs, arns)
}

fn placed_on(response: &Value) -> Vec<String> {
    response["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["containerInstanceArn"].as_str().unwrap().to_string())
        .collect()
}

fn per_zone(response: &Value) -> BTreeMap<String, usize> {
    let mut zones = BTreeMap::new();
    for t in response["tasks"].as_array().unwrap() {
        *zones
            .entry(t["availabilityZone"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    zones
}

#[tokio::test]
async fn spread_over_zones_then_instances() {
    let (ecs, _) = cluster(4096).await;
    let run = call(
        &ecs,
        "RunTask",
        json!({"taskDefinition": "app", "count": 6, "placementStrategy": [
            {"type": "spread", "field": "attribute:ecs.availability-zone"},
            {"type": "spread", "field": "instanceId"}]}),
    )
    .await
    .unwrap();
    assert_eq!(
        per_zone(&run).values().copied().collect::<Vec<_>>(),
        [2, 2, 2]
    );
    let mut on = placed_on(&run);
    on.sort();
    on.dedup();
    assert_eq!(on.len(), 6, "one task per instance");
}

#[tokio::test]
async fn binpack_fills_one_instance_first() {
    let (ecs, _) = cluster(1024).await;
    let run = call(
        &ecs,
        "RunTask",
        json!({"taskDefinition": "app", "count": 4, "placementStrategy": [{"type": "binpack", "field": "memory"}]}),
    )
    .await
    .unwrap();
    let on = placed_on(&run);
    assert!(
        on.iter().all(|i| *i == on[0]),
        "4 x 256 MiB fill one 1 GiB instance: {on:?}"
    );
    let next = call(
        &ecs,
        "RunTask",
        json!({"taskDefinition": "app", "placementStrategy": [{"type": "binpack", "field": "memory"}]}),
    )
    .await
    .unwrap();
    assert_ne!(
        placed_on(&next)[0],
        on[0],
        "the full instance takes no more"
    );
}

#[tokio::test]
async fn distinct_instance_and_member_of() {
    let (ecs, arns) = cluster(4096).await;
    let group = json!({"taskDefinition": "app", "count": 6, "group": "g",
        "placementConstraints": [{"type": "distinctInstance"}]});
    let run = call(&ecs, "RunTask", group.clone()).await.unwrap();
    assert_eq!(placed_on(&run).len(), 6);
    // Every instance holds one task of the group now.
    let more = call(&ecs, "RunTask", group).await.unwrap();
    assert!(more["tasks"].as_array().unwrap().is_empty());
    let failures = more["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 6);
    assert_eq!(
        failures[0]["reason"],
        "DistinctInstance placement constraint unsatisfied."
    );

    let zone_b = call(
        &ecs,
        "RunTask",
        json!({"taskDefinition": "app", "count": 4, "placementConstraints": [
            {"type": "memberOf", "expression": "attribute:ecs.availability-zone == zone-b"}]}),
    )
    .await
    .unwrap();
    assert!(placed_on(&zone_b)
        .iter()
        .all(|i| *i == arns[2] || *i == arns[3]));

    let task_group = call(
        &ecs,
        "RunTask",
        json!({"taskDefinition": "app", "placementConstraints": [
            {"type": "memberOf", "expression": "task:group == g and attribute:ecs.availability-zone in [zone-c]"}]}),
    )
    .await
    .unwrap();
    assert!([&arns[4], &arns[5]].contains(&&placed_on(&task_group)[0]));

    let nowhere = call(
        &ecs,
        "RunTask",
        json!({"taskDefinition": "app", "placementConstraints": [
            {"type": "memberOf", "expression": "attribute:ecs.availability-zone == zone-z"}]}),
    )
    .await
    .unwrap();
    assert_eq!(
        nowhere["failures"][0]["reason"],
        "MemberOf placement constraint unsatisfied."
    );
}

#[tokio::test]
async fn malformed_placement_is_invalid_parameter() {
    let (ecs, _) = cluster(4096).await;
    for body in [
        json!({"taskDefinition": "app", "placementConstraints": [{"type": "memberOf", "expression": "attribute:x =="}]}),
        json!({"taskDefinition": "app", "placementConstraints": [{"type": "memberOf"}]}),
        json!({"taskDefinition": "app", "placementConstraints": [{"type": "sameInstance"}]}),
        json!({"taskDefinition": "app", "placementStrategy": [{"type": "binpack", "field": "disk"}]}),
        json!({"taskDefinition": "app", "placementStrategy": [{"type": "spread"}]}),
        json!({"taskDefinition": "app", "placementStrategy": vec![json!({"type": "random"}); 6]}),
    ] {
        let e = call(&ecs, "RunTask", body.clone()).await.unwrap_err();
        assert!(e.starts_with("InvalidParameterException"), "{body}: {e}");
    }
    // The task definition's constraints apply too, and a bad one is refused when registered.
    let td = json!({"family": "pinned", "containerDefinitions": [{"name": "app", "image": "img", "memory": 64}],
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.availability-zone == zone-c"}]});
    call(&ecs, "RegisterTaskDefinition", td).await.unwrap();
    let bad = json!({"family": "bad", "containerDefinitions": [{"name": "app", "image": "img", "memory": 64}],
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.availability-zone === zone-c"}]});
    let e = call(&ecs, "RegisterTaskDefinition", bad).await.unwrap_err();
    assert!(e.starts_with("InvalidParameterException"), "{e}");
    let run = call(
        &ecs,
        "RunTask",
        json!({"taskDefinition": "pinned", "count": 3}),
    )
    .await
    .unwrap();
    assert_eq!(per_zone(&run).keys().collect::<Vec<_>>(), ["zone-c"]);
}

#[tokio::test]
async fn custom_attributes_steer_placement() {
    let (ecs, arns) = cluster(4096).await;
    let put = call(
        &ecs,
        "PutAttributes",
        json!({"attributes": [
            {"name": "stack", "value": "prod", "targetId": arns[1]},
            {"name": "gpu", "targetId": arns[1]}]}),
    )
    .await
    .unwrap();
    assert_eq!(put["attributes"].as_array().unwrap().len(), 2);
    assert_eq!(put["attributes"][0]["targetType"], "container-instance");

    let listed = call(
        &ecs,
        "ListAttributes",
        json!({"targetType": "container-instance", "attributeName": "stack", "attributeValue": "prod"}),
    )
    .await
    .unwrap();
    assert_eq!(listed["attributes"].as_array().unwrap().len(), 1);
    assert_eq!(listed["attributes"][0]["targetId"], arns[1]);

    let run = call(
        &ecs,
        "RunTask",
        json!({"taskDefinition": "app", "count": 3, "placementConstraints": [
            {"type": "memberOf", "expression": "attribute:stack == prod and attribute:gpu exists"}]}),
    )
    .await
    .unwrap();
    assert!(placed_on(&run).iter().all(|i| *i == arns[1]));

    let filtered = call(
        &ecs,
        "ListContainerInstances",
        json!({"filter": "attribute:stack == prod or runningTasksCount > 100"}),
    )
    .await
    .unwrap();
    assert_eq!(filtered["containerInstanceArns"], json!([arns[1]]));
    let e = call(
        &ecs,
        "ListContainerInstances",
        json!({"filter": "attribute:"}),
    )
    .await
    .unwrap_err();
    assert!(e.starts_with("InvalidParameterException"), "{e}");

    call(
        &ecs,
        "DeleteAttributes",
        json!({"attributes": [{"name": "stack", "targetId": arns[1]}]}),
    )
    .await
    .unwrap();
    let listed = call(
        &ecs,
        "ListAttributes",
        json!({"targetType": "container-instance", "attributeName": "stack"}),
    )
    .await
    .unwrap();
    assert!(listed["attributes"].as_array().unwrap().is_empty());

    // Re-registration (an agent restart) keeps what was put through the API.
    ecs.agent_register(RegisterRequest {
        cluster: "default".into(),
        instance_id: "i-1".into(),
        container_instance_arn: Some(arns[1].clone()),
        cpu: 4096,
        memory: 4096,
        ..Default::default()
    })
    .await
    .unwrap();
    let listed = call(
        &ecs,
        "ListAttributes",
        json!({"targetType": "container-instance", "attributeName": "gpu"}),
    )
    .await
    .unwrap();
    assert_eq!(listed["attributes"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn attribute_errors() {
    let (ecs, arns) = cluster(4096).await;
    let cases = [
        (json!({"attributes": []}), "InvalidParameterException"),
        (
            json!({"attributes": [{"name": "bad name", "targetId": arns[0]}]}),
            "InvalidParameterException",
        ),
        (
            json!({"attributes": [{"name": "x", "value": " padded", "targetId": arns[0]}]}),
            "InvalidParameterException",
        ),
        (
            json!({"attributes": [{"name": "x"}]}),
            "InvalidParameterException",
        ),
        (
            json!({"attributes": [{"name": "x", "targetId": "0123456789abcdef0123456789abcdef"}]}),
            "TargetNotFoundException",
        ),
        (
            json!({"attributes": [{"name": "x", "targetId": arns[0], "targetType": "task"}]}),
            "InvalidParameterException",
        ),
        (
            json!({"attributes": [{"name": "ecs.availability-zone", "value": "x", "targetId": arns[0]}]}),
            "InvalidParameterException",
        ),
        (
            json!({"cluster": "nope", "attributes": [{"name": "x", "targetId": arns[0]}]}),
            "ClusterNotFoundException",
        ),
    ];
    for (body, code) in cases {
        let e = call(&ecs, "PutAttributes", body.clone()).await.unwrap_err();
        assert!(e.starts_with(code), "{body}: {e}");
    }
    // Ten custom attributes per instance.
    for batch in 0..2 {
        let attributes: Vec<Value> = (0..5)
            .map(|i| json!({"name": format!("k{batch}{i}"), "value": "v", "targetId": arns[0]}))
            .collect();
        call(&ecs, "PutAttributes", json!({ "attributes": attributes }))
            .await
            .unwrap();
    }
    let e = call(
        &ecs,
        "PutAttributes",
        json!({"attributes": [{"name": "eleventh", "targetId": arns[0]}]}),
    )
    .await
    .unwrap_err();
    assert!(e.starts_with("AttributeLimitExceededException"), "{e}");
    let e = call(&ecs, "ListAttributes", json!({})).await.unwrap_err();
    assert!(e.starts_with("InvalidParameterException"), "{e}");
}

#[tokio::test]
async fn daemon_service_runs_one_task_per_selected_instance() {
    let (ecs, arns) = cluster(4096).await;
    call(
        &ecs,
        "CreateService",
        json!({"serviceName": "d", "taskDefinition": "app", "schedulingStrategy": "DAEMON",
            "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.availability-zone != zone-a"}]}),
    )
    .await
    .unwrap();
    let controller =
        ecs.clone()
            .spawn_service_controller(gantry_store::lease::Lease::single_server(
                "ecs/service-controller",
            ));
    let mut on = Vec::new();
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let listed = call(&ecs, "ListTasks", json!({"serviceName": "d"}))
            .await
            .unwrap();
        let tasks = listed["taskArns"].as_array().unwrap().clone();
        if tasks.len() >= 4 {
            let described = call(&ecs, "DescribeTasks", json!({ "tasks": tasks }))
                .await
                .unwrap();
            on = placed_on(&described);
            break;
        }
    }
    controller.abort();
    on.sort();
    let mut want = arns[2..].to_vec();
    want.sort();
    assert_eq!(on, want, "one task on each instance outside zone-a");
}
