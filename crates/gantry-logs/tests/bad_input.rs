//! Bad input for every operation answers the error code AWS does.

mod common;

use common::*;
use gantry_aws::JsonService;
use serde_json::json;

#[tokio::test]
async fn every_operation_refuses_bad_input() {
    let h = Harness::new("bad-input");
    h.group("g").await;
    h.stream("g", "s").await;
    let t = now();
    let long = "a".repeat(513);
    let arn = "arn:aws:logs:us-east-1:000000000000:log-group:g";
    let ipe = "InvalidParameterException";
    let rnf = "ResourceNotFoundException";
    let cases = vec![
        // CreateLogGroup
        ("CreateLogGroup", json!({}), ipe),
        ("CreateLogGroup", json!({"logGroupName": ""}), ipe),
        ("CreateLogGroup", json!({"logGroupName": "has space"}), ipe),
        ("CreateLogGroup", json!({"logGroupName": "a:b"}), ipe),
        ("CreateLogGroup", json!({"logGroupName": long}), ipe),
        (
            "CreateLogGroup",
            json!({"logGroupName": "x", "logGroupClass": "CHEAP"}),
            ipe,
        ),
        (
            "CreateLogGroup",
            json!({"logGroupName": "x", "tags": {}}),
            ipe,
        ),
        (
            "CreateLogGroup",
            json!({"logGroupName": "x", "tags": {"aws:reserved": "v"}}),
            ipe,
        ),
        (
            "CreateLogGroup",
            json!({"logGroupName": 5}),
            "SerializationException",
        ),
        // DescribeLogGroups
        ("DescribeLogGroups", json!({"limit": 0}), ipe),
        ("DescribeLogGroups", json!({"limit": 51}), ipe),
        (
            "DescribeLogGroups",
            json!({"logGroupNamePrefix": "a", "logGroupNamePattern": "b"}),
            ipe,
        ),
        (
            "DescribeLogGroups",
            json!({"logGroupNamePrefix": "bad prefix"}),
            ipe,
        ),
        ("DescribeLogGroups", json!({"nextToken": "!!!"}), ipe),
        ("DescribeLogGroups", json!({"logGroupIdentifiers": []}), ipe),
        // DeleteLogGroup
        ("DeleteLogGroup", json!({}), ipe),
        ("DeleteLogGroup", json!({"logGroupName": "nope"}), rnf),
        ("DeleteLogGroup", json!({"logGroupName": "bad name"}), ipe),
        // CreateLogStream
        ("CreateLogStream", json!({"logGroupName": "g"}), ipe),
        (
            "CreateLogStream",
            json!({"logGroupName": "g", "logStreamName": "a:b"}),
            ipe,
        ),
        (
            "CreateLogStream",
            json!({"logGroupName": "g", "logStreamName": "a*"}),
            ipe,
        ),
        (
            "CreateLogStream",
            json!({"logGroupName": "g", "logStreamName": ""}),
            ipe,
        ),
        (
            "CreateLogStream",
            json!({"logGroupName": "g", "logStreamName": long}),
            ipe,
        ),
        (
            "CreateLogStream",
            json!({"logGroupName": "nope", "logStreamName": "s"}),
            rnf,
        ),
        // DescribeLogStreams
        ("DescribeLogStreams", json!({}), ipe),
        (
            "DescribeLogStreams",
            json!({"logGroupName": "g", "logGroupIdentifier": "g"}),
            ipe,
        ),
        ("DescribeLogStreams", json!({"logGroupName": "nope"}), rnf),
        (
            "DescribeLogStreams",
            json!({"logGroupName": "g", "orderBy": "Size"}),
            ipe,
        ),
        (
            "DescribeLogStreams",
            json!({"logGroupName": "g", "orderBy": "LastEventTime", "logStreamNamePrefix": "s"}),
            ipe,
        ),
        (
            "DescribeLogStreams",
            json!({"logGroupName": "g", "limit": 100}),
            ipe,
        ),
        (
            "DescribeLogStreams",
            json!({"logGroupName": "g", "nextToken": "garbage"}),
            ipe,
        ),
        (
            "DescribeLogStreams",
            json!({"logGroupIdentifier": "arn:aws:logs:eu-west-1:000000000000:log-group:g"}),
            rnf,
        ),
        // DeleteLogStream
        ("DeleteLogStream", json!({"logGroupName": "g"}), ipe),
        (
            "DeleteLogStream",
            json!({"logGroupName": "g", "logStreamName": "nope"}),
            rnf,
        ),
        (
            "DeleteLogStream",
            json!({"logGroupName": "nope", "logStreamName": "s"}),
            rnf,
        ),
        // PutLogEvents
        (
            "PutLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s"}),
            ipe,
        ),
        (
            "PutLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "logEvents": []}),
            ipe,
        ),
        (
            "PutLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": t}]}),
            ipe,
        ),
        (
            "PutLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": t, "message": ""}]}),
            ipe,
        ),
        (
            "PutLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": -1, "message": "x"}]}),
            ipe,
        ),
        (
            "PutLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": "soon", "message": "x"}]}),
            "SerializationException",
        ),
        (
            "PutLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": t, "message": "x".repeat(1_048_576)}]}),
            ipe,
        ),
        (
            "PutLogEvents",
            json!({"logGroupName": "g", "logStreamName": "nope", "logEvents": [{"timestamp": t, "message": "x"}]}),
            rnf,
        ),
        // GetLogEvents
        ("GetLogEvents", json!({"logGroupName": "g"}), ipe),
        ("GetLogEvents", json!({"logStreamName": "s"}), ipe),
        (
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "limit": 0}),
            ipe,
        ),
        (
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "limit": 10_001}),
            ipe,
        ),
        (
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "nextToken": "f/123"}),
            ipe,
        ),
        (
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "startTime": -5}),
            ipe,
        ),
        (
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "nope"}),
            rnf,
        ),
        (
            "GetLogEvents",
            json!({"logGroupName": "nope", "logStreamName": "s"}),
            rnf,
        ),
        // FilterLogEvents
        ("FilterLogEvents", json!({}), ipe),
        ("FilterLogEvents", json!({"logGroupName": "nope"}), rnf),
        (
            "FilterLogEvents",
            json!({"logGroupName": "g", "logStreamNames": ["s"], "logStreamNamePrefix": "s"}),
            ipe,
        ),
        (
            "FilterLogEvents",
            json!({"logGroupName": "g", "logStreamNames": []}),
            ipe,
        ),
        (
            "FilterLogEvents",
            json!({"logGroupName": "g", "filterPattern": "{ $.x = 1 }"}),
            ipe,
        ),
        (
            "FilterLogEvents",
            json!({"logGroupName": "g", "filterPattern": "[a, b]"}),
            ipe,
        ),
        (
            "FilterLogEvents",
            json!({"logGroupName": "g", "filterPattern": "\"open"}),
            ipe,
        ),
        (
            "FilterLogEvents",
            json!({"logGroupName": "g", "filterPattern": "x".repeat(1025)}),
            ipe,
        ),
        (
            "FilterLogEvents",
            json!({"logGroupName": "g", "limit": 0}),
            ipe,
        ),
        (
            "FilterLogEvents",
            json!({"logGroupName": "g", "nextToken": "f/0"}),
            ipe,
        ),
        // Retention
        ("PutRetentionPolicy", json!({"logGroupName": "g"}), ipe),
        (
            "PutRetentionPolicy",
            json!({"logGroupName": "g", "retentionInDays": 0}),
            ipe,
        ),
        (
            "PutRetentionPolicy",
            json!({"logGroupName": "g", "retentionInDays": 4}),
            ipe,
        ),
        (
            "PutRetentionPolicy",
            json!({"logGroupName": "nope", "retentionInDays": 1}),
            rnf,
        ),
        ("DeleteRetentionPolicy", json!({}), ipe),
        (
            "DeleteRetentionPolicy",
            json!({"logGroupName": "nope"}),
            rnf,
        ),
        (
            "PutLogGroupDeletionProtection",
            json!({"logGroupIdentifier": "g"}),
            ipe,
        ),
        (
            "PutLogGroupDeletionProtection",
            json!({"logGroupIdentifier": "nope", "deletionProtectionEnabled": true}),
            rnf,
        ),
        // Tags
        ("TagResource", json!({"resourceArn": arn}), ipe),
        ("TagResource", json!({"resourceArn": arn, "tags": {}}), ipe),
        (
            "TagResource",
            json!({"resourceArn": arn, "tags": {"": "v"}}),
            ipe,
        ),
        (
            "TagResource",
            json!({"resourceArn": arn, "tags": {"k": "v".repeat(257)}}),
            ipe,
        ),
        (
            "TagResource",
            json!({"resourceArn": "arn:aws:ecs:us-east-1:000000000000:cluster/x", "tags": {"k": "v"}}),
            ipe,
        ),
        ("UntagResource", json!({"resourceArn": arn}), ipe),
        (
            "UntagResource",
            json!({"resourceArn": arn, "tagKeys": [""]}),
            ipe,
        ),
        ("ListTagsForResource", json!({}), ipe),
        ("ListTagsForResource", json!({"resourceArn": ""}), ipe),
        ("TagLogGroup", json!({"logGroupName": "g"}), ipe),
        (
            "TagLogGroup",
            json!({"logGroupName": "nope", "tags": {"k": "v"}}),
            rnf,
        ),
        (
            "UntagLogGroup",
            json!({"logGroupName": "g", "tags": []}),
            ipe,
        ),
        (
            "UntagLogGroup",
            json!({"logGroupName": "nope", "tags": ["k"]}),
            rnf,
        ),
        ("ListTagsLogGroup", json!({}), ipe),
        ("ListTagsLogGroup", json!({"logGroupName": "nope"}), rnf),
        // Unknown operations
        ("StartQuery", json!({}), "UnknownOperationException"),
    ];
    for (op, body, code) in cases {
        h.err(op, body, code).await;
    }
    // Malformed bodies.
    let err = h
        .svc
        .call(&h.ctx, "CreateLogGroup", b"{nope")
        .await
        .unwrap_err();
    assert_eq!(err.code, "SerializationException");
    let err = h
        .svc
        .call(&h.ctx, "DescribeLogGroups", b"[]")
        .await
        .unwrap_err();
    assert_eq!(err.code, "SerializationException");
    // An empty body is `{}`.
    assert!(h.svc.call(&h.ctx, "DescribeLogGroups", b"").await.is_ok());
    // Nothing above changed anything.
    let groups = h.ok("DescribeLogGroups", json!({})).await;
    assert_eq!(groups["logGroups"].as_array().unwrap().len(), 1);
}
