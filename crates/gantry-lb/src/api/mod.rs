//! The ELBv2 actions, one file per resource. Each handler takes its decoded input and answers the members of its
//! `{Action}Result`.

pub mod certificates;
pub mod limits;
pub mod listeners;
pub mod load_balancers;
pub mod rules;
pub mod tags;
pub mod target_groups;
pub mod targets;

mod actions;
mod conditions;
mod page;
mod validate;

pub(crate) use actions::{redirect_of, target_group_users};

use crate::model::{Action, ListenerRecord, RuleCondition, RuleRecord};
use crate::rules::Condition;
use crate::service::LbService;
use gantry_store::Store;

/// The target groups the actions forward to.
pub(crate) fn actions_target_groups(actions: &[Action]) -> Vec<String> {
    actions.iter().flat_map(actions::forwarded).collect()
}

/// A listener's rules by priority, its default rule last.
pub(crate) fn listener_rules_of<S: Store>(
    svc: &LbService<S>,
    region: &str,
    l: &ListenerRecord,
) -> Vec<RuleRecord> {
    rules::listener_rules(svc, region, l)
}

/// The matcher's form of stored conditions (checked when they were stored; a rule whose conditions no longer
/// convert is left out rather than matching everything).
pub(crate) fn conditions_of(conditions: &[RuleCondition]) -> Option<Vec<Condition>> {
    conditions::to_conditions(conditions).ok()
}
