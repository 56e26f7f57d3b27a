//! Wire shapes shared by the handlers (member names as in the botocore model) and the pure checks on input.

use std::collections::BTreeMap;

use gantry_model::Scope;
use serde::{Deserialize, Serialize};

use super::EcrError;
use crate::meta::RepoRecord;
use crate::names::is_valid_name;

pub const MAX_TAGS: usize = 50;

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Tag {
    #[serde(rename = "Key")]
    pub key: Option<String>,
    #[serde(rename = "Value")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct ImageId {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_tag: Option<String>,
}

impl ImageId {
    /// As ECR writes it in messages: `{imageDigest:'null', imageTag:'v1'}`.
    pub fn describe(&self) -> String {
        format!(
            "{{imageDigest:'{}', imageTag:'{}'}}",
            self.image_digest.as_deref().unwrap_or("null"),
            self.image_tag.as_deref().unwrap_or("null")
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagStatus {
    Tagged,
    Untagged,
    Any,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    pub tag_status: Option<String>,
}

impl Filter {
    pub fn status(filter: &Option<Filter>) -> Result<TagStatus, EcrError> {
        match filter.as_ref().and_then(|f| f.tag_status.as_deref()) {
            None | Some("ANY") => Ok(TagStatus::Any),
            Some("TAGGED") => Ok(TagStatus::Tagged),
            Some("UNTAGGED") => Ok(TagStatus::Untagged),
            Some(other) => Err(EcrError::InvalidParameter(format!(
                "Invalid parameter at 'filter.tagStatus' failed to satisfy constraint: 'Member must satisfy enum value set: [TAGGED, UNTAGGED, ANY]' (got '{other}')"
            ))),
        }
    }
}

/// `repositoryName`: present, 2 to 256 characters of the model's pattern.
pub fn repository_name(name: &Option<String>) -> Result<&str, EcrError> {
    let name = name.as_deref().unwrap_or("");
    if name.len() < 2 || name.len() > 256 || !is_valid_name(name) {
        return Err(EcrError::InvalidParameter(format!(
            "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*' and have a length between 2 and 256' (got '{name}')"
        )));
    }
    Ok(name)
}

/// `registryId`, when given, must be this account's.
pub fn registry_id(scope: &Scope, id: &Option<String>) -> Result<(), EcrError> {
    match id.as_deref() {
        Some(id) if id != scope.account => Err(EcrError::InvalidParameter(format!(
            "Invalid parameter at 'registryId': this registry's id is '{}' (got '{id}')",
            scope.account
        ))),
        _ => Ok(()),
    }
}

/// `imageTagMutability`: true for IMMUTABLE. The `*_WITH_EXCLUSION` modes are not supported yet.
pub fn immutable(value: &Option<String>, default: bool) -> Result<bool, EcrError> {
    match value.as_deref() {
        None => Ok(default),
        Some("MUTABLE") => Ok(false),
        Some("IMMUTABLE") => Ok(true),
        Some(other) => Err(EcrError::InvalidParameter(format!(
            "Invalid parameter at 'imageTagMutability' failed to satisfy constraint: 'Member must satisfy enum value set: [MUTABLE, IMMUTABLE]' (got '{other}')"
        ))),
    }
}

pub fn mutability(rec: &RepoRecord) -> &'static str {
    if rec.immutable_tags {
        "IMMUTABLE"
    } else {
        "MUTABLE"
    }
}

/// Checks tags (key 1-128, value 0-256 characters, not under `aws:`) and adds them to `into`, at most 50 in all.
pub fn merge_tags(into: &mut BTreeMap<String, String>, tags: &[Tag]) -> Result<(), EcrError> {
    for t in tags {
        let key = t.key.as_deref().unwrap_or("");
        let value = t.value.as_deref().unwrap_or("");
        if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
            return Err(EcrError::InvalidTagParameter(format!(
                "Invalid tag: keys must have 1 to 128 characters and values at most 256 (got key '{key}')"
            )));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(EcrError::InvalidTagParameter(
                "Tag keys starting with 'aws:' are reserved".into(),
            ));
        }
        into.insert(key.to_string(), value.to_string());
    }
    if into.len() > MAX_TAGS {
        return Err(EcrError::TooManyTags(format!(
            "A repository can have at most {MAX_TAGS} tags (would have {})",
            into.len()
        )));
    }
    Ok(())
}

pub fn tag_list(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

/// `arn:aws:ecr:{region}:{account}:repository/{name}`
pub fn repository_arn(scope: &Scope, name: &str) -> String {
    format!(
        "arn:aws:ecr:{}:{}:repository/{name}",
        scope.region, scope.account
    )
}

/// The repository name of a repository ARN of this account and region.
pub fn name_from_arn<'a>(scope: &Scope, arn: &'a str) -> Result<&'a str, EcrError> {
    let prefix = format!("arn:aws:ecr:{}:{}:repository/", scope.region, scope.account);
    arn.strip_prefix(&prefix)
        .filter(|n| is_valid_name(n))
        .ok_or_else(|| {
            EcrError::InvalidParameter(format!(
                "Invalid parameter at 'resourceArn': '{arn}' is not a repository ARN of this registry"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: Some(k.into()),
            value: Some(v.into()),
        }
    }

    #[test]
    fn repository_names() {
        for ok in ["web", "ab", "team/web-app", "a.b_c"] {
            assert!(repository_name(&Some(ok.into())).is_ok(), "{ok}");
        }
        for bad in ["", "a", "Web", "web/", "../x", "a b", &"a".repeat(257)] {
            assert!(repository_name(&Some(bad.into())).is_err(), "{bad}");
        }
        assert!(repository_name(&None).is_err());
    }

    #[test]
    fn tags_are_checked_and_merged() {
        let mut tags = BTreeMap::new();
        merge_tags(&mut tags, &[tag("team", "a"), tag("env", "")]).unwrap();
        merge_tags(&mut tags, &[tag("team", "b")]).unwrap();
        assert_eq!(tags.len(), 2);
        assert_eq!(tags["team"], "b");
        assert!(matches!(
            merge_tags(&mut tags, &[tag("", "x")]),
            Err(EcrError::InvalidTagParameter(_))
        ));
        assert!(matches!(
            merge_tags(&mut tags, &[tag("aws:x", "x")]),
            Err(EcrError::InvalidTagParameter(_))
        ));
        let many: Vec<Tag> = (0..49).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert!(matches!(
            merge_tags(&mut tags, &many),
            Err(EcrError::TooManyTags(_))
        ));
        assert_eq!(tag_list(&tags)[0].key.as_deref(), Some("env"));
    }

    #[test]
    fn enums_and_arns() {
        assert!(immutable(&Some("IMMUTABLE".into()), false).unwrap());
        assert!(!immutable(&None, false).unwrap());
        assert!(immutable(&Some("immutable".into()), false).is_err());
        assert_eq!(Filter::status(&None).unwrap(), TagStatus::Any);
        let f = Some(Filter {
            tag_status: Some("UNTAGGED".into()),
        });
        assert_eq!(Filter::status(&f).unwrap(), TagStatus::Untagged);
        let scope = Scope::new("us-east-1", "000000000000");
        let arn = repository_arn(&scope, "team/web");
        assert_eq!(
            arn,
            "arn:aws:ecr:us-east-1:000000000000:repository/team/web"
        );
        assert_eq!(name_from_arn(&scope, &arn).unwrap(), "team/web");
        assert!(
            name_from_arn(&scope, "arn:aws:ecr:eu-west-1:000000000000:repository/web").is_err()
        );
        assert!(registry_id(&scope, &Some("111111111111".into())).is_err());
    }
}
