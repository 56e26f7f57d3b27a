//! Bytes on disk: committed blobs (content-addressed, immutable) and upload sessions (staged, not yet addressed).

pub mod blobs;
pub mod uploads;
pub mod writer;
