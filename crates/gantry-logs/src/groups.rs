//! Log groups: CreateLogGroup, DescribeLogGroups, DeleteLogGroup, PutRetentionPolicy, DeleteRetentionPolicy,
//! PutLogGroupDeletionProtection.

use std::collections::{BTreeMap, HashSet};

use gantry_model::time::now_millis;
use gantry_model::Scope;
use gantry_store::{Compare, Store, Txn};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::records::{encode, group_arn, group_arn_wildcard, GroupRecord};
use crate::retention::check_retention_days;
use crate::service::MAX_RETRIES;
use crate::tags::check_tags;
use crate::tokens::{encode_list_token, page_after, parse_list_token};
use crate::{keys, records, validate, LogsError, LogsService};

const LOG_GROUP_CLASSES: &[&str] = &["STANDARD", "INFREQUENT_ACCESS", "DELIVERY", "ESSENTIALS"];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateLogGroupInput {
    log_group_name: String,
    kms_key_id: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    log_group_class: Option<String>,
    deletion_protection_enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DescribeLogGroupsInput {
    log_group_name_prefix: Option<String>,
    log_group_name_pattern: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
    log_group_class: Option<String>,
    log_group_identifiers: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GroupNameInput {
    log_group_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PutRetentionPolicyInput {
    log_group_name: String,
    retention_in_days: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PutDeletionProtectionInput {
    log_group_identifier: String,
    deletion_protection_enabled: bool,
}

/// The `LogGroup` shape.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct LogGroupOut {
    log_group_name: String,
    creation_time: i64,
    retention_in_days: Option<i32>,
    metric_filter_count: Option<i32>,
    arn: String,
    stored_bytes: Option<u64>,
    kms_key_id: Option<String>,
    log_group_class: Option<String>,
    log_group_arn: Option<String>,
    deletion_protection_enabled: Option<bool>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DescribeLogGroupsOut {
    log_groups: Vec<LogGroupOut>,
    next_token: Option<String>,
}

impl<S: Store> LogsService<S> {
    pub(crate) async fn create_log_group(
        &self,
        scope: &Scope,
        input: CreateLogGroupInput,
    ) -> Result<Value, LogsError> {
        let name = input.log_group_name;
        validate::group_name("logGroupName", &name)?;
        if let Some(k) = &input.kms_key_id {
            if k.chars().count() > 256 {
                return Err(LogsError::invalid(
                    "kmsKeyId must have length less than or equal to 256",
                ));
            }
        }
        if let Some(c) = &input.log_group_class {
            validate::one_of("logGroupClass", c, LOG_GROUP_CLASSES)?;
        }
        if let Some(tags) = &input.tags {
            check_tags("tags", tags)?;
        }
        let record = GroupRecord {
            name: name.clone(),
            creation_time: now_millis(),
            retention_in_days: None,
            tags: input.tags.unwrap_or_default(),
            kms_key_id: input.kms_key_id,
            log_group_class: Some(input.log_group_class.unwrap_or_else(|| "STANDARD".into())),
            deletion_protection: input.deletion_protection_enabled.unwrap_or(false),
        };
        self.insert_group(&scope.region, &record).await?;
        Ok(json!({}))
    }

    /// Stores a new group; `GroupExists` when one of that name exists.
    pub(crate) async fn insert_group(
        &self,
        region: &str,
        record: &GroupRecord,
    ) -> Result<(), LogsError> {
        let key = keys::group_key(region, &record.name);
        let txn = Txn::new()
            .compare(Compare::absent(key.clone()))
            .put(key, encode(record));
        if self.store.txn(txn).await?.is_committed() {
            Ok(())
        } else {
            Err(LogsError::GroupExists)
        }
    }

    pub(crate) async fn describe_log_groups(
        &self,
        scope: &Scope,
        input: DescribeLogGroupsInput,
    ) -> Result<Value, LogsError> {
        let limit = validate::limit("limit", input.limit, 50, 50)?;
        if let Some(p) = &input.log_group_name_prefix {
            validate::group_name("logGroupNamePrefix", p)?;
        }
        if let Some(p) = &input.log_group_name_pattern {
            validate::group_name_pattern("logGroupNamePattern", p)?;
        }
        if input.log_group_name_prefix.is_some() && input.log_group_name_pattern.is_some() {
            return Err(LogsError::invalid(
                "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.",
            ));
        }
        if let Some(c) = &input.log_group_class {
            validate::one_of("logGroupClass", c, LOG_GROUP_CLASSES)?;
        }
        let identifiers = match &input.log_group_identifiers {
            None => None,
            Some(ids) => {
                if input.log_group_name_prefix.is_some() || input.log_group_name_pattern.is_some() {
                    return Err(LogsError::invalid(
                        "logGroupIdentifiers cannot be combined with logGroupNamePrefix or logGroupNamePattern.",
                    ));
                }
                if ids.is_empty() || ids.len() > 50 {
                    return Err(LogsError::invalid(
                        "logGroupIdentifiers must have between 1 and 50 members.",
                    ));
                }
                let mut names = HashSet::new();
                for id in ids {
                    match validate::group_identifier(scope, "logGroupIdentifiers", id) {
                        Ok(name) => {
                            names.insert(name);
                        }
                        // An ARN of another account or region matches nothing here.
                        Err(LogsError::ResourceNotFound(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Some(names)
            }
        };
        let after = match input.next_token.as_deref() {
            None | Some("") => None,
            Some(t) => Some(
                parse_list_token(t)
                    .ok_or_else(|| LogsError::invalid("The specified nextToken is invalid."))?,
            ),
        };

        let prefix = input.log_group_name_prefix.as_deref().unwrap_or("");
        let range = format!(
            "{}{}",
            keys::groups_prefix(&scope.region),
            keys::enc(prefix)
        );
        let mut groups: Vec<GroupRecord> = self
            .store
            .range(&range)
            .iter()
            .map(records::decode)
            .collect::<Result<_, _>>()?;
        groups.retain(|g| {
            let pattern = match input.log_group_name_pattern.as_deref() {
                Some(p) => g.name.contains(p),
                None => true,
            };
            let listed = match &identifiers {
                Some(ids) => ids.contains(&g.name),
                None => true,
            };
            let class = match input.log_group_class.as_deref() {
                Some(c) => g.log_group_class.as_deref().unwrap_or("STANDARD") == c,
                None => true,
            };
            pattern && listed && class
        });
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        let (page, next) = page_after(
            groups,
            |g| (0, g.name.clone()),
            false,
            after.as_ref(),
            limit,
        );

        let brief = input.log_group_name_pattern.is_some();
        let sizes = if brief {
            vec![0; page.len()]
        } else {
            self.stored_bytes(&scope.region, &page).await?
        };
        let log_groups = page
            .into_iter()
            .zip(sizes)
            .map(|(g, bytes)| {
                if brief {
                    // With a pattern, AWS answers only these three members.
                    return LogGroupOut {
                        arn: group_arn_wildcard(scope, &g.name),
                        creation_time: g.creation_time,
                        log_group_name: g.name,
                        ..Default::default()
                    };
                }
                LogGroupOut {
                    arn: group_arn_wildcard(scope, &g.name),
                    log_group_arn: Some(group_arn(scope, &g.name)),
                    creation_time: g.creation_time,
                    retention_in_days: g.retention_in_days,
                    metric_filter_count: Some(0),
                    stored_bytes: Some(bytes),
                    kms_key_id: g.kms_key_id,
                    log_group_class: Some(g.log_group_class.unwrap_or_else(|| "STANDARD".into())),
                    deletion_protection_enabled: g.deletion_protection.then_some(true),
                    log_group_name: g.name,
                }
            })
            .collect();
        let out = DescribeLogGroupsOut {
            log_groups,
            next_token: next.as_ref().map(encode_list_token),
        };
        Ok(gantry_model::json::to_value(&out))
    }

    /// The bytes stored by each group (the sum over its streams).
    async fn stored_bytes(
        &self,
        region: &str,
        groups: &[GroupRecord],
    ) -> Result<Vec<u64>, LogsError> {
        let ids: Vec<Vec<u64>> = groups
            .iter()
            .map(|g| {
                Ok(self
                    .streams_of(region, &g.name, "")?
                    .into_iter()
                    .map(|s| s.id)
                    .collect())
            })
            .collect::<Result<_, LogsError>>()?;
        self.blocking(move |ev| {
            ids.iter()
                .map(|group| {
                    Ok(ev
                        .stats_many(group)?
                        .into_iter()
                        .flatten()
                        .map(|s| s.stored_bytes)
                        .sum())
                })
                .collect()
        })
        .await
    }

    pub(crate) async fn delete_log_group(
        &self,
        scope: &Scope,
        input: GroupNameInput,
    ) -> Result<Value, LogsError> {
        let name = input.log_group_name;
        validate::group_name("logGroupName", &name)?;
        let region = &scope.region;
        for _ in 0..MAX_RETRIES {
            let (kv, group) = self.group(region, &name)?;
            if group.deletion_protection {
                return Err(protected(&name));
            }
            let ids: Vec<u64> = self
                .streams_of(region, &name, "")?
                .into_iter()
                .map(|s| s.id)
                .collect();
            let txn = Txn::new()
                .compare(Compare::unchanged(&kv))
                .delete(kv.key.clone())
                .delete_prefix(keys::streams_prefix(region, &name));
            if self.store.txn(txn).await?.is_committed() {
                // A stream created between the listing and the delete is collected by the retention pass.
                self.blocking(move |ev| ev.drop_streams(&ids)).await?;
                return Ok(json!({}));
            }
        }
        Err(LogsError::Conflict)
    }

    pub(crate) async fn put_retention_policy(
        &self,
        scope: &Scope,
        input: PutRetentionPolicyInput,
    ) -> Result<Value, LogsError> {
        validate::group_name("logGroupName", &input.log_group_name)?;
        let days = check_retention_days(input.retention_in_days)?;
        self.update_group(&scope.region, &input.log_group_name, |g| {
            g.retention_in_days = Some(days);
            Ok(())
        })
        .await?;
        Ok(json!({}))
    }

    pub(crate) async fn delete_retention_policy(
        &self,
        scope: &Scope,
        input: GroupNameInput,
    ) -> Result<Value, LogsError> {
        validate::group_name("logGroupName", &input.log_group_name)?;
        self.update_group(&scope.region, &input.log_group_name, |g| {
            g.retention_in_days = None;
            Ok(())
        })
        .await?;
        Ok(json!({}))
    }

    pub(crate) async fn put_deletion_protection(
        &self,
        scope: &Scope,
        input: PutDeletionProtectionInput,
    ) -> Result<Value, LogsError> {
        let name =
            validate::group_identifier(scope, "logGroupIdentifier", &input.log_group_identifier)
                .map_err(|e| match e {
                    LogsError::ResourceNotFound(_) => LogsError::GroupNotFound,
                    e => e,
                })?;
        let enabled = input.deletion_protection_enabled;
        self.update_group(&scope.region, &name, |g| {
            g.deletion_protection = enabled;
            Ok(())
        })
        .await?;
        Ok(json!({}))
    }
}

pub(crate) fn protected(group: &str) -> LogsError {
    LogsError::Validation(format!(
        "Log group {group} has deletion protection enabled; disable it with PutLogGroupDeletionProtection first"
    ))
}
