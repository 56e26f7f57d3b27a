//! Gantry's store: a key-value map with one global revision, shaped after etcd so that an etcd backend can come
//! later. `get` and `range` read an in-memory copy; `txn` checks compare-and-swap conditions and commits durably
//! (a write-ahead log with group commit, and snapshots); `watch` streams changes under a prefix from a revision.
//! It knows nothing of what the keys mean.

mod disk;
mod error;
pub mod lease;
mod types;
mod wal_store;
mod watch;

pub use error::StoreError;
pub use types::{Compare, Event, EventKind, KeyValue, Txn, TxnOutcome};
pub use wal_store::{Options, WalStore};
pub use watch::Watcher;

use std::future::Future;
use std::sync::Arc;

/// A callback for committed changes, given those of one commit at a time; see [`Store::observe`].
pub type Observer = Arc<dyn Fn(&[&Event]) + Send + Sync>;

/// The store interface every backend implements.
pub trait Store: Send + Sync + 'static {
    /// The value at `key`, if any.
    fn get(&self, key: &str) -> Option<KeyValue>;

    /// Every key-value whose key starts with `prefix`, in key order.
    fn range(&self, prefix: &str) -> Vec<KeyValue>;

    /// The revision of the last committed transaction.
    fn revision(&self) -> u64;

    /// Applies `txn` atomically if all its compares hold; durable when it returns `Committed`.
    fn txn(&self, txn: Txn) -> impl Future<Output = Result<TxnOutcome, StoreError>> + Send;

    /// Changes under `prefix` after `from_revision` (exclusive), then every change as it commits.
    fn watch(&self, prefix: &str, from_revision: u64) -> Result<Watcher, StoreError>;

    /// Registers `observer` for every change under `prefix` and returns what is under `prefix` now, atomically:
    /// the observer sees exactly the changes after that snapshot, in revision order, each before the `txn` that
    /// made it returns (so an index it feeds is never behind a caller's own writes). The changes of transactions
    /// committed together come in one call. Observers run on the commit path and must be quick and must not call
    /// the store.
    fn observe(&self, prefix: &str, observer: Observer) -> Vec<KeyValue>;
}
