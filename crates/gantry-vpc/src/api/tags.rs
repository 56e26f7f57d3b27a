//! CreateTags, DeleteTags, DescribeTags over the VPC subset's resources (VPCs, subnets, security groups, network
//! interfaces), each kept in its record's `tags`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{filtered, TagInput};
use crate::errors::{Result, VpcError};
use crate::filters::{Filter, Filterable};
use crate::model::Tag;
use crate::service::{keys, VpcService};
use gantry_store::{Store, Txn};

const MAX_TAGS: usize = 50;

#[derive(Debug, Default, Deserialize)]
pub struct CreateTagsInput {
    #[serde(rename = "ResourceId", default)]
    pub resources: Vec<String>,
    #[serde(rename = "Tag", default)]
    pub tags: Vec<TagInput>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DescribeTagsInput {
    #[serde(rename = "Filter", default)]
    pub filters: Vec<Filter>,
    #[serde(rename = "MaxResults")]
    pub max_results: Option<i32>,
    #[serde(rename = "NextToken")]
    pub next_token: Option<String>,
}

/// A checked tag: a key of 1-128 characters not in the `aws:` namespace, a value of at most 256.
pub(crate) fn tag_of(t: &TagInput) -> Result<Tag> {
    let key = t
        .key
        .clone()
        .ok_or(VpcError::MissingParameter("Tag.N.Key"))?;
    let value = t.value.clone().unwrap_or_default();
    if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
        return Err(VpcError::InvalidParameterValue(format!(
            "Tag keys must be 1 to 128 characters and values at most 256 ('{key}')"
        )));
    }
    if key.starts_with("aws:") {
        return Err(VpcError::InvalidParameterValue(
            "Tag keys starting with 'aws:' are reserved for internal use".into(),
        ));
    }
    Ok(Tag { key, value })
}

/// `tags` with `tag` set (replacing the value of a tag of the same key).
pub(crate) fn merged(mut tags: Vec<Tag>, tag: Tag) -> Vec<Tag> {
    match tags.iter_mut().find(|t| t.key == tag.key) {
        Some(t) => t.value = tag.value,
        None => tags.push(tag),
    }
    tags
}

/// The store key and EC2 resource type of a resource id.
fn locate(region: &str, id: &str) -> Result<(String, &'static str)> {
    let (prefix, kind) = match id.split_once('-').map(|(p, _)| p) {
        Some("vpc") => (keys::vpcs(region), "vpc"),
        Some("subnet") => (keys::subnets(region), "subnet"),
        Some("sg") => (keys::security_groups(region), "security-group"),
        Some("eni") => (keys::network_interfaces(region), "network-interface"),
        _ => return Err(VpcError::InvalidId(id.into())),
    };
    Ok((format!("{prefix}{id}"), kind))
}

/// Reads each resource's record as JSON, changes its `tags`, and writes them all in one transaction.
async fn change_tags<S: Store>(
    svc: &VpcService<S>,
    region: &str,
    resources: &[String],
    change: impl Fn(Vec<Tag>) -> Result<Vec<Tag>>,
) -> Result<()> {
    if resources.is_empty() {
        return Err(VpcError::MissingParameter("ResourceId"));
    }
    let _w = svc.writes.lock().await;
    let mut txn = Txn::new();
    for id in resources {
        let (key, kind) = locate(region, id)?;
        let mut record: Value = svc.get(&key).ok_or_else(|| match kind {
            "vpc" => VpcError::VpcNotFound(id.clone()),
            "subnet" => VpcError::SubnetNotFound(id.clone()),
            "security-group" => VpcError::GroupNotFound(id.clone()),
            _ => VpcError::InvalidId(id.clone()),
        })?;
        let tags: Vec<Tag> = serde_json::from_value(record["tags"].take()).unwrap_or_default();
        let tags = change(tags)?;
        if tags.len() > MAX_TAGS {
            return Err(VpcError::TagLimitExceeded);
        }
        record["tags"] = serde_json::to_value(&tags).unwrap_or_default();
        txn = txn.put(key, crate::service::encode(&record));
    }
    svc.commit(txn).await
}

pub async fn create<S: Store>(
    svc: &VpcService<S>,
    region: &str,
    input: CreateTagsInput,
) -> Result<Value> {
    let new: Vec<Tag> = input.tags.iter().map(tag_of).collect::<Result<_>>()?;
    if new.is_empty() {
        return Err(VpcError::MissingParameter("Tag"));
    }
    change_tags(svc, region, &input.resources, |tags| {
        Ok(new.iter().cloned().fold(tags, merged))
    })
    .await?;
    Ok(Value::Null)
}

pub async fn delete<S: Store>(
    svc: &VpcService<S>,
    region: &str,
    input: CreateTagsInput,
) -> Result<Value> {
    // Without tags, every tag goes; a tag with a value goes only when its value is that one.
    change_tags(svc, region, &input.resources, |tags| {
        Ok(tags
            .into_iter()
            .filter(|t| {
                !input.tags.is_empty()
                    && !input.tags.iter().any(|d| {
                        d.key.as_deref() == Some(t.key.as_str())
                            && d.value.as_deref().is_none_or(|v| v == t.value)
                    })
            })
            .collect())
    })
    .await?;
    Ok(Value::Null)
}

struct Listed {
    resource_id: String,
    resource_type: &'static str,
    tag: Tag,
}

impl Filterable for Listed {
    fn filter_values(&self, name: &str) -> Vec<String> {
        match name {
            "resource-id" => vec![self.resource_id.clone()],
            "resource-type" => vec![self.resource_type.into()],
            "key" => vec![self.tag.key.clone()],
            "value" => vec![self.tag.value.clone()],
            _ => vec![],
        }
    }
}

pub fn describe<S: Store>(
    svc: &VpcService<S>,
    region: &str,
    input: DescribeTagsInput,
) -> Result<Value> {
    let mut all = Vec::new();
    for (prefix, kind) in [
        (keys::vpcs(region), "vpc"),
        (keys::subnets(region), "subnet"),
        (keys::security_groups(region), "security-group"),
        (keys::network_interfaces(region), "network-interface"),
    ] {
        for kv in svc.store.range(&prefix) {
            let Ok(record) = serde_json::from_slice::<Value>(&kv.value) else {
                continue;
            };
            let tags: Vec<Tag> = serde_json::from_value(record["tags"].clone()).unwrap_or_default();
            let id = kv.key[prefix.len()..].to_string();
            all.extend(tags.into_iter().map(|tag| Listed {
                resource_id: id.clone(),
                resource_type: kind,
                tag,
            }));
        }
    }
    let (items, next) = filtered(
        all,
        &input.filters,
        &["resource-id", "resource-type", "key", "value"],
        input.max_results,
        input.next_token.as_deref(),
        |l| json!({"resourceId": l.resource_id, "resourceType": l.resource_type, "key": l.tag.key, "value": l.tag.value}),
    )?;
    Ok(json!({"tagSet": items, "nextToken": next}))
}
