//! Putting, getting and filtering events; retention; durability across a reopen.

mod common;

use std::collections::{HashMap, HashSet};

use common::*;
use gantry_logs::LogsService;
use gantry_store::WalStore;
use serde_json::{json, Value};

const DAY: i64 = 86_400_000;

async fn setup(h: &Harness, n: usize, base: i64) {
    h.group("g").await;
    h.stream("g", "s").await;
    let msgs: Vec<String> = (0..n).map(|i| format!("event {i:03}")).collect();
    let events: Vec<(i64, &str)> = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| (base + i as i64, m.as_str()))
        .collect();
    h.put("g", "s", &events).await;
}

/// Follows `token_field` from `first` until the token repeats; returns every page's messages in call order.
async fn walk(h: &Harness, mut body: Value, token_field: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut previous: Option<String> = None;
    for _ in 0..100 {
        let out = h.ok("GetLogEvents", body.clone()).await;
        only_members(&out, &["events", "nextForwardToken", "nextBackwardToken"]);
        for e in out["events"].as_array().unwrap() {
            only_members(e, &["timestamp", "message", "ingestionTime"]);
        }
        let token = out[token_field].as_str().unwrap().to_string();
        let page = messages(&out["events"]);
        if previous.as_deref() == Some(token.as_str()) {
            assert!(page.is_empty(), "a repeated token came with events");
            return pages;
        }
        pages.push(page);
        body["nextToken"] = json!(token);
        previous = Some(token);
    }
    panic!("the token never repeated");
}

#[tokio::test]
async fn get_pages_forward_and_backward_until_the_token_repeats() {
    let h = Harness::new("get-paging");
    let base = now() - 60_000;
    setup(&h, 25, base).await;
    let all: Vec<String> = (0..25).map(|i| format!("event {i:03}")).collect();

    // From the head, forward.
    let pages = walk(
        &h,
        json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true, "limit": 10}),
        "nextForwardToken",
    )
    .await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
    assert_eq!(pages.concat(), all);

    // From the tail (the default), backward: the last 10 first, each page in ascending order.
    let pages = walk(
        &h,
        json!({"logGroupName": "g", "logStreamName": "s", "limit": 10}),
        "nextBackwardToken",
    )
    .await;
    assert_eq!(pages[0], all[15..]);
    assert_eq!(pages[1], all[5..15]);
    assert_eq!(pages[2], all[..5]);

    // The default read returns the tail; its forward token then waits for new events.
    let tail = h
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "limit": 3}),
        )
        .await;
    assert_eq!(messages(&tail["events"]), all[22..]);
    let fwd = tail["nextForwardToken"].as_str().unwrap().to_string();
    assert!(fwd.starts_with("f/"));
    assert!(tail["nextBackwardToken"]
        .as_str()
        .unwrap()
        .starts_with("b/"));
    let again = h
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "nextToken": fwd}),
        )
        .await;
    assert!(again["events"].as_array().unwrap().is_empty());
    assert_eq!(again["nextForwardToken"], json!(fwd));
    h.put("g", "s", &[(base + 100, "late")]).await;
    let more = h
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "nextToken": fwd}),
        )
        .await;
    assert_eq!(messages(&more["events"]), ["late"]);
    assert_ne!(more["nextForwardToken"], json!(fwd));

    // Time range: startTime included, endTime excluded.
    let ranged = h
        .ok("GetLogEvents", json!({"logGroupIdentifier": "g", "logStreamName": "s", "startTime": base + 5, "endTime": base + 8, "startFromHead": true}))
        .await;
    assert_eq!(messages(&ranged["events"]), all[5..8]);
    let ev = &ranged["events"][0];
    assert_eq!(ev["timestamp"], base + 5);
    assert!(ev["ingestionTime"].as_i64().unwrap() >= base);

    // An empty stream still answers tokens, and they repeat.
    h.stream("g", "empty").await;
    let pages = walk(
        &h,
        json!({"logGroupName": "g", "logStreamName": "empty", "startFromHead": true}),
        "nextForwardToken",
    )
    .await;
    assert_eq!(pages, [Vec::<String>::new()]);
}

#[tokio::test]
async fn events_with_equal_timestamps_page_without_loss() {
    let h = Harness::new("same-ts");
    h.group("g").await;
    h.stream("g", "s").await;
    let t = now();
    let msgs: Vec<String> = (0..7).map(|i| format!("m{i}")).collect();
    let events: Vec<(i64, &str)> = msgs.iter().map(|m| (t, m.as_str())).collect();
    h.put("g", "s", &events).await;
    let pages = walk(
        &h,
        json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true, "limit": 2}),
        "nextForwardToken",
    )
    .await;
    assert_eq!(pages.concat(), msgs);
    let pages = walk(
        &h,
        json!({"logGroupName": "g", "logStreamName": "s", "limit": 3}),
        "nextBackwardToken",
    )
    .await;
    let mut back: Vec<String> = Vec::new();
    for p in pages.iter().rev() {
        back.extend(p.iter().cloned());
    }
    assert_eq!(back, msgs);
}

#[tokio::test]
async fn put_log_events_validates_like_aws() {
    let h = Harness::new("put");
    h.group("g").await;
    h.stream("g", "s").await;
    let t = now();

    let out = h.put("g", "s", &[(t - 10, "a"), (t, "b")]).await;
    only_members(
        &out,
        &[
            "nextSequenceToken",
            "rejectedLogEventsInfo",
            "rejectedEntityInfo",
        ],
    );
    let first = out["nextSequenceToken"].as_str().unwrap().to_string();
    assert!(out.get("rejectedLogEventsInfo").is_none());
    let out = h.put("g", "s", &[(t, "c")]).await;
    assert_ne!(out["nextSequenceToken"].as_str().unwrap(), first);

    let msg = h
        .err(
            "PutLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": t, "message": "x"}, {"timestamp": t - 1, "message": "y"}]}),
            "InvalidParameterException",
        )
        .await;
    assert!(msg.contains("chronological order"), "{msg}");

    // Too old and too new events are reported, the rest stored.
    let out = h
        .put(
            "g",
            "s",
            &[
                (t - 15 * DAY, "old"),
                (t - 1, "ok"),
                (t + 3 * 3_600_000, "future"),
            ],
        )
        .await;
    let info = &out["rejectedLogEventsInfo"];
    only_members(
        info,
        &[
            "tooNewLogEventStartIndex",
            "tooOldLogEventEndIndex",
            "expiredLogEventEndIndex",
        ],
    );
    assert_eq!(info["tooOldLogEventEndIndex"], 0);
    assert_eq!(info["tooNewLogEventStartIndex"], 2);
    assert!(info.get("expiredLogEventEndIndex").is_none());
    let got = h
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true}),
        )
        .await;
    assert_eq!(messages(&got["events"]), ["a", "ok", "b", "c"]);

    // Events older than the retention are expired.
    h.ok(
        "PutRetentionPolicy",
        json!({"logGroupName": "g", "retentionInDays": 1}),
    )
    .await;
    let out = h
        .put("g", "s", &[(t - 2 * DAY, "expired"), (t, "fresh")])
        .await;
    assert_eq!(out["rejectedLogEventsInfo"]["expiredLogEventEndIndex"], 0);

    // The accepted events may span at most 24 hours.
    h.ok("DeleteRetentionPolicy", json!({"logGroupName": "g"}))
        .await;
    let msg = h
        .err(
            "PutLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": t - 2 * DAY, "message": "x"}, {"timestamp": t, "message": "y"}]}),
            "InvalidParameterException",
        )
        .await;
    assert!(msg.contains("24 hours"), "{msg}");

    h.err("PutLogEvents", json!({"logGroupName": "g", "logStreamName": "nope", "logEvents": [{"timestamp": t, "message": "x"}]}), "ResourceNotFoundException").await;
    let msg = h
        .err("PutLogEvents", json!({"logGroupName": "nope", "logStreamName": "s", "logEvents": [{"timestamp": t, "message": "x"}]}), "ResourceNotFoundException")
        .await;
    assert_eq!(msg, "The specified log group does not exist.");
}

async fn filter_all(h: &Harness, body: Value) -> Vec<Value> {
    let mut body = body;
    let mut out = Vec::new();
    for _ in 0..1000 {
        let page = h.ok("FilterLogEvents", body.clone()).await;
        only_members(&page, &["events", "searchedLogStreams", "nextToken"]);
        for e in page["events"].as_array().unwrap() {
            only_members(
                e,
                &[
                    "logStreamName",
                    "timestamp",
                    "message",
                    "ingestionTime",
                    "eventId",
                ],
            );
            out.push(e.clone());
        }
        match page.get("nextToken") {
            Some(t) => body["nextToken"] = t.clone(),
            None => return out,
        }
    }
    panic!("FilterLogEvents never ended");
}

fn msgs(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn filter_interleaves_streams_and_matches_patterns() {
    let h = Harness::new("filter");
    h.group("g").await;
    h.stream("g", "web/1").await;
    h.stream("g", "web/2").await;
    h.stream("g", "db").await;
    let t = now() - 10_000;
    h.put(
        "g",
        "web/1",
        &[
            (t, "GET /health 200"),
            (t + 2, "ERROR timeout talking to db"),
            (t + 4, "WARN slow request"),
        ],
    )
    .await;
    h.put(
        "g",
        "web/2",
        &[
            (t + 1, "GET /api 200"),
            (t + 3, "ERROR Exiting now"),
            (t + 5, "INFO done"),
        ],
    )
    .await;
    h.put("g", "db", &[(t + 6, "checkpoint complete")]).await;

    let all = filter_all(&h, json!({"logGroupName": "g"})).await;
    assert_eq!(
        msgs(&all),
        [
            "GET /health 200",
            "GET /api 200",
            "ERROR timeout talking to db",
            "ERROR Exiting now",
            "WARN slow request",
            "INFO done",
            "checkpoint complete"
        ]
    );
    assert_eq!(all[1]["logStreamName"], "web/2");
    let ids: HashSet<&str> = all.iter().map(|e| e["eventId"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), all.len());
    assert!(all.iter().all(|e| e["ingestionTime"].as_i64().unwrap() > 0));

    let cases: &[(&str, &[&str])] = &[
        (
            "ERROR",
            &["ERROR timeout talking to db", "ERROR Exiting now"],
        ),
        ("ERROR -Exiting", &["ERROR timeout talking to db"]),
        ("?WARN ?INFO", &["WARN slow request", "INFO done"]),
        ("\"GET /api\"", &["GET /api 200"]),
        ("GET 200", &["GET /health 200", "GET /api 200"]),
        (
            "-GET -ERROR",
            &["WARN slow request", "INFO done", "checkpoint complete"],
        ),
        ("%^(?:x)?E%", &[]),
        ("error", &[]),
    ];
    for (pattern, want) in cases {
        if pattern.contains('(') {
            h.err(
                "FilterLogEvents",
                json!({"logGroupName": "g", "filterPattern": pattern}),
                "InvalidParameterException",
            )
            .await;
            continue;
        }
        let got = filter_all(&h, json!({"logGroupName": "g", "filterPattern": pattern})).await;
        assert_eq!(msgs(&got), *want, "pattern {pattern:?}");
    }
    let got = filter_all(
        &h,
        json!({"logGroupName": "g", "filterPattern": "%^[EW][A-Z]+ %"}),
    )
    .await;
    assert_eq!(
        msgs(&got),
        [
            "ERROR timeout talking to db",
            "ERROR Exiting now",
            "WARN slow request"
        ]
    );
    let msg = h
        .err(
            "FilterLogEvents",
            json!({"logGroupName": "g", "filterPattern": "{ $.level = \"error\" }"}),
            "InvalidParameterException",
        )
        .await;
    assert!(msg.contains("not supported"), "{msg}");

    // Streams by name or prefix; time range.
    let got = filter_all(
        &h,
        json!({"logGroupName": "g", "logStreamNames": ["db", "missing"]}),
    )
    .await;
    assert_eq!(msgs(&got), ["checkpoint complete"]);
    let got = filter_all(
        &h,
        json!({"logGroupName": "g", "logStreamNamePrefix": "web/2"}),
    )
    .await;
    assert_eq!(got.len(), 3);
    let got = filter_all(
        &h,
        json!({"logGroupName": "g", "startTime": t + 2, "endTime": t + 4}),
    )
    .await;
    assert_eq!(
        msgs(&got),
        ["ERROR timeout talking to db", "ERROR Exiting now"]
    );

    // Paging by limit gives the same events, each once, in the same order.
    let paged = filter_all(&h, json!({"logGroupName": "g", "limit": 2})).await;
    assert_eq!(paged, all);
    let first = h
        .ok("FilterLogEvents", json!({"logGroupName": "g", "limit": 2}))
        .await;
    assert_eq!(first["events"].as_array().unwrap().len(), 2);
    assert!(first["nextToken"].is_string());
    assert_eq!(first["searchedLogStreams"], json!([]));

    // Newest first.
    let desc = filter_all(
        &h,
        json!({"logGroupName": "g", "startFromHead": false, "limit": 3}),
    )
    .await;
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(desc, reversed);
}

/// What `aws logs tail --follow` does: poll FilterLogEvents; when a poll ends (no nextToken), poll again from the
/// newest timestamp seen, skipping the event ids already printed at that timestamp.
#[tokio::test]
async fn tail_follow_sees_each_event_once() {
    let h = Harness::new("tail");
    h.group("g").await;
    h.stream("g", "a").await;
    h.stream("g", "b").await;
    let t = now() - 5_000;
    h.put("g", "a", &[(t, "a1"), (t + 1, "a2")]).await;
    h.put("g", "b", &[(t + 1, "b1")]).await;

    let mut ids_at: HashMap<i64, HashSet<String>> = HashMap::new();
    let mut printed: Vec<String> = Vec::new();
    let mut body = json!({"logGroupName": "g", "interleaved": true, "startTime": t - 600_000});
    let mut polls = 0;
    let mut poll = |page: &Value, body: &mut Value| {
        polls += 1;
        for e in page["events"].as_array().unwrap() {
            let ts = e["timestamp"].as_i64().unwrap();
            if ids_at
                .entry(ts)
                .or_default()
                .insert(e["eventId"].as_str().unwrap().to_string())
            {
                printed.push(e["message"].as_str().unwrap().to_string());
            }
        }
        if let Some(&newest) = ids_at.keys().max() {
            ids_at.retain(|&ts, _| ts == newest);
        }
        match page.get("nextToken") {
            Some(tok) => body["nextToken"] = tok.clone(),
            None => {
                body.as_object_mut().unwrap().remove("nextToken");
                if let Some(&newest) = ids_at.keys().max() {
                    body["startTime"] = json!(newest);
                }
            }
        }
    };
    for _ in 0..2 {
        let page = h.ok("FilterLogEvents", body.clone()).await;
        poll(&page, &mut body);
    }
    h.put("g", "b", &[(t + 1, "b2"), (t + 2, "b3")]).await;
    h.put("g", "a", &[(t + 3, "a3")]).await;
    for _ in 0..3 {
        let page = h.ok("FilterLogEvents", body.clone()).await;
        poll(&page, &mut body);
    }
    assert_eq!(polls, 5);
    // Events of one millisecond come in stream order, which is not the order of their names.
    let mut sorted = printed.clone();
    sorted.sort();
    assert_eq!(sorted, ["a1", "a2", "a3", "b1", "b2", "b3"], "{printed:?}");
    assert_eq!(printed[0], "a1");
    assert_eq!(printed[5], "a3");
}

#[tokio::test]
async fn retention_deletes_old_events() {
    let h = Harness::new("retention");
    h.group("g").await;
    h.stream("g", "s").await;
    let t = now();
    h.put(
        "g",
        "s",
        &[(t - 3 * DAY, "old 1"), (t - 3 * DAY + 1, "old 2")],
    )
    .await;
    h.put("g", "s", &[(t - 1000, "new")]).await;
    h.group("keep").await;
    h.stream("keep", "s").await;
    h.put("keep", "s", &[(t - 3 * DAY, "kept")]).await;
    let bytes = |v: &Value, name: &str| {
        v["logGroups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["logGroupName"] == name)
            .unwrap()["storedBytes"]
            .as_i64()
            .unwrap()
    };
    let before = h.ok("DescribeLogGroups", json!({})).await;
    assert_eq!(bytes(&before, "g"), 13);

    h.ok(
        "PutRetentionPolicy",
        json!({"logGroupName": "g", "retentionInDays": 1}),
    )
    .await;
    assert_eq!(h.svc.enforce_retention(now()).await.unwrap(), 2);
    let got = h
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true}),
        )
        .await;
    assert_eq!(messages(&got["events"]), ["new"]);
    let after = h.ok("DescribeLogGroups", json!({})).await;
    assert_eq!(bytes(&after, "g"), 3);
    assert_eq!(bytes(&after, "keep"), 4);
    let s = h
        .ok("DescribeLogStreams", json!({"logGroupName": "g"}))
        .await;
    assert_eq!(s["logStreams"][0]["firstEventTimestamp"], t - 1000);
    // A group without retention keeps everything.
    let kept = h
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "keep", "logStreamName": "s"}),
        )
        .await;
    assert_eq!(messages(&kept["events"]), ["kept"]);
    assert_eq!(h.svc.enforce_retention(now()).await.unwrap(), 0);
}

#[tokio::test]
async fn reopening_keeps_events() {
    let dir = tmpdir("reopen");
    let store = WalStore::in_memory().unwrap();
    let t = now();
    {
        let svc = std::sync::Arc::new(LogsService::open(store.clone(), &dir).unwrap());
        let h = Harness {
            svc,
            store: store.clone(),
            dir: tmpdir("reopen-unused"),
            ctx: ctx(),
        };
        h.group("g").await;
        h.stream("g", "s").await;
        h.put("g", "s", &[(t - 1, "before"), (t, "restart")]).await;
    }
    let svc = std::sync::Arc::new(LogsService::open(store.clone(), &dir).unwrap());
    let h = Harness {
        svc,
        store,
        dir,
        ctx: ctx(),
    };
    let got = h
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true}),
        )
        .await;
    assert_eq!(messages(&got["events"]), ["before", "restart"]);
    // Appends continue after the stored ones, with fresh event ids.
    h.put("g", "s", &[(t, "after")]).await;
    let all = filter_all(&h, json!({"logGroupName": "g"})).await;
    assert_eq!(msgs(&all), ["before", "restart", "after"]);
    let ids: HashSet<&str> = all.iter().map(|e| e["eventId"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3);
}

#[tokio::test]
async fn large_streams_read_by_key_range() {
    let h = Harness::new("large");
    h.group("g").await;
    h.stream("g", "s").await;
    let base = now() - 3_600_000;
    let msgs: Vec<String> = (0..100_000).map(|i| format!("line {i}")).collect();
    for chunk in 0..10 {
        let events: Vec<(i64, &str)> = (chunk * 10_000..(chunk + 1) * 10_000)
            .map(|i| (base + i as i64 / 4, msgs[i].as_str()))
            .collect();
        h.put("g", "s", &events).await;
    }
    let started = std::time::Instant::now();
    for _ in 0..20 {
        let tail = h
            .ok(
                "GetLogEvents",
                json!({"logGroupName": "g", "logStreamName": "s", "limit": 5}),
            )
            .await;
        assert_eq!(messages(&tail["events"]), msgs[99_995..]);
        let head = h.ok("GetLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "limit": 5, "startFromHead": true})).await;
        assert_eq!(messages(&head["events"]), msgs[..5]);
        let mid = h
            .ok("GetLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "limit": 2, "startTime": base + 12_500, "startFromHead": true}))
            .await;
        assert_eq!(messages(&mid["events"]), msgs[50_000..50_002]);
    }
    // 60 small reads of a 100k-event stream: a full scan each would take far longer.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The default limit is 10000 events.
    let page = h
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true}),
        )
        .await;
    assert_eq!(page["events"].as_array().unwrap().len(), 10_000);
}
