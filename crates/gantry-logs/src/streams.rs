//! Log streams: CreateLogStream, DescribeLogStreams, DeleteLogStream.

use gantry_model::time::now_millis;
use gantry_model::Scope;
use gantry_store::{Compare, Store, Txn};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::events::StreamStats;
use crate::groups::protected;
use crate::records::{encode, new_stream_id, stream_arn, StreamRecord};
use crate::service::MAX_RETRIES;
use crate::tokens::{encode_list_token, page_after, parse_list_token};
use crate::{keys, validate, LogsError, LogsService};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StreamInput {
    log_group_name: String,
    log_stream_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DescribeLogStreamsInput {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name_prefix: Option<String>,
    order_by: Option<String>,
    descending: Option<bool>,
    next_token: Option<String>,
    limit: Option<i64>,
}

/// The `LogStream` shape.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LogStreamOut {
    log_stream_name: String,
    creation_time: i64,
    first_event_timestamp: Option<i64>,
    last_event_timestamp: Option<i64>,
    last_ingestion_time: Option<i64>,
    upload_sequence_token: Option<String>,
    arn: String,
    /// Deprecated by AWS for streams: always 0.
    stored_bytes: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DescribeLogStreamsOut {
    log_streams: Vec<LogStreamOut>,
    next_token: Option<String>,
}

/// `nextSequenceToken` / `uploadSequenceToken` after `uploads` accepted uploads.
pub(crate) fn sequence_token(uploads: u64) -> String {
    format!("{uploads:056}")
}

impl<S: Store> LogsService<S> {
    pub(crate) async fn create_log_stream(
        &self,
        scope: &Scope,
        input: StreamInput,
    ) -> Result<Value, LogsError> {
        validate::group_name("logGroupName", &input.log_group_name)?;
        validate::stream_name("logStreamName", &input.log_stream_name)?;
        self.insert_stream(&scope.region, &input.log_group_name, &input.log_stream_name)
            .await?;
        Ok(json!({}))
    }

    /// Creates a stream: its counters row in the event storage first, then its record, so that a stream that
    /// exists in the store can always take events. `StreamExists` when it exists.
    pub(crate) async fn insert_stream(
        &self,
        region: &str,
        group: &str,
        name: &str,
    ) -> Result<StreamRecord, LogsError> {
        let key = keys::stream_key(region, group, name);
        for _ in 0..MAX_RETRIES {
            let (group_kv, _) = self.group(region, group)?;
            if self.store.get(&key).is_some() {
                return Err(LogsError::StreamExists);
            }
            let (id, now) = (new_stream_id(), now_millis());
            self.blocking(move |ev| ev.create_stream(id, now)).await?;
            let record = StreamRecord {
                name: name.to_string(),
                creation_time: now,
                id,
            };
            let txn = Txn::new()
                .compare(Compare::unchanged(&group_kv))
                .compare(Compare::absent(key.clone()))
                .put(key.clone(), encode(&record));
            let outcome = self.store.txn(txn).await;
            if matches!(outcome, Ok(o) if o.is_committed()) {
                return Ok(record);
            }
            self.blocking(move |ev| ev.drop_streams(&[id])).await?;
            outcome?;
        }
        Err(LogsError::Conflict)
    }

    pub(crate) async fn describe_log_streams(
        &self,
        scope: &Scope,
        input: DescribeLogStreamsInput,
    ) -> Result<Value, LogsError> {
        let group = validate::group_from(
            scope,
            input.log_group_name.as_deref(),
            input.log_group_identifier.as_deref(),
        )
        .map_err(not_found_as_group)?;
        let limit = validate::limit("limit", input.limit, 50, 50)?;
        if let Some(p) = &input.log_stream_name_prefix {
            validate::stream_name("logStreamNamePrefix", p)?;
        }
        let by_time = match input.order_by.as_deref() {
            None => false,
            Some(o) => {
                validate::one_of("orderBy", o, &["LogStreamName", "LastEventTime"])?;
                o == "LastEventTime"
            }
        };
        if by_time && input.log_stream_name_prefix.is_some() {
            return Err(LogsError::invalid(
                "Cannot order by LastEventTime with a logStreamNamePrefix.",
            ));
        }
        let descending = input.descending.unwrap_or(false);
        let after = match input.next_token.as_deref() {
            None | Some("") => None,
            Some(t) => Some(
                parse_list_token(t)
                    .ok_or_else(|| LogsError::invalid("The specified nextToken is invalid."))?,
            ),
        };
        self.group(&scope.region, &group)?;
        let records = self.streams_of(
            &scope.region,
            &group,
            input.log_stream_name_prefix.as_deref().unwrap_or(""),
        )?;

        // Ordering by name needs the counters of one page only; ordering by time needs them all.
        let (page, stats, next) = if by_time {
            let ids: Vec<u64> = records.iter().map(|r| r.id).collect();
            let stats = self.blocking(move |ev| ev.stats_many(&ids)).await?;
            let mut rows: Vec<(StreamRecord, Option<StreamStats>)> =
                records.into_iter().zip(stats).collect();
            let rank = |row: &(StreamRecord, Option<StreamStats>)| {
                (
                    row.1.as_ref().and_then(|s| s.last_event).unwrap_or(0),
                    row.0.name.clone(),
                )
            };
            rows.sort_by_key(rank);
            if descending {
                rows.reverse();
            }
            let (page, next) = page_after(rows, rank, descending, after.as_ref(), limit);
            let (page, stats): (Vec<_>, Vec<_>) = page.into_iter().unzip();
            (page, stats, next)
        } else {
            let mut records = records;
            if descending {
                records.reverse();
            }
            let (page, next) = page_after(
                records,
                |r| (0, r.name.clone()),
                descending,
                after.as_ref(),
                limit,
            );
            let ids: Vec<u64> = page.iter().map(|r| r.id).collect();
            let stats = self.blocking(move |ev| ev.stats_many(&ids)).await?;
            (page, stats, next)
        };
        let log_streams = page
            .into_iter()
            .zip(stats)
            .map(|(r, s)| {
                let s = s.unwrap_or_default();
                LogStreamOut {
                    arn: stream_arn(scope, &group, &r.name),
                    log_stream_name: r.name,
                    creation_time: r.creation_time,
                    first_event_timestamp: s.first_event,
                    last_event_timestamp: s.last_event,
                    last_ingestion_time: s.last_ingestion,
                    upload_sequence_token: (s.uploads > 0).then(|| sequence_token(s.uploads)),
                    stored_bytes: 0,
                }
            })
            .collect();
        let out = DescribeLogStreamsOut {
            log_streams,
            next_token: next.as_ref().map(encode_list_token),
        };
        Ok(gantry_model::json::to_value(&out))
    }

    pub(crate) async fn delete_log_stream(
        &self,
        scope: &Scope,
        input: StreamInput,
    ) -> Result<Value, LogsError> {
        validate::group_name("logGroupName", &input.log_group_name)?;
        validate::stream_name("logStreamName", &input.log_stream_name)?;
        let region = &scope.region;
        for _ in 0..MAX_RETRIES {
            let (_, group) = self.group(region, &input.log_group_name)?;
            if group.deletion_protection {
                return Err(protected(&group.name));
            }
            let (kv, stream) =
                self.stream(region, &input.log_group_name, &input.log_stream_name)?;
            let txn = Txn::new()
                .compare(Compare::unchanged(&kv))
                .delete(kv.key.clone());
            if self.store.txn(txn).await?.is_committed() {
                let id = stream.id;
                self.blocking(move |ev| ev.drop_streams(&[id])).await?;
                return Ok(json!({}));
            }
        }
        Err(LogsError::Conflict)
    }
}

/// An ARN of another account or region names a log group that does not exist here.
pub(crate) fn not_found_as_group(e: LogsError) -> LogsError {
    match e {
        LogsError::ResourceNotFound(_) => LogsError::GroupNotFound,
        e => e,
    }
}
