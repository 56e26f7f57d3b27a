//! PutAttributes, ListAttributes, DeleteAttributes: custom attributes of container instances, which placement
//! constraints (`memberOf`) and spread strategies read. Built-in attributes (`ecs.*`) come from the agent.

use std::collections::BTreeMap;

use gantry_aws::{paginate, parse_input};
use gantry_model::ecs::{Attribute, ContainerInstance};
use gantry_model::Scope;
use gantry_store::{Store, Txn};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::clusters::WithoutNulls;
use crate::error::{invalid, EcsError, Result};
use crate::repo::{encode, Versioned};
use crate::{keys, refs, EcsService};

const TARGET_TYPE: &str = "container-instance";
/// Custom attributes a container instance may carry, and attributes one call may name (ECS's limits).
const MAX_CUSTOM: usize = 10;
const MAX_PER_CALL: usize = 10;

/// The instances a request targets (by id), each with its attributes in the request.
type Targets = BTreeMap<String, (Versioned<ContainerInstance>, Vec<Attribute>)>;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct AttributesInput {
    cluster: Option<String>,
    attributes: Option<Vec<Attribute>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ListInput {
    cluster: Option<String>,
    target_type: Option<String>,
    attribute_name: Option<String>,
    attribute_value: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// Attributes the agent sets (`ecs.*`, `com.amazonaws.ecs.*`); they do not count towards the custom limit and
/// cannot be changed through the API.
pub fn is_built_in(name: &str) -> bool {
    name.starts_with("ecs.") || name.starts_with("com.amazonaws.ecs.")
}

fn check_name(name: &str) -> Result<()> {
    let ok = (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_/\\.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "Invalid attribute name '{name}': 1 to 128 letters, numbers, hyphens, underscores, slashes, back slashes or periods"
        )))
    }
}

fn check_value(value: &str) -> Result<()> {
    let ok = (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@/\\: ".contains(&b))
        && !value.starts_with(' ')
        && !value.ends_with(' ');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "Invalid attribute value '{value}': 1 to 128 letters, numbers, hyphens, underscores, periods, at signs, slashes, back slashes, colons or spaces, not starting or ending with a space"
        )))
    }
}

/// The wire form of an instance's attribute, naming its instance.
fn targeted(a: &Attribute, ci: &ContainerInstance) -> Attribute {
    Attribute {
        name: a.name.clone(),
        value: a.value.clone(),
        target_type: Some(TARGET_TYPE.into()),
        target_id: Some(ci.container_instance_arn.clone()),
    }
}

impl<S: Store> EcsService<S> {
    /// Checks the request and groups its attributes by the instance they target.
    fn targets(
        &self,
        scope: &Scope,
        cluster: &str,
        attributes: &[Attribute],
        with_values: bool,
    ) -> Result<Targets> {
        if attributes.is_empty() || attributes.len() > MAX_PER_CALL {
            return Err(invalid(format!(
                "attributes must list between 1 and {MAX_PER_CALL} attributes"
            )));
        }
        let mut targets = BTreeMap::new();
        for a in attributes {
            check_name(&a.name)?;
            if with_values {
                if let Some(v) = &a.value {
                    check_value(v)?;
                }
            }
            if is_built_in(&a.name) {
                return Err(invalid(format!(
                    "The attribute {} is set by the container agent and cannot be changed",
                    a.name
                )));
            }
            match a.target_type.as_deref() {
                None | Some(TARGET_TYPE) => {}
                Some(other) => return Err(invalid(format!("Invalid targetType: {other}"))),
            }
            let target = a
                .target_id
                .as_deref()
                .ok_or_else(|| invalid("targetId is required for each attribute"))?;
            let not_found = || EcsError::TargetNotFound(format!("Could not find {target}."));
            let (c, id) = refs::member_id(target, TARGET_TYPE, cluster).ok_or_else(not_found)?;
            if c != cluster {
                return Err(not_found());
            }
            if !targets.contains_key(&id) {
                let ci: Versioned<ContainerInstance> = self
                    .repo
                    .get(&keys::instance(&scope.region, cluster, &id))
                    .filter(|ci: &Versioned<ContainerInstance>| ci.value.status != "INACTIVE")
                    .ok_or_else(not_found)?;
                targets.insert(id.clone(), (ci, Vec::new()));
            }
            if let Some((_, list)) = targets.get_mut(&id) {
                list.push(a.clone());
            }
        }
        Ok(targets)
    }

    /// Applies `change` to each targeted instance in one transaction; retried when an instance changed meanwhile.
    async fn change_attributes(&self, scope: &Scope, body: &[u8], putting: bool) -> Result<Value> {
        let input: AttributesInput = parse_input(body)?;
        let cluster = refs::cluster_name(input.cluster.as_deref())?;
        self.find_cluster(scope, &cluster)?;
        let attributes = input.attributes.unwrap_or_default();
        loop {
            let targets = self.targets(scope, &cluster, &attributes, putting)?;
            let mut txn = Txn::new();
            let mut out = Vec::new();
            for (ci, changes) in targets.values() {
                let mut updated = ci.value.clone();
                for a in changes {
                    updated.attributes.retain(|e| e.name != a.name);
                    if putting {
                        updated.attributes.push(Attribute {
                            name: a.name.clone(),
                            value: a.value.clone(),
                            ..Default::default()
                        });
                    }
                    out.push(targeted(a, &updated));
                }
                let custom = updated
                    .attributes
                    .iter()
                    .filter(|a| !is_built_in(&a.name))
                    .count();
                if putting && custom > MAX_CUSTOM {
                    return Err(EcsError::AttributeLimitExceeded);
                }
                updated.version += 1;
                txn = txn
                    .compare(ci.unchanged())
                    .put(ci.kv.key.clone(), encode(&updated));
            }
            if self.repo.commit(txn).await? {
                // Constraints may now admit (or refuse) instances: DAEMON services look again.
                self.wake_services();
                return Ok(json!({ "attributes": gantry_model::json::to_value(&out) }));
            }
        }
    }

    pub(crate) async fn put_attributes(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        self.change_attributes(scope, body, true).await
    }

    pub(crate) async fn delete_attributes(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        self.change_attributes(scope, body, false).await
    }

    pub(crate) fn list_attributes(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let input: ListInput = parse_input(body)?;
        let cluster = refs::cluster_name(input.cluster.as_deref())?;
        match input.target_type.as_deref() {
            Some(TARGET_TYPE) => {}
            None => return Err(invalid("targetType is required")),
            Some(other) => return Err(invalid(format!("Invalid targetType: {other}"))),
        }
        self.find_cluster(scope, &cluster)?;
        if input.attribute_value.is_some() && input.attribute_name.is_none() {
            return Err(invalid(
                "attributeValue can only be given together with attributeName",
            ));
        }
        let mut found = Vec::new();
        for ci in self.cluster_instances(&scope.region, &cluster) {
            let ci = ci.value;
            if ci.status == "INACTIVE" {
                continue;
            }
            for a in &ci.attributes {
                let name_ok = input.attribute_name.as_ref().is_none_or(|n| *n == a.name);
                let value_ok = input
                    .attribute_value
                    .as_ref()
                    .is_none_or(|v| a.value.as_ref() == Some(v));
                if name_ok && value_ok {
                    found.push(gantry_model::json::to_value(&targeted(a, &ci)));
                }
            }
        }
        let page = paginate(
            found,
            input.next_token.as_deref(),
            input.max_results,
            100,
            100,
        )?;
        Ok(json!({ "attributes": page.items, "nextToken": page.next_token }).without_nulls())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_as_ecs_allows_them() {
        assert!(check_name("stack").is_ok());
        assert!(check_name("team/a.b_c-d\\e").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("has space").is_err());
        assert!(check_name(&"a".repeat(129)).is_err());
        assert!(check_value("prod @ us-east-1:a/b").is_ok());
        assert!(check_value(" lead").is_err());
        assert!(check_value("trail ").is_err());
        assert!(check_value("semi;colon").is_err());
        assert!(is_built_in("ecs.availability-zone"));
        assert!(!is_built_in("stack"));
    }
}
