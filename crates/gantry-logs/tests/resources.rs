//! Log groups, streams, retention policies and tags through the API.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn groups_create_describe_delete() {
    let h = Harness::new("groups");
    h.group("/ecs/web").await;
    h.group("/ecs/api").await;
    h.ok("CreateLogGroup", json!({"logGroupName": "other", "tags": {"team": "a"}, "logGroupClass": "INFREQUENT_ACCESS"}))
        .await;
    let msg = h
        .err(
            "CreateLogGroup",
            json!({"logGroupName": "/ecs/web"}),
            "ResourceAlreadyExistsException",
        )
        .await;
    assert_eq!(msg, "The specified log group already exists");

    let all = h.ok("DescribeLogGroups", json!({})).await;
    only_members(&all, &["logGroups", "nextToken"]);
    let groups = all["logGroups"].as_array().unwrap();
    let names: Vec<&str> = groups
        .iter()
        .map(|g| g["logGroupName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["/ecs/api", "/ecs/web", "other"]);
    let web = &groups[1];
    only_members(web, LOG_GROUP_MEMBERS);
    assert_eq!(
        web["arn"],
        "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/web:*"
    );
    assert_eq!(
        web["logGroupArn"],
        "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/web"
    );
    assert_eq!(web["storedBytes"], 0);
    assert_eq!(web["metricFilterCount"], 0);
    assert_eq!(web["logGroupClass"], "STANDARD");
    assert!(web.get("retentionInDays").is_none());
    let created = web["creationTime"].as_i64().unwrap();
    assert!((now() - created).abs() < 60_000);
    assert_eq!(groups[2]["logGroupClass"], "INFREQUENT_ACCESS");

    let by_prefix = h
        .ok("DescribeLogGroups", json!({"logGroupNamePrefix": "/ecs/"}))
        .await;
    assert_eq!(by_prefix["logGroups"].as_array().unwrap().len(), 2);
    let by_pattern = h
        .ok("DescribeLogGroups", json!({"logGroupNamePattern": "web"}))
        .await;
    let only = &by_pattern["logGroups"][0];
    assert_eq!(by_pattern["logGroups"].as_array().unwrap().len(), 1);
    // With a pattern, AWS returns only these three members.
    only_members(only, &["logGroupName", "creationTime", "arn"]);
    let by_id = h
        .ok("DescribeLogGroups", json!({"logGroupIdentifiers": ["other", "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/api:*"]}))
        .await;
    assert_eq!(by_id["logGroups"].as_array().unwrap().len(), 2);
    let by_class = h
        .ok(
            "DescribeLogGroups",
            json!({"logGroupClass": "INFREQUENT_ACCESS"}),
        )
        .await;
    assert_eq!(by_class["logGroups"][0]["logGroupName"], "other");

    // Paging with limit walks every group once.
    let mut token: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let mut body = json!({"limit": 2});
        if let Some(t) = &token {
            body["nextToken"] = json!(t);
        }
        let page = h.ok("DescribeLogGroups", body).await;
        for g in page["logGroups"].as_array().unwrap() {
            seen.push(g["logGroupName"].as_str().unwrap().to_string());
        }
        match page.get("nextToken") {
            Some(t) => token = Some(t.as_str().unwrap().to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ["/ecs/api", "/ecs/web", "other"]);

    assert_eq!(
        h.ok("DeleteLogGroup", json!({"logGroupName": "/ecs/web"}))
            .await,
        json!({})
    );
    let msg = h
        .err(
            "DeleteLogGroup",
            json!({"logGroupName": "/ecs/web"}),
            "ResourceNotFoundException",
        )
        .await;
    assert_eq!(msg, "The specified log group does not exist.");
    let names: Vec<String> = h.ok("DescribeLogGroups", json!({})).await["logGroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["logGroupName"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["/ecs/api", "other"]);
}

#[tokio::test]
async fn streams_create_describe_delete() {
    let h = Harness::new("streams");
    let msg = h
        .err(
            "CreateLogStream",
            json!({"logGroupName": "g", "logStreamName": "s"}),
            "ResourceNotFoundException",
        )
        .await;
    assert_eq!(msg, "The specified log group does not exist.");
    h.group("g").await;
    for s in ["web/web/1", "web/web/2", "api/api/1", "odd %2F name"] {
        h.stream("g", s).await;
    }
    let msg = h
        .err(
            "CreateLogStream",
            json!({"logGroupName": "g", "logStreamName": "web/web/1"}),
            "ResourceAlreadyExistsException",
        )
        .await;
    assert_eq!(msg, "The specified log stream already exists");

    let t = now();
    h.put("g", "api/api/1", &[(t - 3000, "a")]).await;
    h.put("g", "web/web/2", &[(t - 1000, "b")]).await;
    h.put("g", "web/web/1", &[(t - 2000, "c")]).await;

    let all = h
        .ok("DescribeLogStreams", json!({"logGroupName": "g"}))
        .await;
    only_members(&all, &["logStreams", "nextToken"]);
    let streams = all["logStreams"].as_array().unwrap();
    let names: Vec<&str> = streams
        .iter()
        .map(|s| s["logStreamName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["api/api/1", "odd %2F name", "web/web/1", "web/web/2"]
    );
    for s in streams {
        only_members(s, LOG_STREAM_MEMBERS);
        assert_eq!(s["storedBytes"], 0);
    }
    let api = &streams[0];
    assert_eq!(
        api["arn"],
        "arn:aws:logs:us-east-1:000000000000:log-group:g:log-stream:api/api/1"
    );
    assert_eq!(api["firstEventTimestamp"], t - 3000);
    assert_eq!(api["lastEventTimestamp"], t - 3000);
    assert!(api["lastIngestionTime"].as_i64().unwrap() >= t - 1000);
    assert!(api["uploadSequenceToken"].is_string());
    // A stream without events has no event times.
    assert!(streams[1].get("lastEventTimestamp").is_none());
    assert!(streams[1].get("uploadSequenceToken").is_none());

    let web = h
        .ok(
            "DescribeLogStreams",
            json!({"logGroupName": "g", "logStreamNamePrefix": "web/"}),
        )
        .await;
    let names: Vec<&str> = web["logStreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["logStreamName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web/web/1", "web/web/2"]);

    let by_time = h
        .ok(
            "DescribeLogStreams",
            json!({"logGroupIdentifier": "g", "orderBy": "LastEventTime", "descending": true}),
        )
        .await;
    let names: Vec<&str> = by_time["logStreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["logStreamName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["web/web/2", "web/web/1", "api/api/1", "odd %2F name"]
    );

    // Paging, by name descending and by time.
    for body in [
        json!({"logGroupName": "g", "descending": true, "limit": 3}),
        json!({"logGroupName": "g", "orderBy": "LastEventTime", "limit": 1}),
    ] {
        let mut token: Option<String> = None;
        let mut seen = Vec::new();
        loop {
            let mut b = body.clone();
            if let Some(t) = &token {
                b["nextToken"] = json!(t);
            }
            let page = h.ok("DescribeLogStreams", b).await;
            seen.extend(
                page["logStreams"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s["logStreamName"].as_str().unwrap().to_string()),
            );
            match page.get("nextToken") {
                Some(t) => token = Some(t.as_str().unwrap().to_string()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 4, "{body}: {seen:?}");
        if body.get("descending").is_some() {
            assert_eq!(
                seen,
                ["web/web/2", "web/web/1", "odd %2F name", "api/api/1"]
            );
        } else {
            assert_eq!(
                seen,
                ["odd %2F name", "api/api/1", "web/web/1", "web/web/2"]
            );
        }
    }

    h.ok(
        "DeleteLogStream",
        json!({"logGroupName": "g", "logStreamName": "web/web/1"}),
    )
    .await;
    let msg = h
        .err(
            "DeleteLogStream",
            json!({"logGroupName": "g", "logStreamName": "web/web/1"}),
            "ResourceNotFoundException",
        )
        .await;
    assert_eq!(msg, "The specified log stream does not exist.");
    let msg = h
        .err(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "web/web/1"}),
            "ResourceNotFoundException",
        )
        .await;
    assert_eq!(msg, "The specified log stream does not exist.");
    // A stream created again under the same name starts empty.
    h.stream("g", "web/web/1").await;
    let got = h
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "web/web/1", "startFromHead": true}),
        )
        .await;
    assert!(got["events"].as_array().unwrap().is_empty());
    // Deleting the group deletes its streams and their events.
    h.ok("DeleteLogGroup", json!({"logGroupName": "g"})).await;
    h.group("g").await;
    let left = h
        .ok("DescribeLogStreams", json!({"logGroupName": "g"}))
        .await;
    assert!(left["logStreams"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn retention_policies() {
    let h = Harness::new("retention-policy");
    h.group("g").await;
    assert_eq!(
        h.ok(
            "PutRetentionPolicy",
            json!({"logGroupName": "g", "retentionInDays": 14})
        )
        .await,
        json!({})
    );
    let g = h
        .ok("DescribeLogGroups", json!({"logGroupNamePrefix": "g"}))
        .await;
    assert_eq!(g["logGroups"][0]["retentionInDays"], 14);
    let msg = h
        .err(
            "PutRetentionPolicy",
            json!({"logGroupName": "g", "retentionInDays": 2}),
            "InvalidParameterException",
        )
        .await;
    assert!(msg.contains("[1, 3, 5, 7, 14, 30"), "{msg}");
    h.err(
        "PutRetentionPolicy",
        json!({"logGroupName": "nope", "retentionInDays": 1}),
        "ResourceNotFoundException",
    )
    .await;
    h.ok("DeleteRetentionPolicy", json!({"logGroupName": "g"}))
        .await;
    let g = h
        .ok("DescribeLogGroups", json!({"logGroupNamePrefix": "g"}))
        .await;
    assert!(g["logGroups"][0].get("retentionInDays").is_none());
    h.err(
        "DeleteRetentionPolicy",
        json!({"logGroupName": "nope"}),
        "ResourceNotFoundException",
    )
    .await;
}

#[tokio::test]
async fn deletion_protection() {
    let h = Harness::new("protection");
    h.ok(
        "CreateLogGroup",
        json!({"logGroupName": "g", "deletionProtectionEnabled": true}),
    )
    .await;
    h.stream("g", "s").await;
    let g = h.ok("DescribeLogGroups", json!({})).await;
    assert_eq!(g["logGroups"][0]["deletionProtectionEnabled"], true);
    h.err(
        "DeleteLogGroup",
        json!({"logGroupName": "g"}),
        "ValidationException",
    )
    .await;
    h.err(
        "DeleteLogStream",
        json!({"logGroupName": "g", "logStreamName": "s"}),
        "ValidationException",
    )
    .await;
    h.ok(
        "PutLogGroupDeletionProtection",
        json!({"logGroupIdentifier": "g", "deletionProtectionEnabled": false}),
    )
    .await;
    h.ok("DeleteLogGroup", json!({"logGroupName": "g"})).await;
}

#[tokio::test]
async fn tags_by_arn_and_by_name() {
    let h = Harness::new("tags");
    h.ok(
        "CreateLogGroup",
        json!({"logGroupName": "/g", "tags": {"a": "1"}}),
    )
    .await;
    let arn = "arn:aws:logs:us-east-1:000000000000:log-group:/g";
    assert_eq!(
        h.ok("ListTagsForResource", json!({"resourceArn": arn}))
            .await,
        json!({"tags": {"a": "1"}})
    );
    h.ok(
        "TagResource",
        json!({"resourceArn": format!("{arn}:*"), "tags": {"b": "2"}}),
    )
    .await;
    h.ok(
        "TagLogGroup",
        json!({"logGroupName": "/g", "tags": {"c": "3"}}),
    )
    .await;
    assert_eq!(
        h.ok("ListTagsLogGroup", json!({"logGroupName": "/g"}))
            .await,
        json!({"tags": {"a": "1", "b": "2", "c": "3"}})
    );
    h.ok(
        "UntagResource",
        json!({"resourceArn": arn, "tagKeys": ["a"]}),
    )
    .await;
    h.ok(
        "UntagLogGroup",
        json!({"logGroupName": "/g", "tags": ["b"]}),
    )
    .await;
    assert_eq!(
        h.ok("ListTagsForResource", json!({"resourceArn": arn}))
            .await,
        json!({"tags": {"c": "3"}})
    );
    h.ok(
        "UntagResource",
        json!({"resourceArn": arn, "tagKeys": ["c"]}),
    )
    .await;
    assert_eq!(
        h.ok("ListTagsForResource", json!({"resourceArn": arn}))
            .await,
        json!({"tags": {}})
    );

    let many: serde_json::Map<String, serde_json::Value> =
        (0..50).map(|i| (format!("k{i}"), json!("v"))).collect();
    h.ok("TagResource", json!({"resourceArn": arn, "tags": many}))
        .await;
    h.err(
        "TagResource",
        json!({"resourceArn": arn, "tags": {"one-more": "x"}}),
        "TooManyTagsException",
    )
    .await;

    let missing = "arn:aws:logs:us-east-1:000000000000:log-group:/nope";
    h.err(
        "TagResource",
        json!({"resourceArn": missing, "tags": {"a": "b"}}),
        "ResourceNotFoundException",
    )
    .await;
    h.err(
        "ListTagsForResource",
        json!({"resourceArn": missing}),
        "ResourceNotFoundException",
    )
    .await;
    h.err(
        "ListTagsLogGroup",
        json!({"logGroupName": "/nope"}),
        "ResourceNotFoundException",
    )
    .await;
    h.err(
        "ListTagsForResource",
        json!({"resourceArn": "arn:aws:logs:eu-west-1:000000000000:log-group:/g"}),
        "ResourceNotFoundException",
    )
    .await;
    h.err(
        "ListTagsForResource",
        json!({"resourceArn": "not-an-arn"}),
        "InvalidParameterException",
    )
    .await;
}
