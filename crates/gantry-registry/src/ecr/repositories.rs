//! Repositories: create, describe, delete, tag mutability, and their resource tags.

use std::collections::BTreeMap;

use gantry_aws::{paginate, ResponseExt};
use gantry_model::Scope;
use gantry_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::wire::{
    immutable, merge_tags, mutability, name_from_arn, registry_id, repository_arn, repository_name,
    tag_list, Tag,
};
use super::{EcrError, EcrService};
use crate::meta::{RepoDeletion, RepoRecord};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRepositoryInput {
    registry_id: Option<String>,
    repository_name: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    image_tag_mutability: Option<String>,
    image_scanning_configuration: Option<ScanningConfiguration>,
    encryption_configuration: Option<EncryptionConfiguration>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct ScanningConfiguration {
    #[serde(default)]
    scan_on_push: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EncryptionConfiguration {
    encryption_type: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Repository {
    repository_arn: String,
    registry_id: String,
    repository_name: String,
    repository_uri: String,
    created_at: u64,
    image_tag_mutability: &'static str,
    image_scanning_configuration: ScanningConfiguration,
    encryption_configuration: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeRepositoriesInput {
    registry_id: Option<String>,
    repository_names: Option<Vec<String>>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteRepositoryInput {
    registry_id: Option<String>,
    repository_name: Option<String>,
    #[serde(default)]
    force: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutImageTagMutabilityInput {
    registry_id: Option<String>,
    repository_name: Option<String>,
    image_tag_mutability: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagResourceInput {
    resource_arn: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntagResourceInput {
    resource_arn: Option<String>,
    #[serde(default)]
    tag_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsForResourceInput {
    resource_arn: Option<String>,
}

impl<S: Store> EcrService<S> {
    fn repository(&self, scope: &Scope, rec: &RepoRecord) -> Repository {
        Repository {
            repository_arn: repository_arn(scope, &rec.name),
            registry_id: scope.account.clone(),
            repository_name: rec.name.clone(),
            repository_uri: format!("{}/{}", self.host(), rec.name),
            created_at: rec.created_at,
            image_tag_mutability: mutability(rec),
            image_scanning_configuration: ScanningConfiguration {
                scan_on_push: rec.scan_on_push,
            },
            encryption_configuration: json!({ "encryptionType": "AES256" }),
        }
    }

    pub(crate) fn not_found(&self, scope: &Scope, name: &str) -> EcrError {
        EcrError::RepositoryNotFound {
            name: name.to_string(),
            registry: scope.account.clone(),
        }
    }

    /// The repository, or `RepositoryNotFoundException`.
    pub(crate) fn existing(&self, scope: &Scope, name: &str) -> Result<RepoRecord, EcrError> {
        self.registry
            .meta
            .repo(name)
            .map(|(_, r)| r)
            .ok_or_else(|| self.not_found(scope, name))
    }

    pub(crate) async fn create_repository(
        &self,
        scope: &Scope,
        input: CreateRepositoryInput,
    ) -> Result<Value, EcrError> {
        registry_id(scope, &input.registry_id)?;
        let name = repository_name(&input.repository_name)?;
        let mut rec = RepoRecord::new(name);
        rec.immutable_tags = immutable(&input.image_tag_mutability, false)?;
        rec.scan_on_push = input
            .image_scanning_configuration
            .is_some_and(|c| c.scan_on_push);
        if let Some(enc) = &input.encryption_configuration {
            match enc.encryption_type.as_deref() {
                None | Some("AES256") => {}
                Some(other) => {
                    return Err(EcrError::InvalidParameter(format!(
                        "Invalid parameter at 'encryptionConfiguration.encryptionType': Gantry supports AES256 only (got '{other}')"
                    )))
                }
            }
        }
        merge_tags(&mut rec.tags, &input.tags)?;
        if !self.registry.meta.create_repo(&rec).await? {
            return Err(EcrError::RepositoryAlreadyExists {
                name: name.to_string(),
                registry: scope.account.clone(),
            });
        }
        Ok(json!({ "repository": self.repository(scope, &rec).to_response() }))
    }

    pub(crate) fn describe_repositories(
        &self,
        scope: &Scope,
        input: DescribeRepositoriesInput,
    ) -> Result<Value, EcrError> {
        registry_id(scope, &input.registry_id)?;
        if let Some(names) = &input.repository_names {
            if input.max_results.is_some() || input.next_token.is_some() {
                return Err(EcrError::InvalidParameter(
                    "maxResults and nextToken cannot be used with repositoryNames".into(),
                ));
            }
            if names.is_empty() || names.len() > 100 {
                return Err(EcrError::InvalidParameter(
                    "repositoryNames must hold 1 to 100 names".into(),
                ));
            }
            let mut out = Vec::new();
            for name in names {
                let name = Some(name.clone());
                let name = repository_name(&name)?;
                out.push(self.repository(scope, &self.existing(scope, name)?));
            }
            return Ok(json!({ "repositories": out.to_response() }));
        }
        let page = paginate(
            self.registry.meta.repos(),
            input.next_token.as_deref(),
            input.max_results,
            100,
            1000,
        )
        .map_err(EcrError::Request)?;
        let repos: Vec<Repository> = page
            .items
            .iter()
            .map(|r| self.repository(scope, r))
            .collect();
        let mut out = json!({ "repositories": repos.to_response() });
        if let Some(t) = page.next_token {
            out["nextToken"] = t.into();
        }
        Ok(out)
    }

    pub(crate) async fn delete_repository(
        &self,
        scope: &Scope,
        input: DeleteRepositoryInput,
    ) -> Result<Value, EcrError> {
        registry_id(scope, &input.registry_id)?;
        let name = repository_name(&input.repository_name)?;
        match self.registry.meta.delete_repo(name, input.force).await? {
            RepoDeletion::Deleted(rec) => {
                Ok(json!({ "repository": self.repository(scope, &rec).to_response() }))
            }
            RepoDeletion::NotFound => Err(self.not_found(scope, name)),
            RepoDeletion::NotEmpty => Err(EcrError::RepositoryNotEmpty {
                name: name.to_string(),
                registry: scope.account.clone(),
            }),
        }
    }

    pub(crate) async fn put_image_tag_mutability(
        &self,
        scope: &Scope,
        input: PutImageTagMutabilityInput,
    ) -> Result<Value, EcrError> {
        registry_id(scope, &input.registry_id)?;
        let name = repository_name(&input.repository_name)?;
        if input.image_tag_mutability.is_none() {
            return Err(EcrError::InvalidParameter(
                "Missing required parameter imageTagMutability".into(),
            ));
        }
        let value = immutable(&input.image_tag_mutability, false)?;
        let rec = self
            .registry
            .meta
            .update_repo(name, |r| r.immutable_tags = value)
            .await?
            .ok_or_else(|| self.not_found(scope, name))?;
        Ok(json!({
            "registryId": scope.account,
            "repositoryName": rec.name,
            "imageTagMutability": mutability(&rec),
        }))
    }

    pub(crate) async fn tag_resource(
        &self,
        scope: &Scope,
        input: TagResourceInput,
    ) -> Result<Value, EcrError> {
        let arn = input.resource_arn.unwrap_or_default();
        let name = name_from_arn(scope, &arn)?;
        // Checked on the current tags first, so that a bad request changes nothing.
        let mut check = self.existing(scope, name)?.tags;
        merge_tags(&mut check, &input.tags)?;
        let tags = input.tags;
        self.registry
            .meta
            .update_repo(name, |r| {
                for t in &tags {
                    let (k, v) = (t.key.clone(), t.value.clone());
                    r.tags.insert(k.unwrap_or_default(), v.unwrap_or_default());
                }
            })
            .await?
            .ok_or_else(|| self.not_found(scope, name))?;
        Ok(json!({}))
    }

    pub(crate) async fn untag_resource(
        &self,
        scope: &Scope,
        input: UntagResourceInput,
    ) -> Result<Value, EcrError> {
        let arn = input.resource_arn.unwrap_or_default();
        let name = name_from_arn(scope, &arn)?;
        let keys = input.tag_keys;
        self.registry
            .meta
            .update_repo(name, |r| r.tags.retain(|k, _| !keys.contains(k)))
            .await?
            .ok_or_else(|| self.not_found(scope, name))?;
        Ok(json!({}))
    }

    pub(crate) fn list_tags_for_resource(
        &self,
        scope: &Scope,
        input: ListTagsForResourceInput,
    ) -> Result<Value, EcrError> {
        let arn = input.resource_arn.unwrap_or_default();
        let name = name_from_arn(scope, &arn)?;
        let tags: BTreeMap<String, String> = self.existing(scope, name)?.tags;
        Ok(json!({ "tags": tag_list(&tags).to_response() }))
    }
}
