//! A harness that calls the service as the edge does: `JsonService::call` with a JSON body.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use gantry_aws::{AwsError, JsonService, RequestContext};
use gantry_logs::LogsService;
use gantry_model::Scope;
use gantry_store::WalStore;
use serde_json::Value;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "000000000000";

pub struct Harness {
    pub svc: Arc<LogsService<WalStore>>,
    pub store: WalStore,
    pub dir: PathBuf,
    pub ctx: RequestContext,
}

/// A fresh, empty directory for one test.
pub fn tmpdir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "gantry-logs-test-{name}-{}-{n}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn scope() -> Scope {
    Scope::new(REGION, ACCOUNT)
}

pub fn ctx() -> RequestContext {
    RequestContext {
        request_id: "test".into(),
        scope: scope(),
        access_key: "test".into(),
    }
}

impl Harness {
    pub fn new(name: &str) -> Harness {
        let dir = tmpdir(name);
        let store = WalStore::in_memory().unwrap();
        let svc = Arc::new(LogsService::open(store.clone(), &dir).unwrap());
        Harness {
            svc,
            store,
            dir,
            ctx: ctx(),
        }
    }

    pub async fn call(&self, op: &str, body: Value) -> Result<Value, AwsError> {
        let body = serde_json::to_vec(&body).unwrap();
        self.svc.call(&self.ctx, op, &body).await
    }

    /// Calls and expects success.
    pub async fn ok(&self, op: &str, body: Value) -> Value {
        match self.call(op, body.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{op} {body} failed: {e}"),
        }
    }

    /// Calls and expects the error `code`; returns its message.
    pub async fn err(&self, op: &str, body: Value, code: &str) -> String {
        match self.call(op, body.clone()).await {
            Ok(v) => panic!("{op} {body} succeeded with {v}, expected {code}"),
            Err(e) => {
                assert_eq!(e.code, code, "{op} {body}: {e}");
                assert!(!e.message.is_empty());
                e.message
            }
        }
    }

    pub async fn group(&self, name: &str) {
        self.ok("CreateLogGroup", serde_json::json!({"logGroupName": name}))
            .await;
    }

    pub async fn stream(&self, group: &str, name: &str) {
        self.ok(
            "CreateLogStream",
            serde_json::json!({"logGroupName": group, "logStreamName": name}),
        )
        .await;
    }

    /// Puts `(timestamp, message)` events in one PutLogEvents call.
    pub async fn put(&self, group: &str, stream: &str, events: &[(i64, &str)]) -> Value {
        let events: Vec<Value> = events
            .iter()
            .map(|(t, m)| serde_json::json!({"timestamp": t, "message": m}))
            .collect();
        self.ok("PutLogEvents", serde_json::json!({"logGroupName": group, "logStreamName": stream, "logEvents": events}))
            .await
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn now() -> i64 {
    gantry_model::time::now_millis()
}

/// Fails when `value` (an object) has a member outside `allowed` (the botocore output shape).
pub fn only_members(value: &Value, allowed: &[&str]) {
    let obj = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"));
    for (k, v) in obj {
        assert!(
            allowed.contains(&k.as_str()),
            "unknown member {k:?} in {value}"
        );
        assert!(!v.is_null(), "null member {k:?} in {value}");
    }
}

pub const LOG_GROUP_MEMBERS: &[&str] = &[
    "logGroupName",
    "creationTime",
    "retentionInDays",
    "metricFilterCount",
    "arn",
    "storedBytes",
    "kmsKeyId",
    "dataProtectionStatus",
    "inheritedProperties",
    "logGroupClass",
    "logGroupArn",
    "deletionProtectionEnabled",
    "bearerTokenAuthenticationEnabled",
    "retentionPolicyName",
];

pub const LOG_STREAM_MEMBERS: &[&str] = &[
    "logStreamName",
    "creationTime",
    "firstEventTimestamp",
    "lastEventTimestamp",
    "lastIngestionTime",
    "uploadSequenceToken",
    "arn",
    "storedBytes",
];

pub fn messages(events: &Value) -> Vec<String> {
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect()
}
