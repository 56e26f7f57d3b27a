//! Tags of log groups: TagResource, UntagResource, ListTagsForResource (by ARN) and the older TagLogGroup,
//! UntagLogGroup, ListTagsLogGroup (by name).

use std::collections::BTreeMap;

use gantry_model::Scope;
use gantry_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{validate, LogsError, LogsService};

const MAX_TAGS: usize = 50;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TagResourceInput {
    resource_arn: String,
    tags: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UntagResourceInput {
    resource_arn: String,
    tag_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResourceArnInput {
    resource_arn: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TagLogGroupInput {
    log_group_name: String,
    tags: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UntagLogGroupInput {
    log_group_name: String,
    tags: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListTagsLogGroupInput {
    log_group_name: String,
}

#[derive(Serialize)]
struct TagsOut {
    tags: BTreeMap<String, String>,
}

/// `\p{L}\p{Z}\p{N}_.:/=+\-@`
fn is_tag_char(c: char) -> bool {
    c.is_alphabetic()
        || c.is_numeric()
        || (c.is_whitespace() && !c.is_control())
        || "_.:/=+-@".contains(c)
}

fn check_key(field: &str, key: &str) -> Result<(), LogsError> {
    let n = key.chars().count();
    if n == 0 || n > 128 || !key.chars().all(is_tag_char) {
        return Err(LogsError::invalid(format!(
            "Invalid tag key '{key}' in {field}: it must have 1 to 128 characters of letters, digits, spaces and _.:/=+-@"
        )));
    }
    Ok(())
}

/// A `Tags` map: 1-50 entries, keys and values within the model's lengths and characters, no `aws:` keys.
pub(crate) fn check_tags(field: &str, tags: &BTreeMap<String, String>) -> Result<(), LogsError> {
    if tags.is_empty() {
        return Err(LogsError::invalid(format!(
            "1 validation error detected: Value '{{}}' at '{field}' failed to satisfy constraint: Member must have length greater than or equal to 1"
        )));
    }
    if tags.len() > MAX_TAGS {
        return Err(LogsError::TooManyTags(format!(
            "A resource can have no more than {MAX_TAGS} tags."
        )));
    }
    for (k, v) in tags {
        check_key(field, k)?;
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(LogsError::invalid(format!(
                "Tag keys beginning with 'aws:' are reserved: {k}"
            )));
        }
        if v.chars().count() > 256 || !v.chars().all(is_tag_char) {
            return Err(LogsError::invalid(format!(
                "Invalid tag value for '{k}' in {field}: it must have at most 256 characters of letters, digits, spaces and _.:/=+-@"
            )));
        }
    }
    Ok(())
}

fn check_keys(field: &str, keys: &[String], min: usize) -> Result<(), LogsError> {
    if keys.len() < min || keys.len() > MAX_TAGS {
        return Err(LogsError::invalid(format!(
            "{field} must have between {min} and {MAX_TAGS} members"
        )));
    }
    keys.iter().try_for_each(|k| check_key(field, k))
}

/// The log group an ARN names: `ResourceNotFoundException` for anything else of this account.
fn group_of(scope: &Scope, arn: &str) -> Result<String, LogsError> {
    let n = arn.chars().count();
    if n == 0 || n > 1011 {
        return Err(LogsError::invalid(
            "resourceArn must have between 1 and 1011 characters",
        ));
    }
    validate::group_from_arn(scope, "resourceArn", arn)
}

/// Not-found errors about a resource named by ARN speak of the resource, as AWS does.
fn by_arn(e: LogsError, arn: &str) -> LogsError {
    match e {
        LogsError::GroupNotFound => {
            LogsError::ResourceNotFound(format!("The specified resource does not exist: {arn}"))
        }
        e => e,
    }
}

impl<S: Store> LogsService<S> {
    async fn add_tags(
        &self,
        scope: &Scope,
        group: &str,
        tags: BTreeMap<String, String>,
    ) -> Result<(), LogsError> {
        self.update_group(&scope.region, group, |g| {
            let mut merged = g.tags.clone();
            merged.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
            if merged.len() > MAX_TAGS {
                return Err(LogsError::TooManyTags(format!(
                    "A resource can have no more than {MAX_TAGS} tags."
                )));
            }
            g.tags = merged;
            Ok(())
        })
        .await?;
        Ok(())
    }

    async fn remove_tags(
        &self,
        scope: &Scope,
        group: &str,
        keys: Vec<String>,
    ) -> Result<(), LogsError> {
        self.update_group(&scope.region, group, |g| {
            keys.iter().for_each(|k| {
                g.tags.remove(k);
            });
            Ok(())
        })
        .await?;
        Ok(())
    }

    fn tags_of(&self, scope: &Scope, group: &str) -> Result<Value, LogsError> {
        let (_, g) = self.group(&scope.region, group)?;
        Ok(serde_json::to_value(TagsOut { tags: g.tags }).unwrap_or_else(|_| json!({"tags": {}})))
    }

    pub(crate) async fn tag_resource(
        &self,
        scope: &Scope,
        input: TagResourceInput,
    ) -> Result<Value, LogsError> {
        let group = group_of(scope, &input.resource_arn)?;
        check_tags("tags", &input.tags)?;
        self.add_tags(scope, &group, input.tags)
            .await
            .map_err(|e| by_arn(e, &input.resource_arn))?;
        Ok(json!({}))
    }

    pub(crate) async fn untag_resource(
        &self,
        scope: &Scope,
        input: UntagResourceInput,
    ) -> Result<Value, LogsError> {
        let group = group_of(scope, &input.resource_arn)?;
        check_keys("tagKeys", &input.tag_keys, 0)?;
        self.remove_tags(scope, &group, input.tag_keys)
            .await
            .map_err(|e| by_arn(e, &input.resource_arn))?;
        Ok(json!({}))
    }

    pub(crate) async fn list_tags_for_resource(
        &self,
        scope: &Scope,
        input: ResourceArnInput,
    ) -> Result<Value, LogsError> {
        let group = group_of(scope, &input.resource_arn)?;
        self.tags_of(scope, &group)
            .map_err(|e| by_arn(e, &input.resource_arn))
    }

    pub(crate) async fn tag_log_group(
        &self,
        scope: &Scope,
        input: TagLogGroupInput,
    ) -> Result<Value, LogsError> {
        validate::group_name("logGroupName", &input.log_group_name)?;
        check_tags("tags", &input.tags)?;
        self.add_tags(scope, &input.log_group_name, input.tags)
            .await?;
        Ok(json!({}))
    }

    pub(crate) async fn untag_log_group(
        &self,
        scope: &Scope,
        input: UntagLogGroupInput,
    ) -> Result<Value, LogsError> {
        validate::group_name("logGroupName", &input.log_group_name)?;
        check_keys("tags", &input.tags, 1)?;
        self.remove_tags(scope, &input.log_group_name, input.tags)
            .await?;
        Ok(json!({}))
    }

    pub(crate) async fn list_tags_log_group(
        &self,
        scope: &Scope,
        input: ListTagsLogGroupInput,
    ) -> Result<Value, LogsError> {
        validate::group_name("logGroupName", &input.log_group_name)?;
        self.tags_of(scope, &input.log_group_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn validates_tags() {
        assert!(check_tags(
            "tags",
            &tags(&[
                ("team", "web"),
                ("cost center", "a/b:c=d+e-f@g_h.i"),
                ("empty", "")
            ])
        )
        .is_ok());
        assert!(check_tags("tags", &tags(&[("ünïcode", "välue")])).is_ok());
        assert!(check_tags("tags", &tags(&[])).is_err());
        assert!(check_tags("tags", &tags(&[("", "x")])).is_err());
        assert!(check_tags("tags", &tags(&[("a!", "x")])).is_err());
        assert!(check_tags("tags", &tags(&[("a", "x\ny")])).is_err());
        assert!(check_tags("tags", &tags(&[("aws:x", "y")])).is_err());
        let many: BTreeMap<String, String> =
            (0..51).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(matches!(
            check_tags("tags", &many),
            Err(LogsError::TooManyTags(_))
        ));
    }
}
