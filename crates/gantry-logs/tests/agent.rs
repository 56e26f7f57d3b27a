//! The awslogs driver's path: put_batch and log_cursor.

mod common;

use common::*;
use gantry_logs::LogsError;
use gantry_model::agent::{LogBatch, LogEvent};
use serde_json::json;

fn batch(
    group: &str,
    stream: &str,
    create: bool,
    events: &[(i64, &str)],
    cursor: Option<&str>,
) -> LogBatch {
    LogBatch {
        log_group: group.into(),
        log_stream: stream.into(),
        create_group: create,
        events: events
            .iter()
            .map(|(t, m)| LogEvent {
                timestamp: *t,
                message: m.to_string(),
            })
            .collect(),
        cursor: cursor.map(String::from),
    }
}

#[tokio::test]
async fn put_batch_creates_what_is_missing_and_records_the_cursor() {
    let h = Harness::new("agent");
    let s = scope();
    let t = now();

    // Without awslogs-create-group, a missing group is an error and nothing is created.
    let err = h
        .svc
        .put_batch(
            &s,
            &batch("/ecs/web", "web/app/1", false, &[(t, "x")], Some("c0")),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LogsError::GroupNotFound), "{err:?}");
    assert!(h.ok("DescribeLogGroups", json!({})).await["logGroups"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(h.svc.log_cursor(&s, "/ecs/web", "web/app/1"), None);

    // With it, the group and the stream are created. Events are sorted; empty lines dropped.
    h.svc
        .put_batch(
            &s,
            &batch(
                "/ecs/web",
                "web/app/1",
                true,
                &[(t, "second"), (t - 5, "first"), (t, "")],
                Some("c1"),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        h.svc.log_cursor(&s, "/ecs/web", "web/app/1").as_deref(),
        Some("c1")
    );
    let got = h.ok("GetLogEvents", json!({"logGroupName": "/ecs/web", "logStreamName": "web/app/1", "startFromHead": true})).await;
    assert_eq!(messages(&got["events"]), ["first", "second"]);

    // The group exists now: a batch without create-group goes in; a new stream is created as the driver does.
    h.svc
        .put_batch(
            &s,
            &batch(
                "/ecs/web",
                "web/app/2",
                false,
                &[(t, "other task")],
                Some("d1"),
            ),
        )
        .await
        .unwrap();
    h.svc
        .put_batch(
            &s,
            &batch(
                "/ecs/web",
                "web/app/1",
                false,
                &[(t + 1, "third")],
                Some("c2"),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        h.svc.log_cursor(&s, "/ecs/web", "web/app/1").as_deref(),
        Some("c2")
    );
    assert_eq!(
        h.svc.log_cursor(&s, "/ecs/web", "web/app/2").as_deref(),
        Some("d1")
    );

    // A batch whose events are all dropped still moves the cursor; a batch without a cursor keeps it.
    h.svc
        .put_batch(
            &s,
            &batch(
                "/ecs/web",
                "web/app/1",
                false,
                &[(t - 30 * 86_400_000, "ancient")],
                Some("c3"),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        h.svc.log_cursor(&s, "/ecs/web", "web/app/1").as_deref(),
        Some("c3")
    );
    h.svc
        .put_batch(
            &s,
            &batch("/ecs/web", "web/app/1", false, &[(t + 2, "fourth")], None),
        )
        .await
        .unwrap();
    assert_eq!(
        h.svc.log_cursor(&s, "/ecs/web", "web/app/1").as_deref(),
        Some("c3")
    );
    let got = h.ok("GetLogEvents", json!({"logGroupName": "/ecs/web", "logStreamName": "web/app/1", "startFromHead": true})).await;
    assert_eq!(
        messages(&got["events"]),
        ["first", "second", "third", "fourth"]
    );

    // An empty batch creates the stream (the driver does at container start).
    h.svc
        .put_batch(&s, &batch("/ecs/web", "web/app/3", false, &[], None))
        .await
        .unwrap();
    let streams = h
        .ok("DescribeLogStreams", json!({"logGroupName": "/ecs/web"}))
        .await;
    assert_eq!(streams["logStreams"].as_array().unwrap().len(), 3);
    assert_eq!(h.svc.log_cursor(&s, "/ecs/web", "web/app/3"), None);

    // Concurrent batches for a new group and stream all land.
    let mut tasks = Vec::new();
    let svc = h.svc.clone();
    for i in 0..8 {
        let svc = svc.clone();
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let msg = format!("m{i}");
            svc.put_batch(
                &s,
                &batch(
                    "/ecs/new",
                    "one",
                    true,
                    &[(t, msg.as_str())],
                    Some(&format!("c{i}")),
                ),
            )
            .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert!(svc.log_cursor(&s, "/ecs/new", "one").is_some());

    // Bad names are refused.
    assert!(matches!(
        svc.put_batch(&s, &batch("bad name", "x", true, &[], None))
            .await,
        Err(LogsError::InvalidParameter(_))
    ));
    assert!(matches!(
        svc.put_batch(&s, &batch("g", "x:y", true, &[], None)).await,
        Err(LogsError::InvalidParameter(_))
    ));
}
