//! DescribeContainerInstances, ListContainerInstances, DeregisterContainerInstance, UpdateContainerInstancesState.

use gantry_aws::{paginate, parse_input};
use gantry_model::ecs::{ContainerInstance, Failure};
use gantry_model::Scope;
use gantry_store::{Store, Txn};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::clusters::WithoutNulls;
use crate::error::{invalid, Result};
use crate::records::TaskRecord;
use crate::repo::{encode, Versioned};
use crate::{keys, placement, refs, resources, EcsService};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct InstancesInput {
    cluster: Option<String>,
    container_instance: Option<String>,
    container_instances: Option<Vec<String>>,
    include: Vec<String>,
    force: Option<bool>,
    status: Option<String>,
    filter: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

impl<S: Store> EcsService<S> {
    fn find_instance(
        &self,
        scope: &Scope,
        cluster: &str,
        reference: &str,
    ) -> Option<Versioned<ContainerInstance>> {
        let (c, id) = refs::member_id(reference, "container-instance", cluster)?;
        if c != cluster {
            return None;
        }
        self.repo.get(&keys::instance(&scope.region, cluster, &id))
    }

    pub(crate) fn instance_view(
        &self,
        ci: &ContainerInstance,
        tasks: &[TaskRecord],
        with_tags: bool,
    ) -> Value {
        let mut view = resources::describe_instance(
            ci,
            tasks.iter(),
            self.is_connected(&ci.container_instance_arn),
        );
        if !with_tags {
            view.tags.clear();
        }
        gantry_model::json::to_value(&view)
    }

    /// The tasks on one instance that hold resources, read through the index: a task placement has put there
    /// and not committed yet counts (it is in the index), and no other task of the cluster is decoded.
    fn instance_tasks(&self, scope: &Scope, cluster: &str, arn: &str) -> (usize, Vec<TaskRecord>) {
        let ids = self.index.with(&scope.region, cluster, |c| c.tasks_on(arn));
        let records = ids
            .iter()
            .filter_map(|id| {
                self.repo
                    .get::<TaskRecord>(&keys::task(&scope.region, cluster, id))
            })
            .map(|t| t.value)
            .filter(TaskRecord::holds_resources)
            .collect();
        (ids.len(), records)
    }

    fn task_records(&self, scope: &Scope, cluster: &str) -> Vec<TaskRecord> {
        self.cluster_tasks(&scope.region, cluster)
            .into_iter()
            .map(|t| t.value)
            .collect()
    }

    pub(crate) fn describe_container_instances(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let input: InstancesInput = parse_input(body)?;
        let cluster = refs::cluster_name(input.cluster.as_deref())?;
        self.find_cluster(scope, &cluster)?;
        let references = input.container_instances.unwrap_or_default();
        if references.is_empty() || references.len() > 100 {
            return Err(invalid(
                "containerInstances must list between 1 and 100 container instances",
            ));
        }
        let with_tags = input.include.iter().any(|i| i == "TAGS");
        let (mut found, mut failures) = (Vec::new(), Vec::new());
        for r in &references {
            match self.find_instance(scope, &cluster, r) {
                Some(ci) => {
                    let arn = &ci.value.container_instance_arn;
                    let (_, tasks) = self.instance_tasks(scope, &cluster, arn);
                    found.push(self.instance_view(&ci.value, &tasks, with_tags));
                }
                None => failures.push(Failure::missing(r.clone())),
            }
        }
        Ok(
            json!({ "containerInstances": found, "failures": gantry_model::json::to_value(&failures) }),
        )
    }

    pub(crate) fn list_container_instances(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let input: InstancesInput = parse_input(body)?;
        let cluster = refs::cluster_name(input.cluster.as_deref())?;
        self.find_cluster(scope, &cluster)?;
        let filter = match input.filter.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(f) => Some(
                gantry_scheduler::query::parse(f)
                    .map_err(|e| invalid(format!("Invalid filter: {e}")))?,
            ),
        };
        let wanted: Vec<&str> = match input.status.as_deref() {
            None => vec!["ACTIVE", "DRAINING"],
            Some(
                s @ ("ACTIVE"
                | "DRAINING"
                | "REGISTERING"
                | "DEREGISTERING"
                | "REGISTRATION_FAILED"),
            ) => vec![s],
            Some(other) => return Err(invalid(format!("Invalid status: {other}"))),
        };
        let instances: Vec<ContainerInstance> = self
            .cluster_instances(&scope.region, &cluster)
            .into_iter()
            .map(|i| i.value)
            .filter(|i| wanted.contains(&i.status.as_str()))
            .collect();
        let arns: Vec<String> = match &filter {
            None => instances
                .into_iter()
                .map(|i| i.container_instance_arn)
                .collect(),
            Some(expr) => {
                // The filter sees what placement sees: task counts and groups included.
                let refs: Vec<&ContainerInstance> = instances.iter().collect();
                let tasks = self.task_records(scope, &cluster);
                placement::candidates(&refs, &tasks, |arn| self.is_connected(arn))
                    .into_iter()
                    .filter(|c| expr.matches(&c.facts))
                    .map(|c| c.id)
                    .collect()
            }
        };
        let page = paginate(
            arns,
            input.next_token.as_deref(),
            input.max_results,
            100,
            100,
        )?;
        Ok(
            json!({ "containerInstanceArns": page.items, "nextToken": page.next_token })
                .without_nulls(),
        )
    }

    pub(crate) async fn deregister_container_instance(
        &self,
        scope: &Scope,
        body: &[u8],
    ) -> Result<Value> {
        let input: InstancesInput = parse_input(body)?;
        let reference = gantry_aws::required(&input.container_instance, "containerInstance")?;
        let cluster = refs::cluster_name(input.cluster.as_deref())?;
        self.find_cluster(scope, &cluster)?;
        let _placing = self.placement.lock().await;
        loop {
            let current = self
                .find_instance(scope, &cluster, reference)
                .filter(|i| i.value.status != "INACTIVE")
                .ok_or_else(|| invalid("The referenced container instance was not found."))?;
            let arn = &current.value.container_instance_arn;
            // Placement records a task in the index before it commits it, and commits after releasing the
            // placement lock: the index, not the store, knows every task headed for the instance.
            let (busy, tasks) = self.instance_tasks(scope, &cluster, arn);
            if busy > 0 && !input.force.unwrap_or(false) {
                return Err(invalid(
                    "Found running tasks on the instance. Stop them first or use force.",
                ));
            }
            let mut ci = current.value.clone();
            ci.status = "INACTIVE".into();
            ci.version += 1;
            let key = keys::instance(&scope.region, &cluster, ci.id());
            if self
                .repo
                .commit(
                    Txn::new()
                        .compare(current.unchanged())
                        .put(key, encode(&ci)),
                )
                .await?
            {
                return Ok(json!({ "containerInstance": self.instance_view(&ci, &tasks, true) }));
            }
        }
    }

    pub(crate) async fn update_container_instances_state(
        &self,
        scope: &Scope,
        body: &[u8],
    ) -> Result<Value> {
        let input: InstancesInput = parse_input(body)?;
        let cluster = refs::cluster_name(input.cluster.as_deref())?;
        self.find_cluster(scope, &cluster)?;
        let references = input.container_instances.unwrap_or_default();
        if references.is_empty() || references.len() > 10 {
            return Err(invalid(
                "containerInstances must list between 1 and 10 container instances",
            ));
        }
        let status = match input.status.as_deref() {
            Some(s @ ("ACTIVE" | "DRAINING")) => s.to_string(),
            Some(other) => {
                return Err(invalid(format!(
                    "Container instances can only be set to ACTIVE or DRAINING, not {other}"
                )))
            }
            None => return Err(invalid("status is required")),
        };
        let (mut updated, mut failures) = (Vec::new(), Vec::new());
        for r in &references {
            loop {
                let Some(current) = self
                    .find_instance(scope, &cluster, r)
                    .filter(|i| i.value.status != "INACTIVE")
                else {
                    failures.push(Failure::missing(r.clone()));
                    break;
                };
                let mut ci = current.value.clone();
                if ci.status != status {
                    ci.status = status.clone();
                    ci.version += 1;
                }
                let key = keys::instance(&scope.region, &cluster, ci.id());
                if self
                    .repo
                    .commit(
                        Txn::new()
                            .compare(current.unchanged())
                            .put(key, encode(&ci)),
                    )
                    .await?
                {
                    updated.push(ci);
                    break;
                }
            }
        }
        let tasks = self.task_records(scope, &cluster);
        let views: Vec<Value> = updated
            .iter()
            .map(|ci| self.instance_view(ci, &tasks, false))
            .collect();
        Ok(
            json!({ "containerInstances": views, "failures": gantry_model::json::to_value(&failures) }),
        )
    }
}

/// The attribute that says where an instance's published host ports are reached, for load balancers'
/// `instance` targets (default: the loopback, where a host's own containers' published ports are).
pub const HOST_ADDRESS_ATTRIBUTE: &str = "gantry.host-address";

impl<S: Store> EcsService<S> {
    /// Where the container instance with this EC2 instance id serves its published ports (a DRAINING one's tasks
    /// still serve until they are replaced).
    pub fn instance_address(
        &self,
        region: &str,
        ec2_instance_id: &str,
    ) -> Option<std::net::IpAddr> {
        let prefix = format!("/ecs/{region}/instances/");
        self.repo
            .list::<ContainerInstance>(&prefix)
            .into_iter()
            .map(|ci| ci.value)
            .find(|ci| {
                ci.status != "INACTIVE" && ci.ec2_instance_id.as_deref() == Some(ec2_instance_id)
            })
            .map(|ci| {
                ci.attributes
                    .iter()
                    .find(|a| a.name == HOST_ADDRESS_ATTRIBUTE)
                    .and_then(|a| a.value.as_deref()?.parse().ok())
                    .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]))
            })
    }
}
