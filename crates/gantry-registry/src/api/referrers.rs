//! The referrers API (end-12a/b): an image index of the manifests in a repository whose `subject` is a digest,
//! filtered by `artifactType` when asked. Computed from the stored manifests on each request, so that nothing has
//! to be kept in step on push and delete, and manifests pushed before their subject are listed too.

use super::blobs::parse_digest;
use crate::errors::{RegistryError, Result};
use crate::manifest::{referrer_info, OCI_INDEX};
use crate::Registry;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use gantry_store::Store;
use serde_json::{json, Value};
use std::collections::HashMap;

const OCI_FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");

pub(crate) fn list<S: Store>(
    reg: &Registry<S>,
    name: &str,
    digest: &str,
    query: &HashMap<String, String>,
    head: bool,
) -> Result<Response> {
    let digest = parse_digest(digest)?;
    if !reg.meta.repo_exists(name) {
        return Err(RegistryError::NameUnknown);
    }
    let filter = query
        .get("artifactType")
        .map(String::as_str)
        .filter(|f| !f.is_empty());
    let manifests: Vec<Value> = reg
        .meta
        .manifests(name)
        .into_iter()
        .filter(|m| m.subject.as_deref() == Some(digest.as_str()))
        .filter_map(|m| {
            let info = referrer_info(m.content.as_bytes());
            if filter.is_some_and(|f| info.artifact_type.as_deref() != Some(f)) {
                return None;
            }
            let mut d = json!({ "mediaType": m.media_type, "digest": m.digest, "size": m.size });
            if let Some(t) = info.artifact_type {
                d["artifactType"] = Value::String(t);
            }
            if let Some(a) = info.annotations {
                d["annotations"] = Value::Object(a);
            }
            Some(d)
        })
        .collect();
    let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests });
    let body = serde_json::to_vec(&index).unwrap_or_default();
    let len = body.len();
    let mut res = (StatusCode::OK, if head { Vec::new() } else { body }).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(OCI_INDEX));
    h.insert(header::CONTENT_LENGTH, len.into());
    if filter.is_some() {
        h.insert(
            OCI_FILTERS_APPLIED,
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(res)
}
