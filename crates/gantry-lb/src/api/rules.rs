//! CreateRule, DescribeRules, ModifyRule, DeleteRule, SetRulePriorities. A listener's default rule is not stored
//! on its own: it is the listener's default actions under the id the listener keeps for it.

use std::collections::HashMap;

use gantry_model::Scope;
use gantry_store::{Store, Txn};
use serde::Deserialize;
use serde_json::{json, Value};

use super::actions::check_actions;
use super::conditions;
use super::listeners::normalized;
use super::page::page;
use super::validate;
use crate::errors::{LbError, Result};
use crate::keys::{self, ResourceArn};
use crate::model::{Action, ListenerRecord, Rule, RuleCondition, RuleRecord, Tag};
use crate::service::{answer, encode, LbService};

/// Rules a listener may have besides its default.
pub const MAX_RULES: usize = 100;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateInput {
    pub listener_arn: String,
    pub conditions: Vec<RuleCondition>,
    pub priority: u32,
    pub actions: Vec<Action>,
    #[serde(default)]
    pub tags: Option<Vec<Tag>>,
}

fn check_priority(p: u32) -> Result<()> {
    if (1..=50000).contains(&p) {
        Ok(())
    } else {
        Err(crate::errors::invalid(
            "priority",
            p,
            "Member must have value less than or equal to 50000 and greater than or equal to 1",
        ))
    }
}

/// The default rule of a listener, as answered.
pub fn default_rule(l: &ListenerRecord) -> Rule {
    Rule {
        rule_arn: keys::rule_arn(&l.listener.listener_arn, &l.default_rule_id),
        priority: "default".into(),
        conditions: Vec::new(),
        actions: l.listener.default_actions.clone(),
        is_default: true,
    }
}

/// The listener's rules by priority, its default rule last.
pub fn listener_rules<S: Store>(
    svc: &LbService<S>,
    region: &str,
    l: &ListenerRecord,
) -> Vec<RuleRecord> {
    let Some(ResourceArn::Listener { lb, id, .. }) = ResourceArn::parse(&l.listener.listener_arn)
    else {
        return Vec::new();
    };
    let mut rules: Vec<RuleRecord> = svc.list(&keys::rules(region, &lb, &id));
    rules.sort_by_key(|r| r.rule.priority.parse::<u32>().unwrap_or(u32::MAX));
    rules.push(RuleRecord {
        rule: default_rule(l),
        tags: l.default_rule_tags.clone(),
    });
    rules
}

fn key_of(region: &str, rule_arn: &str) -> Result<String> {
    match ResourceArn::parse(rule_arn) {
        Some(ResourceArn::Rule {
            lb, listener, id, ..
        }) => Ok(keys::rule(region, &lb, &listener, &id)),
        _ => Err(LbError::RuleNotFound),
    }
}

pub async fn create<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: CreateInput,
) -> Result<Value> {
    let region = &scope.region;
    check_priority(input.priority)?;
    let tags = input.tags.unwrap_or_default();
    validate::tags(&tags)?;
    conditions::convert(&input.conditions)?;
    let _w = svc.writes.lock().await;
    let listener = svc.listener_by_arn(region, &input.listener_arn)?;
    let lb = svc.load_balancer_by_arn(region, &listener.listener.load_balancer_arn)?;
    if lb.load_balancer.kind == "network" {
        return Err(LbError::InvalidConfiguration(
            "Network load balancer listeners have no rules besides the default".into(),
        ));
    }
    check_actions(svc, region, &lb, &input.actions, false)?;
    let rules = listener_rules(svc, region, &listener);
    if rules
        .iter()
        .any(|r| r.rule.priority == input.priority.to_string())
    {
        return Err(LbError::PriorityInUse(input.priority));
    }
    if rules.len() > MAX_RULES {
        return Err(LbError::TooMany(
            "TooManyRules",
            format!("A listener can have at most {MAX_RULES} rules"),
        ));
    }
    let id = keys::new_id();
    let rule = Rule {
        rule_arn: keys::rule_arn(&listener.listener.listener_arn, &id),
        priority: input.priority.to_string(),
        conditions: conditions::normalized(input.conditions),
        actions: normalized(input.actions),
        is_default: false,
    };
    let key = key_of(region, &rule.rule_arn)?;
    svc.commit(Txn::new().put(
        key,
        encode(&RuleRecord {
            rule: rule.clone(),
            tags,
        }),
    ))
    .await?;
    svc.data_plane.refresh();
    Ok(json!({"Rules": [answer(&rule)]}))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeInput {
    pub listener_arn: Option<String>,
    pub rule_arns: Option<Vec<String>>,
    pub marker: Option<String>,
    pub page_size: Option<u32>,
}

/// A rule by its ARN, the default rules included.
fn find_rule<S: Store>(svc: &LbService<S>, region: &str, arn: &str) -> Result<RuleRecord> {
    match svc.rule_by_arn(region, arn) {
        Ok((_, r)) => Ok(r),
        Err(LbError::RuleNotFound) => {
            let Some(ResourceArn::Rule {
                lb,
                lb_id,
                listener,
                ..
            }) = ResourceArn::parse(arn)
            else {
                return Err(LbError::RuleNotFound);
            };
            let l: ListenerRecord = svc
                .get(&keys::listener(region, &lb, &listener))
                .ok_or(LbError::RuleNotFound)?;
            let d = default_rule(&l);
            if d.rule_arn == arn && l.listener.load_balancer_arn.ends_with(&lb_id) {
                Ok(RuleRecord {
                    rule: d,
                    tags: l.default_rule_tags,
                })
            } else {
                Err(LbError::RuleNotFound)
            }
        }
        Err(e) => Err(e),
    }
}

pub fn describe<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: DescribeInput,
) -> Result<Value> {
    let region = &scope.region;
    let arns = input.rule_arns.unwrap_or_default();
    let chosen: Vec<RuleRecord> = match (&input.listener_arn, arns.is_empty()) {
        (Some(_), false) => {
            return Err(LbError::Validation(
                "A listener ARN and rule ARNs cannot be specified at the same time".into(),
            ))
        }
        (Some(l), true) => listener_rules(svc, region, &svc.listener_by_arn(region, l)?),
        (None, false) => arns
            .iter()
            .map(|a| find_rule(svc, region, a))
            .collect::<Result<_>>()?,
        (None, true) => {
            return Err(LbError::Validation(
                "A listener ARN or rule ARNs must be specified".into(),
            ))
        }
    };
    let p = page(chosen, input.marker.as_deref(), input.page_size)?;
    let list: Vec<Value> = p.items.iter().map(|r| answer(&r.rule)).collect();
    Ok(json!({"Rules": list, "NextMarker": p.next_marker}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModifyInput {
    pub rule_arn: String,
    #[serde(default)]
    pub conditions: Option<Vec<RuleCondition>>,
    #[serde(default)]
    pub actions: Option<Vec<Action>>,
}

pub async fn modify<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: ModifyInput,
) -> Result<Value> {
    let region = &scope.region;
    let _w = svc.writes.lock().await;
    let mut record = find_rule(svc, region, &input.rule_arn)?;
    let Some(ResourceArn::Rule { lb, listener, .. }) = ResourceArn::parse(&input.rule_arn) else {
        return Err(LbError::RuleNotFound);
    };
    let lb = svc
        .get::<crate::model::LoadBalancerRecord>(&keys::load_balancer(region, &lb))
        .ok_or(LbError::RuleNotFound)?;
    if let Some(actions) = &input.actions {
        check_actions(svc, region, &lb, actions, record.rule.is_default)?;
    }
    if record.rule.is_default {
        if input.conditions.as_ref().is_some_and(|c| !c.is_empty()) {
            return Err(LbError::OperationNotPermitted(
                "The default rule cannot have conditions".into(),
            ));
        }
        let key = keys::listener(region, &lb.load_balancer.load_balancer_name, &listener);
        let mut l: ListenerRecord = svc.get(&key).ok_or(LbError::RuleNotFound)?;
        if let Some(actions) = input.actions {
            l.listener.default_actions = normalized(actions);
        }
        svc.commit(Txn::new().put(key, encode(&l))).await?;
        svc.data_plane.refresh();
        return Ok(json!({"Rules": [answer(&default_rule(&l))]}));
    }
    if let Some(c) = input.conditions {
        conditions::convert(&c)?;
        record.rule.conditions = conditions::normalized(c);
    }
    if let Some(a) = input.actions {
        record.rule.actions = normalized(a);
    }
    svc.commit(Txn::new().put(key_of(region, &input.rule_arn)?, encode(&record)))
        .await?;
    svc.data_plane.refresh();
    Ok(json!({"Rules": [answer(&record.rule)]}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ArnInput {
    pub rule_arn: String,
}

pub async fn delete<S: Store>(svc: &LbService<S>, scope: &Scope, input: ArnInput) -> Result<Value> {
    let region = &scope.region;
    let _w = svc.writes.lock().await;
    let record = find_rule(svc, region, &input.rule_arn)?;
    if record.rule.is_default {
        return Err(LbError::OperationNotPermitted(
            "The default rule of a listener cannot be deleted".into(),
        ));
    }
    svc.commit(Txn::new().delete(key_of(region, &input.rule_arn)?))
        .await?;
    svc.data_plane.refresh();
    Ok(json!({}))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct PriorityPair {
    pub rule_arn: Option<String>,
    pub priority: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SetPrioritiesInput {
    pub rule_priorities: Vec<PriorityPair>,
}

pub async fn set_priorities<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: SetPrioritiesInput,
) -> Result<Value> {
    let region = &scope.region;
    let _w = svc.writes.lock().await;
    // New priorities by rule, checked all before any is written.
    let mut wanted: HashMap<String, u32> = HashMap::new();
    for p in &input.rule_priorities {
        let (Some(arn), Some(priority)) = (&p.rule_arn, p.priority) else {
            return Err(LbError::Validation(
                "Each rule priority pair needs a rule ARN and a priority".into(),
            ));
        };
        check_priority(priority)?;
        if wanted.values().any(|v| *v == priority) {
            return Err(LbError::PriorityInUse(priority));
        }
        wanted.insert(arn.clone(), priority);
    }
    let mut changed: Vec<RuleRecord> = Vec::new();
    for arn in wanted.keys() {
        let r = find_rule(svc, region, arn)?;
        if r.rule.is_default {
            return Err(LbError::OperationNotPermitted(
                "The priority of a default rule cannot be changed".into(),
            ));
        }
        changed.push(r);
    }
    let mut txn = Txn::new();
    let mut seen_listeners: Vec<String> = Vec::new();
    for r in changed.iter_mut() {
        let Some(ResourceArn::Rule { lb, listener, .. }) = ResourceArn::parse(&r.rule.rule_arn)
        else {
            return Err(LbError::RuleNotFound);
        };
        let listener_key = keys::listener(region, &lb, &listener);
        if !seen_listeners.contains(&listener_key) {
            // Priorities stay unique among the listener's rules that keep theirs.
            let others: Vec<RuleRecord> = svc.list(&keys::rules(region, &lb, &listener));
            for o in others
                .iter()
                .filter(|o| !wanted.contains_key(&o.rule.rule_arn))
            {
                if let Some(p) = wanted
                    .iter()
                    .find(|(arn, p)| {
                        o.rule.priority == p.to_string() && same_listener(arn, &listener)
                    })
                    .map(|(_, p)| *p)
                {
                    return Err(LbError::PriorityInUse(p));
                }
            }
            seen_listeners.push(listener_key);
        }
        r.rule.priority = wanted[&r.rule.rule_arn].to_string();
        txn = txn.put(key_of(region, &r.rule.rule_arn)?, encode(&*r));
    }
    svc.commit(txn).await?;
    svc.data_plane.refresh();
    let list: Vec<Value> = changed.iter().map(|r| answer(&r.rule)).collect();
    Ok(json!({"Rules": list}))
}

fn same_listener(rule_arn: &str, listener_id: &str) -> bool {
    matches!(ResourceArn::parse(rule_arn), Some(ResourceArn::Rule { listener, .. }) if listener == listener_id)
}
