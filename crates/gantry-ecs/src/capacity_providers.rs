//! Capacity providers: the Fargate ones every account has (`FARGATE`, `FARGATE_SPOT`), which a cluster is
//! associated with by PutClusterCapacityProviders (or CreateCluster), its default capacity provider strategy, and
//! the strategy math that says which provider each new task of a strategy goes to. The checks and the math are
//! pure; the API calls are at the end.

use std::collections::BTreeMap;

use gantry_aws::parse_input;
use gantry_model::ecs::{CapacityProviderStrategyItem, Cluster, Failure, Unsupported};
use gantry_model::Scope;
use gantry_store::{Store, Txn};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{invalid, reject_unsupported, EcsError, Result};
use crate::repo::encode;
use crate::{keys, refs, EcsService};

pub const FARGATE: &str = "FARGATE";
pub const FARGATE_SPOT: &str = "FARGATE_SPOT";
/// The providers Gantry has: Auto Scaling group providers come with capacity providers of their own.
const KNOWN: [&str; 2] = [FARGATE, FARGATE_SPOT];
const MAX_STRATEGY: usize = 20;

/// Checks the providers a cluster is to be associated with.
pub fn check_providers(names: &[String]) -> Result<()> {
    for (i, name) in names.iter().enumerate() {
        if !KNOWN.contains(&name.as_str()) {
            return Err(invalid(format!(
                "The specified capacity provider '{name}' does not exist. Specify a valid capacity provider and try again."
            )));
        }
        if names[..i].contains(name) {
            return Err(invalid(format!(
                "The capacity provider '{name}' is specified more than once."
            )));
        }
    }
    Ok(())
}

/// Checks a strategy against the providers associated with its cluster, with ECS's rules.
pub fn check_strategy(
    strategy: &[CapacityProviderStrategyItem],
    associated: &[String],
) -> Result<()> {
    if strategy.len() > MAX_STRATEGY {
        return Err(invalid(format!(
            "A capacity provider strategy can contain a maximum of {MAX_STRATEGY} capacity providers."
        )));
    }
    for (i, item) in strategy.iter().enumerate() {
        let name = &item.capacity_provider;
        if name.is_empty() {
            return Err(invalid(
                "capacityProvider must be given for each item of a capacity provider strategy.",
            ));
        }
        if !associated.contains(name) {
            return Err(invalid(format!(
                "The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again. ({name})"
            )));
        }
        if strategy[..i].iter().any(|o| o.capacity_provider == *name) {
            return Err(invalid(format!(
                "The specified capacity provider strategy cannot contain duplicate capacity providers. ({name})"
            )));
        }
        if !(0..=1000).contains(&item.weight.unwrap_or(0)) {
            return Err(invalid(
                "The weight of a capacity provider must be between 0 and 1000.",
            ));
        }
        if !(0..=100_000).contains(&item.base.unwrap_or(0)) {
            return Err(invalid(
                "The base of a capacity provider must be between 0 and 100000.",
            ));
        }
    }
    if strategy.iter().filter(|i| i.base.unwrap_or(0) > 0).count() > 1 {
        return Err(invalid(
            "The specified capacity provider strategy cannot contain more than one capacity provider with a base value greater than zero.",
        ));
    }
    if !strategy.is_empty() && strategy.iter().all(|i| i.weight.unwrap_or(0) == 0) {
        return Err(invalid(
            "The specified capacity provider strategy must contain at least one capacity provider with a weight greater than zero.",
        ));
    }
    Ok(())
}

/// Which provider each of `count` new tasks goes to, given how many tasks of the same service (or run) each
/// provider has: first the base provider until it has its `base`, then each task to the provider furthest below
/// its weight's share of the tasks beyond the bases (the first of the strategy on a tie). A checked strategy.
pub fn split(
    strategy: &[CapacityProviderStrategyItem],
    running: &BTreeMap<String, u64>,
    count: usize,
) -> Vec<String> {
    let mut counts: Vec<u64> = strategy
        .iter()
        .map(|i| running.get(&i.capacity_provider).copied().unwrap_or(0))
        .collect();
    let base = |i: usize| strategy[i].base.unwrap_or(0).max(0) as u64;
    let weight = |i: usize| strategy[i].weight.unwrap_or(0).max(0) as u64;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let below_base = (0..strategy.len()).find(|&i| counts[i] < base(i));
        // (beyond base + 1) / weight, compared by cross-multiplying: the lowest is furthest below its share.
        let chosen = below_base.or_else(|| {
            (0..strategy.len())
                .filter(|&i| weight(i) > 0)
                .min_by(|&a, &b| {
                    let over = |i: usize| counts[i].saturating_sub(base(i)) + 1;
                    (over(a) * weight(b)).cmp(&(over(b) * weight(a)))
                })
        });
        let Some(i) = chosen else {
            break;
        };
        counts[i] += 1;
        out.push(strategy[i].capacity_provider.clone());
    }
    out
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct PutInput {
    cluster: Option<String>,
    capacity_providers: Option<Vec<String>>,
    default_capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    #[serde(flatten)]
    unsupported: Unsupported,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct DescribeInput {
    capacity_providers: Option<Vec<String>>,
    include: Vec<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

impl<S: Store> EcsService<S> {
    pub(crate) async fn put_cluster_capacity_providers(
        &self,
        scope: &Scope,
        body: &[u8],
    ) -> Result<Value> {
        let input: PutInput = parse_input(body)?;
        reject_unsupported("", &input.unsupported)?;
        let name = refs::cluster_name(Some(gantry_aws::required(&input.cluster, "cluster")?))?;
        let providers = input
            .capacity_providers
            .ok_or_else(|| invalid("capacityProviders must be given"))?;
        let strategy = input
            .default_capacity_provider_strategy
            .ok_or_else(|| invalid("defaultCapacityProviderStrategy must be given"))?;
        check_providers(&providers)?;
        check_strategy(&strategy, &providers)?;
        loop {
            let mut current = self.find_cluster(scope, &name)?;
            let guard = current.unchanged();
            current.value.capacity_providers = providers.clone();
            current.value.default_capacity_provider_strategy = strategy.clone();
            let key = keys::cluster(&scope.region, &name);
            if self
                .repo
                .commit(Txn::new().compare(guard).put(key, encode(&current.value)))
                .await?
            {
                let view = self.cluster_view(scope, current.value, &[]);
                return Ok(json!({ "cluster": gantry_model::json::to_value(&view) }));
            }
        }
    }

    pub(crate) fn describe_capacity_providers(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let input: DescribeInput = parse_input(body)?;
        for i in &input.include {
            if i != "TAGS" {
                return Err(invalid(format!("Invalid include: {i}")));
            }
        }
        if input.max_results.is_some_and(|m| !(1..=10).contains(&m)) {
            return Err(invalid("maxResults must be between 1 and 10"));
        }
        if input.next_token.is_some() {
            return Err(invalid("Invalid nextToken"));
        }
        let provider = |name: &str| {
            json!({
                "capacityProviderArn": scope.arn("ecs", &format!("capacity-provider/{name}")),
                "name": name,
                "status": "ACTIVE",
                "type": name,
                "tags": [],
            })
        };
        let (mut found, mut failures) = (Vec::new(), Vec::new());
        match input.capacity_providers {
            None => found.extend(KNOWN.iter().map(|n| provider(n))),
            Some(names) => {
                for n in names {
                    let short = n.rsplit('/').next().unwrap_or(&n);
                    if KNOWN.contains(&short) {
                        found.push(provider(short));
                    } else {
                        failures.push(Failure::missing(n.clone()));
                    }
                }
            }
        }
        Ok(
            json!({ "capacityProviders": found, "failures": gantry_model::json::to_value(&failures) }),
        )
    }
}

/// The strategy a RunTask or CreateService asks for, checked against its cluster: the one given, else (without a
/// launch type) the cluster's default one.
pub fn requested(
    cluster: &Cluster,
    given: Option<&[CapacityProviderStrategyItem]>,
    launch_type: Option<&str>,
) -> Result<Vec<CapacityProviderStrategyItem>> {
    match given.filter(|g| !g.is_empty()) {
        Some(_) if launch_type.is_some() => Err(invalid(
            "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.",
        )),
        Some(g) => {
            check_strategy(g, &cluster.capacity_providers)?;
            Ok(g.to_vec())
        }
        None if launch_type.is_none() => Ok(cluster.default_capacity_provider_strategy.clone()),
        None => Ok(Vec::new()),
    }
}

/// What a task gets when its strategy names Fargate providers: refused until Gantry has the FARGATE launch type.
pub fn unsupported(strategy: &[CapacityProviderStrategyItem]) -> EcsError {
    let names: Vec<&str> = strategy
        .iter()
        .map(|i| i.capacity_provider.as_str())
        .collect();
    EcsError::Unsupported(format!(
        "capacity provider strategy ({}): the FARGATE launch type",
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str, base: i64, weight: i64) -> CapacityProviderStrategyItem {
        CapacityProviderStrategyItem {
            capacity_provider: name.into(),
            weight: Some(weight),
            base: Some(base),
        }
    }

    fn counts(names: &[String]) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for n in names {
            *m.entry(n.clone()).or_default() += 1;
        }
        m
    }

    #[test]
    fn base_first_then_by_weight() {
        let s = [item(FARGATE, 2, 1), item(FARGATE_SPOT, 0, 3)];
        let c = counts(&split(&s, &BTreeMap::new(), 10));
        assert_eq!((c[FARGATE], c[FARGATE_SPOT]), (4, 6));
        // Started in steps, a service ends where it would in one go.
        let mut running = BTreeMap::new();
        for _ in 0..5 {
            for n in split(&s, &running, 2) {
                *running.entry(n).or_default() += 1;
            }
        }
        assert_eq!(running, c);
    }

    #[test]
    fn shares_follow_the_weights_for_every_small_strategy() {
        for (b, w1, w2) in
            (0..4).flat_map(|b| (0..4).flat_map(move |w1| (0..4).map(move |w2| (b, w1, w2))))
        {
            if w1 + w2 == 0 {
                continue;
            }
            let s = [item(FARGATE, b, w1), item(FARGATE_SPOT, 0, w2)];
            for n in 0..40u64 {
                let c = counts(&split(&s, &BTreeMap::new(), n as usize));
                let (f, spot) = (
                    c.get(FARGATE).copied().unwrap_or(0),
                    c.get(FARGATE_SPOT).copied().unwrap_or(0),
                );
                assert_eq!(f + spot, n, "every task is placed");
                let based = n.min(b as u64);
                assert!(f >= based, "the base comes first");
                let rest = (n - based) as f64;
                let share = rest * w1 as f64 / (w1 + w2) as f64;
                assert!(
                    ((f - based) as f64 - share).abs() <= 1.0,
                    "{b} {w1} {w2} {n}: {f} {spot}"
                );
            }
        }
    }

    #[test]
    fn strategies_ecs_refuses() {
        let both = [FARGATE.to_string(), FARGATE_SPOT.to_string()];
        assert!(check_strategy(&[item(FARGATE, 1, 1)], &both).is_ok());
        let message =
            |s: &[CapacityProviderStrategyItem]| check_strategy(s, &both).unwrap_err().to_string();
        assert!(message(&[item(FARGATE, 1, 1), item(FARGATE_SPOT, 1, 1)])
            .contains("more than one capacity provider with a base"));
        assert!(message(&[item(FARGATE, 0, 1), item(FARGATE, 0, 1)]).contains("duplicate"));
        assert!(message(&[item(FARGATE, 0, 0)]).contains("weight greater than zero"));
        assert!(message(&[item(FARGATE, 0, 1001)]).contains("between 0 and 1000"));
        assert!(message(&[item("MY_ASG", 0, 1)]).contains("not associated with the cluster"));
        assert!(check_strategy(&[item(FARGATE_SPOT, 0, 1)], &[FARGATE.into()]).is_err());
        assert!(check_providers(&["FARGATE".into(), "nope".into()]).is_err());
        assert!(check_providers(&["FARGATE".into(), "FARGATE".into()]).is_err());
        assert!(check_providers(&both).is_ok());
    }
}
