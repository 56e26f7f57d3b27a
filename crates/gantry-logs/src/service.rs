//! The service: its state, the operation dispatch, and the store helpers the handlers share.

use std::path::Path;
use std::sync::Arc;

use gantry_aws::{AwsError, JsonService, RequestContext, ServiceFuture};
use gantry_model::Scope;
use gantry_store::{Compare, KeyValue, Store, Txn};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::events::EventStore;
use crate::keys;
use crate::records::{decode, encode, GroupRecord, StreamRecord};
use crate::LogsError;

/// How often a compare-and-swap update is retried before answering `OperationAbortedException`.
pub(crate) const MAX_RETRIES: usize = 16;

/// CloudWatch Logs (`Logs_20140328`) over a [`Store`] for metadata and its own event storage.
pub struct LogsService<S: Store> {
    pub(crate) store: S,
    pub(crate) events: Arc<EventStore>,
}

impl<S: Store> LogsService<S> {
    /// Opens the service: metadata in `store`, events in `{data_dir}/logs/events.redb` (created when missing).
    pub fn open(store: S, data_dir: &Path) -> Result<LogsService<S>, LogsError> {
        Ok(LogsService {
            store,
            events: Arc::new(EventStore::open(data_dir)?),
        })
    }

    /// A service whose events live in memory only (for tests of other crates).
    pub fn in_memory(store: S) -> Result<LogsService<S>, LogsError> {
        Ok(LogsService {
            store,
            events: Arc::new(EventStore::in_memory()?),
        })
    }

    /// Deletes every stored event: the admin reset, whose store wipe takes the groups and streams.
    pub async fn reset_events(&self) -> Result<(), LogsError> {
        self.blocking(|events| events.clear()).await
    }

    /// Runs blocking work on the event storage off the async threads.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&EventStore) -> Result<T, LogsError> + Send + 'static,
    ) -> Result<T, LogsError> {
        let events = self.events.clone();
        tokio::task::spawn_blocking(move || work(&events))
            .await
            .map_err(LogsError::storage)?
    }

    pub(crate) fn group(
        &self,
        region: &str,
        name: &str,
    ) -> Result<(KeyValue, GroupRecord), LogsError> {
        let kv = self
            .store
            .get(&keys::group_key(region, name))
            .ok_or(LogsError::GroupNotFound)?;
        let record = decode(&kv)?;
        Ok((kv, record))
    }

    pub(crate) fn stream(
        &self,
        region: &str,
        group: &str,
        name: &str,
    ) -> Result<(KeyValue, StreamRecord), LogsError> {
        let kv = self
            .store
            .get(&keys::stream_key(region, group, name))
            .ok_or(LogsError::StreamNotFound)?;
        let record = decode(&kv)?;
        Ok((kv, record))
    }

    /// The streams of a group whose names start with `prefix`, sorted by name.
    pub(crate) fn streams_of(
        &self,
        region: &str,
        group: &str,
        prefix: &str,
    ) -> Result<Vec<StreamRecord>, LogsError> {
        let range = format!(
            "{}{}",
            keys::streams_prefix(region, group),
            keys::enc(prefix)
        );
        let mut out: Vec<StreamRecord> = self
            .store
            .range(&range)
            .iter()
            .map(decode)
            .collect::<Result<_, _>>()?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Applies `change` to a group record with compare-and-swap, retrying on conflicts.
    pub(crate) async fn update_group(
        &self,
        region: &str,
        name: &str,
        change: impl Fn(&mut GroupRecord) -> Result<(), LogsError>,
    ) -> Result<GroupRecord, LogsError> {
        for _ in 0..MAX_RETRIES {
            let (kv, mut record) = self.group(region, name)?;
            change(&mut record)?;
            let txn = Txn::new()
                .compare(Compare::unchanged(&kv))
                .put(kv.key.clone(), encode(&record));
            if self.store.txn(txn).await?.is_committed() {
                return Ok(record);
            }
        }
        Err(LogsError::Conflict)
    }

    async fn dispatch(
        &self,
        scope: &Scope,
        operation: &str,
        body: &[u8],
    ) -> Result<Value, LogsError> {
        match operation {
            "CreateLogGroup" => self.create_log_group(scope, input(body)?).await,
            "DescribeLogGroups" => self.describe_log_groups(scope, input(body)?).await,
            "DeleteLogGroup" => self.delete_log_group(scope, input(body)?).await,
            "PutRetentionPolicy" => self.put_retention_policy(scope, input(body)?).await,
            "DeleteRetentionPolicy" => self.delete_retention_policy(scope, input(body)?).await,
            "PutLogGroupDeletionProtection" => {
                self.put_deletion_protection(scope, input(body)?).await
            }
            "CreateLogStream" => self.create_log_stream(scope, input(body)?).await,
            "DescribeLogStreams" => self.describe_log_streams(scope, input(body)?).await,
            "DeleteLogStream" => self.delete_log_stream(scope, input(body)?).await,
            "PutLogEvents" => self.put_log_events(scope, input(body)?).await,
            "GetLogEvents" => self.get_log_events(scope, input(body)?).await,
            "FilterLogEvents" => self.filter_log_events(scope, input(body)?).await,
            "TagResource" => self.tag_resource(scope, input(body)?).await,
            "UntagResource" => self.untag_resource(scope, input(body)?).await,
            "ListTagsForResource" => self.list_tags_for_resource(scope, input(body)?).await,
            "TagLogGroup" => self.tag_log_group(scope, input(body)?).await,
            "UntagLogGroup" => self.untag_log_group(scope, input(body)?).await,
            "ListTagsLogGroup" => self.list_tags_log_group(scope, input(body)?).await,
            other => Err(LogsError::UnknownOperation(other.to_string())),
        }
    }
}

fn input<T: DeserializeOwned>(body: &[u8]) -> Result<T, LogsError> {
    gantry_aws::parse_input(body).map_err(LogsError::Request)
}

impl<S: Store> JsonService for LogsService<S> {
    fn target_prefix(&self) -> &'static str {
        "Logs_20140328"
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
