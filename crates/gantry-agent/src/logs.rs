//! Log shipping for the `awslogs` driver: containers keep Docker's json-file driver; the agent follows their
//! stdout and stderr with Docker's timestamps and ships batches with [`AgentApi::put_logs`]. Each batch carries
//! the timestamp of its last line, in the log's own order, as the cursor. Docker replays a log from a whole second
//! and does not keep stdout and stderr lines in timestamp order, so on (re)start the agent asks the server for the
//! cursor and skips the replayed lines up to the line that carries exactly that timestamp: lines written while the
//! agent or the server was down arrive late, but once, and none is lost to the disorder.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use gantry_model::agent::{AgentApi, LogBatch, LogEvent, TaskSpec};
use gantry_model::ecs::ContainerDefinition;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::runtime::{Runtime, RuntimeError};
use crate::translate::task_id;

/// CloudWatch Logs counts 26 bytes of overhead per event.
const EVENT_OVERHEAD: usize = 26;
/// CloudWatch Logs takes at most 10,000 events in one batch.
const MAX_EVENTS: usize = 10_000;

/// Where a container's lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTarget {
    pub group: String,
    pub stream: String,
    pub create_group: bool,
}

/// The `awslogs` destination of a container, if it has one: stream `prefix/container-name/task-id`, or, without a
/// prefix, the Docker container id (what Docker's awslogs driver names it on ECS).
pub fn target(task: &TaskSpec, def: &ContainerDefinition, container_id: &str) -> Option<LogTarget> {
    let config = def
        .log_configuration
        .as_ref()
        .filter(|c| c.log_driver == "awslogs")?;
    let options = config.options.clone().unwrap_or_default();
    let group = options
        .get("awslogs-group")
        .filter(|g| !g.is_empty())?
        .clone();
    let id = task_id(&task.task_arn);
    let stream = match options
        .get("awslogs-stream-prefix")
        .filter(|p| !p.is_empty())
    {
        Some(prefix) => format!("{prefix}/{}/{id}", def.name()),
        None => container_id.to_string(),
    };
    let create_group = options
        .get("awslogs-create-group")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    Some(LogTarget {
        group,
        stream,
        create_group,
    })
}

/// Epoch nanoseconds of an RFC3339 timestamp such as Docker's `2024-05-01T12:00:00.123456789Z`.
pub fn parse_timestamp(s: &str) -> Option<i128> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos())
}

/// Docker's RFC3339Nano form of epoch nanoseconds (always nine digits, UTC).
pub fn format_timestamp(nanos: i128) -> String {
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(nanos) else {
        return String::new();
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

/// A line of output: Docker's timestamp (as sent, and in nanoseconds) and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub stamp: String,
    pub nanos: i128,
    pub message: String,
}

/// Splits a timestamped line; `None` when it does not start with a timestamp.
pub fn parse_line(line: &str) -> Option<Line> {
    let (stamp, message) = line.split_once(' ').unwrap_or((line, ""));
    let nanos = parse_timestamp(stamp)?;
    let message = message.strip_suffix('\r').unwrap_or(message);
    Some(Line {
        stamp: stamp.to_string(),
        nanos,
        message: message.to_string(),
    })
}

/// Cuts the engine's chunks into lines, keeping an unfinished line for the next chunk.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(chunk);
        let mut lines = Vec::new();
        while let Some(i) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            lines.push(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
        }
        lines
    }

    /// The unfinished line, if any, once the output ended.
    pub fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let line = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        Some(line)
    }
}

/// How the shipper batches and retries.
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub flush_interval: Duration,
    pub batch_bytes: usize,
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

struct Shipper<A> {
    api: Arc<A>,
    target: LogTarget,
    settings: LogSettings,
    /// The last line shipped, in log order: nanoseconds and Docker's stamp.
    cursor: Option<(i128, String)>,
    /// Set while a reopened log replays lines already shipped: skip up to the line stamped like this.
    resume: Option<(i128, String)>,
    events: Vec<LogEvent>,
    bytes: usize,
    last: Option<(i128, String)>,
}

/// Out-of-order lines are microseconds apart; when the resume line is not found (the log was rotated), lines this
/// far past it are certainly new.
const RESUME_SLACK_NANOS: i128 = 2_000_000_000;

impl<A: AgentApi> Shipper<A> {
    fn accept(&mut self, line: &str) {
        let Some(line) = parse_line(line) else { return };
        if let Some((nanos, stamp)) = &self.resume {
            if line.stamp == *stamp {
                self.resume = None;
                return;
            }
            if line.nanos <= *nanos + RESUME_SLACK_NANOS {
                return;
            }
            self.resume = None;
        }
        self.bytes += line.message.len() + EVENT_OVERHEAD;
        let timestamp = i64::try_from(line.nanos / 1_000_000).unwrap_or(0);
        self.events.push(LogEvent {
            timestamp,
            message: line.message,
        });
        self.last = Some((line.nanos, line.stamp));
    }

    fn full(&self) -> bool {
        self.bytes >= self.settings.batch_bytes || self.events.len() >= MAX_EVENTS
    }

    /// Sends the batch, retrying while the server says retrying helps; a batch it refuses for good is dropped.
    async fn flush(&mut self) {
        if self.events.is_empty() {
            return;
        }
        let batch = LogBatch {
            log_group: self.target.group.clone(),
            log_stream: self.target.stream.clone(),
            create_group: self.target.create_group,
            events: std::mem::take(&mut self.events),
            cursor: self.last.as_ref().map(|(_, stamp)| stamp.clone()),
        };
        let mut backoff = Backoff::new(self.settings.retry_initial, self.settings.retry_max);
        loop {
            match self.api.put_logs(batch.clone()).await {
                Ok(()) => break,
                Err(e) if e.retryable => {
                    tracing::debug!(group = %batch.log_group, stream = %batch.log_stream, error = %e, "log batch not taken, retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(e) => {
                    tracing::warn!(group = %batch.log_group, stream = %batch.log_stream, error = %e, "log batch refused, dropped");
                    break;
                }
            }
        }
        if let Some(last) = self.last.take() {
            self.cursor = Some(last);
        }
        self.bytes = 0;
    }
}

/// Ships the output of one container until it has stopped and every line is shipped.
pub async fn ship<A: AgentApi, R: Runtime>(
    api: Arc<A>,
    runtime: Arc<R>,
    container_id: String,
    target: LogTarget,
    settings: LogSettings,
) {
    let mut backoff = Backoff::new(settings.retry_initial, settings.retry_max);
    let cursor = loop {
        match api.log_cursor(&target.group, &target.stream).await {
            Ok(cursor) => break cursor.and_then(|c| parse_timestamp(&c).map(|n| (n, c))),
            Err(e) if e.retryable => tokio::time::sleep(backoff.next_delay()).await,
            Err(e) => {
                tracing::warn!(group = %target.group, stream = %target.stream, error = %e, "no log cursor, shipping from the start");
                break None;
            }
        }
    };
    backoff.reset();
    let flush_interval = settings.flush_interval;
    let mut shipper = Shipper {
        api,
        target,
        settings,
        cursor,
        resume: None,
        events: Vec::new(),
        bytes: 0,
        last: None,
    };
    loop {
        // A (re)opened log replays from the cursor's whole second.
        shipper.resume = shipper.cursor.clone();
        let since = shipper
            .cursor
            .as_ref()
            .map(|(n, _)| i64::try_from(n / 1_000_000_000).unwrap_or(0))
            .unwrap_or(0);
        let mut output = runtime.logs(&container_id, since, true);
        let mut splitter = LineSplitter::default();
        let mut flush_at: Option<Instant> = None;
        let ended = loop {
            let item = match flush_at {
                Some(at) => tokio::select! {
                    item = output.next() => Some(item),
                    _ = tokio::time::sleep_until(at) => None,
                },
                None => Some(output.next().await),
            };
            match item {
                None => {
                    shipper.flush().await;
                    flush_at = None;
                }
                Some(Some(Ok(chunk))) => {
                    for line in splitter.push(&chunk) {
                        shipper.accept(&line);
                        if shipper.full() {
                            shipper.flush().await;
                            flush_at = None;
                        }
                    }
                    if flush_at.is_none() && !shipper.events.is_empty() {
                        flush_at = Some(Instant::now() + flush_interval);
                    }
                }
                Some(Some(Err(e))) => {
                    tracing::debug!(container = %container_id, error = %e, "log stream broke");
                    break false;
                }
                Some(None) => break true,
            }
        };
        if let Some(line) = splitter.finish() {
            shipper.accept(&line);
        }
        shipper.flush().await;
        match runtime.inspect_container(&container_id).await {
            Ok(state) if !state.is_running() && ended => return,
            Err(RuntimeError::NotFound(_)) => return,
            _ => {}
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_model::ecs::LogConfiguration;
    use std::collections::BTreeMap;

    #[test]
    fn timestamps_round_trip() {
        let n = parse_timestamp("2024-05-01T12:00:00.123456789Z").unwrap();
        assert_eq!(n % 1_000_000_000, 123_456_789);
        assert_eq!(format_timestamp(n), "2024-05-01T12:00:00.123456789Z");
        assert_eq!(
            format_timestamp(parse_timestamp("2024-05-01T12:00:00.5Z").unwrap()),
            "2024-05-01T12:00:00.500000000Z"
        );
        assert!(parse_timestamp("yesterday").is_none());
    }

    #[test]
    fn parses_and_splits_lines() {
        let mut s = LineSplitter::default();
        assert_eq!(
            s.push(b"2024-05-01T12:00:00.000000001Z hello\n2024-05-01T12:00:00.000000002Z wor"),
            vec!["2024-05-01T12:00:00.000000001Z hello".to_string()]
        );
        assert_eq!(
            s.push(b"ld\r\n"),
            vec!["2024-05-01T12:00:00.000000002Z world\r".to_string()]
        );
        assert_eq!(s.finish(), None);
        let line = parse_line("2024-05-01T12:00:00.000000002Z world\r").unwrap();
        assert_eq!(line.message, "world");
        assert_eq!(line.stamp, "2024-05-01T12:00:00.000000002Z");
        assert_eq!(
            parse_line("2024-05-01T12:00:00.000000003Z")
                .unwrap()
                .message,
            ""
        );
        assert!(parse_line("no stamp here").is_none());
    }

    #[test]
    fn targets_follow_awslogs_options() {
        let task = TaskSpec {
            task_arn: "arn:aws:ecs:us-east-1:0:task/default/abc".into(),
            ..Default::default()
        };
        let mut def = ContainerDefinition {
            name: Some("web".into()),
            ..Default::default()
        };
        assert_eq!(target(&task, &def, "c0ffee"), None);
        let mut options = BTreeMap::from([("awslogs-group".to_string(), "/ecs/web".to_string())]);
        def.log_configuration = Some(LogConfiguration {
            log_driver: "awslogs".into(),
            options: Some(options.clone()),
            secret_options: None,
        });
        assert_eq!(
            target(&task, &def, "c0ffee"),
            Some(LogTarget {
                group: "/ecs/web".into(),
                stream: "c0ffee".into(),
                create_group: false
            })
        );
        options.insert("awslogs-stream-prefix".into(), "svc".into());
        options.insert("awslogs-create-group".into(), "true".into());
        def.log_configuration = Some(LogConfiguration {
            log_driver: "awslogs".into(),
            options: Some(options),
            secret_options: None,
        });
        assert_eq!(
            target(&task, &def, "c0ffee"),
            Some(LogTarget {
                group: "/ecs/web".into(),
                stream: "svc/web/abc".into(),
                create_group: true
            })
        );
        def.log_configuration = Some(LogConfiguration {
            log_driver: "json-file".into(),
            ..Default::default()
        });
        assert_eq!(target(&task, &def, "c0ffee"), None);
    }

    fn shipper(cursor: Option<&str>) -> Shipper<crate::testing::FakeApi> {
        let cursor = cursor.map(|c| (parse_timestamp(c).unwrap(), c.to_string()));
        Shipper {
            api: Arc::new(crate::testing::FakeApi::new()),
            target: LogTarget {
                group: "g".into(),
                stream: "s".into(),
                create_group: true,
            },
            settings: LogSettings {
                flush_interval: Duration::from_secs(1),
                batch_bytes: 1 << 20,
                retry_initial: Duration::from_millis(1),
                retry_max: Duration::from_millis(1),
            },
            resume: cursor.clone(),
            cursor,
            events: Vec::new(),
            bytes: 0,
            last: None,
        }
    }

    fn messages<A>(s: &Shipper<A>) -> Vec<&str> {
        s.events.iter().map(|e| e.message.as_str()).collect()
    }

    #[test]
    fn lines_out_of_timestamp_order_are_all_shipped() {
        let mut s = shipper(None);
        s.accept("2024-05-01T12:00:00.000000300Z out 1");
        s.accept("2024-05-01T12:00:00.000000100Z err 1");
        s.accept("2024-05-01T12:00:00.000000400Z out 2");
        assert_eq!(messages(&s), ["out 1", "err 1", "out 2"]);
        // The cursor is the last line in log order, not the latest timestamp.
        assert_eq!(s.last.as_ref().unwrap().1, "2024-05-01T12:00:00.000000400Z");
    }

    #[test]
    fn a_replay_is_skipped_up_to_the_cursor_line_even_when_out_of_order() {
        let mut s = shipper(Some("2024-05-01T12:00:00.000000300Z"));
        // Replayed from the whole second: everything up to the cursor line was shipped before.
        s.accept("2024-05-01T12:00:00.000000500Z shipped, late stamp");
        s.accept("2024-05-01T12:00:00.000000300Z the cursor line");
        // After it, new lines, including one stamped before the cursor.
        s.accept("2024-05-01T12:00:00.000000200Z new, early stamp");
        s.accept("2024-05-01T12:00:01Z new");
        assert_eq!(messages(&s), ["new, early stamp", "new"]);
    }

    #[test]
    fn a_lost_cursor_line_falls_back_to_time() {
        let mut s = shipper(Some("2024-05-01T12:00:00.5Z"));
        s.accept("2024-05-01T12:00:01Z within the slack: taken as shipped");
        s.accept("2024-05-01T12:00:05Z well past it: new");
        assert_eq!(messages(&s), ["well past it: new"]);
    }
}
