//! Registry metadata in the `Store`: repositories, tags, manifests (small, stored byte-exact) and the links that make
//! a blob part of a repository. Keys:
//!
//! - `/registry/repos/{name}`: the repository
//! - `/registry/repos/{name}/tags/{tag}`: the manifest digest a tag points at
//! - `/registry/repos/{name}/manifests/{digest}`: the manifest's bytes, media type and references
//! - `/registry/repos/{name}/blobs/{digest}`: the blob is part of the repository
//! - `/registry/repos/{name}/pulls/{digest}`: when the image was last pulled (epoch seconds)
//!
//! `{name}` has its `/` written as `%2F` (a name never holds `%`), so that no name is a prefix path of another's keys.

use crate::digest::Digest;
use crate::errors::{RegistryError, Result};
use gantry_store::{Compare, KeyValue, Store, Txn, TxnOutcome};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const ROOT: &str = "/registry/repos/";
const RETRIES: usize = 8;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RepoRecord {
    pub name: String,
    pub created_at: u64,
    /// An immutable repository refuses to move an existing tag (ECR's `imageTagMutability: IMMUTABLE`).
    #[serde(default)]
    pub immutable_tags: bool,
    #[serde(default)]
    pub scan_on_push: bool,
    /// The repository's resource tags (ECR TagResource).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The lifecycle policy text as given (ECR PutLifecyclePolicy), checked when it was put.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_policy: Option<String>,
    /// When the lifecycle job last applied the policy (epoch seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_evaluated_at: Option<u64>,
    /// The last lifecycle policy preview (StartLifecyclePolicyPreview).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_preview: Option<PreviewRecord>,
    /// The repository policy text (SetRepositoryPolicy): stored and returned, not yet enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_policy: Option<String>,
}

/// A lifecycle policy preview: the policy it evaluated, when, and the images it would expire.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PreviewRecord {
    pub policy_text: String,
    pub evaluated_at: u64,
    pub results: Vec<PreviewResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PreviewResult {
    pub digest: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    pub pushed_at: u64,
    pub rule_priority: u32,
}

impl RepoRecord {
    pub fn new(name: &str) -> RepoRecord {
        RepoRecord {
            name: name.to_string(),
            created_at: now(),
            immutable_tags: false,
            scan_on_push: false,
            tags: BTreeMap::new(),
            lifecycle_policy: None,
            lifecycle_evaluated_at: None,
            lifecycle_preview: None,
            repository_policy: None,
        }
    }
}

/// What `Meta::delete_repo` did.
#[derive(Debug, PartialEq)]
pub enum RepoDeletion {
    Deleted(RepoRecord),
    NotFound,
    /// The repository holds images and `force` was not given.
    NotEmpty,
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

/// When the image was last pulled (ECR's `lastRecordedPullTime`).
pub fn pull_key(name: &str, digest: &str) -> String {
    format!("{}/pulls/{digest}", repo_key(name))
}

/// A pull is recorded at most this often per image, so that pulls do not each cost a write (ECR too refreshes the
/// time only now and then).
pub const PULL_RECORD_INTERVAL_SECS: u64 = 3600;

fn decode<T: DeserializeOwned>(kv: &KeyValue) -> Option<T> {
    serde_json::from_slice(&kv.value).ok()
}

fn encode<T: Serialize>(t: &T) -> Vec<u8> {
    serde_json::to_vec(t).expect("records serialize")
}

/// Metadata operations over any `Store`.
pub struct Meta<S: Store> {
    store: S,
    /// When set, a push only goes into a repository created beforehand (ECR's rule); otherwise the first push
    /// creates it (a plain OCI registry).
    explicit_repos: AtomicBool,
    /// Shared by the paths that make a blob referenced, exclusive for the garbage collector (see `gc::gate`).
    gate: crate::gc::gate::Gate,
}

impl<S: Store> Meta<S> {
    pub fn new(store: S) -> Meta<S> {
        Meta {
            store,
            explicit_repos: AtomicBool::new(false),
            gate: Default::default(),
        }
    }

    /// From now on, pushes to a repository that was not created beforehand fail with `NAME_UNKNOWN`.
    pub fn require_explicit_repos(&self) {
        self.explicit_repos.store(true, Ordering::Relaxed);
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn repo_exists(&self, name: &str) -> bool {
        self.store.get(&repo_key(name)).is_some()
    }

    /// Whether a push may write into the repository: `NameUnknown` when repositories must be created beforehand and
    /// this one was not. Checked when an upload starts, so that clients fail at once instead of retrying layers.
    pub fn check_push(&self, name: &str) -> Result<()> {
        if self.explicit_repos.load(Ordering::Relaxed) && !self.repo_exists(name) {
            return Err(RegistryError::NameUnknown);
        }
        Ok(())
    }

    /// The repository and its stored form (for guarded updates).
    pub fn repo(&self, name: &str) -> Option<(KeyValue, RepoRecord)> {
        let kv = self.store.get(&repo_key(name))?;
        let rec = decode(&kv)?;
        Some((kv, rec))
    }

    /// Every repository, sorted by name.
    pub fn repos(&self) -> Vec<RepoRecord> {
        let mut out: Vec<RepoRecord> = self
            .store
            .range(ROOT)
            .iter()
            .filter(|kv| !kv.key[ROOT.len()..].contains('/'))
            .filter_map(decode)
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Creates the repository; false when it exists already.
    pub async fn create_repo(&self, rec: &RepoRecord) -> Result<bool> {
        let key = repo_key(&rec.name);
        let txn = Txn::new()
            .compare(Compare::absent(key.clone()))
            .put(key, encode(rec));
        self.commit(txn).await
    }

    /// Applies `change` to the repository with compare-and-swap; `None` when it does not exist.
    pub async fn update_repo(
        &self,
        name: &str,
        change: impl Fn(&mut RepoRecord),
    ) -> Result<Option<RepoRecord>> {
        for _ in 0..RETRIES {
            let Some((kv, mut rec)) = self.repo(name) else {
                return Ok(None);
            };
            change(&mut rec);
            let txn = Txn::new()
                .compare(Compare::unchanged(&kv))
                .put(kv.key.clone(), encode(&rec));
            if self.commit(txn).await? {
                return Ok(Some(rec));
            }
        }
        Err(RegistryError::Conflict)
    }

    /// Deletes the repository with its tags, manifests and blob links (the blobs stay for the GC). Without `force`,
    /// a repository holding manifests is kept.
    pub async fn delete_repo(&self, name: &str, force: bool) -> Result<RepoDeletion> {
        for _ in 0..RETRIES {
            let Some((kv, rec)) = self.repo(name) else {
                return Ok(RepoDeletion::NotFound);
            };
            if !force && !self.manifests(name).is_empty() {
                return Ok(RepoDeletion::NotEmpty);
            }
            let txn = Txn::new()
                .compare(Compare::unchanged(&kv))
                .delete(kv.key.clone())
                .delete_prefix(format!("{}/", kv.key));
            if self.commit(txn).await? {
                return Ok(RepoDeletion::Deleted(rec));
            }
        }
        Err(RegistryError::Conflict)
    }

    /// Every manifest of the repository, in digest order.
    pub fn manifests(&self, name: &str) -> Vec<ManifestRecord> {
        let prefix = format!("{}/manifests/", repo_key(name));
        self.store
            .range(&prefix)
            .iter()
            .filter_map(decode)
            .collect()
    }

    /// Every tag of the repository with the digest it points at, in tag order.
    pub fn tag_records(&self, name: &str) -> Vec<(String, TagRecord)> {
        let prefix = tag_prefix(name);
        self.store
            .range(&prefix)
            .iter()
            .filter_map(|kv| Some((kv.key[prefix.len()..].to_string(), decode(kv)?)))
            .collect()
    }

    /// Guards `txn` on the repository, or adds its creation when it does not exist yet and pushes may create
    /// repositories (guarded, so two creators conflict). Returns the repository.
    fn ensure_repo(&self, name: &str, txn: Txn) -> Result<(Txn, RepoRecord)> {
        if let Some((kv, rec)) = self.repo(name) {
            return Ok((txn.compare(Compare::unchanged(&kv)), rec));
        }
        if self.explicit_repos.load(Ordering::Relaxed) {
            return Err(RegistryError::NameUnknown);
        }
        let key = repo_key(name);
        let rec = RepoRecord::new(name);
        Ok((
            txn.compare(Compare::absent(key.clone()))
                .put(key, encode(&rec)),
            rec,
        ))
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
            let (txn, _) = self.ensure_repo(name, Txn::new())?;
            let txn = txn.put(blob_key(name, digest.as_str()), encode(&link));
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

    /// When the image was last pulled, if ever.
    pub fn last_pull(&self, name: &str, digest: &str) -> Option<u64> {
        let kv = self.store.get(&pull_key(name, digest))?;
        std::str::from_utf8(&kv.value).ok()?.parse().ok()
    }

    /// Records a pull of the image now, unless one was recorded within [`PULL_RECORD_INTERVAL_SECS`].
    pub async fn record_pull(&self, name: &str, digest: &Digest) -> Result<()> {
        let now = now();
        if self
            .last_pull(name, digest.as_str())
            .is_some_and(|t| now < t + PULL_RECORD_INTERVAL_SECS)
        {
            return Ok(());
        }
        // Only while the manifest exists, so that a pull racing a delete leaves nothing behind.
        let Some(manifest) = self.store.get(&manifest_key(name, digest.as_str())) else {
            return Ok(());
        };
        let txn = Txn::new().compare(Compare::unchanged(&manifest)).put(
            pull_key(name, digest.as_str()),
            now.to_string().into_bytes(),
        );
        self.commit(txn).await?;
        Ok(())
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
    /// In a repository with immutable tags, moving an existing tag to another manifest is `TagInvalid`.
    pub async fn put_manifest(
        &self,
        name: &str,
        rec: &ManifestRecord,
        tag: Option<&str>,
    ) -> Result<()> {
        // The blobs it references must not be collected between the check and the commit.
        let _gate = self.gate.shared().await;
        for _ in 0..RETRIES {
            let (mut txn, repo) = self.ensure_repo(name, Txn::new())?;
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
                let key = tag_key(name, tag);
                txn = match self.store.get(&key) {
                    Some(kv) => {
                        let moved = decode::<TagRecord>(&kv).is_none_or(|t| t.digest != rec.digest);
                        if repo.immutable_tags && moved {
                            return Err(RegistryError::TagInvalid);
                        }
                        txn.compare(Compare::unchanged(&kv))
                    }
                    None => txn.compare(Compare::absent(key)),
                };
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
            let mut txn = Txn::new()
                .compare(Compare::unchanged(&kv))
                .delete(key)
                .delete(pull_key(name, digest.as_str()));
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

    /// Deletes a manifest and its tags only while exactly `tags` point at it; false when it is gone or its tags
    /// changed. The lifecycle job decides on a snapshot: an image tagged since must not expire on stale facts.
    pub async fn delete_manifest_if_tags(
        &self,
        name: &str,
        digest: &Digest,
        tags: &[String],
    ) -> Result<bool> {
        let mut expected: Vec<&str> = tags.iter().map(String::as_str).collect();
        expected.sort_unstable();
        for _ in 0..RETRIES {
            let key = manifest_key(name, digest.as_str());
            let Some(kv) = self.store.get(&key) else {
                return Ok(false);
            };
            let prefix = tag_prefix(name);
            let mut txn = Txn::new()
                .compare(Compare::unchanged(&kv))
                .delete(key)
                .delete(pull_key(name, digest.as_str()));
            let mut current = Vec::new();
            for t in self.store.range(&prefix) {
                if decode::<TagRecord>(&t).is_some_and(|r| r.digest == digest.as_str()) {
                    current.push(t.key[prefix.len()..].to_string());
                    txn = txn.compare(Compare::unchanged(&t)).delete(t.key.clone());
                }
            }
            current.sort_unstable();
            if current != expected {
                return Ok(false);
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

/// What the garbage collector reads of the metadata: every manifest's blob references, and every blob link with
/// its stored form (so that its removal is guarded).
#[derive(Debug, Default)]
pub struct BlobReferences {
    pub manifests: Vec<crate::gc::plan::ManifestRefs>,
    pub links: Vec<(crate::gc::plan::LinkRef, KeyValue)>,
}

impl<S: Store> Meta<S> {
    /// The gate between linking paths and the garbage collector.
    pub fn gate(&self) -> &crate::gc::gate::Gate {
        &self.gate
    }

    /// Every manifest's blobs and every blob link, from one read of the store. Repositories are named by their
    /// key (unique; the plan only compares them).
    pub fn blob_references(&self) -> BlobReferences {
        let mut out = BlobReferences::default();
        for kv in self.store.range(ROOT) {
            let Some((repo, rest)) = kv.key[ROOT.len()..].split_once('/') else {
                continue;
            };
            if rest.starts_with("manifests/") {
                if let Some(rec) = decode::<ManifestRecord>(&kv) {
                    out.manifests.push(crate::gc::plan::ManifestRefs {
                        repo: repo.to_string(),
                        blobs: rec.blobs,
                    });
                }
            } else if let Some(digest) = rest.strip_prefix("blobs/") {
                // An unreadable link counts as old: nothing can use it.
                let linked_at = decode::<BlobLink>(&kv).map_or(0, |l| l.linked_at);
                let link = crate::gc::plan::LinkRef {
                    repo: repo.to_string(),
                    digest: digest.to_string(),
                    linked_at,
                };
                out.links.push((link, kv));
            }
        }
        out
    }

    /// Deletes these blob links in one transaction, each only if unchanged since it was read; false (nothing
    /// deleted) when one changed.
    pub async fn delete_links_unchanged(&self, links: &[KeyValue]) -> Result<bool> {
        if links.is_empty() {
            return Ok(true);
        }
        let mut txn = Txn::new();
        for kv in links {
            txn = txn.compare(Compare::unchanged(kv)).delete(kv.key.clone());
        }
        self.commit(txn).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_store::WalStore;

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
        let meta = Meta::new(WalStore::in_memory().unwrap());
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
        // Tags changed since the caller looked: kept.
        assert!(!meta
            .delete_manifest_if_tags("a/b", &d, &["v1".to_string()])
            .await
            .unwrap());
        assert!(meta.manifest("a/b", &d).is_some());
        assert!(meta.delete_tag("a/b", "v2").await.unwrap());
        assert!(meta.delete_manifest("a/b", &d).await.unwrap());
        assert!(meta.tags("a/b").is_empty());
        assert!(!meta.delete_manifest("a/b", &d).await.unwrap());
        assert!(meta.unlink_blob("a/b", &layer).await.unwrap());
        assert!(meta.blob_link("a/b", &layer).is_none());
    }

    #[tokio::test]
    async fn explicit_repositories_and_immutable_tags() {
        let meta = Meta::new(WalStore::in_memory().unwrap());
        meta.require_explicit_repos();
        let layer = Digest::of(b"layer");
        assert!(matches!(
            meta.link_blob("web", &layer, 5).await,
            Err(RegistryError::NameUnknown)
        ));
        assert!(meta.create_repo(&RepoRecord::new("web")).await.unwrap());
        assert!(!meta.create_repo(&RepoRecord::new("web")).await.unwrap());
        meta.link_blob("web", &layer, 5).await.unwrap();
        meta.update_repo("web", |r| r.immutable_tags = true)
            .await
            .unwrap()
            .unwrap();
        let rec = |content: &str| ManifestRecord {
            digest: Digest::of(content.as_bytes()).to_string(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: content.len() as u64,
            content: content.to_string(),
            blobs: vec![layer.to_string()],
            manifests: vec![],
            subject: None,
            artifact_type: None,
            pushed_at: 0,
        };
        let (one, two) = (rec("{\"a\":1}"), rec("{\"a\":2}"));
        meta.put_manifest("web", &one, Some("v1")).await.unwrap();
        // The same manifest again is fine; another one under the same tag is not.
        meta.put_manifest("web", &one, Some("v1")).await.unwrap();
        assert!(matches!(
            meta.put_manifest("web", &two, Some("v1")).await,
            Err(RegistryError::TagInvalid)
        ));
        meta.put_manifest("web", &two, Some("v2")).await.unwrap();
        assert_eq!(meta.manifests("web").len(), 2);
        assert_eq!(meta.tag_records("web").len(), 2);
        assert_eq!(meta.repos().len(), 1);
        assert_eq!(
            meta.delete_repo("web", false).await.unwrap(),
            RepoDeletion::NotEmpty
        );
        assert!(matches!(
            meta.delete_repo("web", true).await.unwrap(),
            RepoDeletion::Deleted(_)
        ));
        assert!(meta.store().range("/registry/").is_empty());
        assert_eq!(
            meta.delete_repo("web", true).await.unwrap(),
            RepoDeletion::NotFound
        );
    }
}
