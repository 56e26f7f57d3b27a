//! Garbage collection, online. A pass lists the blob files and reads the metadata, decides with the pure `plan`
//! which blob links (unreferenced and older than the grace period: abandoned pushes) and which blob files
//! (referenced by no manifest and no live link in any repository) are garbage, then applies that batch by batch:
//! under the gate's exclusive guard it reads the metadata again, keeps whatever became referenced meanwhile, and
//! deletes the rest. Idle upload sessions and stray staged files go too. Pushes and pulls go on meanwhile; a push
//! only waits at its linking step while a batch is being deleted.

pub mod admin;
pub mod gate;
pub mod plan;
mod run;

use serde::Serialize;

/// The knobs of a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcOptions {
    /// Seconds a blob link no manifest of its repository references is kept (a push in progress links its layers
    /// before it puts the manifest).
    pub link_grace_secs: u64,
    /// Seconds an upload session may stay idle.
    pub upload_expiry_secs: u64,
}

impl Default for GcOptions {
    fn default() -> GcOptions {
        GcOptions {
            link_grace_secs: 3600,
            upload_expiry_secs: 3600,
        }
    }
}

/// What a pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GcReport {
    pub blobs_removed: u64,
    /// Blob files and staged upload bytes.
    pub bytes_freed: u64,
    pub links_removed: u64,
    pub uploads_removed: u64,
}

/// A pass's decision, not applied yet (`Registry::gc_apply` looks again before deleting).
#[derive(Debug, Clone)]
pub struct GcPass {
    pub now: u64,
    pub options: GcOptions,
    pub plan: plan::Plan,
}
