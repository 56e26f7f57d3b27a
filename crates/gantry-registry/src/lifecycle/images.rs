//! A repository's images as the lifecycle evaluator sees them: every manifest with the tags pointing at it, except
//! the manifests an image index of the repository references. Those are parts of a multi-platform image, not images
//! of their own: expiring one would break its index (they go with the index, through the GC).

use std::collections::{BTreeMap, HashSet};

use super::evaluate::Image;
use crate::meta::{ManifestRecord, TagRecord};

pub fn images_of(manifests: &[ManifestRecord], tags: &[(String, TagRecord)]) -> Vec<Image> {
    let children: HashSet<&str> = manifests
        .iter()
        .flat_map(|m| m.manifests.iter().map(String::as_str))
        .collect();
    let mut by_digest: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (tag, rec) in tags {
        by_digest
            .entry(rec.digest.as_str())
            .or_default()
            .push(tag.clone());
    }
    manifests
        .iter()
        .filter(|m| !children.contains(m.digest.as_str()))
        .map(|m| Image {
            digest: m.digest.clone(),
            tags: by_digest.remove(m.digest.as_str()).unwrap_or_default(),
            pushed_at: m.pushed_at,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(digest: &str, children: &[&str], pushed_at: u64) -> ManifestRecord {
        ManifestRecord {
            digest: digest.into(),
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            size: 2,
            content: "{}".into(),
            blobs: vec![],
            manifests: children.iter().map(|c| c.to_string()).collect(),
            subject: None,
            artifact_type: None,
            pushed_at,
        }
    }

    fn tag(name: &str, digest: &str) -> (String, TagRecord) {
        (
            name.into(),
            TagRecord {
                digest: digest.into(),
                updated_at: 0,
            },
        )
    }

    #[test]
    fn images_carry_their_tags_and_skip_index_children() {
        let manifests = [
            manifest("index", &["amd64", "arm64"], 3),
            manifest("amd64", &[], 1),
            manifest("arm64", &[], 1),
            manifest("plain", &[], 2),
        ];
        let tags = [
            tag("v1", "index"),
            tag("latest", "index"),
            tag("old", "plain"),
        ];
        let images = images_of(&manifests, &tags);
        assert_eq!(images.len(), 2);
        assert_eq!(images[0].digest, "index");
        assert_eq!(images[0].tags, vec!["v1", "latest"]);
        assert_eq!(images[0].pushed_at, 3);
        assert_eq!(images[1].tags, vec!["old"]);
        let untagged = images_of(&[manifest("x", &[], 0)], &[]);
        assert!(untagged[0].tags.is_empty());
    }
}
