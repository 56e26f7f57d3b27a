//! What is garbage, decided over plain data (pure). A blob link is garbage when no manifest of its repository
//! references the blob and it is at least `link_grace` seconds old (an abandoned push). A blob file is garbage when
//! no manifest of any repository references it and no live link names it.

use std::collections::{BTreeSet, HashMap, HashSet};

/// A blob file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobFile {
    pub digest: String,
    pub size: u64,
}

/// The blobs (config, layers) one manifest of a repository references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRefs {
    pub repo: String,
    pub blobs: Vec<String>,
}

/// A blob linked to a repository by a push or a mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRef {
    pub repo: String,
    pub digest: String,
    pub linked_at: u64,
}

/// Everything the plan looks at.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub blobs: Vec<BlobFile>,
    pub manifests: Vec<ManifestRefs>,
    pub links: Vec<LinkRef>,
}

/// What to remove.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub links: Vec<LinkRef>,
    pub blobs: Vec<BlobFile>,
}

/// Whether something last touched at `at` is at least `max_age` seconds old at `now`.
pub fn expired(at: u64, now: u64, max_age: u64) -> bool {
    now.saturating_sub(at) >= max_age
}

pub fn plan(snapshot: &Snapshot, now: u64, link_grace: u64) -> Plan {
    let mut by_repo: HashMap<&str, HashSet<&str>> = HashMap::new();
    let mut referenced: HashSet<&str> = HashSet::new();
    for m in &snapshot.manifests {
        let set = by_repo.entry(m.repo.as_str()).or_default();
        for b in &m.blobs {
            set.insert(b);
            referenced.insert(b);
        }
    }
    let (dead, live): (Vec<&LinkRef>, Vec<&LinkRef>) = snapshot.links.iter().partition(|l| {
        let used = by_repo
            .get(l.repo.as_str())
            .is_some_and(|s| s.contains(l.digest.as_str()));
        !used && expired(l.linked_at, now, link_grace)
    });
    let kept: BTreeSet<&str> = live.iter().map(|l| l.digest.as_str()).collect();
    Plan {
        links: dead.into_iter().cloned().collect(),
        blobs: snapshot
            .blobs
            .iter()
            .filter(|b| {
                !referenced.contains(b.digest.as_str()) && !kept.contains(b.digest.as_str())
            })
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(d: &str) -> BlobFile {
        BlobFile {
            digest: d.into(),
            size: 10,
        }
    }

    fn link(repo: &str, d: &str, at: u64) -> LinkRef {
        LinkRef {
            repo: repo.into(),
            digest: d.into(),
            linked_at: at,
        }
    }

    fn manifest(repo: &str, blobs: &[&str]) -> ManifestRefs {
        ManifestRefs {
            repo: repo.into(),
            blobs: blobs.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn digests(p: &Plan) -> Vec<&str> {
        p.blobs.iter().map(|b| b.digest.as_str()).collect()
    }

    #[test]
    fn unlinked_blobs_are_garbage_and_referenced_ones_stay() {
        let s = Snapshot {
            blobs: vec![blob("a"), blob("b"), blob("orphan")],
            manifests: vec![manifest("r", &["a", "b"])],
            links: vec![link("r", "a", 0), link("r", "b", 0)],
        };
        let p = plan(&s, 10_000, 3600);
        assert_eq!(digests(&p), vec!["orphan"]);
        assert!(p.links.is_empty());
    }

    #[test]
    fn old_unreferenced_links_go_and_their_blobs_with_them() {
        let s = Snapshot {
            blobs: vec![blob("abandoned"), blob("fresh")],
            manifests: vec![],
            links: vec![link("r", "abandoned", 100), link("r", "fresh", 9_000)],
        };
        let p = plan(&s, 10_000, 3600);
        assert_eq!(p.links, vec![link("r", "abandoned", 100)]);
        assert_eq!(digests(&p), vec!["abandoned"]);
    }

    #[test]
    fn a_blob_shared_with_another_repository_stays() {
        // Repository "old" lost its image; "other" still uses the layer through its manifest.
        let s = Snapshot {
            blobs: vec![blob("shared"), blob("only-old")],
            manifests: vec![manifest("other", &["shared"])],
            links: vec![
                link("old", "shared", 0),
                link("old", "only-old", 0),
                link("other", "shared", 0),
            ],
        };
        let p = plan(&s, 10_000, 3600);
        assert_eq!(digests(&p), vec!["only-old"]);
        assert_eq!(p.links.len(), 2);
        assert!(p.links.iter().all(|l| l.repo == "old"));
    }

    #[test]
    fn a_fresh_link_in_any_repository_keeps_the_blob() {
        let s = Snapshot {
            blobs: vec![blob("x")],
            manifests: vec![],
            links: vec![link("a", "x", 0), link("b", "x", 9_999)],
        };
        let p = plan(&s, 10_000, 3600);
        assert_eq!(p.links, vec![link("a", "x", 0)]);
        assert!(p.blobs.is_empty());
    }

    #[test]
    fn a_manifest_reference_is_per_repository_for_links() {
        // The manifest in "b" keeps the blob file, not the link in "a".
        let s = Snapshot {
            blobs: vec![blob("x")],
            manifests: vec![manifest("b", &["x"])],
            links: vec![link("a", "x", 0)],
        };
        let p = plan(&s, 10_000, 3600);
        assert_eq!(p.links, vec![link("a", "x", 0)]);
        assert!(p.blobs.is_empty());
    }

    #[test]
    fn after_a_reset_everything_goes() {
        let s = Snapshot {
            blobs: vec![blob("a"), blob("b")],
            ..Default::default()
        };
        assert_eq!(digests(&plan(&s, 0, 3600)), vec!["a", "b"]);
    }

    #[test]
    fn zero_grace_means_at_once() {
        assert!(expired(5, 5, 0));
        assert!(!expired(5, 5, 1));
        assert!(expired(5, 6, 1));
        // A clock that went back never makes something old.
        assert!(!expired(10, 5, 1));
    }
}
