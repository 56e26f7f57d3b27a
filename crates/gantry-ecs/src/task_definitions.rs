//! RegisterTaskDefinition, DescribeTaskDefinition, ListTaskDefinitions, ListTaskDefinitionFamilies,
//! DeregisterTaskDefinition, DeleteTaskDefinitions.

use gantry_aws::{paginate, parse_input};
use gantry_model::ecs::{
    ContainerDefinition, EphemeralStorage, Failure, PlacementConstraint, RuntimePlatform, Tag,
    TaskDefinition, Unsupported, Volume,
};
use gantry_model::{time, Scope};
use gantry_store::{Compare, Store, Txn};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::clusters::WithoutNulls;
use crate::error::{invalid, reject_unsupported, EcsError, Result};
use crate::records::TaskDefinitionRecord;
use crate::repo::{encode, Versioned};
use crate::{keys, refs, tags, validate, EcsService};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RegisterInput {
    family: Option<String>,
    task_role_arn: Option<String>,
    execution_role_arn: Option<String>,
    network_mode: Option<String>,
    container_definitions: Option<Vec<ContainerDefinition>>,
    volumes: Vec<Volume>,
    placement_constraints: Vec<PlacementConstraint>,
    requires_compatibilities: Option<Vec<String>>,
    cpu: Option<String>,
    memory: Option<String>,
    tags: Vec<Tag>,
    pid_mode: Option<String>,
    ipc_mode: Option<String>,
    runtime_platform: Option<RuntimePlatform>,
    ephemeral_storage: Option<EphemeralStorage>,
    #[serde(flatten)]
    unsupported: Unsupported,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RefInput {
    task_definition: Option<String>,
    include: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ListInput {
    family_prefix: Option<String>,
    status: Option<String>,
    sort: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct DeleteInput {
    task_definitions: Option<Vec<String>>,
}

fn not_found() -> EcsError {
    EcsError::Client("Unable to describe task definition.".into())
}

fn describe_output(record: TaskDefinitionRecord, include_tags: bool) -> Value {
    let mut out =
        json!({ "taskDefinition": gantry_model::json::to_value(&record.task_definition) });
    if include_tags {
        out["tags"] = gantry_model::json::to_value(&record.tags);
    }
    out
}

impl<S: Store> EcsService<S> {
    /// The revision a reference names: the given one, or the family's latest ACTIVE one.
    pub(crate) fn resolve_task_definition(
        &self,
        scope: &Scope,
        reference: &str,
    ) -> Result<Versioned<TaskDefinitionRecord>> {
        let r = refs::task_definition(reference)?;
        match r.revision {
            Some(rev) => self
                .repo
                .get(&keys::task_definition(&scope.region, &r.family, rev))
                .ok_or_else(not_found),
            None => self
                .repo
                .list::<TaskDefinitionRecord>(&keys::task_definition_family(
                    &scope.region,
                    &r.family,
                ))
                .into_iter()
                .rev()
                .find(|t| t.value.task_definition.status == "ACTIVE")
                .ok_or_else(not_found),
        }
    }

    pub(crate) async fn register_task_definition(
        &self,
        scope: &Scope,
        body: &[u8],
    ) -> Result<Value> {
        let input: RegisterInput = parse_input(body)?;
        reject_unsupported("", &input.unsupported)?;
        let family = gantry_aws::required(&input.family, "family")?.to_string();
        tags::validate(&input.tags)?;
        if input
            .placement_constraints
            .iter()
            .any(|c| c.kind.as_deref() != Some("memberOf"))
        {
            return Err(invalid(
                "placementConstraints: only memberOf is valid in a task definition",
            ));
        }
        crate::placement::Placement::parse(&[], &[], &input.placement_constraints)?;
        let mut td = TaskDefinition {
            family: family.clone(),
            container_definitions: input
                .container_definitions
                .ok_or_else(|| invalid("containerDefinitions is required"))?,
            task_role_arn: input.task_role_arn,
            execution_role_arn: input.execution_role_arn,
            network_mode: Some(input.network_mode.unwrap_or_else(|| "bridge".into())),
            volumes: input.volumes,
            placement_constraints: input.placement_constraints,
            requires_compatibilities: input.requires_compatibilities,
            cpu: input.cpu,
            memory: input.memory,
            pid_mode: input.pid_mode,
            ipc_mode: input.ipc_mode,
            runtime_platform: input.runtime_platform,
            ephemeral_storage: input.ephemeral_storage,
            status: "ACTIVE".into(),
            registered_by: Some(format!("arn:aws:iam::{}:root", scope.account)),
            ..Default::default()
        };
        validate::task_definition(&td)?;
        td.compatibilities = vec!["EXTERNAL".into(), "EC2".into()];
        if crate::fargate::problem(&td).is_none() {
            td.compatibilities.push("FARGATE".into());
        }
        loop {
            let existing = self
                .repo
                .store
                .range(&keys::task_definition_family(&scope.region, &family));
            // Revisions are never reused, not even after a delete: deleted ones stay as DELETE_IN_PROGRESS.
            let revision = existing.len() as i64 + 1;
            let key = keys::task_definition(&scope.region, &family, revision);
            td.revision = revision;
            td.task_definition_arn =
                scope.arn("ecs", &format!("task-definition/{family}:{revision}"));
            td.registered_at = Some(time::now());
            let record = TaskDefinitionRecord {
                task_definition: td.clone(),
                tags: input.tags.clone(),
            };
            if self
                .repo
                .commit(
                    Txn::new()
                        .compare(Compare::absent(&key))
                        .put(key, encode(&record)),
                )
                .await?
            {
                return Ok(describe_output(record, true));
            }
        }
    }

    pub(crate) fn describe_task_definition(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let input: RefInput = parse_input(body)?;
        let reference = gantry_aws::required(&input.task_definition, "taskDefinition")?;
        let record = self.resolve_task_definition(scope, reference)?.value;
        Ok(describe_output(
            record,
            input.include.iter().any(|i| i == "TAGS"),
        ))
    }

    pub(crate) fn list_task_definitions(&self, scope: &Scope, body: &[u8]) -> Result<Value> {
        let input: ListInput = parse_input(body)?;
        let status = input.status.as_deref().unwrap_or("ACTIVE");
        if !["ACTIVE", "INACTIVE", "DELETE_IN_PROGRESS"].contains(&status) {
            return Err(invalid(format!("Invalid status: {status}")));
        }
        let prefix = match &input.family_prefix {
            // AWS takes the whole family name here despite the member's name.
            Some(f) => keys::task_definition_family(&scope.region, f),
            None => keys::task_definitions(&scope.region),
        };
        let mut arns: Vec<String> = self
            .repo
            .list::<TaskDefinitionRecord>(&prefix)
            .into_iter()
            .filter(|t| t.value.task_definition.status == status)
            .map(|t| t.value.task_definition.task_definition_arn)
            .collect();
        match input.sort.as_deref() {
            None | Some("ASC") => {}
            Some("DESC") => arns.reverse(),
            Some(other) => return Err(invalid(format!("Invalid sort: {other}"))),
        }
        let page = paginate(
            arns,
            input.next_token.as_deref(),
            input.max_results,
            100,
            100,
        )?;
        Ok(
            json!({ "taskDefinitionArns": page.items, "nextToken": page.next_token })
                .without_nulls(),
        )
    }

    pub(crate) fn list_task_definition_families(
        &self,
        scope: &Scope,
        body: &[u8],
    ) -> Result<Value> {
        let input: ListInput = parse_input(body)?;
        let status = input.status.as_deref().unwrap_or("ACTIVE");
        if !["ACTIVE", "INACTIVE", "ALL"].contains(&status) {
            return Err(invalid(format!("Invalid status: {status}")));
        }
        let prefix = format!(
            "{}{}",
            keys::task_definitions(&scope.region),
            input.family_prefix.as_deref().unwrap_or("")
        );
        let records = self.repo.list::<TaskDefinitionRecord>(&prefix);
        let mut families: Vec<String> = Vec::new();
        for family in records.iter().map(|r| &r.value.task_definition.family) {
            if families.last() == Some(family) {
                continue;
            }
            let revisions = records
                .iter()
                .filter(|r| &r.value.task_definition.family == family);
            let any_active = revisions
                .clone()
                .any(|r| r.value.task_definition.status == "ACTIVE");
            let keep = match status {
                "ACTIVE" => any_active,
                // A family is INACTIVE when none of its revisions is ACTIVE.
                "INACTIVE" => !any_active,
                _ => true,
            };
            if keep {
                families.push(family.clone());
            }
        }
        families.dedup();
        let page = paginate(
            families,
            input.next_token.as_deref(),
            input.max_results,
            100,
            100,
        )?;
        Ok(json!({ "families": page.items, "nextToken": page.next_token }).without_nulls())
    }

    async fn set_status(
        &self,
        scope: &Scope,
        reference: &str,
        edit: fn(&mut TaskDefinition) -> Result<()>,
    ) -> Result<TaskDefinition> {
        let r = refs::task_definition(reference)?;
        let revision = r
            .revision
            .ok_or_else(|| invalid("A revision is required: family:revision or a full ARN"))?;
        let key = keys::task_definition(&scope.region, &r.family, revision);
        loop {
            let mut current = self
                .repo
                .get::<TaskDefinitionRecord>(&key)
                .ok_or_else(|| invalid("The specified task definition does not exist."))?;
            let guard = current.unchanged();
            edit(&mut current.value.task_definition)?;
            if self
                .repo
                .commit(Txn::new().compare(guard).put(&key, encode(&current.value)))
                .await?
            {
                return Ok(current.value.task_definition);
            }
        }
    }

    pub(crate) async fn deregister_task_definition(
        &self,
        scope: &Scope,
        body: &[u8],
    ) -> Result<Value> {
        let input: RefInput = parse_input(body)?;
        let reference = gantry_aws::required(&input.task_definition, "taskDefinition")?;
        let td = self
            .set_status(scope, reference, |td| {
                if td.status == "ACTIVE" {
                    td.status = "INACTIVE".into();
                    td.deregistered_at = Some(time::now());
                }
                Ok(())
            })
            .await?;
        Ok(json!({ "taskDefinition": gantry_model::json::to_value(&td) }))
    }

    pub(crate) async fn delete_task_definitions(
        &self,
        scope: &Scope,
        body: &[u8],
    ) -> Result<Value> {
        let input: DeleteInput = parse_input(body)?;
        let references = input.task_definitions.unwrap_or_default();
        if references.is_empty() || references.len() > 10 {
            return Err(invalid(
                "taskDefinitions must list between 1 and 10 task definitions",
            ));
        }
        let (mut deleted, mut failures) = (Vec::new(), Vec::new());
        for reference in &references {
            let result = self
                .set_status(scope, reference, |td| match td.status.as_str() {
                    "ACTIVE" => Err(EcsError::Client(
                        "The specified task definition is still in ACTIVE status. Please deregister the target and try again.".into(),
                    )),
                    "INACTIVE" => {
                        td.status = "DELETE_IN_PROGRESS".into();
                        td.delete_requested_at = Some(time::now());
                        Ok(())
                    }
                    _ => Ok(()),
                })
                .await;
            match result {
                Ok(td) => deleted.push(gantry_model::json::to_value(&td)),
                Err(
                    e @ (EcsError::Client(_) | EcsError::InvalidParameter(_) | EcsError::Aws(_)),
                ) => failures.push(Failure {
                    arn: Some(reference.clone()),
                    reason: Some(e.to_string()),
                    detail: None,
                }),
                Err(e) => return Err(e),
            }
        }
        Ok(
            json!({ "taskDefinitions": deleted, "failures": gantry_model::json::to_value(&failures) }),
        )
    }
}
