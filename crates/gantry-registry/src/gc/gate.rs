//! The gate between the paths that make a blob referenced and the collector. A linking path (finishing an upload,
//! a cross-repository mount, storing a manifest) holds a shared guard from "the blob file is there" until its link
//! or manifest is committed; the collector deletes only under the exclusive guard, after looking at the store
//! again. So the collector sees either the committed link (and keeps the blob) or no linking in flight (and a push
//! that comes after finds the file gone and writes it again). Pulls never touch the gate.

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

#[derive(Debug, Default)]
pub struct Gate(RwLock<()>);

impl Gate {
    /// Held by a linking path across "file present" and "link committed". Never taken twice by one task (a
    /// waiting collector would deadlock it).
    pub async fn shared(&self) -> RwLockReadGuard<'_, ()> {
        self.0.read().await
    }

    /// Held by the collector while it re-checks and deletes one batch.
    pub async fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.0.write().await
    }
}
