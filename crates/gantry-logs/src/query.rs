//! Reading events: GetLogEvents (one stream, forward and backward tokens) and FilterLogEvents (a group's streams
//! interleaved, with a filter pattern).

use std::collections::HashMap;

use gantry_model::time::now_millis;
use gantry_model::Scope;
use gantry_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::events::{ScanRange, StoredEvent, Visit};
use crate::filter::{FilterPattern, PatternError};
use crate::ingest::MAX_BATCH_BYTES;
use crate::records::StreamRecord;
use crate::streams::not_found_as_group;
use crate::tokens::{event_id, FilterToken, Position, StreamToken};
use crate::{validate, LogsError, LogsService};

const MAX_EVENTS: i64 = 10_000;
/// A page holds at most this many bytes of messages.
const MAX_PAGE_BYTES: usize = MAX_BATCH_BYTES;
/// FilterLogEvents looks at most at this many events per call; a page may come back partial (or empty) with a
/// `nextToken`, as AWS's do.
const SCAN_BUDGET: usize = 200_000;
const MAX_PATTERN: usize = 1024;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GetLogEventsInput {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name: String,
    start_time: Option<i64>,
    end_time: Option<i64>,
    next_token: Option<String>,
    limit: Option<i64>,
    start_from_head: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FilterLogEventsInput {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_names: Option<Vec<String>>,
    log_stream_name_prefix: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    filter_pattern: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
    start_from_head: Option<bool>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutputLogEvent {
    timestamp: i64,
    message: String,
    ingestion_time: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GetLogEventsOut {
    events: Vec<OutputLogEvent>,
    next_forward_token: String,
    next_backward_token: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FilteredLogEvent {
    log_stream_name: String,
    timestamp: i64,
    message: String,
    ingestion_time: i64,
    event_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FilterLogEventsOut {
    events: Vec<FilteredLogEvent>,
    /// No longer supported by AWS: always empty.
    searched_log_streams: Vec<Value>,
    next_token: Option<String>,
}

fn invalid_token() -> LogsError {
    LogsError::invalid("The specified nextToken is invalid.")
}

/// The later of two lower bounds.
fn max_lo(a: Option<Position>, b: Option<Position>) -> Option<Position> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// The earlier of two upper bounds.
fn min_hi(a: Option<Position>, b: Option<Position>) -> Option<Position> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The first timestamp a read may return: `startTime`, raised to the group's retention cutoff (expired events
/// are invisible even before the retention pass deletes them).
fn lower_bound(start: Option<i64>, cutoff: Option<i64>) -> Option<Position> {
    max_lo(start.map(Position::at), cutoff.map(Position::at))
}

impl<S: Store> LogsService<S> {
    pub(crate) async fn get_log_events(
        &self,
        scope: &Scope,
        input: GetLogEventsInput,
    ) -> Result<Value, LogsError> {
        let group_name = validate::group_from(
            scope,
            input.log_group_name.as_deref(),
            input.log_group_identifier.as_deref(),
        )
        .map_err(not_found_as_group)?;
        validate::stream_name("logStreamName", &input.log_stream_name)?;
        let start = validate::timestamp("startTime", input.start_time)?;
        let end = validate::timestamp("endTime", input.end_time)?;
        let limit = validate::limit("limit", input.limit, MAX_EVENTS, MAX_EVENTS as usize)?;
        let token = match input.next_token.as_deref() {
            None | Some("") => None,
            Some(t) => Some(StreamToken::parse(t).ok_or_else(invalid_token)?),
        };
        let (_, group) = self.group(&scope.region, &group_name)?;
        let (_, stream) = self.stream(&scope.region, &group_name, &input.log_stream_name)?;

        let lo = lower_bound(start, group.cutoff(now_millis()));
        let hi = end.map(Position::at);
        // Where the read goes: (from, until, backward).
        let (from, until, backward) = match token {
            Some(StreamToken::Forward(p)) => (max_lo(Some(p), lo), hi, false),
            Some(StreamToken::Backward(p)) => (lo, min_hi(Some(p), hi), true),
            None if input.start_from_head.unwrap_or(false) => (lo, hi, false),
            None => (lo, hi, true),
        };
        let id = stream.id;
        let events = self
            .blocking(move |ev| ev.read(id, from, until, backward, limit, MAX_PAGE_BYTES))
            .await?;

        let (forward, back) = match (events.first(), events.last()) {
            (Some(first), Some(last)) => (last.position().successor(), first.position()),
            // Nothing here: the same token comes back, which tells paginators they are done.
            _ => match token {
                Some(StreamToken::Forward(p)) | Some(StreamToken::Backward(p)) => (p, p),
                None => {
                    let p = lo.unwrap_or(Position::at(0));
                    (p, p)
                }
            },
        };
        let out = GetLogEventsOut {
            events: events
                .into_iter()
                .map(|e| OutputLogEvent {
                    timestamp: e.timestamp,
                    message: e.message,
                    ingestion_time: e.ingestion_time,
                })
                .collect(),
            next_forward_token: StreamToken::Forward(forward).encode(),
            next_backward_token: StreamToken::Backward(back).encode(),
        };
        Ok(gantry_model::json::to_value(&out))
    }

    pub(crate) async fn filter_log_events(
        &self,
        scope: &Scope,
        input: FilterLogEventsInput,
    ) -> Result<Value, LogsError> {
        let group_name = validate::group_from(
            scope,
            input.log_group_name.as_deref(),
            input.log_group_identifier.as_deref(),
        )
        .map_err(not_found_as_group)?;
        if input.log_stream_names.is_some() && input.log_stream_name_prefix.is_some() {
            return Err(LogsError::invalid(
                "You cannot specify both logStreamNames and logStreamNamePrefix.",
            ));
        }
        if let Some(names) = &input.log_stream_names {
            if names.is_empty() || names.len() > 100 {
                return Err(LogsError::invalid(
                    "logStreamNames must have between 1 and 100 members.",
                ));
            }
            names
                .iter()
                .try_for_each(|n| validate::stream_name("logStreamNames", n))?;
        }
        if let Some(p) = &input.log_stream_name_prefix {
            validate::stream_name("logStreamNamePrefix", p)?;
        }
        let start = validate::timestamp("startTime", input.start_time)?;
        let end = validate::timestamp("endTime", input.end_time)?;
        let limit = validate::limit("limit", input.limit, MAX_EVENTS, MAX_EVENTS as usize)?;
        let raw_pattern = input.filter_pattern.as_deref().unwrap_or("");
        if raw_pattern.chars().count() > MAX_PATTERN {
            return Err(LogsError::invalid(format!(
                "filterPattern must have length less than or equal to {MAX_PATTERN}"
            )));
        }
        let pattern = FilterPattern::parse(raw_pattern)
            .map_err(|e: PatternError| LogsError::invalid(e.to_string()))?;
        let token = match input.next_token.as_deref() {
            None | Some("") => None,
            Some(t) => Some(FilterToken::parse(t).ok_or_else(invalid_token)?),
        };
        let (_, group) = self.group(&scope.region, &group_name)?;

        let streams: Vec<StreamRecord> = match &input.log_stream_names {
            Some(names) => {
                let mut found = Vec::new();
                for name in names {
                    match self.stream(&scope.region, &group_name, name) {
                        Ok((_, s)) => found.push(s),
                        Err(LogsError::StreamNotFound) => {}
                        Err(e) => return Err(e),
                    }
                }
                found
            }
            None => self.streams_of(
                &scope.region,
                &group_name,
                input.log_stream_name_prefix.as_deref().unwrap_or(""),
            )?,
        };

        // The token decides the direction once paging has begun.
        let descending = match token {
            Some(t) => t.descending,
            None => !input.start_from_head.unwrap_or(true),
        };
        let lo = lower_bound(start, group.cutoff(now_millis()));
        let hi = end.map(Position::at);
        let ranges: Vec<ScanRange> = streams
            .iter()
            .map(|s| {
                let (resume_lo, resume_hi) = token.map(|t| t.resume(s.id)).unwrap_or((None, None));
                ScanRange {
                    stream: s.id,
                    lo: max_lo(resume_lo, lo),
                    hi: min_hi(resume_hi, hi),
                }
            })
            .collect();
        let names: HashMap<u64, String> = streams.into_iter().map(|s| (s.id, s.name)).collect();

        let (found, next) = self
            .blocking(move |ev| {
                let mut found: Vec<StoredEvent> = Vec::new();
                let (mut scanned, mut bytes) = (0usize, 0usize);
                let mut last: Option<FilterToken> = None;
                let more = ev.scan(&ranges, descending, |e| {
                    let matched = pattern.matches(&e.message);
                    if matched && !found.is_empty() && bytes + e.message.len() > MAX_PAGE_BYTES {
                        return Visit::StopBefore;
                    }
                    scanned += 1;
                    last = Some(FilterToken {
                        descending,
                        timestamp: e.timestamp,
                        stream: e.stream,
                        seq: e.seq,
                    });
                    if matched {
                        bytes += e.message.len();
                        found.push(e);
                    }
                    if found.len() >= limit || scanned >= SCAN_BUDGET {
                        Visit::TakeAndStop
                    } else {
                        Visit::Take
                    }
                })?;
                Ok((found, if more { last } else { None }))
            })
            .await?;

        let events = found
            .into_iter()
            .map(|e| FilteredLogEvent {
                log_stream_name: names.get(&e.stream).cloned().unwrap_or_default(),
                event_id: event_id(e.timestamp, e.stream, e.seq),
                timestamp: e.timestamp,
                ingestion_time: e.ingestion_time,
                message: e.message,
            })
            .collect();
        let out = FilterLogEventsOut {
            events,
            searched_log_streams: Vec::new(),
            next_token: next.map(|t| t.encode()),
        };
        Ok(gantry_model::json::to_value(&out))
    }
}
