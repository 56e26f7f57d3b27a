//! The event storage: one redb file (`{data_dir}/logs/events.redb`), apart from the store, which is mirrored in
//! memory and has no room for log volumes.
//!
//! - `events`: (stream id, timestamp, sequence) -> (ingestion time, message). Key order is the read order, so a
//!   page of a stream is one range read, whatever the stream's size.
//! - `streams`: stream id -> [`StreamStats`], updated in the same transaction as the events they count (and the
//!   agent's cursor with them). A stream's row exists from its creation to its deletion; appending to an id
//!   without a row fails, which is how an append racing a deletion loses cleanly.
//!
//! Every method blocks (redb commits are durable when they return): call them from `spawn_blocking`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Bound;
use std::path::Path;

use gantry_model::agent::LogEvent;
use redb::{AccessGuard, Database, ReadableTable, StorageError, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::tokens::{ordered, Position};
use crate::LogsError;

type Key = (u64, i64, u64);
type Val<'a> = (i64, &'a str);

const EVENTS: TableDefinition<Key, Val> = TableDefinition::new("events");
const STREAMS: TableDefinition<u64, &[u8]> = TableDefinition::new("streams");

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for LogsError {
            fn from(e: $t) -> Self {
                LogsError::Storage(e.to_string())
            }
        }
    )*};
}

from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Counters of one stream, kept beside its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct StreamStats {
    /// When the row was made (epoch ms): rows no stream record names are collected once old enough.
    pub created: i64,
    /// The sequence of the next event; sequences start at 1.
    pub next_seq: u64,
    /// Accepted uploads, for `nextSequenceToken`.
    pub uploads: u64,
    pub first_event: Option<i64>,
    pub last_event: Option<i64>,
    pub last_ingestion: Option<i64>,
    pub stored_bytes: u64,
    /// The agent's position in the container's output after the last batch it shipped here.
    pub cursor: Option<String>,
}

/// One stored event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredEvent {
    pub stream: u64,
    pub timestamp: i64,
    pub seq: u64,
    pub ingestion_time: i64,
    pub message: String,
}

impl StoredEvent {
    pub fn position(&self) -> Position {
        Position::new(self.timestamp, self.seq)
    }
}

/// The part of one stream a scan covers: positions from `lo` (included) to `hi` (excluded); `None` is unbounded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScanRange {
    pub stream: u64,
    pub lo: Option<Position>,
    pub hi: Option<Position>,
}

/// What a scan's visitor does with the event it is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Visit {
    /// Taken; go on.
    Take,
    /// Taken; stop here.
    TakeAndStop,
    /// Not taken; stop before it.
    StopBefore,
}

pub(crate) struct EventStore {
    db: Database,
}

type Item = Result<
    (
        AccessGuard<'static, Key>,
        AccessGuard<'static, Val<'static>>,
    ),
    StorageError,
>;

fn bounds(id: u64, lo: Option<Position>, hi: Option<Position>) -> Option<(Bound<Key>, Bound<Key>)> {
    let lo = lo
        .map(|p| (id, p.timestamp, p.seq))
        .unwrap_or((id, i64::MIN, 0));
    let (hi, empty) = match hi {
        Some(p) => {
            let h = (id, p.timestamp, p.seq);
            (Bound::Excluded(h), h <= lo)
        }
        None => (Bound::Included((id, i64::MAX, u64::MAX)), false),
    };
    (!empty).then_some((Bound::Included(lo), hi))
}

fn to_event(item: Item) -> Result<StoredEvent, LogsError> {
    let (k, v) = item?;
    let (stream, timestamp, seq) = k.value();
    let (ingestion_time, message) = v.value();
    Ok(StoredEvent {
        stream,
        timestamp,
        seq,
        ingestion_time,
        message: message.to_string(),
    })
}

fn decode_stats(bytes: &[u8]) -> Result<StreamStats, LogsError> {
    serde_json::from_slice(bytes)
        .map_err(|e| LogsError::Storage(format!("corrupt stream counters: {e}")))
}

fn encode_stats(stats: &StreamStats) -> Vec<u8> {
    gantry_model::json::to_vec(stats)
}

impl EventStore {
    /// Opens (or creates) `{dir}/logs/events.redb`.
    pub fn open(data_dir: &Path) -> Result<EventStore, LogsError> {
        let dir = data_dir.join("logs");
        std::fs::create_dir_all(&dir)
            .map_err(|e| LogsError::Storage(format!("cannot create {}: {e}", dir.display())))?;
        Self::init(Database::create(dir.join("events.redb"))?)
    }

    /// Storage that lives in memory only (tests, and servers that keep no logs).
    pub fn in_memory() -> Result<EventStore, LogsError> {
        Self::init(Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?)
    }

    fn init(db: Database) -> Result<EventStore, LogsError> {
        let w = db.begin_write()?;
        {
            w.open_table(EVENTS)?;
            w.open_table(STREAMS)?;
        }
        w.commit()?;
        Ok(EventStore { db })
    }

    /// Makes the counters row of a new stream.
    pub fn create_stream(&self, id: u64, now_ms: i64) -> Result<(), LogsError> {
        let w = self.db.begin_write()?;
        {
            let mut streams = w.open_table(STREAMS)?;
            if streams.get(id)?.is_some() {
                return Err(LogsError::Storage(format!("stream id {id} is taken")));
            }
            let stats = StreamStats {
                created: now_ms,
                next_seq: 1,
                ..Default::default()
            };
            streams.insert(id, encode_stats(&stats).as_slice())?;
        }
        w.commit()?;
        Ok(())
    }

    /// Deletes streams: their counters and every event.
    /// Deletes every event and stream counter at once (the admin reset): dropping the tables costs the same for
    /// ten events or a million.
    pub fn clear(&self) -> Result<(), LogsError> {
        let w = self.db.begin_write()?;
        w.delete_table(EVENTS)?;
        w.delete_table(STREAMS)?;
        w.open_table(EVENTS)?;
        w.open_table(STREAMS)?;
        w.commit()?;
        Ok(())
    }

    pub fn drop_streams(&self, ids: &[u64]) -> Result<(), LogsError> {
        if ids.is_empty() {
            return Ok(());
        }
        let w = self.db.begin_write()?;
        {
            let mut streams = w.open_table(STREAMS)?;
            let mut events = w.open_table(EVENTS)?;
            for &id in ids {
                streams.remove(id)?;
                if let Some(b) = bounds(id, None, None) {
                    events.retain_in::<Key, _>(b, |_, _| false)?;
                }
            }
        }
        w.commit()?;
        Ok(())
    }

    /// Appends events (any timestamp order) and records `cursor`, in one durable transaction. `None` when the
    /// stream has no counters row (it was deleted).
    pub fn append(
        &self,
        id: u64,
        events: &[LogEvent],
        ingestion_ms: i64,
        cursor: Option<&str>,
    ) -> Result<Option<StreamStats>, LogsError> {
        let w = self.db.begin_write()?;
        let stats = {
            let mut streams = w.open_table(STREAMS)?;
            let current = match streams.get(id)? {
                Some(v) => Some(decode_stats(v.value())?),
                None => None,
            };
            let Some(mut stats) = current else {
                drop(streams);
                w.abort()?;
                return Ok(None);
            };
            let mut table = w.open_table(EVENTS)?;
            for e in events {
                let seq = stats.next_seq.max(1);
                stats.next_seq = seq + 1;
                table.insert((id, e.timestamp, seq), (ingestion_ms, e.message.as_str()))?;
                stats.stored_bytes += e.message.len() as u64;
                stats.first_event = Some(
                    stats
                        .first_event
                        .map_or(e.timestamp, |f| f.min(e.timestamp)),
                );
                stats.last_event =
                    Some(stats.last_event.map_or(e.timestamp, |l| l.max(e.timestamp)));
            }
            if !events.is_empty() {
                stats.uploads += 1;
                stats.last_ingestion = Some(ingestion_ms);
            }
            if let Some(c) = cursor {
                stats.cursor = Some(c.to_string());
            }
            streams.insert(id, encode_stats(&stats).as_slice())?;
            stats
        };
        w.commit()?;
        Ok(Some(stats))
    }

    pub fn stats(&self, id: u64) -> Result<Option<StreamStats>, LogsError> {
        let r = self.db.begin_read()?;
        let streams = r.open_table(STREAMS)?;
        let found = streams.get(id)?;
        found.map(|v| decode_stats(v.value())).transpose()
    }

    /// Counters of several streams, in the order of `ids`.
    pub fn stats_many(&self, ids: &[u64]) -> Result<Vec<Option<StreamStats>>, LogsError> {
        let r = self.db.begin_read()?;
        let streams = r.open_table(STREAMS)?;
        ids.iter()
            .map(|&id| {
                let found = streams.get(id)?;
                found.map(|v| decode_stats(v.value())).transpose()
            })
            .collect()
    }

    /// Every counters row: (stream id, counters).
    pub fn all_stats(&self) -> Result<Vec<(u64, StreamStats)>, LogsError> {
        let r = self.db.begin_read()?;
        let streams = r.open_table(STREAMS)?;
        let mut out = Vec::new();
        for item in streams.iter()? {
            let (k, v) = item?;
            out.push((k.value(), decode_stats(v.value())?));
        }
        Ok(out)
    }

    /// At most `limit` events of one stream between `lo` (included) and `hi` (excluded), in ascending order:
    /// the first ones of the range, or the last ones when `backward`. Stops early once `max_bytes` of messages
    /// are collected (at least one event is returned when any exists).
    pub fn read(
        &self,
        id: u64,
        lo: Option<Position>,
        hi: Option<Position>,
        backward: bool,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredEvent>, LogsError> {
        let Some(b) = bounds(id, lo, hi) else {
            return Ok(Vec::new());
        };
        let r = self.db.begin_read()?;
        let table = r.open_table(EVENTS)?;
        let range = table.range::<Key>(b)?;
        let iter: Box<dyn Iterator<Item = Item>> = if backward {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for item in iter {
            if out.len() >= limit {
                break;
            }
            let e = to_event(item)?;
            bytes += e.message.len();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(e);
        }
        if backward {
            out.reverse();
        }
        Ok(out)
    }

    /// Visits the events of several streams merged in (timestamp, stream id, sequence) order, ascending or
    /// descending, until `visit` says to stop. Returns whether events remain that were not taken.
    pub fn scan(
        &self,
        ranges: &[ScanRange],
        descending: bool,
        mut visit: impl FnMut(StoredEvent) -> Visit,
    ) -> Result<bool, LogsError> {
        let r = self.db.begin_read()?;
        let table = r.open_table(EVENTS)?;
        let order = |e: &StoredEvent| {
            let k = (ordered(e.timestamp), e.stream, e.seq);
            if descending {
                (!k.0, !k.1, !k.2)
            } else {
                k
            }
        };
        let mut iters: Vec<Box<dyn Iterator<Item = Item>>> = Vec::new();
        let mut pending: Vec<Option<StoredEvent>> = Vec::new();
        let mut heap = BinaryHeap::new();
        for range in ranges {
            let Some(b) = bounds(range.stream, range.lo, range.hi) else {
                continue;
            };
            let r = table.range::<Key>(b)?;
            let mut it: Box<dyn Iterator<Item = Item>> = if descending {
                Box::new(r.rev())
            } else {
                Box::new(r)
            };
            if let Some(item) = it.next() {
                let e = to_event(item)?;
                heap.push(Reverse((order(&e), iters.len())));
                pending.push(Some(e));
                iters.push(it);
            }
        }
        while let Some(Reverse((_, i))) = heap.pop() {
            let Some(event) = pending[i].take() else {
                continue;
            };
            if let Some(item) = iters[i].next() {
                let e = to_event(item)?;
                heap.push(Reverse((order(&e), i)));
                pending[i] = Some(e);
            }
            match visit(event) {
                Visit::Take => {}
                Visit::TakeAndStop => return Ok(!heap.is_empty()),
                Visit::StopBefore => return Ok(true),
            }
        }
        Ok(false)
    }

    /// Deletes the events older than each stream's cutoff (`(stream id, cutoff ms)`), in one transaction, and
    /// updates the counters. Returns how many events were deleted.
    pub fn expire(&self, cutoffs: &[(u64, i64)]) -> Result<u64, LogsError> {
        let w = self.db.begin_write()?;
        let mut removed = 0u64;
        {
            let mut events = w.open_table(EVENTS)?;
            let mut streams = w.open_table(STREAMS)?;
            for &(id, cutoff) in cutoffs {
                let Some(b) = bounds(id, None, Some(Position::at(cutoff))) else {
                    continue;
                };
                let (mut count, mut bytes) = (0u64, 0u64);
                events.retain_in::<Key, _>(b, |_, (_, message)| {
                    count += 1;
                    bytes += message.len() as u64;
                    false
                })?;
                if count == 0 {
                    continue;
                }
                removed += count;
                let current = match streams.get(id)? {
                    Some(v) => Some(decode_stats(v.value())?),
                    None => None,
                };
                let Some(mut stats) = current else { continue };
                stats.stored_bytes = stats.stored_bytes.saturating_sub(bytes);
                let (first, last) = match bounds(id, None, None) {
                    Some(all) => {
                        let mut range = events.range::<Key>(all)?;
                        let first = range.next().transpose()?.map(|(k, _)| k.value().1);
                        let last = range
                            .next_back()
                            .transpose()?
                            .map(|(k, _)| k.value().1)
                            .or(first);
                        (first, last)
                    }
                    None => (None, None),
                };
                stats.first_event = first;
                stats.last_event = last;
                streams.insert(id, encode_stats(&stats).as_slice())?;
            }
        }
        if removed == 0 {
            w.abort()?;
        } else {
            w.commit()?;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts: i64, m: &str) -> LogEvent {
        LogEvent {
            timestamp: ts,
            message: m.into(),
        }
    }

    #[test]
    fn appends_read_in_key_order() {
        let s = EventStore::in_memory().unwrap();
        s.create_stream(1, 0).unwrap();
        s.create_stream(2, 0).unwrap();
        s.append(1, &[ev(30, "c"), ev(10, "a")], 100, Some("cur1"))
            .unwrap()
            .unwrap();
        s.append(1, &[ev(20, "b"), ev(30, "d")], 101, None)
            .unwrap()
            .unwrap();
        s.append(2, &[ev(15, "x")], 102, None).unwrap().unwrap();
        let all: Vec<String> = s
            .read(1, None, None, false, 100, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(all, ["a", "b", "c", "d"]);
        let last2: Vec<String> = s
            .read(1, None, None, true, 2, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(last2, ["c", "d"]);
        let mid: Vec<String> = s
            .read(
                1,
                Some(Position::at(20)),
                Some(Position::at(30)),
                false,
                100,
                usize::MAX,
            )
            .unwrap()
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(mid, ["b"]);
        let stats = s.stats(1).unwrap().unwrap();
        assert_eq!(
            (
                stats.first_event,
                stats.last_event,
                stats.stored_bytes,
                stats.uploads
            ),
            (Some(10), Some(30), 4, 2)
        );
        assert_eq!(stats.cursor.as_deref(), Some("cur1"));
        assert!(s.append(9, &[ev(1, "x")], 1, None).unwrap().is_none());
    }

    #[test]
    fn byte_cap_keeps_at_least_one_event() {
        let s = EventStore::in_memory().unwrap();
        s.create_stream(1, 0).unwrap();
        s.append(1, &[ev(1, "aaaa"), ev(2, "bbbb"), ev(3, "cccc")], 0, None)
            .unwrap();
        assert_eq!(s.read(1, None, None, false, 100, 2).unwrap().len(), 1);
        assert_eq!(s.read(1, None, None, false, 100, 8).unwrap().len(), 2);
    }

    #[test]
    fn scans_merge_streams() {
        let s = EventStore::in_memory().unwrap();
        for id in [1, 2] {
            s.create_stream(id, 0).unwrap();
        }
        s.append(1, &[ev(1, "1a"), ev(3, "1c"), ev(5, "1e")], 0, None)
            .unwrap();
        s.append(2, &[ev(2, "2b"), ev(3, "2c"), ev(4, "2d")], 0, None)
            .unwrap();
        let ranges = [
            ScanRange {
                stream: 1,
                lo: None,
                hi: None,
            },
            ScanRange {
                stream: 2,
                lo: None,
                hi: None,
            },
        ];
        let mut seen = Vec::new();
        let more = s.scan(&ranges, false, |e| {
            seen.push(e.message);
            Visit::Take
        });
        assert!(!more.unwrap());
        assert_eq!(seen, ["1a", "2b", "1c", "2c", "2d", "1e"]);
        let mut seen = Vec::new();
        let more = s.scan(&ranges, true, |e| {
            seen.push(e.message);
            if seen.len() < 3 {
                Visit::Take
            } else {
                Visit::TakeAndStop
            }
        });
        assert!(more.unwrap());
        assert_eq!(seen, ["1e", "2d", "2c"]);
        // Stopping before the last event leaves it for later.
        let one = [ScanRange {
            stream: 1,
            lo: Some(Position::at(5)),
            hi: None,
        }];
        assert!(s.scan(&one, false, |_| Visit::StopBefore).unwrap());
        assert!(!s.scan(&one, false, |_| Visit::TakeAndStop).unwrap());
    }

    #[test]
    fn expiry_and_drop() {
        let s = EventStore::in_memory().unwrap();
        s.create_stream(1, 0).unwrap();
        s.append(1, &[ev(1, "old"), ev(2, "old"), ev(10, "new")], 0, None)
            .unwrap();
        assert_eq!(s.expire(&[(1, 5)]).unwrap(), 2);
        let stats = s.stats(1).unwrap().unwrap();
        assert_eq!(
            (stats.first_event, stats.last_event, stats.stored_bytes),
            (Some(10), Some(10), 3)
        );
        assert_eq!(s.expire(&[(1, 5)]).unwrap(), 0);
        s.drop_streams(&[1]).unwrap();
        assert!(s.stats(1).unwrap().is_none());
        assert!(s
            .read(1, None, None, false, 10, usize::MAX)
            .unwrap()
            .is_empty());
    }
}
