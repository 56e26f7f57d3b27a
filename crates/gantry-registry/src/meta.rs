//! Registry metadata in the `Store`: repositories, tags, manifests (small, stored byte-exact) and the links that make
//! a blob part of a repository. Keys:
//!
//! - `/registry/repos/{name}`: the repository
//! - `/registry/repos/{name}/tags/{tag}`: the manifest digest a tag points at
//! - `/registry/repos/{name}/manifests/{digest}`: the manifest's bytes, media type and references
//! - `/registry/repos/{name}/blobs/{digest}`: the blob is part of the repository
//!
//! `{name}` has its `/` written as `%2F` (a name never holds `%`), so that no name is a prefix path of another's keys.

use crate::digest::Digest;
use crate::errors::{RegistryError, Result};
use gantry_store::{Compare, KeyValue, Store, Txn, TxnOutcome};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

const ROOT: &str = "/registry/repos/";
const RETRIES: usize = 8;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RepoRecord {
    pub name: String,
    pub created_at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TagRecord {
    pub digest: String,
    pub updated_at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ManifestRecord {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    /// The exact bytes as pushed (a manifest is JSON, hence UTF-8).
    pub content: String,
    /// Blobs referenced: config, layers.
    pub blobs: Vec<String>,
    /// Manifests referenced by an index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub pushed_at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BlobLink {
    pub size: u64,
    pub linked_at: u64,
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn repo_key(name: &str) -> String {
    format!("{ROOT}{}", name.replace('/', "%2F"))
}

pub fn tag_prefix(name: &str) -> String {
    format!("{}/tags/", repo_key(name))
}

pub fn tag_key(name: &str, tag: &str) -> String {
    format!("{}{tag}", tag_prefix(name))
}

pub fn manifest_key(name: &str, digest: &str) -> String {
    format!("{}/manifests/{digest}", repo_key(name))
}

pub fn blob_key(name: &str, digest: &str) -> String {
    format!("{}/blobs/{digest}", repo_key(name))
}

fn decode<T: DeserializeOwned>(kv: &KeyValue) -> Option<T> {
    serde_json::from_slice(&kv.value).ok()
}

fn encode<T: Serialize>(t: &T) -> Vec<u8> {
    serde_json::to_vec(t).expect("records serialize")
}

/// Metadata operations over any `Store`.
pub struct Meta<S: Store> {
    store: S,
}

impl<S: Store> Meta<S> {
    pub fn new(store: S) -> Meta<S> {
        Meta { store }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn repo_exists(&self, name: &str) -> bool {
        self.store.get(&repo_key(name)).is_some()
    }

    /// Adds the repository's creation to `txn` when it does not exist yet (guarded, so two creators conflict).
    // Repositories are created implicitly by the first push for now; the ECR API (CreateRepository) will take over.
    fn ensure_repo(&self, name: &str, txn: Txn) -> Txn {
        if self.repo_exists(name) {
            return txn;
        }
        let key = repo_key(name);
        txn.compare(Compare::absent(key.clone())).put(
            key,
            encode(&RepoRecord {
                name: name.to_string(),
                created_at: now(),
            }),
        )
    }

    async fn commit(&self, txn: Txn) -> Result<bool> {
        Ok(matches!(
            self.store.txn(txn).await?,
            TxnOutcome::Committed { .. }
        ))
    }

    pub fn blob_link(&self, name: &str, digest: &Digest) -> Option<BlobLink> {
        self.store
            .get(&blob_key(name, digest.as_str()))
            .and_then(|kv| decode(&kv))
    }

    /// Makes the blob part of the repository (creating the repository if needed).
    pub async fn link_blob(&self, name: &str, digest: &Digest, size: u64) -> Result<()> {
        for _ in 0..RETRIES {
            let link = BlobLink {
                size,
                linked_at: now(),
            };
            let txn = self
                .ensure_repo(name, Txn::new())
                .put(blob_key(name, digest.as_str()), encode(&link));
            if self.commit(txn).await? {
                return Ok(());
            }
        }
        Err(RegistryError::Conflict)
    }

    /// Removes the blob from the repository; false when it was not there.
    pub async fn unlink_blob(&self, name: &str, digest: &Digest) -> Result<bool> {
        let key = blob_key(name, digest.as_str());
        for _ in 0..RETRIES {
            let Some(kv) = self.store.get(&key) else {
                return Ok(false);
            };
            if self
                .commit(
                    Txn::new()
                        .compare(Compare::unchanged(&kv))
                        .delete(key.clone()),
                )
                .await?
            {
                return Ok(true);
            }
        }
        Err(RegistryError::Conflict)
    }

    pub fn manifest(&self, name: &str, digest: &Digest) -> Option<ManifestRecord> {
        self.store
            .get(&manifest_key(name, digest.as_str()))
            .and_then(|kv| decode(&kv))
    }

    pub fn tag(&self, name: &str, tag: &str) -> Option<Digest> {
        let rec: TagRecord = self
            .store
            .get(&tag_key(name, tag))
            .and_then(|kv| decode(&kv))?;
        Digest::parse(&rec.digest)
    }

    /// Every tag of the repository, in lexical order.
    pub fn tags(&self, name: &str) -> Vec<String> {
        let prefix = tag_prefix(name);
        self.store
            .range(&prefix)
            .into_iter()
            .map(|kv| kv.key[prefix.len()..].to_string())
            .collect()
    }

    /// Stores a manifest (and points `tag` at it) if every blob and child manifest it references is in the
    /// repository. The references are guarded in the transaction, so a concurrent delete cannot slip in between.
    pub async fn put_manifest(
        &self,
        name: &str,
        rec: &ManifestRecord,
        tag: Option<&str>,
    ) -> Result<()> {
        for _ in 0..RETRIES {
            let mut txn = self.ensure_repo(name, Txn::new());
            for b in &rec.blobs {
                let kv = self
                    .store
                    .get(&blob_key(name, b))
                    .ok_or_else(|| RegistryError::ManifestBlobUnknown(b.clone()))?;
                txn = txn.compare(Compare::unchanged(&kv));
            }
            for m in &rec.manifests {
                let kv = self
                    .store
                    .get(&manifest_key(name, m))
                    .ok_or_else(|| RegistryError::ManifestBlobUnknown(m.clone()))?;
                txn = txn.compare(Compare::unchanged(&kv));
            }
            let key = manifest_key(name, &rec.digest);
            if self.store.get(&key).is_none() {
                txn = txn
                    .compare(Compare::absent(key.clone()))
                    .put(key, encode(rec));
            }
            if let Some(tag) = tag {
                let t = TagRecord {
                    digest: rec.digest.clone(),
                    updated_at: now(),
                };
                txn = txn.put(tag_key(name, tag), encode(&t));
            }
            if self.commit(txn).await? {
                return Ok(());
            }
        }
        Err(RegistryError::Conflict)
    }

    /// Deletes a manifest and every tag pointing at it; false when it was not there.
    pub async fn delete_manifest(&self, name: &str, digest: &Digest) -> Result<bool> {
        for _ in 0..RETRIES {
            let key = manifest_key(name, digest.as_str());
            let Some(kv) = self.store.get(&key) else {
                return Ok(false);
            };
            let mut txn = Txn::new().compare(Compare::unchanged(&kv)).delete(key);
            for t in self.store.range(&tag_prefix(name)) {
                if decode::<TagRecord>(&t).is_some_and(|r| r.digest == digest.as_str()) {
                    txn = txn.compare(Compare::unchanged(&t)).delete(t.key.clone());
                }
            }
            if self.commit(txn).await? {
                return Ok(true);
            }
        }
        Err(RegistryError::Conflict)
    }

    /// Deletes a tag (not the manifest); false when it was not there.
    pub async fn delete_tag(&self, name: &str, tag: &str) -> Result<bool> {
        let key = tag_key(name, tag);
        for _ in 0..RETRIES {
            let Some(kv) = self.store.get(&key) else {
                return Ok(false);
            };
            if self
                .commit(
                    Txn::new()
                        .compare(Compare::unchanged(&kv))
                        .delete(key.clone()),
                )
                .await?
            {
                return Ok(true);
            }
        }
        Err(RegistryError::Conflict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_store::RedbStore;

    #[test]
    fn keys_do_not_collide() {
        assert_eq!(repo_key("a/b"), "/registry/repos/a%2Fb");
        assert_eq!(tag_key("a/b", "v1"), "/registry/repos/a%2Fb/tags/v1");
        // Repository "a/tags" is not repository "a"'s tags.
        assert!(!tag_key("a/tags", "x").starts_with(&tag_prefix("a")));
        assert!(!repo_key("ab").starts_with(&format!("{}/", repo_key("a"))));
    }

    #[tokio::test]
    async fn manifests_need_their_blobs() {
        let meta = Meta::new(RedbStore::in_memory().unwrap());
        let layer = Digest::of(b"layer");
        let content = "{}".to_string();
        let rec = ManifestRecord {
            digest: Digest::of(content.as_bytes()).to_string(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 2,
            content,
            blobs: vec![layer.to_string()],
            manifests: vec![],
            subject: None,
            artifact_type: None,
            pushed_at: 0,
        };
        assert!(matches!(
            meta.put_manifest("a/b", &rec, Some("v1")).await,
            Err(RegistryError::ManifestBlobUnknown(_))
        ));
        assert!(!meta.repo_exists("a/b"));
        meta.link_blob("a/b", &layer, 5).await.unwrap();
        assert!(meta.repo_exists("a/b"));
        meta.put_manifest("a/b", &rec, Some("v1")).await.unwrap();
        meta.put_manifest("a/b", &rec, Some("v2")).await.unwrap();
        let d = Digest::parse(&rec.digest).unwrap();
        assert_eq!(meta.tag("a/b", "v1"), Some(d.clone()));
        assert_eq!(meta.tags("a/b"), vec!["v1", "v2"]);
        assert_eq!(meta.manifest("a/b", &d).unwrap(), rec);
        assert!(meta.delete_tag("a/b", "v2").await.unwrap());
        assert!(meta.delete_manifest("a/b", &d).await.unwrap());
        assert!(meta.tags("a/b").is_empty());
        assert!(!meta.delete_manifest("a/b", &d).await.unwrap());
        assert!(meta.unlink_blob("a/b", &layer).await.unwrap());
        assert!(meta.blob_link("a/b", &layer).is_none());
    }
}
