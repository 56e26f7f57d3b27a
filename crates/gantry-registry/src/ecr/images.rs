//! Images: a manifest of a repository with the tags pointing at it. ListImages, DescribeImages, BatchGetImage,
//! BatchDeleteImage and PutImage.

use std::collections::{BTreeMap, HashSet};

use gantry_aws::{paginate, ResponseExt};
use gantry_model::Scope;
use gantry_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::wire::{registry_id, repository_name, Filter, ImageId, TagStatus};
use super::{EcrError, EcrService};
use crate::digest::Digest;
use crate::manifest::parse_manifest;
use crate::meta::{now, ManifestRecord};
use crate::names::is_valid_tag;
use crate::{RegistryError, MAX_MANIFEST_BYTES};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListImagesInput {
    registry_id: Option<String>,
    repository_name: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
    filter: Option<Filter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeImagesInput {
    registry_id: Option<String>,
    repository_name: Option<String>,
    image_ids: Option<Vec<ImageId>>,
    next_token: Option<String>,
    max_results: Option<i64>,
    filter: Option<Filter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchImagesInput {
    registry_id: Option<String>,
    repository_name: Option<String>,
    image_ids: Option<Vec<ImageId>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutImageInput {
    registry_id: Option<String>,
    repository_name: Option<String>,
    image_manifest: Option<String>,
    image_manifest_media_type: Option<String>,
    image_tag: Option<String>,
    image_digest: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImageDetail {
    registry_id: String,
    repository_name: String,
    image_digest: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    image_tags: Vec<String>,
    image_size_in_bytes: u64,
    image_pushed_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_recorded_pull_time: Option<u64>,
    image_manifest_media_type: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Failure {
    image_id: ImageId,
    failure_code: &'static str,
    failure_reason: String,
}

/// A repository's images: manifests by digest with their tags.
struct Images {
    manifests: BTreeMap<String, ManifestRecord>,
    tags: BTreeMap<String, Vec<String>>,
    tag_to_digest: BTreeMap<String, String>,
}

impl Images {
    fn tags_of(&self, digest: &str) -> &[String] {
        self.tags.get(digest).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The image ids of ListImages: one per tag, or the digest alone for an untagged image.
    fn ids(&self, status: TagStatus) -> Vec<ImageId> {
        let mut out = Vec::new();
        for digest in self.manifests.keys() {
            let tags = self.tags_of(digest);
            if tags.is_empty() && status != TagStatus::Tagged {
                out.push(ImageId {
                    image_digest: Some(digest.clone()),
                    image_tag: None,
                });
            }
            if status != TagStatus::Untagged {
                out.extend(tags.iter().map(|t| ImageId {
                    image_digest: Some(digest.clone()),
                    image_tag: Some(t.clone()),
                }));
            }
        }
        out
    }

    /// The manifest an image id names, or its failure code and reason.
    fn resolve(&self, id: &ImageId) -> Result<&ManifestRecord, (&'static str, String)> {
        let not_found = || ("ImageNotFound", "Requested image not found".to_string());
        let by_tag = match id.image_tag.as_deref() {
            Some(t) if !is_valid_tag(t) => {
                return Err(("InvalidImageTag", format!("Invalid image tag '{t}'")))
            }
            Some(t) => Some(self.tag_to_digest.get(t).ok_or_else(not_found)?),
            None => None,
        };
        let digest = match (id.image_digest.as_deref(), by_tag) {
            (None, None) => {
                return Err((
                    "MissingDigestAndTag",
                    "Invalid request parameters: both tag and digest cannot be null".into(),
                ))
            }
            (Some(d), tagged) => {
                let d = Digest::parse(d)
                    .ok_or_else(|| ("InvalidImageDigest", format!("Invalid image digest '{d}'")))?
                    .to_string();
                if tagged.is_some_and(|t| *t != d) {
                    return Err((
                        "ImageTagDoesNotMatchDigest",
                        "Invalid request parameters: the image tag does not match the digest"
                            .into(),
                    ));
                }
                d
            }
            (None, Some(t)) => t.clone(),
        };
        self.manifests.get(&digest).ok_or_else(not_found)
    }
}

fn check_ids(ids: &Option<Vec<ImageId>>) -> Result<&[ImageId], EcrError> {
    match ids.as_deref() {
        Some(ids) if !ids.is_empty() && ids.len() <= 100 => Ok(ids),
        _ => Err(EcrError::InvalidParameter(
            "imageIds must hold 1 to 100 image ids".into(),
        )),
    }
}

impl<S: Store> EcrService<S> {
    fn images(&self, name: &str) -> Images {
        let manifests: BTreeMap<String, ManifestRecord> = self
            .registry
            .meta
            .manifests(name)
            .into_iter()
            .map(|m| (m.digest.clone(), m))
            .collect();
        let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut tag_to_digest = BTreeMap::new();
        for (tag, rec) in self.registry.meta.tag_records(name) {
            tags.entry(rec.digest.clone())
                .or_default()
                .push(tag.clone());
            tag_to_digest.insert(tag, rec.digest);
        }
        Images {
            manifests,
            tags,
            tag_to_digest,
        }
    }

    /// The size of an image: the sum of the blobs it references (the manifest's own size for an index).
    fn image_size(&self, name: &str, rec: &ManifestRecord) -> u64 {
        if rec.blobs.is_empty() {
            return rec.size;
        }
        rec.blobs
            .iter()
            .filter_map(|b| Digest::parse(b))
            .filter_map(|d| self.registry.meta.blob_link(name, &d))
            .map(|l| l.size)
            .sum()
    }

    fn detail(
        &self,
        scope: &Scope,
        name: &str,
        images: &Images,
        rec: &ManifestRecord,
    ) -> ImageDetail {
        ImageDetail {
            registry_id: scope.account.clone(),
            repository_name: name.to_string(),
            image_digest: rec.digest.clone(),
            image_tags: images.tags_of(&rec.digest).to_vec(),
            image_size_in_bytes: self.image_size(name, rec),
            image_pushed_at: rec.pushed_at,
            last_recorded_pull_time: self.registry.meta.last_pull(name, &rec.digest),
            image_manifest_media_type: rec.media_type.clone(),
        }
    }

    /// Checks the registry id and the repository name, and that the repository exists.
    fn repo_name<'a>(
        &self,
        scope: &Scope,
        registry: &Option<String>,
        name: &'a Option<String>,
    ) -> Result<&'a str, EcrError> {
        registry_id(scope, registry)?;
        let name = repository_name(name)?;
        self.existing(scope, name)?;
        Ok(name)
    }

    pub(crate) fn list_images(
        &self,
        scope: &Scope,
        input: ListImagesInput,
    ) -> Result<Value, EcrError> {
        let name = self.repo_name(scope, &input.registry_id, &input.repository_name)?;
        let status = Filter::status(&input.filter)?;
        let page = paginate(
            self.images(name).ids(status),
            input.next_token.as_deref(),
            input.max_results,
            100,
            1000,
        )
        .map_err(EcrError::Request)?;
        let mut out = json!({ "imageIds": page.items.to_response() });
        if let Some(t) = page.next_token {
            out["nextToken"] = t.into();
        }
        Ok(out)
    }

    pub(crate) fn describe_images(
        &self,
        scope: &Scope,
        input: DescribeImagesInput,
    ) -> Result<Value, EcrError> {
        let name = self.repo_name(scope, &input.registry_id, &input.repository_name)?;
        let images = self.images(name);
        if input.image_ids.is_some() {
            if input.max_results.is_some() || input.next_token.is_some() {
                return Err(EcrError::InvalidParameter(
                    "maxResults and nextToken cannot be used with imageIds".into(),
                ));
            }
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            for id in check_ids(&input.image_ids)? {
                let rec = images.resolve(id).map_err(|(code, reason)| match code {
                    "ImageNotFound" => EcrError::ImageNotFound {
                        image: id.describe(),
                        name: name.to_string(),
                        registry: scope.account.clone(),
                    },
                    _ => EcrError::InvalidParameter(reason),
                })?;
                if seen.insert(rec.digest.clone()) {
                    out.push(self.detail(scope, name, &images, rec));
                }
            }
            return Ok(json!({ "imageDetails": out.to_response() }));
        }
        let status = Filter::status(&input.filter)?;
        let recs: Vec<&ManifestRecord> = images
            .manifests
            .values()
            .filter(|m| match status {
                TagStatus::Any => true,
                TagStatus::Tagged => !images.tags_of(&m.digest).is_empty(),
                TagStatus::Untagged => images.tags_of(&m.digest).is_empty(),
            })
            .collect();
        let page = paginate(
            recs,
            input.next_token.as_deref(),
            input.max_results,
            100,
            1000,
        )
        .map_err(EcrError::Request)?;
        let details: Vec<ImageDetail> = page
            .items
            .iter()
            .map(|m| self.detail(scope, name, &images, m))
            .collect();
        let mut out = json!({ "imageDetails": details.to_response() });
        if let Some(t) = page.next_token {
            out["nextToken"] = t.into();
        }
        Ok(out)
    }

    pub(crate) fn batch_get_image(
        &self,
        scope: &Scope,
        input: BatchImagesInput,
    ) -> Result<Value, EcrError> {
        let name = self.repo_name(scope, &input.registry_id, &input.repository_name)?;
        let images = self.images(name);
        let mut found = Vec::new();
        let mut failures = Vec::new();
        let mut seen = HashSet::new();
        for id in check_ids(&input.image_ids)? {
            match images.resolve(id) {
                Ok(rec) => {
                    let image_id = ImageId {
                        image_digest: Some(rec.digest.clone()),
                        image_tag: id.image_tag.clone(),
                    };
                    if seen.insert(image_id.clone()) {
                        found.push(json!({
                            "registryId": scope.account,
                            "repositoryName": name,
                            "imageId": image_id.to_response(),
                            "imageManifest": rec.content,
                            "imageManifestMediaType": rec.media_type,
                        }));
                    }
                }
                Err((code, reason)) => failures.push(Failure {
                    image_id: id.clone(),
                    failure_code: code,
                    failure_reason: reason,
                }),
            }
        }
        Ok(json!({ "images": found, "failures": failures.to_response() }))
    }

    /// By digest, removes the image and its tags; by tag, removes the tag, and the image with its last tag.
    pub(crate) async fn batch_delete_image(
        &self,
        scope: &Scope,
        input: BatchImagesInput,
    ) -> Result<Value, EcrError> {
        let name = self.repo_name(scope, &input.registry_id, &input.repository_name)?;
        let meta = &self.registry.meta;
        let mut deleted: Vec<ImageId> = Vec::new();
        let mut failures = Vec::new();
        for id in check_ids(&input.image_ids)? {
            // Read afresh: an earlier id of the same request may have removed what this one names.
            let images = self.images(name);
            let rec = match images.resolve(id) {
                Ok(rec) => rec,
                Err((code, reason)) => {
                    failures.push(Failure {
                        image_id: id.clone(),
                        failure_code: code,
                        failure_reason: reason,
                    });
                    continue;
                }
            };
            let digest = Digest::parse(&rec.digest).ok_or(RegistryError::ManifestUnknown)?;
            let tags = images.tags_of(&rec.digest);
            let removed: Vec<ImageId> = match (&id.image_digest, &id.image_tag) {
                (None, Some(tag)) if tags.len() > 1 => {
                    meta.delete_tag(name, tag).await?;
                    vec![ImageId {
                        image_digest: Some(rec.digest.clone()),
                        image_tag: Some(tag.clone()),
                    }]
                }
                _ => {
                    meta.delete_manifest(name, &digest).await?;
                    let mut ids: Vec<ImageId> = tags
                        .iter()
                        .map(|t| ImageId {
                            image_digest: Some(rec.digest.clone()),
                            image_tag: Some(t.clone()),
                        })
                        .collect();
                    if ids.is_empty() {
                        ids.push(ImageId {
                            image_digest: Some(rec.digest.clone()),
                            image_tag: None,
                        });
                    }
                    ids
                }
            };
            for r in removed {
                if !deleted.contains(&r) {
                    deleted.push(r);
                }
            }
        }
        Ok(json!({ "imageIds": deleted.to_response(), "failures": failures.to_response() }))
    }

    pub(crate) async fn put_image(
        &self,
        scope: &Scope,
        input: PutImageInput,
    ) -> Result<Value, EcrError> {
        let name = self.repo_name(scope, &input.registry_id, &input.repository_name)?;
        let content = input.image_manifest.unwrap_or_default();
        if content.is_empty() {
            return Err(EcrError::InvalidParameter(
                "Missing required parameter imageManifest".into(),
            ));
        }
        if content.len() > MAX_MANIFEST_BYTES {
            return Err(RegistryError::ManifestTooLarge {
                limit: MAX_MANIFEST_BYTES,
            }
            .into());
        }
        if let Some(tag) = input.image_tag.as_deref() {
            if !is_valid_tag(tag) {
                return Err(EcrError::InvalidParameter(format!(
                    "Invalid parameter at 'imageTag': '{tag}' is not a valid image tag"
                )));
            }
        }
        let parsed = parse_manifest(
            content.as_bytes(),
            input.image_manifest_media_type.as_deref(),
        )?;
        let digest = Digest::of(content.as_bytes()).to_string();
        if let Some(given) = input.image_digest.as_deref() {
            if given != digest {
                return Err(EcrError::ImageDigestDoesNotMatch {
                    given: given.to_string(),
                    actual: digest,
                });
            }
        }
        let tag = input.image_tag.as_deref();
        let meta = &self.registry.meta;
        let d = Digest::parse(&digest).ok_or(RegistryError::DigestInvalid)?;
        if meta.manifest(name, &d).is_some()
            && tag.is_none_or(|t| meta.tag(name, t) == Some(d.clone()))
        {
            return Err(EcrError::ImageAlreadyExists {
                digest,
                tag: tag.unwrap_or("null").to_string(),
                name: name.to_string(),
                registry: scope.account.clone(),
            });
        }
        let rec = ManifestRecord {
            digest: digest.clone(),
            media_type: parsed.media_type.clone(),
            size: content.len() as u64,
            content,
            blobs: parsed.blobs,
            manifests: parsed.manifests.clone(),
            subject: parsed.subject,
            artifact_type: parsed.artifact_type,
            pushed_at: now(),
        };
        match meta.put_manifest(name, &rec, tag).await {
            Ok(()) => {}
            Err(RegistryError::TagInvalid) => {
                return Err(EcrError::ImageTagAlreadyExists {
                    tag: tag.unwrap_or_default().to_string(),
                    name: name.to_string(),
                })
            }
            Err(RegistryError::ManifestBlobUnknown(d)) if parsed.manifests.contains(&d) => {
                return Err(EcrError::ReferencedImagesNotFound(d))
            }
            Err(RegistryError::ManifestBlobUnknown(d)) => return Err(EcrError::LayersNotFound(d)),
            Err(RegistryError::NameUnknown) => return Err(self.not_found(scope, name)),
            Err(e) => return Err(e.into()),
        }
        Ok(json!({ "image": {
            "registryId": scope.account,
            "repositoryName": name,
            "imageId": ImageId { image_digest: Some(digest), image_tag: tag.map(str::to_string) }.to_response(),
            "imageManifest": rec.content,
            "imageManifestMediaType": rec.media_type,
        }}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(digest: &str) -> ManifestRecord {
        ManifestRecord {
            digest: digest.into(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 2,
            content: "{}".into(),
            blobs: vec![],
            manifests: vec![],
            subject: None,
            artifact_type: None,
            pushed_at: 0,
        }
    }

    fn images() -> (Images, String, String) {
        let (a, b) = (Digest::of(b"a").to_string(), Digest::of(b"b").to_string());
        let images = Images {
            manifests: [(a.clone(), rec(&a)), (b.clone(), rec(&b))]
                .into_iter()
                .collect(),
            tags: [(a.clone(), vec!["1".to_string(), "latest".to_string()])]
                .into_iter()
                .collect(),
            tag_to_digest: [
                ("1".to_string(), a.clone()),
                ("latest".to_string(), a.clone()),
            ]
            .into_iter()
            .collect(),
        };
        (images, a, b)
    }

    #[test]
    fn lists_ids_by_tag_status() {
        let (images, a, b) = images();
        let tagged = images.ids(TagStatus::Tagged);
        assert_eq!(tagged.len(), 2);
        assert!(tagged
            .iter()
            .all(|i| i.image_digest.as_deref() == Some(a.as_str())));
        let untagged = images.ids(TagStatus::Untagged);
        assert_eq!(
            untagged,
            vec![ImageId {
                image_digest: Some(b.clone()),
                image_tag: None
            }]
        );
        assert_eq!(images.ids(TagStatus::Any).len(), 3);
    }

    #[test]
    fn resolves_ids_or_says_why_not() {
        let (images, a, b) = images();
        let id = |d: Option<&str>, t: Option<&str>| ImageId {
            image_digest: d.map(str::to_string),
            image_tag: t.map(str::to_string),
        };
        assert_eq!(images.resolve(&id(None, Some("latest"))).unwrap().digest, a);
        assert_eq!(images.resolve(&id(Some(&b), None)).unwrap().digest, b);
        assert_eq!(images.resolve(&id(Some(&a), Some("1"))).unwrap().digest, a);
        let code = |i: ImageId| images.resolve(&i).unwrap_err().0;
        assert_eq!(code(id(None, None)), "MissingDigestAndTag");
        assert_eq!(code(id(None, Some("nope"))), "ImageNotFound");
        assert_eq!(code(id(Some("sha256:xyz"), None)), "InvalidImageDigest");
        assert_eq!(code(id(None, Some("bad tag"))), "InvalidImageTag");
        assert_eq!(code(id(Some(&b), Some("1"))), "ImageTagDoesNotMatchDigest");
        let gone = Digest::of(b"c").to_string();
        assert_eq!(code(id(Some(&gone), None)), "ImageNotFound");
    }
}
