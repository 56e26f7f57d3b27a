//! Gantry's container registry: the OCI distribution API under `/v2/`, content-addressed blob storage on disk, and
//! manifests, tags and blob links in the `Store`. It owns the registry's files under `{data_dir}/registry/` and its
//! keys under `/registry/`, and checks the login tokens it hands out (ECR's GetAuthorizationToken). It must not know
//! about ECS or the edge router: the server mounts `router` beside them.

pub mod api;
pub mod digest;
pub mod ecr;
pub mod errors;
pub mod gc;
pub mod lifecycle;
pub mod manifest;
pub mod meta;
pub mod names;
pub mod storage;
pub mod token;

pub use api::router;
pub use digest::Digest;
pub use errors::RegistryError;

use gantry_store::Store;
use meta::Meta;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use storage::blobs::BlobStore;
use storage::uploads::Uploads;
use token::TokenAuthority;

/// Largest manifest accepted (413 above).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// The registry: blob files, upload sessions and metadata.
pub struct Registry<S: Store> {
    pub(crate) meta: Meta<S>,
    pub(crate) blobs: BlobStore,
    pub(crate) uploads: Uploads,
    pub(crate) tokens: TokenAuthority,
    /// When set, every `/v2/` request needs a token from `tokens` (ECR's rule); a plain OCI registry is open.
    auth_required: AtomicBool,
    /// Held by a garbage collection pass, so that two never overlap.
    gc_running: tokio::sync::Mutex<()>,
}

impl<S: Store> Registry<S> {
    /// Opens the registry over `store`, with its files under `{data_dir}/registry/`. Resumable upload sessions of a
    /// previous run are taken up again.
    pub fn open(store: S, data_dir: &Path) -> Result<Registry<S>, RegistryError> {
        let dir = data_dir.join("registry");
        Ok(Registry {
            meta: Meta::new(store),
            blobs: BlobStore::open(&dir)?,
            uploads: Uploads::open(&dir)?,
            tokens: TokenAuthority::open(&dir)?,
            auth_required: AtomicBool::new(false),
            gc_running: tokio::sync::Mutex::new(()),
        })
    }

    pub fn store(&self) -> &S {
        self.meta.store()
    }

    /// From now on, `/v2/` requests need a valid login token (HTTP Basic `AWS:<token>` or a bearer token).
    pub fn require_auth(&self) {
        self.auth_required.store(true, Ordering::Relaxed);
    }

    pub(crate) fn auth_required(&self) -> bool {
        self.auth_required.load(Ordering::Relaxed)
    }

    /// A login token valid for `lifetime_secs` from now, and its expiry (epoch seconds). The server hands these
    /// to its agents so that tasks pull from this registry without the user logging in.
    pub fn issue_token(&self, lifetime_secs: u64) -> (String, u64) {
        let expires_at = meta::now() + lifetime_secs;
        (self.tokens.issue(expires_at), expires_at)
    }
}
