//! Lifecycle policies: PutLifecyclePolicy, GetLifecyclePolicy, DeleteLifecyclePolicy, and the preview
//! (StartLifecyclePolicyPreview, computed at once, and GetLifecyclePolicyPreview).

use gantry_aws::{paginate, ResponseExt};
use gantry_model::Scope;
use gantry_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::wire::{registry_id, repository_name, Filter, ImageId, TagStatus};
use super::{EcrError, EcrService};
use crate::lifecycle::job::current_images;
use crate::lifecycle::{evaluate, parse_policy, PolicyError};
use crate::meta::{now, PreviewRecord, PreviewResult, RepoRecord};

/// `lifecyclePolicyText` length bounds of the model.
const MIN_POLICY: usize = 100;
const MAX_POLICY: usize = 30720;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutLifecyclePolicyInput {
    registry_id: Option<String>,
    repository_name: Option<String>,
    lifecycle_policy_text: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryInput {
    registry_id: Option<String>,
    repository_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLifecyclePolicyPreviewInput {
    registry_id: Option<String>,
    repository_name: Option<String>,
    image_ids: Option<Vec<ImageId>>,
    next_token: Option<String>,
    max_results: Option<i64>,
    filter: Option<Filter>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PreviewResultOut<'a> {
    image_digest: &'a str,
    image_tags: &'a [String],
    image_pushed_at: u64,
    action: Value,
    applied_rule_priority: u32,
}

/// ECR's refusal of a policy text: the model's length bounds, then the policy's own rules.
fn checked_policy(text: &Option<String>) -> Result<&str, EcrError> {
    let Some(text) = text.as_deref() else {
        return Err(EcrError::InvalidParameter(
            "Missing required parameter lifecyclePolicyText".into(),
        ));
    };
    let len = text.chars().count();
    if !(MIN_POLICY..=MAX_POLICY).contains(&len) {
        return Err(EcrError::InvalidParameter(format!(
            "Invalid parameter at 'lifecyclePolicyText' failed to satisfy constraint: 'Member must have length between {MIN_POLICY} and {MAX_POLICY}' (got {len} characters)"
        )));
    }
    parse_policy(text).map_err(invalid_policy)?;
    Ok(text)
}

fn invalid_policy(e: PolicyError) -> EcrError {
    EcrError::InvalidParameter(format!(
        "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: {e}'"
    ))
}

/// Whether a preview result is one of the image ids asked for (by digest, tag, or both).
fn named_by(r: &PreviewResult, ids: &[ImageId]) -> bool {
    ids.iter().any(|id| {
        (id.image_digest.is_some() || id.image_tag.is_some())
            && id.image_digest.as_deref().is_none_or(|d| d == r.digest)
            && id
                .image_tag
                .as_deref()
                .is_none_or(|t| r.tags.iter().any(|x| x == t))
    })
}

impl<S: Store> EcrService<S> {
    /// Checks the registry id and the repository name; returns the repository.
    fn lifecycle_repo(
        &self,
        scope: &Scope,
        registry: &Option<String>,
        name: &Option<String>,
    ) -> Result<RepoRecord, EcrError> {
        registry_id(scope, registry)?;
        let name = repository_name(name)?;
        self.existing(scope, name)
    }

    fn no_policy(&self, scope: &Scope, name: &str) -> EcrError {
        EcrError::LifecyclePolicyNotFound {
            name: name.to_string(),
            registry: scope.account.clone(),
        }
    }

    pub(crate) async fn put_lifecycle_policy(
        &self,
        scope: &Scope,
        input: PutLifecyclePolicyInput,
    ) -> Result<Value, EcrError> {
        registry_id(scope, &input.registry_id)?;
        let name = repository_name(&input.repository_name)?;
        let text = checked_policy(&input.lifecycle_policy_text)?.to_string();
        let stored = text.clone();
        self.registry
            .meta
            .update_repo(name, |r| r.lifecycle_policy = Some(stored.clone()))
            .await?
            .ok_or_else(|| self.not_found(scope, name))?;
        Ok(json!({
            "registryId": scope.account,
            "repositoryName": name,
            "lifecyclePolicyText": text,
        }))
    }

    pub(crate) fn get_lifecycle_policy(
        &self,
        scope: &Scope,
        input: RepositoryInput,
    ) -> Result<Value, EcrError> {
        let rec = self.lifecycle_repo(scope, &input.registry_id, &input.repository_name)?;
        let Some(text) = &rec.lifecycle_policy else {
            return Err(self.no_policy(scope, &rec.name));
        };
        let mut out = json!({
            "registryId": scope.account,
            "repositoryName": rec.name,
            "lifecyclePolicyText": text,
        });
        if let Some(at) = rec.lifecycle_evaluated_at {
            out["lastEvaluatedAt"] = at.into();
        }
        Ok(out)
    }

    pub(crate) async fn delete_lifecycle_policy(
        &self,
        scope: &Scope,
        input: RepositoryInput,
    ) -> Result<Value, EcrError> {
        let rec = self.lifecycle_repo(scope, &input.registry_id, &input.repository_name)?;
        let Some(text) = rec.lifecycle_policy else {
            return Err(self.no_policy(scope, &rec.name));
        };
        self.registry
            .meta
            .update_repo(&rec.name, |r| {
                r.lifecycle_policy = None;
                r.lifecycle_evaluated_at = None;
            })
            .await?
            .ok_or_else(|| self.not_found(scope, &rec.name))?;
        let mut out = json!({
            "registryId": scope.account,
            "repositoryName": rec.name,
            "lifecyclePolicyText": text,
        });
        if let Some(at) = rec.lifecycle_evaluated_at {
            out["lastEvaluatedAt"] = at.into();
        }
        Ok(out)
    }

    /// Evaluates the given policy (or the repository's) against the repository's images now, and keeps the result
    /// for GetLifecyclePolicyPreview.
    pub(crate) async fn start_lifecycle_policy_preview(
        &self,
        scope: &Scope,
        input: PutLifecyclePolicyInput,
    ) -> Result<Value, EcrError> {
        let rec = self.lifecycle_repo(scope, &input.registry_id, &input.repository_name)?;
        let text = match &input.lifecycle_policy_text {
            Some(_) => checked_policy(&input.lifecycle_policy_text)?.to_string(),
            None => rec
                .lifecycle_policy
                .clone()
                .ok_or_else(|| self.no_policy(scope, &rec.name))?,
        };
        let policy = parse_policy(&text).map_err(invalid_policy)?;
        let at = now();
        let images = current_images(&self.registry.meta, &rec.name);
        let results: Vec<PreviewResult> = evaluate(&policy, &images, at)
            .into_iter()
            .filter_map(|e| {
                let image = images.iter().find(|i| i.digest == e.digest)?;
                Some(PreviewResult {
                    digest: e.digest,
                    tags: image.tags.clone(),
                    pushed_at: image.pushed_at,
                    rule_priority: e.rule_priority,
                })
            })
            .collect();
        let preview = PreviewRecord {
            policy_text: text.clone(),
            evaluated_at: at,
            results,
        };
        self.registry
            .meta
            .update_repo(&rec.name, |r| r.lifecycle_preview = Some(preview.clone()))
            .await?
            .ok_or_else(|| self.not_found(scope, &rec.name))?;
        Ok(json!({
            "registryId": scope.account,
            "repositoryName": rec.name,
            "lifecyclePolicyText": text,
            "status": "COMPLETE",
        }))
    }

    pub(crate) fn get_lifecycle_policy_preview(
        &self,
        scope: &Scope,
        input: GetLifecyclePolicyPreviewInput,
    ) -> Result<Value, EcrError> {
        let rec = self.lifecycle_repo(scope, &input.registry_id, &input.repository_name)?;
        let Some(preview) = &rec.lifecycle_preview else {
            return Err(EcrError::LifecyclePolicyPreviewNotFound {
                name: rec.name.clone(),
                registry: scope.account.clone(),
            });
        };
        let status = Filter::status(&input.filter)?;
        let mut results: Vec<&PreviewResult> = preview
            .results
            .iter()
            .filter(|r| match status {
                TagStatus::Any => true,
                TagStatus::Tagged => !r.tags.is_empty(),
                TagStatus::Untagged => r.tags.is_empty(),
            })
            .collect();
        if let Some(ids) = &input.image_ids {
            if input.max_results.is_some() || input.next_token.is_some() {
                return Err(EcrError::InvalidParameter(
                    "maxResults and nextToken cannot be used with imageIds".into(),
                ));
            }
            if ids.is_empty() || ids.len() > 100 {
                return Err(EcrError::InvalidParameter(
                    "imageIds must hold 1 to 100 image ids".into(),
                ));
            }
            results.retain(|r| named_by(r, ids));
        }
        let page = paginate(
            results,
            input.next_token.as_deref(),
            input.max_results,
            100,
            100,
        )
        .map_err(EcrError::Request)?;
        let out: Vec<PreviewResultOut> = page
            .items
            .iter()
            .map(|r| PreviewResultOut {
                image_digest: &r.digest,
                image_tags: &r.tags,
                image_pushed_at: r.pushed_at,
                action: json!({ "type": "EXPIRE" }),
                applied_rule_priority: r.rule_priority,
            })
            .collect();
        let mut body = json!({
            "registryId": scope.account,
            "repositoryName": rec.name,
            "lifecyclePolicyText": preview.policy_text,
            "status": "COMPLETE",
            "previewResults": out.to_response(),
            "summary": { "expiringImageTotalCount": preview.results.len() },
        });
        if let Some(t) = page.next_token {
            body["nextToken"] = t.into();
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(digest: &str, tags: &[&str]) -> PreviewResult {
        PreviewResult {
            digest: digest.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pushed_at: 0,
            rule_priority: 1,
        }
    }

    fn id(d: Option<&str>, t: Option<&str>) -> ImageId {
        ImageId {
            image_digest: d.map(str::to_string),
            image_tag: t.map(str::to_string),
        }
    }

    #[test]
    fn preview_results_are_named_by_digest_or_tag() {
        let r = result("sha256:a", &["v1", "latest"]);
        assert!(named_by(&r, &[id(Some("sha256:a"), None)]));
        assert!(named_by(&r, &[id(None, Some("v1"))]));
        assert!(named_by(&r, &[id(Some("sha256:a"), Some("latest"))]));
        assert!(!named_by(&r, &[id(Some("sha256:a"), Some("v2"))]));
        assert!(!named_by(&r, &[id(None, None)]));
        assert!(named_by(
            &r,
            &[id(Some("sha256:b"), None), id(None, Some("v1"))]
        ));
    }

    #[test]
    fn policy_texts_are_bounded_and_checked() {
        assert!(checked_policy(&None).is_err());
        let short = Some(r#"{"rules":[]}"#.to_string());
        let Err(EcrError::InvalidParameter(m)) = checked_policy(&short) else {
            panic!("short policy accepted");
        };
        assert!(m.contains("length between 100 and 30720"), "{m}");
        let bad = Some(
            r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#
                .to_string(),
        );
        let Err(EcrError::InvalidParameter(m)) = checked_policy(&bad) else {
            panic!("bad policy accepted");
        };
        assert!(
            m.starts_with("Invalid parameter at 'LifecyclePolicyText'"),
            "{m}"
        );
        assert!(m.contains("tagPrefixList"), "{m}");
    }
}
