//! Ingest: PutLogEvents (validated as AWS does), and the `awslogs` driver's batches from the agent.

use std::ops::Range;
use std::sync::Arc;

use gantry_model::agent::{LogBatch, LogEvent};
use gantry_model::time::now_millis;
use gantry_model::Scope;
use gantry_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::records::{decode, GroupRecord, StreamRecord};
use crate::streams::sequence_token;
use crate::{keys, validate, LogsError, LogsService};

const MAX_BATCH_EVENTS: usize = 10_000;
pub(crate) const MAX_BATCH_BYTES: usize = 1_048_576;
/// Counted per event towards the batch size.
const EVENT_OVERHEAD: usize = 26;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Events further in the future are rejected.
const MAX_FUTURE_MS: i64 = 2 * HOUR_MS;
/// Events older than this are rejected.
const MAX_AGE_MS: i64 = 14 * DAY_MS;
/// The accepted events of one batch may span at most this.
const MAX_SPAN_MS: i64 = DAY_MS;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PutLogEventsInput {
    log_group_name: String,
    log_stream_name: String,
    log_events: Vec<InputLogEvent>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InputLogEvent {
    timestamp: i64,
    message: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PutLogEventsOut {
    next_sequence_token: String,
    rejected_log_events_info: Option<RejectedInfo>,
}

#[derive(Serialize, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RejectedInfo {
    too_new_log_event_start_index: Option<usize>,
    too_old_log_event_end_index: Option<usize>,
    expired_log_event_end_index: Option<usize>,
}

/// Which events of a chronologically sorted batch are accepted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub accepted: Range<usize>,
    pub rejected: Option<RejectedInfo>,
}

/// Splits a sorted batch into too old (more than 14 days), expired (older than the retention cutoff), accepted,
/// and too new (more than 2 hours ahead of `now_ms`). Pure.
pub(crate) fn classify(timestamps: &[i64], now_ms: i64, retention_cutoff: Option<i64>) -> Verdict {
    let too_old = timestamps.partition_point(|&t| t < now_ms - MAX_AGE_MS);
    let expired = match retention_cutoff {
        Some(cutoff) => timestamps.partition_point(|&t| t < cutoff),
        None => 0,
    };
    let too_new = timestamps.partition_point(|&t| t <= now_ms + MAX_FUTURE_MS);
    let start = too_old.max(expired).min(too_new);
    let info = RejectedInfo {
        too_old_log_event_end_index: (too_old > 0).then(|| too_old - 1),
        expired_log_event_end_index: (expired > 0).then(|| expired - 1),
        too_new_log_event_start_index: (too_new < timestamps.len()).then_some(too_new),
    };
    let rejected = (info != RejectedInfo::default()).then_some(info);
    Verdict {
        accepted: start..too_new,
        rejected,
    }
}

/// The checks of PutLogEvents that need no state: count, messages, timestamps, size, order. Pure.
pub(crate) fn check_batch(events: &[(i64, &str)]) -> Result<(), LogsError> {
    if events.is_empty() || events.len() > MAX_BATCH_EVENTS {
        return Err(LogsError::invalid(format!(
            "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length \
             between 1 and {MAX_BATCH_EVENTS} (got {})",
            events.len()
        )));
    }
    let mut size = 0usize;
    for (i, (ts, message)) in events.iter().enumerate() {
        if message.is_empty() {
            return Err(LogsError::invalid(format!(
                "1 validation error detected: Value '' at 'logEvents.{}.member.message' failed to satisfy constraint: \
                 Member must have length greater than or equal to 1",
                i + 1
            )));
        }
        if *ts < 0 {
            return Err(LogsError::invalid(format!(
                "1 validation error detected: Value '{ts}' at 'logEvents.{}.member.timestamp' failed to satisfy \
                 constraint: Member must have value greater than or equal to 0",
                i + 1
            )));
        }
        size += message.len() + EVENT_OVERHEAD;
    }
    if size > MAX_BATCH_BYTES {
        return Err(LogsError::invalid(format!(
            "Upload too large: {size} bytes exceeds limit of {MAX_BATCH_BYTES}"
        )));
    }
    if events.windows(2).any(|w| w[1].0 < w[0].0) {
        return Err(LogsError::invalid(
            "Log events in a single PutLogEvents request must be in chronological order.",
        ));
    }
    Ok(())
}

impl<S: Store> LogsService<S> {
    pub(crate) async fn put_log_events(
        &self,
        scope: &Scope,
        input: PutLogEventsInput,
    ) -> Result<Value, LogsError> {
        validate::group_name("logGroupName", &input.log_group_name)?;
        validate::stream_name("logStreamName", &input.log_stream_name)?;
        let pairs: Vec<(i64, &str)> = input
            .log_events
            .iter()
            .map(|e| (e.timestamp, e.message.as_str()))
            .collect();
        check_batch(&pairs)?;
        let region = &scope.region;
        let (_, group) = self.group(region, &input.log_group_name)?;
        let (_, stream) = self.stream(region, &input.log_group_name, &input.log_stream_name)?;

        let now = now_millis();
        let timestamps: Vec<i64> = input.log_events.iter().map(|e| e.timestamp).collect();
        let verdict = classify(&timestamps, now, group.cutoff(now));
        let accepted: Vec<LogEvent> = input.log_events[verdict.accepted.clone()]
            .iter()
            .map(|e| LogEvent {
                timestamp: e.timestamp,
                message: e.message.clone(),
            })
            .collect();
        if let (Some(first), Some(last)) = (accepted.first(), accepted.last()) {
            if last.timestamp - first.timestamp > MAX_SPAN_MS {
                return Err(LogsError::invalid(
                    "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.",
                ));
            }
        }
        let id = stream.id;
        let stats = if accepted.is_empty() {
            self.blocking(move |ev| ev.stats(id)).await?
        } else {
            self.blocking(move |ev| ev.append(id, &accepted, now, None))
                .await?
        };
        let stats = stats.ok_or(LogsError::StreamNotFound)?;
        let out = PutLogEventsOut {
            next_sequence_token: sequence_token(stats.uploads),
            rejected_log_events_info: verdict.rejected,
        };
        Ok(gantry_model::json::to_value(&out))
    }

    /// Stores a batch of the agent's `awslogs` driver: creates the group when `create_group` says so (a missing
    /// group is an error otherwise), creates the stream when missing, appends the events (sorted; empty, too
    /// old, expired and too new ones are dropped as AWS would reject them) and records `batch.cursor`, all
    /// durably and in one transaction with the events.
    pub async fn put_batch(&self, scope: &Scope, batch: &LogBatch) -> Result<(), LogsError> {
        validate::group_name("logGroup", &batch.log_group)?;
        validate::stream_name("logStream", &batch.log_stream)?;
        let region = &scope.region;
        let group = match self.group(region, &batch.log_group) {
            Ok((_, g)) => g,
            Err(LogsError::GroupNotFound) if batch.create_group => {
                self.ensure_group(region, &batch.log_group).await?
            }
            Err(e) => return Err(e),
        };
        let now = now_millis();
        let mut events: Vec<LogEvent> = batch
            .events
            .iter()
            .filter(|e| !e.message.is_empty())
            .cloned()
            .collect();
        events.sort_by_key(|e| e.timestamp);
        let timestamps: Vec<i64> = events.iter().map(|e| e.timestamp).collect();
        let verdict = classify(&timestamps, now, group.cutoff(now));
        if verdict.rejected.is_some() {
            tracing::debug!(
                group = %batch.log_group, stream = %batch.log_stream,
                dropped = events.len() - verdict.accepted.len(), "dropping log events outside the accepted time range"
            );
        }
        let events: Arc<Vec<LogEvent>> = Arc::new(events[verdict.accepted].to_vec());
        let cursor: Option<Arc<str>> = batch.cursor.as_deref().map(Arc::from);
        // A stream deleted between our lookup and the append is created again, once.
        for _ in 0..2 {
            let stream = self
                .ensure_stream(region, &batch.log_group, &batch.log_stream)
                .await?;
            if events.is_empty() && cursor.is_none() {
                return Ok(());
            }
            let (events, cursor, id) = (events.clone(), cursor.clone(), stream.id);
            if self
                .blocking(move |ev| ev.append(id, &events, now, cursor.as_deref()))
                .await?
                .is_some()
            {
                return Ok(());
            }
        }
        Err(LogsError::StreamNotFound)
    }

    /// The cursor recorded with the last batch stored for a stream, if any.
    pub fn log_cursor(&self, scope: &Scope, group: &str, stream: &str) -> Option<String> {
        let kv = self
            .store
            .get(&keys::stream_key(&scope.region, group, stream))?;
        let record: StreamRecord = decode(&kv).ok()?;
        match self.events.stats(record.id) {
            Ok(stats) => stats?.cursor,
            Err(e) => {
                tracing::warn!(error = %e, group, stream, "cannot read a log cursor");
                None
            }
        }
    }

    /// The group, created (as CreateLogGroup would) when missing.
    async fn ensure_group(&self, region: &str, name: &str) -> Result<GroupRecord, LogsError> {
        let record = GroupRecord {
            name: name.to_string(),
            creation_time: now_millis(),
            log_group_class: Some("STANDARD".into()),
            ..Default::default()
        };
        match self.insert_group(region, &record).await {
            Ok(()) => Ok(record),
            Err(LogsError::GroupExists) => Ok(self.group(region, name)?.1),
            Err(e) => Err(e),
        }
    }

    async fn ensure_stream(
        &self,
        region: &str,
        group: &str,
        name: &str,
    ) -> Result<StreamRecord, LogsError> {
        match self.stream(region, group, name) {
            Ok((_, s)) => return Ok(s),
            Err(LogsError::StreamNotFound) => {}
            Err(e) => return Err(e),
        }
        match self.insert_stream(region, group, name).await {
            Ok(s) => Ok(s),
            Err(LogsError::StreamExists) => Ok(self.stream(region, group, name)?.1),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn accepts_a_batch_within_range() {
        let v = classify(&[NOW - 1000, NOW, NOW + 1000], NOW, None);
        assert_eq!(
            v,
            Verdict {
                accepted: 0..3,
                rejected: None
            }
        );
    }

    #[test]
    fn reports_too_old_and_too_new() {
        let ts = [NOW - 15 * DAY_MS, NOW - 15 * DAY_MS, NOW, NOW + 3 * HOUR_MS];
        let v = classify(&ts, NOW, None);
        assert_eq!(v.accepted, 2..3);
        let r = v.rejected.unwrap();
        assert_eq!(r.too_old_log_event_end_index, Some(1));
        assert_eq!(r.too_new_log_event_start_index, Some(3));
        assert_eq!(r.expired_log_event_end_index, None);
    }

    #[test]
    fn reports_expired_by_retention() {
        let ts = [NOW - 3 * DAY_MS, NOW - 2 * HOUR_MS, NOW];
        let v = classify(&ts, NOW, Some(NOW - DAY_MS));
        assert_eq!(v.accepted, 1..3);
        assert_eq!(v.rejected.unwrap().expired_log_event_end_index, Some(0));
    }

    #[test]
    fn everything_rejected_is_an_empty_range() {
        let v = classify(&[NOW + 5 * HOUR_MS], NOW, None);
        assert!(v.accepted.is_empty());
        let v = classify(&[NOW - 20 * DAY_MS], NOW, None);
        assert!(v.accepted.is_empty());
    }

    #[test]
    fn batch_checks() {
        assert!(check_batch(&[(1, "a"), (1, "b"), (2, "c")]).is_ok());
        let e = check_batch(&[(2, "a"), (1, "b")]).unwrap_err().to_string();
        assert!(e.contains("chronological order"), "{e}");
        assert!(check_batch(&[]).is_err());
        assert!(check_batch(&[(1, "")])
            .unwrap_err()
            .to_string()
            .contains("logEvents.1.member.message"));
        assert!(check_batch(&[(-1, "a")]).is_err());
        let big = "x".repeat(MAX_BATCH_BYTES);
        assert!(check_batch(&[(1, big.as_str())])
            .unwrap_err()
            .to_string()
            .contains("Upload too large"));
        let many: Vec<(i64, &str)> = (0..10_001).map(|i| (i, "a")).collect();
        assert!(check_batch(&many).is_err());
        assert!(check_batch(&many[..10_000]).is_ok());
    }
}
