//! Gantry's container registry: the OCI distribution API under `/v2/`, content-addressed blob storage on disk, and
//! manifests, tags and blob links in the `Store`. It owns the registry's files under `{data_dir}/registry/` and its
//! keys under `/registry/`. It must not know about ECS, the edge router or how identities are checked: the server
//! mounts `router` and (later) puts authentication in front of it.

pub mod api;
pub mod digest;
pub mod ecr;
pub mod errors;
pub mod manifest;
pub mod meta;
pub mod names;
pub mod storage;

pub use api::router;
pub use digest::Digest;
pub use errors::RegistryError;

use gantry_store::Store;
use meta::Meta;
use std::path::Path;
use storage::blobs::BlobStore;
use storage::uploads::Uploads;

/// Largest manifest accepted (413 above).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// The registry: blob files, upload sessions and metadata.
pub struct Registry<S: Store> {
    pub(crate) meta: Meta<S>,
    pub(crate) blobs: BlobStore,
    pub(crate) uploads: Uploads,
}

impl<S: Store> Registry<S> {
    /// Opens the registry over `store`, with its files under `{data_dir}/registry/`. Upload sessions of a previous
    /// run are discarded (their clients retry the push).
    pub fn open(store: S, data_dir: &Path) -> Result<Registry<S>, RegistryError> {
        let dir = data_dir.join("registry");
        Ok(Registry {
            meta: Meta::new(store),
            blobs: BlobStore::open(&dir)?,
            uploads: Uploads::open(&dir)?,
        })
    }

    pub fn store(&self) -> &S {
        self.meta.store()
    }
}
