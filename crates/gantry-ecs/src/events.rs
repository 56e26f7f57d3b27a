//! ECS events on the internal bus (DESIGN.md §3 step 5). Until the EventBridge crate exists the bus is the store:
//! an event is the key `/events/{region}/{id}` holding the EventBridge envelope as JSON, `id` a time-ordered UUID
//! v7 so that key order is time order. The service controller writes them in the same transaction as the service
//! record change that causes them, so an event exists exactly when its change committed. The envelope and detail
//! shapes follow AWS's "Amazon ECS service deployment state change events" and "Amazon ECS service action events".

use std::time::Duration;

use gantry_model::time::iso8601;
use gantry_store::{Store, Txn};
use serde_json::{json, Value};

use crate::{keys, EcsService};

pub const SOURCE: &str = "aws.ecs";
pub const DEPLOYMENT_STATE_CHANGE: &str = "ECS Deployment State Change";
pub const SERVICE_ACTION: &str = "ECS Service Action";

/// Events older than this are deleted by the periodic sweep.
pub const EVENT_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// At most this many events are kept per region (the newest).
pub const MAX_EVENTS_PER_REGION: usize = 10_000;

/// A state change of a service as the controller decides it; it becomes an event once the record commits.
#[derive(Debug, Clone, PartialEq)]
pub enum ServiceChange {
    /// A deployment started rolling out (PENDING → IN_PROGRESS), initial or rollback.
    DeploymentInProgress {
        deployment_id: String,
        reason: String,
    },
    DeploymentCompleted {
        deployment_id: String,
        reason: String,
    },
    /// The circuit breaker failed the deployment.
    DeploymentFailed {
        deployment_id: String,
        reason: String,
    },
    SteadyState,
    /// No instance could take a task; `reasons` as placement gives them (`RESOURCE:MEMORY`, ...).
    PlacementFailure {
        reasons: Vec<String>,
    },
}

/// Where an event comes from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub service_arn: &'a str,
    pub cluster_arn: &'a str,
}

impl ServiceChange {
    /// The event's envelope, `id` the 32-hex-digit id of its key, at `now` (epoch seconds).
    pub fn to_event(&self, id: &str, origin: &Origin, now: f64) -> Value {
        let (detail_type, detail) = match self {
            ServiceChange::DeploymentInProgress {
                deployment_id,
                reason,
            } => (
                DEPLOYMENT_STATE_CHANGE,
                deployment_detail(
                    "INFO",
                    "SERVICE_DEPLOYMENT_IN_PROGRESS",
                    deployment_id,
                    now,
                    reason,
                ),
            ),
            ServiceChange::DeploymentCompleted {
                deployment_id,
                reason,
            } => (
                DEPLOYMENT_STATE_CHANGE,
                deployment_detail(
                    "INFO",
                    "SERVICE_DEPLOYMENT_COMPLETED",
                    deployment_id,
                    now,
                    reason,
                ),
            ),
            ServiceChange::DeploymentFailed {
                deployment_id,
                reason,
            } => (
                DEPLOYMENT_STATE_CHANGE,
                deployment_detail(
                    "ERROR",
                    "SERVICE_DEPLOYMENT_FAILED",
                    deployment_id,
                    now,
                    reason,
                ),
            ),
            ServiceChange::SteadyState => (
                SERVICE_ACTION,
                service_action_detail(
                    "INFO",
                    "SERVICE_STEADY_STATE",
                    origin.cluster_arn,
                    now,
                    None,
                ),
            ),
            ServiceChange::PlacementFailure { reasons } => (
                SERVICE_ACTION,
                service_action_detail(
                    "ERROR",
                    "SERVICE_TASK_PLACEMENT_FAILURE",
                    origin.cluster_arn,
                    now,
                    Some(reasons),
                ),
            ),
        };
        envelope(
            id,
            detail_type,
            origin,
            now,
            vec![origin.service_arn.to_string()],
            detail,
        )
    }
}

/// The EventBridge envelope. `id` is shown as a hyphenated UUID, as EventBridge shows event ids.
pub fn envelope(
    id: &str,
    detail_type: &str,
    origin: &Origin,
    time: f64,
    resources: Vec<String>,
    detail: Value,
) -> Value {
    json!({
        "version": "0",
        "id": hyphenated(id),
        "detail-type": detail_type,
        "source": SOURCE,
        "account": origin.account,
        "time": iso8601(time, false),
        "region": origin.region,
        "resources": resources,
        "detail": detail,
    })
}

/// The detail of an `ECS Deployment State Change` event.
pub fn deployment_detail(
    event_type: &str,
    event_name: &str,
    deployment_id: &str,
    updated_at: f64,
    reason: &str,
) -> Value {
    json!({
        "eventType": event_type,
        "eventName": event_name,
        "deploymentId": deployment_id,
        "updatedAt": iso8601(updated_at, true),
        "reason": reason,
    })
}

/// The detail of an `ECS Service Action` event (no `version` in it, unlike task events).
pub fn service_action_detail(
    event_type: &str,
    event_name: &str,
    cluster_arn: &str,
    created_at: f64,
    reasons: Option<&[String]>,
) -> Value {
    let mut detail = json!({
        "eventType": event_type,
        "eventName": event_name,
        "clusterArn": cluster_arn,
        "createdAt": iso8601(created_at, true),
    });
    if let Some(reasons) = reasons {
        detail["reasons"] = json!(reasons);
    }
    detail
}

/// A 32-hex-digit id as a hyphenated UUID (other strings unchanged).
pub fn hyphenated(id: &str) -> String {
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return id.to_string();
    }
    format!(
        "{}-{}-{}-{}-{}",
        &id[..8],
        &id[8..12],
        &id[12..16],
        &id[16..20],
        &id[20..]
    )
}

/// The key form of an event id (either form accepted): lower case, no hyphens.
pub fn key_id(id: &str) -> String {
    id.chars()
        .filter(|c| *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Milliseconds since the epoch at which a UUID v7 id was made (its first 48 bits).
pub fn id_millis(id: &str) -> Option<u64> {
    u64::from_str_radix(id.get(..12)?, 16).ok()
}

/// Which of a region's event ids (in key order, oldest first) the sweep deletes at `now_ms`: those older than
/// `retention` and all but the newest `cap`.
pub fn expired(ids: &[String], now_ms: u64, retention: Duration, cap: usize) -> Vec<&str> {
    let over_cap = ids.len().saturating_sub(cap);
    let cutoff = now_ms.saturating_sub(retention.as_millis() as u64);
    ids.iter()
        .enumerate()
        .filter(|(i, id)| *i < over_cap || id_millis(id).is_some_and(|ms| ms < cutoff))
        .map(|(_, id)| id.as_str())
        .collect()
}

/// Adds the events of `changes` to `txn`, ids taken in order (so key order is the order of `changes`).
pub(crate) fn put_events(txn: Txn, origin: &Origin, changes: &[ServiceChange], now: f64) -> Txn {
    changes.iter().fold(txn, |txn, change| {
        let id = gantry_model::new_id();
        let event = change.to_event(&id, origin, now);
        txn.put(
            keys::event(origin.region, &id),
            gantry_model::json::to_vec(&event),
        )
    })
}

impl<S: Store> EcsService<S> {
    /// Every stored event of every region in time order; with `since` (an event id, either form) only those
    /// after it.
    pub fn events(&self, since: Option<&str>) -> Vec<Value> {
        let prefix = keys::all_events();
        let since = since.map(key_id);
        let mut found: Vec<(String, Value)> = self
            .repo
            .store
            .range(&prefix)
            .into_iter()
            .filter_map(|kv| {
                let id = kv.key.rsplit('/').next()?.to_string();
                if since.as_ref().is_some_and(|s| id.as_str() <= s.as_str()) {
                    return None;
                }
                Some((id, serde_json::from_slice(&kv.value).ok()?))
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found.into_iter().map(|(_, v)| v).collect()
    }

    /// Deletes the events past [`EVENT_RETENTION`] and beyond [`MAX_EVENTS_PER_REGION`] in every region.
    pub async fn prune_events(&self, now_ms: u64) -> Result<usize, crate::EcsError> {
        let prefix = keys::all_events();
        let mut by_region: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for kv in self.repo.store.range(&prefix) {
            if let Some((region, id)) = kv.key[prefix.len()..].split_once('/') {
                by_region
                    .entry(region.to_string())
                    .or_default()
                    .push(id.to_string());
            }
        }
        let mut txn = Txn::new();
        let mut deleted = 0;
        for (region, mut ids) in by_region {
            ids.sort();
            for id in expired(&ids, now_ms, EVENT_RETENTION, MAX_EVENTS_PER_REGION) {
                txn = txn.delete(keys::event(&region, id));
                deleted += 1;
            }
        }
        if deleted > 0 {
            self.repo.commit(txn).await?;
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: Origin = Origin {
        account: "111122223333",
        region: "us-west-2",
        service_arn: "arn:aws:ecs:us-west-2:111122223333:service/default/servicetest",
        cluster_arn: "arn:aws:ecs:us-west-2:111122223333:cluster/default",
    };
    const ID: &str = "0190b2c4d5e67f00a1b2c3d4e5f60718";
    /// 2020-05-23T12:31:14.695Z
    const AT: f64 = 1_590_237_074.695;

    #[test]
    fn timestamps_are_iso8601_in_utc() {
        assert_eq!(iso8601(AT, false), "2020-05-23T12:31:14Z");
        assert_eq!(iso8601(AT, true), "2020-05-23T12:31:14.695Z");
        assert_eq!(iso8601(0.0, true), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400.0, false), "2000-02-29T00:00:00Z");
        assert_eq!(
            iso8601(1_735_689_599.999_6, true),
            "2025-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn a_deployment_event_has_the_aws_envelope_and_detail() {
        let change = ServiceChange::DeploymentInProgress {
            deployment_id: "ecs-svc/123".into(),
            reason: "ECS deployment ecs-svc/123 in progress.".into(),
        };
        assert_eq!(
            change.to_event(ID, &ORIGIN, AT),
            json!({
                "version": "0",
                "id": "0190b2c4-d5e6-7f00-a1b2-c3d4e5f60718",
                "detail-type": "ECS Deployment State Change",
                "source": "aws.ecs",
                "account": "111122223333",
                "time": "2020-05-23T12:31:14Z",
                "region": "us-west-2",
                "resources": ["arn:aws:ecs:us-west-2:111122223333:service/default/servicetest"],
                "detail": {
                    "eventType": "INFO",
                    "eventName": "SERVICE_DEPLOYMENT_IN_PROGRESS",
                    "deploymentId": "ecs-svc/123",
                    "updatedAt": "2020-05-23T12:31:14.695Z",
                    "reason": "ECS deployment ecs-svc/123 in progress."
                }
            })
        );
        let failed = ServiceChange::DeploymentFailed {
            deployment_id: "ecs-svc/123".into(),
            reason: "ECS deployment circuit breaker: tasks failed to start.".into(),
        }
        .to_event(ID, &ORIGIN, AT);
        assert_eq!(failed["detail"]["eventType"], "ERROR");
        assert_eq!(failed["detail"]["eventName"], "SERVICE_DEPLOYMENT_FAILED");
        let completed = ServiceChange::DeploymentCompleted {
            deployment_id: "ecs-svc/123".into(),
            reason: "ECS deployment ecs-svc/123 completed.".into(),
        }
        .to_event(ID, &ORIGIN, AT);
        assert_eq!(completed["detail"]["eventType"], "INFO");
        assert_eq!(
            completed["detail"]["eventName"],
            "SERVICE_DEPLOYMENT_COMPLETED"
        );
    }

    #[test]
    fn service_action_events_carry_the_cluster_and_reasons() {
        let steady = ServiceChange::SteadyState.to_event(ID, &ORIGIN, AT);
        assert_eq!(steady["detail-type"], "ECS Service Action");
        assert_eq!(
            steady["detail"],
            json!({
                "eventType": "INFO",
                "eventName": "SERVICE_STEADY_STATE",
                "clusterArn": "arn:aws:ecs:us-west-2:111122223333:cluster/default",
                "createdAt": "2020-05-23T12:31:14.695Z"
            })
        );
        let failure = ServiceChange::PlacementFailure {
            reasons: vec!["RESOURCE:MEMORY".into()],
        }
        .to_event(ID, &ORIGIN, AT);
        assert_eq!(
            failure["detail"],
            json!({
                "eventType": "ERROR",
                "eventName": "SERVICE_TASK_PLACEMENT_FAILURE",
                "clusterArn": "arn:aws:ecs:us-west-2:111122223333:cluster/default",
                "createdAt": "2020-05-23T12:31:14.695Z",
                "reasons": ["RESOURCE:MEMORY"]
            })
        );
        assert_eq!(failure["resources"], json!([ORIGIN.service_arn]));
    }

    #[test]
    fn ids_in_either_form_and_their_times() {
        assert_eq!(key_id(&hyphenated(ID)), ID);
        assert_eq!(hyphenated("not-an-id"), "not-an-id");
        let id = gantry_model::new_id();
        let ms = id_millis(&id).unwrap() as i64;
        assert!((ms - gantry_model::time::now_millis()).abs() < 5_000);
    }

    #[test]
    fn the_sweep_drops_old_events_and_keeps_the_newest_few() {
        let id = |ms: u64| format!("{ms:012x}7000800000000000000000");
        let day = EVENT_RETENTION.as_millis() as u64;
        let now = 10 * day;
        let ids: Vec<String> = [now - day - 1, now - day + 1, now - 2, now - 1]
            .into_iter()
            .map(id)
            .collect();
        assert_eq!(expired(&ids, now, EVENT_RETENTION, 10), [ids[0].as_str()]);
        assert_eq!(
            expired(&ids, now, EVENT_RETENTION, 2),
            [ids[0].as_str(), ids[1].as_str()]
        );
        assert!(expired(&[], now, EVENT_RETENTION, 2).is_empty());
    }
}
