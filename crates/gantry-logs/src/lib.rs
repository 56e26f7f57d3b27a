//! CloudWatch Logs: the `Logs_20140328` JSON API (log groups, streams, events, retention, tags) and the storage of
//! log events. Group and stream metadata live in the `Store`; events live in their own durable redb file under
//! `{data_dir}/logs/`, keyed by (stream, timestamp, sequence) so that reads follow the key order. The agent's
//! `awslogs` driver ships batches through [`LogsService::put_batch`].
//! It knows nothing of ECS, tasks, containers or HTTP: the edge routes requests here, and whoever ships logs
//! calls the public methods.

mod errors;
mod events;
mod filter;
mod groups;
mod ingest;
mod keys;
mod query;
mod records;
mod retention;
mod service;
mod streams;
mod tags;
mod tokens;
mod validate;

pub use errors::LogsError;
pub use retention::{RETENTION_DAYS, RETENTION_INTERVAL};
pub use service::LogsService;
