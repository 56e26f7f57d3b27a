//! Listener and rule actions: what they may be, and which target groups they send to (a target group's
//! `LoadBalancerArns` are worked out from these, never stored).

use std::collections::HashSet;

use gantry_store::Store;

use super::target_groups::is_layer4;
use super::validate;
use crate::errors::{LbError, Result};
use crate::keys;
use crate::model::{Action, ListenerRecord, LoadBalancerRecord, RuleRecord};
use crate::service::LbService;

/// Target groups one forward action may weigh.
pub const MAX_FORWARD_TARGET_GROUPS: usize = 5;

/// The target groups an action sends to.
pub fn forwarded(action: &Action) -> Vec<String> {
    let mut out: Vec<String> = action.target_group_arn.iter().cloned().collect();
    if let Some(tgs) = action
        .forward_config
        .as_ref()
        .and_then(|f| f.target_groups.as_ref())
    {
        for t in tgs {
            if let Some(arn) = &t.target_group_arn {
                if !out.contains(arn) {
                    out.push(arn.clone());
                }
            }
        }
    }
    out
}

/// The load balancers whose listeners or rules forward to the target group.
pub fn target_group_users<S: Store>(
    svc: &LbService<S>,
    region: &str,
    target_group_arn: &str,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut note = |lb: &str| {
        if !out.iter().any(|x| x == lb) {
            out.push(lb.to_string());
        }
    };
    for l in svc.list::<ListenerRecord>(&keys::all_listeners(region)) {
        if l.listener
            .default_actions
            .iter()
            .any(|a| forwarded(a).iter().any(|t| t == target_group_arn))
        {
            note(&l.listener.load_balancer_arn);
        }
    }
    for r in svc.list::<RuleRecord>(&format!("/elbv2/{region}/rules/")) {
        if r.rule
            .actions
            .iter()
            .any(|a| forwarded(a).iter().any(|t| t == target_group_arn))
        {
            if let Some(keys::ResourceArn::Rule { lb, lb_id, .. }) =
                keys::ResourceArn::parse(&r.rule.rule_arn)
            {
                if let Some(lb) = svc.get::<LoadBalancerRecord>(&keys::load_balancer(region, &lb)) {
                    if lb.load_balancer.load_balancer_arn.ends_with(&lb_id) {
                        note(&lb.load_balancer.load_balancer_arn);
                    }
                }
            }
        }
    }
    out
}

/// Checks a listener's or rule's actions: one final action (forward, redirect or fixed-response) last, orders
/// unique, target groups existing, of a protocol this load balancer can send to, and not used by another load
/// balancer of the other kind.
pub fn check_actions<S: Store>(
    svc: &LbService<S>,
    region: &str,
    lb: &LoadBalancerRecord,
    actions: &[Action],
    _default: bool,
) -> Result<()> {
    if actions.is_empty() {
        return Err(LbError::Validation(
            "At least one action must be specified".into(),
        ));
    }
    let network = lb.load_balancer.kind == "network";
    let mut orders = HashSet::new();
    for a in actions {
        validate::one_of(
            &a.kind,
            "actions.member.type",
            &[
                "forward",
                "authenticate-oidc",
                "authenticate-cognito",
                "redirect",
                "fixed-response",
                "jwt-validation",
            ],
        )?;
        if let Some(o) = a.order {
            if !(1..=50000).contains(&o) || !orders.insert(o) {
                return Err(LbError::Validation(format!(
                    "Action order '{o}' must be unique and between 1 and 50000"
                )));
            }
        }
        match a.kind.as_str() {
            "forward" => {}
            "redirect" | "fixed-response" if network => {
                return Err(LbError::InvalidLoadBalancerAction(format!(
                    "Network load balancers support only forward actions, not '{}'",
                    a.kind
                )))
            }
            "redirect" => {
                let Some(c) = &a.redirect_config else {
                    return Err(LbError::Validation(
                        "A redirect action needs a RedirectConfig".into(),
                    ));
                };
                crate::rules::validate_redirect(&redirect_of(c))
                    .map_err(|e| LbError::InvalidLoadBalancerAction(e.to_string()))?;
            }
            "fixed-response" => {
                let Some(c) = &a.fixed_response_config else {
                    return Err(LbError::Validation(
                        "A fixed-response action needs a FixedResponseConfig".into(),
                    ));
                };
                fixed_of(c)
                    .validate()
                    .map_err(|e| LbError::InvalidLoadBalancerAction(e.to_string()))?;
            }
            other => {
                return Err(LbError::InvalidLoadBalancerAction(format!(
                    "Action type '{other}' is not supported by Gantry"
                )))
            }
        }
    }
    // Exactly one final action, and it comes last.
    let finals = actions
        .iter()
        .filter(|a| matches!(a.kind.as_str(), "forward" | "redirect" | "fixed-response"))
        .count();
    if finals != 1 || actions.len() != 1 {
        return Err(LbError::InvalidLoadBalancerAction(
            "An action list must have exactly one forward, redirect or fixed-response action"
                .into(),
        ));
    }
    for a in actions.iter().filter(|a| a.kind == "forward") {
        let tgs = forwarded(a);
        if tgs.is_empty() {
            return Err(LbError::Validation(
                "A forward action needs a target group".into(),
            ));
        }
        if let (Some(single), Some(list)) = (
            &a.target_group_arn,
            a.forward_config
                .as_ref()
                .and_then(|f| f.target_groups.as_ref()),
        ) {
            if list.len() > 1
                || list.first().and_then(|t| t.target_group_arn.as_ref()) != Some(single)
            {
                return Err(LbError::Validation("TargetGroupArn and ForwardConfig must name the same single target group when both are given".into()));
            }
        }
        if tgs.len() > MAX_FORWARD_TARGET_GROUPS {
            return Err(LbError::TooMany(
                "TooManyTargetGroups",
                format!(
                    "A forward action can have at most {MAX_FORWARD_TARGET_GROUPS} target groups"
                ),
            ));
        }
        if let Some(f) = &a.forward_config {
            for t in f.target_groups.iter().flatten() {
                if t.weight.is_some_and(|w| w > 999) {
                    return Err(LbError::Validation(
                        "Target group weights must be between 0 and 999".into(),
                    ));
                }
            }
            if let Some(s) = &f.target_group_stickiness_config {
                if s.enabled == Some(true)
                    && !s
                        .duration_seconds
                        .is_some_and(|d| (1..=604800).contains(&d))
                {
                    return Err(LbError::Validation(
                        "Target group stickiness needs a duration between 1 and 604800 seconds"
                            .into(),
                    ));
                }
            }
            if network && tgs.len() > 1 {
                return Err(LbError::InvalidLoadBalancerAction(
                    "Network load balancers forward to one target group".into(),
                ));
            }
        }
        for arn in tgs {
            let tg = svc.target_group_by_arn(region, &arn)?;
            let protocol = tg.target_group.protocol.clone().unwrap_or_default();
            if is_layer4(&protocol) != network {
                return Err(LbError::IncompatibleProtocols(format!(
                    "Target group '{arn}' has the {protocol} protocol, which a {} load balancer cannot forward to",
                    lb.load_balancer.kind
                )));
            }
            let users = target_group_users(svc, region, &arn);
            if users
                .iter()
                .any(|u| u != &lb.load_balancer.load_balancer_arn)
                && network
            {
                return Err(LbError::TooMany(
                    "TargetGroupAssociationLimit",
                    format!("Target group '{arn}' is already used by another load balancer"),
                ));
            }
        }
    }
    Ok(())
}

pub fn redirect_of(c: &crate::model::RedirectActionConfig) -> crate::rules::RedirectConfig {
    crate::rules::RedirectConfig {
        protocol: c.protocol.clone(),
        host: c.host.clone(),
        port: c.port.clone(),
        path: c.path.clone(),
        query: c.query.clone(),
        status_code: c.status_code.clone(),
    }
}

pub fn fixed_of(c: &crate::model::FixedResponseActionConfig) -> crate::rules::FixedResponse {
    crate::rules::FixedResponse {
        status_code: c.status_code.clone(),
        content_type: c.content_type.clone(),
        message_body: c.message_body.clone(),
    }
}
