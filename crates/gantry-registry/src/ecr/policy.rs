//! Repository policies: SetRepositoryPolicy, GetRepositoryPolicy, DeleteRepositoryPolicy. The text is checked to
//! be a JSON object, stored and returned as given; it is not enforced until IAM evaluation lands.

use gantry_model::Scope;
use gantry_store::Store;
use serde::Deserialize;
use serde_json::{json, Value};

use super::wire::{registry_id, repository_name};
use super::{EcrError, EcrService};

/// `policyText` length bound of the model.
const MAX_POLICY: usize = 10240;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetRepositoryPolicyInput {
    registry_id: Option<String>,
    repository_name: Option<String>,
    policy_text: Option<String>,
    /// Accepted; ECR uses it to skip a lock-out check that Gantry does not make.
    #[serde(default)]
    #[allow(dead_code)]
    force: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryPolicyInput {
    registry_id: Option<String>,
    repository_name: Option<String>,
}

/// A policy text ECR would take: present, at most 10240 characters, a JSON object.
fn checked_policy(text: &Option<String>) -> Result<&str, EcrError> {
    let Some(text) = text.as_deref() else {
        return Err(EcrError::InvalidParameter(
            "Missing required parameter policyText".into(),
        ));
    };
    let len = text.chars().count();
    if len > MAX_POLICY {
        return Err(EcrError::InvalidParameter(format!(
            "Invalid parameter at 'policyText' failed to satisfy constraint: 'Member must have length less than or equal to {MAX_POLICY}' (got {len} characters)"
        )));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(_)) => Ok(text),
        Ok(_) => Err(EcrError::InvalidParameter(
            "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided': the policy must be a JSON object".into(),
        )),
        Err(e) => Err(EcrError::InvalidParameter(format!(
            "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided': not valid JSON: {e}"
        ))),
    }
}

impl<S: Store> EcrService<S> {
    fn no_repository_policy(&self, scope: &Scope, name: &str) -> EcrError {
        EcrError::RepositoryPolicyNotFound {
            name: name.to_string(),
            registry: scope.account.clone(),
        }
    }

    pub(crate) async fn set_repository_policy(
        &self,
        scope: &Scope,
        input: SetRepositoryPolicyInput,
    ) -> Result<Value, EcrError> {
        registry_id(scope, &input.registry_id)?;
        let name = repository_name(&input.repository_name)?;
        let text = checked_policy(&input.policy_text)?.to_string();
        let stored = text.clone();
        self.registry
            .meta
            .update_repo(name, |r| r.repository_policy = Some(stored.clone()))
            .await?
            .ok_or_else(|| self.not_found(scope, name))?;
        Ok(json!({ "registryId": scope.account, "repositoryName": name, "policyText": text }))
    }

    pub(crate) fn get_repository_policy(
        &self,
        scope: &Scope,
        input: RepositoryPolicyInput,
    ) -> Result<Value, EcrError> {
        registry_id(scope, &input.registry_id)?;
        let name = repository_name(&input.repository_name)?;
        let text = self
            .existing(scope, name)?
            .repository_policy
            .ok_or_else(|| self.no_repository_policy(scope, name))?;
        Ok(json!({ "registryId": scope.account, "repositoryName": name, "policyText": text }))
    }

    pub(crate) async fn delete_repository_policy(
        &self,
        scope: &Scope,
        input: RepositoryPolicyInput,
    ) -> Result<Value, EcrError> {
        registry_id(scope, &input.registry_id)?;
        let name = repository_name(&input.repository_name)?;
        let text = self
            .existing(scope, name)?
            .repository_policy
            .ok_or_else(|| self.no_repository_policy(scope, name))?;
        self.registry
            .meta
            .update_repo(name, |r| r.repository_policy = None)
            .await?
            .ok_or_else(|| self.not_found(scope, name))?;
        Ok(json!({ "registryId": scope.account, "repositoryName": name, "policyText": text }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_texts_must_be_json_objects() {
        let ok = Some(r#"{"Version":"2012-10-17","Statement":[]}"#.to_string());
        assert_eq!(checked_policy(&ok).unwrap(), ok.as_deref().unwrap());
        for bad in ["not json", "[]", "\"s\"", ""] {
            assert!(checked_policy(&Some(bad.to_string())).is_err(), "{bad}");
        }
        assert!(checked_policy(&None).is_err());
        let long = Some(format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_POLICY)));
        assert!(checked_policy(&long).is_err());
    }
}
