//! TagResource, UntagResource, ListTagsForResource over clusters, task definitions, tasks and container instances.

use gantry_aws::parse_input;
use gantry_model::ecs::{Cluster, ContainerInstance, Tag};
use gantry_model::{Arn, Scope};
use gantry_store::{Store, Txn};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{invalid, EcsError, Result};
use crate::records::{TaskDefinitionRecord, TaskRecord};
use crate::{keys, refs, EcsService};

/// ECS's tag limits: 50 tags, keys 1-128 characters, values up to 256, `aws:` reserved.
pub fn validate(tags: &[Tag]) -> Result<()> {
    if tags.len() > 50 {
        return Err(invalid("A resource can have at most 50 tags"));
    }
    for t in tags {
        let key = t.key.as_deref().unwrap_or("");
        if key.is_empty() || key.chars().count() > 128 {
            return Err(invalid("Tag keys must be between 1 and 128 characters"));
        }
        if t.value.as_deref().unwrap_or("").chars().count() > 256 {
            return Err(invalid("Tag values must be at most 256 characters"));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(invalid(
                "Tag keys may not start with the reserved prefix aws:",
            ));
        }
    }
    Ok(())
}

/// Adds or replaces tags by key.
pub fn merge(existing: &mut Vec<Tag>, new: Vec<Tag>) {
    for t in new {
        match existing.iter_mut().find(|e| e.key == t.key) {
            Some(e) => e.value = t.value,
            None => existing.push(t),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct TagInput {
    resource_arn: Option<String>,
    tags: Option<Vec<Tag>>,
    tag_keys: Option<Vec<String>>,
}

/// Which stored value a resource ARN names.
fn resource_key(scope: &Scope, arn: &str) -> Result<String> {
    let parsed = Arn::parse(arn)
        .filter(|a| a.service == "ecs")
        .ok_or_else(|| invalid(format!("Invalid resource ARN: {arn}")))?;
    let region = &scope.region;
    match parsed.resource_type() {
        "cluster" => Ok(keys::cluster(region, &refs::cluster_name(Some(arn))?)),
        "task-definition" => {
            let r = refs::task_definition(arn)?;
            Ok(keys::task_definition(
                region,
                &r.family,
                r.revision
                    .ok_or_else(|| invalid("A task definition ARN needs a revision"))?,
            ))
        }
        "task" => {
            let (c, id) = refs::member_id(arn, "task", "default")
                .ok_or_else(|| invalid(format!("Invalid task ARN: {arn}")))?;
            Ok(keys::task(region, &c, &id))
        }
        "container-instance" => {
            let (c, id) = refs::member_id(arn, "container-instance", "default")
                .ok_or_else(|| invalid(format!("Invalid container instance ARN: {arn}")))?;
            Ok(keys::instance(region, &c, &id))
        }
        other => Err(invalid(format!(
            "Gantry does not tag ECS resources of type {other}"
        ))),
    }
}

fn not_found() -> EcsError {
    EcsError::ResourceNotFound("The specified resource could not be found.".into())
}

impl<S: Store> EcsService<S> {
    async fn edit_tags<T: Serialize + DeserializeOwned>(
        &self,
        key: &str,
        tags_of: fn(&mut T) -> &mut Vec<Tag>,
        edit: &(dyn Fn(&mut Vec<Tag>) + Sync),
    ) -> Result<Vec<Tag>> {
        loop {
            let mut current = self.repo.get::<T>(key).ok_or_else(not_found)?;
            let guard = current.unchanged();
            edit(tags_of(&mut current.value));
            let after = tags_of(&mut current.value).clone();
            if self
                .repo
                .commit(
                    Txn::new()
                        .compare(guard)
                        .put(key, crate::repo::encode(&current.value)),
                )
                .await?
            {
                return Ok(after);
            }
        }
    }

    async fn edit_resource_tags(
        &self,
        scope: &Scope,
        arn: &str,
        edit: &(dyn Fn(&mut Vec<Tag>) + Sync),
    ) -> Result<Vec<Tag>> {
        let key = resource_key(scope, arn)?;
        match Arn::parse(arn)
            .map(|a| a.resource_type().to_string())
            .as_deref()
        {
            Some("cluster") => self.edit_tags::<Cluster>(&key, |c| &mut c.tags, edit).await,
            Some("task-definition") => {
                self.edit_tags::<TaskDefinitionRecord>(&key, |t| &mut t.tags, edit)
                    .await
            }
            Some("task") => {
                self.edit_tags::<TaskRecord>(&key, |t| &mut t.task.tags, edit)
                    .await
            }
            _ => {
                self.edit_tags::<ContainerInstance>(&key, |c| &mut c.tags, edit)
                    .await
            }
        }
    }

    pub(crate) async fn tag_resource(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let input: TagInput = parse_input(body)?;
        let arn = gantry_aws::required(&input.resource_arn, "resourceArn")?;
        let tags = input.tags.ok_or_else(|| invalid("tags is required"))?;
        validate(&tags)?;
        let after = self
            .edit_resource_tags(scope, arn, &|existing| merge(existing, tags.clone()))
            .await?;
        // Tags ECS adds itself (`aws:ecs:*`) do not count towards the limit.
        let user_tags = after
            .iter()
            .filter(|t| !t.key.as_deref().unwrap_or("").starts_with("aws:"))
            .count();
        if user_tags > 50 {
            return Err(invalid("A resource can have at most 50 tags"));
        }
        Ok(json!({}))
    }

    pub(crate) async fn untag_resource(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let input: TagInput = parse_input(body)?;
        let arn = gantry_aws::required(&input.resource_arn, "resourceArn")?;
        let keys = input
            .tag_keys
            .ok_or_else(|| invalid("tagKeys is required"))?;
        self.edit_resource_tags(scope, arn, &|existing| {
            existing.retain(|t| !keys.iter().any(|k| Some(k) == t.key.as_ref()))
        })
        .await?;
        Ok(json!({}))
    }

    pub(crate) fn list_tags_for_resource(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let input: TagInput = parse_input(body)?;
        let arn = gantry_aws::required(&input.resource_arn, "resourceArn")?;
        let key = resource_key(scope, arn)?;
        let tags: Vec<Tag> = match Arn::parse(arn)
            .map(|a| a.resource_type().to_string())
            .as_deref()
        {
            Some("cluster") => self.repo.get::<Cluster>(&key).map(|c| c.value.tags),
            Some("task-definition") => self
                .repo
                .get::<TaskDefinitionRecord>(&key)
                .map(|t| t.value.tags),
            Some("task") => self.repo.get::<TaskRecord>(&key).map(|t| t.value.task.tags),
            _ => self
                .repo
                .get::<ContainerInstance>(&key)
                .map(|c| c.value.tags),
        }
        .ok_or_else(not_found)?;
        Ok(json!({ "tags": gantry_model::json::to_value(&tags) }))
    }
}
