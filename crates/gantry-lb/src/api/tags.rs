//! AddTags, RemoveTags, DescribeTags over every kind of ELBv2 resource.

use gantry_model::Scope;
use gantry_store::{Store, Txn};
use serde::Deserialize;
use serde_json::{json, Value};

use super::validate;
use crate::errors::{LbError, Result};
use crate::keys::{self, ResourceArn};
use crate::model::{ListenerRecord, Tag};
use crate::service::{encode, LbService};

/// At most this many resources in one call.
const MAX_RESOURCES: usize = 20;

/// The store key and tags of a resource, by ARN; default rules keep theirs in their listener.
fn locate<S: Store>(
    svc: &LbService<S>,
    region: &str,
    arn: &str,
) -> Result<(String, Vec<Tag>, Kind)> {
    Ok(match ResourceArn::parse(arn) {
        Some(ResourceArn::LoadBalancer { name, .. }) => {
            let r = svc.load_balancer_by_arn(region, arn)?;
            (
                keys::load_balancer(region, &name),
                r.tags,
                Kind::LoadBalancer,
            )
        }
        Some(ResourceArn::TargetGroup { name, .. }) => {
            let r = svc.target_group_by_arn(region, arn)?;
            (keys::target_group(region, &name), r.tags, Kind::TargetGroup)
        }
        Some(ResourceArn::Listener { lb, id, .. }) => {
            let r = svc.listener_by_arn(region, arn)?;
            (keys::listener(region, &lb, &id), r.tags, Kind::Listener)
        }
        Some(ResourceArn::Rule { lb, listener, .. }) => match svc.rule_by_arn(region, arn) {
            Ok((key, r)) => (key, r.tags, Kind::Rule),
            Err(LbError::RuleNotFound) => {
                let key = keys::listener(region, &lb, &listener);
                let l: ListenerRecord = svc.get(&key).ok_or(LbError::RuleNotFound)?;
                if super::rules::default_rule(&l).rule_arn != arn {
                    return Err(LbError::RuleNotFound);
                }
                (key, l.default_rule_tags, Kind::DefaultRule)
            }
            Err(e) => return Err(e),
        },
        None => {
            return Err(LbError::Validation(format!(
                "'{arn}' is not a valid ELBv2 resource ARN"
            )))
        }
    })
}

#[derive(Clone, Copy)]
enum Kind {
    LoadBalancer,
    TargetGroup,
    Listener,
    Rule,
    DefaultRule,
}

/// Writes `tags` back into the record at `key`.
async fn store_tags<S: Store>(
    svc: &LbService<S>,
    key: &str,
    kind: Kind,
    tags: Vec<Tag>,
) -> Result<()> {
    let Some(kv) = svc.store.get(key) else {
        return Err(LbError::Validation("The resource changed meanwhile".into()));
    };
    let mut value: Value =
        serde_json::from_slice(&kv.value).map_err(|e| LbError::Validation(e.to_string()))?;
    let field = if matches!(kind, Kind::DefaultRule) {
        "default_rule_tags"
    } else {
        "tags"
    };
    value[field] = serde_json::to_value(&tags).map_err(|e| LbError::Validation(e.to_string()))?;
    svc.commit(Txn::new().put(key, encode(&value))).await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddInput {
    pub resource_arns: Vec<String>,
    pub tags: Vec<Tag>,
}

fn check_count(arns: &[String]) -> Result<()> {
    if arns.is_empty() || arns.len() > MAX_RESOURCES {
        return Err(LbError::Validation(format!(
            "Between 1 and {MAX_RESOURCES} resource ARNs must be specified"
        )));
    }
    Ok(())
}

pub async fn add<S: Store>(svc: &LbService<S>, scope: &Scope, input: AddInput) -> Result<Value> {
    check_count(&input.resource_arns)?;
    validate::tags(&input.tags)?;
    let _w = svc.writes.lock().await;
    // Every resource is checked before any is changed.
    let mut located = Vec::new();
    for arn in &input.resource_arns {
        let (key, mut tags, kind) = locate(svc, &scope.region, arn)?;
        validate::merge_tags(&mut tags, &input.tags)?;
        located.push((key, tags, kind));
    }
    for (key, tags, kind) in located {
        store_tags(svc, &key, kind, tags).await?;
    }
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RemoveInput {
    pub resource_arns: Vec<String>,
    pub tag_keys: Vec<String>,
}

pub async fn remove<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: RemoveInput,
) -> Result<Value> {
    check_count(&input.resource_arns)?;
    let _w = svc.writes.lock().await;
    let mut located = Vec::new();
    for arn in &input.resource_arns {
        let (key, mut tags, kind) = locate(svc, &scope.region, arn)?;
        tags.retain(|t| !input.tag_keys.contains(&t.key));
        located.push((key, tags, kind));
    }
    for (key, tags, kind) in located {
        store_tags(svc, &key, kind, tags).await?;
    }
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeInput {
    pub resource_arns: Vec<String>,
}

pub fn describe<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: DescribeInput,
) -> Result<Value> {
    check_count(&input.resource_arns)?;
    let mut out = Vec::new();
    for arn in &input.resource_arns {
        let (_, tags, _) = locate(svc, &scope.region, arn)?;
        out.push(json!({"ResourceArn": arn, "Tags": gantry_model::json::to_value(&tags)}));
    }
    Ok(json!({"TagDescriptions": out}))
}
