//! What the registry needs to know of a manifest, read from its JSON (pure): its media type and the blobs, child
//! manifests and subject it references, and what a referrers list says of it. The bytes themselves are stored
//! untouched.

use crate::digest::Digest;
use crate::errors::{RegistryError, Result};
use serde_json::{Map, Value};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

#[derive(Debug, Clone, PartialEq)]
pub struct ParsedManifest {
    pub media_type: String,
    pub blobs: Vec<String>,
    pub manifests: Vec<String>,
    pub subject: Option<String>,
    pub artifact_type: Option<String>,
}

fn invalid(msg: impl Into<String>) -> RegistryError {
    RegistryError::ManifestInvalid(msg.into())
}

fn digest_of(descriptor: &Value, what: &str) -> Result<String> {
    let d = descriptor
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{what} has no digest")))?;
    Digest::parse(d)
        .map(|d| d.to_string())
        .ok_or_else(|| invalid(format!("{what} has an unsupported digest {d:?}")))
}

/// Reads a manifest pushed with `content_type` (the request's `Content-Type`, if any).
pub fn parse_manifest(bytes: &[u8], content_type: Option<&str>) -> Result<ParsedManifest> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let obj = v.as_object().ok_or_else(|| invalid("not a JSON object"))?;
    if obj.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return Err(invalid("schemaVersion must be 2"));
    }
    let body_type = obj.get("mediaType").and_then(Value::as_str);
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .filter(|c| !c.is_empty());
    let generic = |c: &str| c == "application/json" || c == "application/octet-stream";
    let media_type = match (header, body_type) {
        (Some(h), Some(b)) if !generic(h) && h != b => {
            return Err(invalid(format!(
                "Content-Type {h} does not match mediaType {b}"
            )))
        }
        (Some(h), _) if !generic(h) => h.to_string(),
        (_, Some(b)) => b.to_string(),
        _ if obj.contains_key("manifests") => OCI_INDEX.to_string(),
        _ => OCI_MANIFEST.to_string(),
    };

    // The known types have their required fields; other types (artifacts of other tools) are taken as they come.
    let required = match media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => Some("config"),
        OCI_INDEX | DOCKER_MANIFEST_LIST => Some("manifests"),
        _ => None,
    };
    if let Some(field) = required.filter(|f| !obj.contains_key(*f)) {
        return Err(invalid(format!("a {media_type} needs {field}")));
    }

    let mut blobs = Vec::new();
    if let Some(config) = obj.get("config") {
        blobs.push(digest_of(config, "config")?);
    }
    for field in ["layers", "blobs"] {
        if let Some(items) = obj.get(field) {
            let items = items
                .as_array()
                .ok_or_else(|| invalid(format!("{field} is not an array")))?;
            for item in items {
                // Non-distributable layers (with `urls`) are fetched from elsewhere, never pushed here.
                if item.get("urls").is_some() {
                    continue;
                }
                blobs.push(digest_of(item, field)?);
            }
        }
    }
    let mut manifests = Vec::new();
    if let Some(items) = obj.get("manifests") {
        let items = items
            .as_array()
            .ok_or_else(|| invalid("manifests is not an array"))?;
        for item in items {
            manifests.push(digest_of(item, "manifests")?);
        }
    }
    blobs.sort();
    blobs.dedup();
    manifests.sort();
    manifests.dedup();
    let subject = obj
        .get("subject")
        .map(|s| digest_of(s, "subject"))
        .transpose()?;
    let artifact_type = obj
        .get("artifactType")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(ParsedManifest {
        media_type,
        blobs,
        manifests,
        subject,
        artifact_type,
    })
}

/// What a referrers list says of a manifest besides its media type, digest and size.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReferrerInfo {
    /// The manifest's `artifactType`, else its config's media type; none for an index without one.
    pub artifact_type: Option<String>,
    pub annotations: Option<Map<String, Value>>,
}

/// Reads `ReferrerInfo` from a stored manifest. Lenient: the bytes were validated when pushed, and a field of an
/// unexpected shape is left out rather than hiding the referrer.
pub fn referrer_info(bytes: &[u8]) -> ReferrerInfo {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(bytes) else {
        return ReferrerInfo::default();
    };
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let artifact_type = text(obj.get("artifactType"))
        .or_else(|| text(obj.get("config").and_then(|c| c.get("mediaType"))));
    let annotations = obj
        .get("annotations")
        .and_then(Value::as_object)
        .filter(|a| !a.is_empty())
        .cloned();
    ReferrerInfo {
        artifact_type,
        annotations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> String {
        Digest::of(s.as_bytes()).to_string()
    }

    #[test]
    fn reads_an_image_manifest() {
        let m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "x", "digest": d("c"), "size": 1},
            "layers": [{"digest": d("l1"), "size": 1}, {"digest": d("l2"), "size": 1},
                       {"digest": d("foreign"), "size": 1, "urls": ["https://example.com"]}],
            "subject": {"digest": d("s"), "size": 1}
        });
        let p = parse_manifest(m.to_string().as_bytes(), None).unwrap();
        assert_eq!(
            p.media_type,
            "application/vnd.docker.distribution.manifest.v2+json"
        );
        let mut want = vec![d("c"), d("l1"), d("l2")];
        want.sort();
        assert_eq!(p.blobs, want);
        assert_eq!(p.subject, Some(d("s")));
    }

    #[test]
    fn reads_an_index_and_checks_the_media_type() {
        let m =
            serde_json::json!({"schemaVersion": 2, "manifests": [{"digest": d("m"), "size": 1}]})
                .to_string();
        let p = parse_manifest(m.as_bytes(), Some(OCI_INDEX)).unwrap();
        assert_eq!(
            (p.media_type.as_str(), p.manifests.clone()),
            (OCI_INDEX, vec![d("m")])
        );
        assert_eq!(
            parse_manifest(m.as_bytes(), None).unwrap().media_type,
            OCI_INDEX
        );
        let typed =
            serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
                .to_string();
        assert!(parse_manifest(typed.as_bytes(), Some(OCI_MANIFEST)).is_err());
    }

    #[test]
    fn refuses_bad_manifests() {
        for bad in [
            "not json".to_string(),
            "[]".to_string(),
            r#"{"schemaVersion": 1}"#.to_string(),
            r#"{"schemaVersion": 2, "layers": [{"digest": "sha256:../../etc"}]}"#.to_string(),
            r#"{"schemaVersion": 2, "layers": {}}"#.to_string(),
            r#"{"schemaVersion": 2, "config": {}}"#.to_string(),
            format!(r#"{{"schemaVersion": 2, "mediaType": "{OCI_MANIFEST}", "layers": []}}"#),
            format!(r#"{{"schemaVersion": 2, "mediaType": "{DOCKER_MANIFEST_LIST}"}}"#),
        ] {
            assert!(
                matches!(
                    parse_manifest(bad.as_bytes(), None),
                    Err(RegistryError::ManifestInvalid(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn referrer_info_prefers_the_artifact_type() {
        let config = serde_json::json!({"mediaType": "application/vnd.example.config", "digest": d("c"), "size": 1});
        let m = serde_json::json!({"schemaVersion": 2, "config": config, "artifactType": "application/vnd.example.sbom",
                                   "annotations": {"a": "1"}});
        let info = referrer_info(m.to_string().as_bytes());
        assert_eq!(
            info.artifact_type.as_deref(),
            Some("application/vnd.example.sbom")
        );
        assert_eq!(info.annotations.unwrap()["a"], "1");
        let m = serde_json::json!({"schemaVersion": 2, "config": config, "artifactType": "", "annotations": {}});
        let info = referrer_info(m.to_string().as_bytes());
        assert_eq!(
            info.artifact_type.as_deref(),
            Some("application/vnd.example.config")
        );
        assert_eq!(info.annotations, None);
        let index =
            serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []});
        assert_eq!(
            referrer_info(index.to_string().as_bytes()),
            ReferrerInfo::default()
        );
        assert_eq!(referrer_info(b"not json"), ReferrerInfo::default());
    }
}
