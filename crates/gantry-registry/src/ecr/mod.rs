//! The ECR API (`AmazonEC2ContainerRegistry_V20150921`, JSON 1.1) over the registry's metadata: repositories, images
//! (a manifest with its tags), resource tags, login tokens, lifecycle and repository policies. Serving it makes the
//! registry follow ECR's rules: a push only goes into a repository created beforehand, and an immutable repository
//! refuses to move a tag.

mod auth;
mod errors;
mod images;
mod lifecycle;
mod policy;
mod repositories;
mod wire;

pub use auth::TOKEN_LIFETIME_SECS;
pub use errors::EcrError;

use std::sync::Arc;

use gantry_aws::{AwsError, JsonService, RequestContext, ServiceFuture};
use gantry_model::Scope;
use gantry_store::Store;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Registry;

/// Where clients reach the registry.
#[derive(Debug, Clone)]
pub struct EcrConfig {
    /// The port the server listens on: repository URIs are `localhost:{port}/{name}`.
    pub port: u16,
}

/// The ECR API of a [`Registry`].
pub struct EcrService<S: Store> {
    pub(crate) registry: Arc<Registry<S>>,
    pub(crate) config: EcrConfig,
}

impl<S: Store> EcrService<S> {
    /// The ECR API over `registry`. From now on the registry follows ECR's rules: it refuses pushes to repositories
    /// not created beforehand (`NAME_UNKNOWN`) and requests without a token from GetAuthorizationToken (401).
    pub fn new(registry: Arc<Registry<S>>, config: EcrConfig) -> Arc<EcrService<S>> {
        registry.meta.require_explicit_repos();
        registry.require_auth();
        Arc::new(EcrService { registry, config })
    }

    /// `localhost:{port}`: the registry host in repository URIs and `docker login`.
    pub(crate) fn host(&self) -> String {
        format!("localhost:{}", self.config.port)
    }

    async fn dispatch(
        &self,
        scope: &Scope,
        operation: &str,
        body: &[u8],
    ) -> Result<Value, EcrError> {
        match operation {
            "CreateRepository" => self.create_repository(scope, input(body)?).await,
            "DescribeRepositories" => self.describe_repositories(scope, input(body)?),
            "DeleteRepository" => self.delete_repository(scope, input(body)?).await,
            "PutImageTagMutability" => self.put_image_tag_mutability(scope, input(body)?).await,
            "TagResource" => self.tag_resource(scope, input(body)?).await,
            "UntagResource" => self.untag_resource(scope, input(body)?).await,
            "ListTagsForResource" => self.list_tags_for_resource(scope, input(body)?),
            "ListImages" => self.list_images(scope, input(body)?),
            "DescribeImages" => self.describe_images(scope, input(body)?),
            "BatchGetImage" => self.batch_get_image(scope, input(body)?),
            "BatchDeleteImage" => self.batch_delete_image(scope, input(body)?).await,
            "PutImage" => self.put_image(scope, input(body)?).await,
            "GetAuthorizationToken" => self.get_authorization_token(input(body)?),
            "PutLifecyclePolicy" => self.put_lifecycle_policy(scope, input(body)?).await,
            "GetLifecyclePolicy" => self.get_lifecycle_policy(scope, input(body)?),
            "DeleteLifecyclePolicy" => self.delete_lifecycle_policy(scope, input(body)?).await,
            "StartLifecyclePolicyPreview" => {
                self.start_lifecycle_policy_preview(scope, input(body)?)
                    .await
            }
            "GetLifecyclePolicyPreview" => self.get_lifecycle_policy_preview(scope, input(body)?),
            "SetRepositoryPolicy" => self.set_repository_policy(scope, input(body)?).await,
            "GetRepositoryPolicy" => self.get_repository_policy(scope, input(body)?),
            "DeleteRepositoryPolicy" => self.delete_repository_policy(scope, input(body)?).await,
            other => Err(EcrError::UnknownOperation(other.to_string())),
        }
    }
}

fn input<T: DeserializeOwned>(body: &[u8]) -> Result<T, EcrError> {
    gantry_aws::parse_input(body).map_err(EcrError::Request)
}

impl<S: Store> JsonService for EcrService<S> {
    fn target_prefix(&self) -> &'static str {
        "AmazonEC2ContainerRegistry_V20150921"
    }

    fn call<'a>(
        &'a self,
        ctx: &'a RequestContext,
        operation: &'a str,
        body: &'a [u8],
    ) -> ServiceFuture<'a> {
        Box::pin(async move {
            self.dispatch(&ctx.scope, operation, body)
                .await
                .map_err(AwsError::from)
        })
    }
}
