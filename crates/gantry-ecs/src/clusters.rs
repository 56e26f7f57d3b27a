//! CreateCluster, DescribeClusters, ListClusters, UpdateCluster(Settings), DeleteCluster.

use gantry_aws::{paginate, parse_input};
use gantry_model::ecs::{Cluster, ClusterSetting, ContainerInstance, Failure, Tag, Unsupported};
use gantry_model::Scope;
use gantry_store::{Store, Txn};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{invalid, reject_unsupported, EcsError, Result};
use crate::records::TaskRecord;
use crate::repo::{encode, Versioned};
use crate::{keys, refs, tags, EcsService};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct CreateClusterInput {
    cluster_name: Option<String>,
    tags: Vec<Tag>,
    settings: Vec<ClusterSetting>,
    configuration: Option<Value>,
    capacity_providers: Vec<String>,
    default_capacity_provider_strategy: Vec<gantry_model::ecs::CapacityProviderStrategyItem>,
    #[serde(flatten)]
    unsupported: Unsupported,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct DescribeClustersInput {
    clusters: Option<Vec<String>>,
    include: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ListInput {
    next_token: Option<String>,
    max_results: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ClusterInput {
    cluster: Option<String>,
    settings: Option<Vec<ClusterSetting>>,
    configuration: Option<Value>,
    #[serde(flatten)]
    unsupported: Unsupported,
}

fn validate_settings(settings: &[ClusterSetting]) -> Result<()> {
    for s in settings {
        match (s.name.as_deref(), s.value.as_deref()) {
            (Some("containerInsights"), Some("enabled" | "disabled" | "enhanced")) => {}
            (Some("containerInsights"), v) => {
                return Err(invalid(format!(
                    "Invalid value for containerInsights: {}",
                    v.unwrap_or("")
                )))
            }
            (n, _) => {
                return Err(invalid(format!(
                    "Invalid cluster setting name: {}",
                    n.unwrap_or("")
                )))
            }
        }
    }
    Ok(())
}

impl<S: Store> EcsService<S> {
    pub(crate) fn find_cluster(&self, scope: &Scope, name: &str) -> Result<Versioned<Cluster>> {
        self.repo
            .get::<Cluster>(&keys::cluster(&scope.region, name))
            .filter(|c| c.value.status == "ACTIVE")
            .ok_or(EcsError::ClusterNotFound)
    }

    pub(crate) fn cluster_tasks(&self, region: &str, cluster: &str) -> Vec<Versioned<TaskRecord>> {
        self.repo.list(&keys::tasks(region, cluster))
    }

    pub(crate) fn cluster_instances(
        &self,
        region: &str,
        cluster: &str,
    ) -> Vec<Versioned<ContainerInstance>> {
        self.repo.list(&keys::instances(region, cluster))
    }

    /// The cluster with its counts, as Describe shows it.
    pub(crate) fn cluster_view(
        &self,
        scope: &Scope,
        mut c: Cluster,
        include: &[String],
    ) -> Cluster {
        if c.status == "ACTIVE" {
            (c.running_tasks_count, c.pending_tasks_count) =
                self.index
                    .with(&scope.region, &c.cluster_name, |i| i.task_counts());
            c.registered_container_instances_count = self
                .cluster_instances(&scope.region, &c.cluster_name)
                .iter()
                .filter(|i| i.value.status != "INACTIVE")
                .count() as i64;
        }
        if !include.iter().any(|i| i == "TAGS") {
            c.tags.clear();
        }
        if !include.iter().any(|i| i == "SETTINGS") {
            c.settings.clear();
        }
        c
    }

    /// Creates the cluster when it does not exist (used by CreateCluster and by agents registering into `default`).
    pub(crate) async fn ensure_cluster(
        &self,
        scope: &Scope,
        name: &str,
        defaults: Option<ClusterDefaults>,
    ) -> Result<Cluster> {
        let key = keys::cluster(&scope.region, name);
        loop {
            let existing = self.repo.get::<Cluster>(&key);
            if let Some(c) = existing.as_ref().filter(|c| c.value.status == "ACTIVE") {
                return Ok(c.value.clone());
            }
            let ClusterDefaults {
                tags,
                settings,
                configuration,
                capacity_providers,
                default_capacity_provider_strategy,
            } = defaults.clone().unwrap_or_default();
            let cluster = Cluster {
                cluster_arn: scope.arn("ecs", &format!("cluster/{name}")),
                cluster_name: name.to_string(),
                status: "ACTIVE".into(),
                settings: if settings.is_empty() {
                    vec![ClusterSetting {
                        name: Some("containerInsights".into()),
                        value: Some("disabled".into()),
                    }]
                } else {
                    settings
                },
                tags,
                configuration,
                capacity_providers,
                default_capacity_provider_strategy,
                ..Default::default()
            };
            let guard = match &existing {
                Some(e) => e.unchanged(),
                None => gantry_store::Compare::absent(&key),
            };
            if self
                .repo
                .commit(Txn::new().compare(guard).put(&key, encode(&cluster)))
                .await?
            {
                return Ok(cluster);
            }
        }
    }

    pub(crate) async fn create_cluster(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let input: CreateClusterInput = parse_input(body)?;
        reject_unsupported("", &input.unsupported)?;
        crate::capacity_providers::check_providers(&input.capacity_providers)?;
        crate::capacity_providers::check_strategy(
            &input.default_capacity_provider_strategy,
            &input.capacity_providers,
        )?;
        let name = refs::cluster_name(Some(input.cluster_name.as_deref().unwrap_or("default")))?;
        validate_settings(&input.settings)?;
        tags::validate(&input.tags)?;
        let cluster = self
            .ensure_cluster(
                scope,
                &name,
                Some(ClusterDefaults {
                    tags: input.tags,
                    settings: input.settings,
                    configuration: input.configuration,
                    capacity_providers: input.capacity_providers,
                    default_capacity_provider_strategy: input.default_capacity_provider_strategy,
                }),
            )
            .await?;
        let view = self.cluster_view(scope, cluster, &["TAGS".into(), "SETTINGS".into()]);
        Ok(json!({ "cluster": gantry_model::json::to_value(&view) }))
    }

    pub(crate) fn describe_clusters(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let input: DescribeClustersInput = parse_input(body)?;
        let names = input.clusters.unwrap_or_else(|| vec!["default".into()]);
        if names.len() > 100 {
            return Err(invalid("clusters can have at most 100 items"));
        }
        let (mut clusters, mut failures) = (Vec::new(), Vec::new());
        for reference in &names {
            let found = refs::cluster_name(Some(reference))
                .ok()
                .and_then(|n| self.repo.get::<Cluster>(&keys::cluster(&scope.region, &n)));
            match found {
                Some(c) => clusters.push(gantry_model::json::to_value(&self.cluster_view(
                    scope,
                    c.value,
                    &input.include,
                ))),
                None => failures.push(Failure::missing(cluster_arn_for(scope, reference))),
            }
        }
        Ok(json!({ "clusters": clusters, "failures": gantry_model::json::to_value(&failures) }))
    }

    pub(crate) fn list_clusters(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let input: ListInput = parse_input(body)?;
        let arns: Vec<String> = self
            .repo
            .list::<Cluster>(&keys::clusters(&scope.region))
            .into_iter()
            .filter(|c| c.value.status == "ACTIVE")
            .map(|c| c.value.cluster_arn)
            .collect();
        let page = paginate(
            arns,
            input.next_token.as_deref(),
            input.max_results,
            100,
            100,
        )?;
        Ok(json!({ "clusterArns": page.items, "nextToken": page.next_token }).without_nulls())
    }

    pub(crate) async fn update_cluster(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let input: ClusterInput = parse_input(body)?;
        reject_unsupported("", &input.unsupported)?;
        let name = refs::cluster_name(Some(gantry_aws::required(&input.cluster, "cluster")?))?;
        if let Some(s) = &input.settings {
            validate_settings(s)?;
        }
        loop {
            let mut current = self.find_cluster(scope, &name)?;
            let guard = current.unchanged();
            if let Some(settings) = &input.settings {
                for s in settings {
                    match current.value.settings.iter_mut().find(|e| e.name == s.name) {
                        Some(e) => e.value = s.value.clone(),
                        None => current.value.settings.push(s.clone()),
                    }
                }
            }
            if input.configuration.is_some() {
                current.value.configuration = input.configuration.clone();
            }
            let key = keys::cluster(&scope.region, &name);
            if self
                .repo
                .commit(Txn::new().compare(guard).put(key, encode(&current.value)))
                .await?
            {
                let view = self.cluster_view(scope, current.value, &["SETTINGS".into()]);
                return Ok(json!({ "cluster": gantry_model::json::to_value(&view) }));
            }
        }
    }

    pub(crate) async fn delete_cluster(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let input: ClusterInput = parse_input(body)?;
        let name = refs::cluster_name(Some(gantry_aws::required(&input.cluster, "cluster")?))?;
        let _placing = self.placement.lock().await;
        loop {
            let current = self.find_cluster(scope, &name)?;
            if self
                .cluster_tasks(&scope.region, &name)
                .iter()
                .any(|t| !t.value.task.is_stopped())
            {
                return Err(EcsError::ClusterContainsTasks);
            }
            if self
                .cluster_instances(&scope.region, &name)
                .iter()
                .any(|i| i.value.status != "INACTIVE")
            {
                return Err(EcsError::ClusterContainsContainerInstances);
            }
            let mut cluster = current.value.clone();
            cluster.status = "INACTIVE".into();
            // Stopped tasks and deregistered instances go with the cluster.
            let txn = Txn::new()
                .compare(current.unchanged())
                .put(keys::cluster(&scope.region, &name), encode(&cluster))
                .delete_prefix(keys::tasks(&scope.region, &name))
                .delete_prefix(keys::instances(&scope.region, &name));
            if self.repo.commit(txn).await? {
                let view = self.cluster_view(scope, cluster, &[]);
                return Ok(json!({ "cluster": gantry_model::json::to_value(&view) }));
            }
        }
    }
}

/// What a new cluster starts with.
#[derive(Clone, Default)]
pub(crate) struct ClusterDefaults {
    pub tags: Vec<Tag>,
    pub settings: Vec<ClusterSetting>,
    pub configuration: Option<Value>,
    pub capacity_providers: Vec<String>,
    pub default_capacity_provider_strategy: Vec<gantry_model::ecs::CapacityProviderStrategyItem>,
}

fn cluster_arn_for(scope: &Scope, reference: &str) -> String {
    if reference.starts_with("arn:") {
        reference.to_string()
    } else {
        scope.arn("ecs", &format!("cluster/{reference}"))
    }
}

/// Dropping the `null`s that optional members produce in `json!`.
pub(crate) trait WithoutNulls {
    fn without_nulls(self) -> Value;
}

impl WithoutNulls for Value {
    fn without_nulls(mut self) -> Value {
        gantry_model::json::strip_nulls(&mut self);
        self
    }
}
