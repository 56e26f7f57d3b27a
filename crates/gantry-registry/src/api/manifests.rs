//! Manifests by tag or digest: GET/HEAD return the stored bytes exactly, PUT verifies the references and stores,
//! DELETE by digest removes the manifest and its tags, by tag only the tag.

use super::blobs::parse_digest;
use super::{empty, header_str, DOCKER_CONTENT_DIGEST};
use crate::digest::Digest;
use crate::errors::{RegistryError, Result};
use crate::manifest::parse_manifest;
use crate::meta::{now, ManifestRecord};
use crate::names::is_valid_tag;
use crate::{Registry, MAX_MANIFEST_BYTES};
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use gantry_store::Store;
use http_body_util::{BodyExt, LengthLimitError, Limited};

const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");

/// A manifest reference: a digest (it holds `:`) or a tag.
enum Reference<'a> {
    Digest(Digest),
    Tag(&'a str),
}

fn parse_reference(r: &str) -> Result<Reference<'_>> {
    if r.contains(':') {
        Ok(Reference::Digest(parse_digest(r)?))
    } else if is_valid_tag(r) {
        Ok(Reference::Tag(r))
    } else {
        Err(RegistryError::TagInvalid)
    }
}

pub(crate) async fn get<S: Store>(
    reg: &Registry<S>,
    name: &str,
    reference: &str,
    head: bool,
) -> Result<Response> {
    let digest = match parse_reference(reference)? {
        Reference::Digest(d) => d,
        Reference::Tag(t) => reg
            .meta
            .tag(name, t)
            .ok_or(RegistryError::ManifestUnknown)?,
    };
    let rec = reg
        .meta
        .manifest(name, &digest)
        .ok_or(RegistryError::ManifestUnknown)?;
    if !head {
        // A failed record must not fail the pull.
        if let Err(e) = reg.meta.record_pull(name, &digest).await {
            tracing::warn!(error = %e, "could not record the pull time");
        }
    }
    let len = rec.content.len() as u64;
    let mut res = Response::new(if head {
        Body::empty()
    } else {
        Body::from(rec.content)
    });
    let h = res.headers_mut();
    h.insert(header::CONTENT_LENGTH, len.into());
    let media_type = HeaderValue::from_str(&rec.media_type);
    h.insert(
        header::CONTENT_TYPE,
        media_type.unwrap_or(HeaderValue::from_static("application/json")),
    );
    h.insert(
        DOCKER_CONTENT_DIGEST,
        HeaderValue::from_str(digest.as_str()).expect("ascii"),
    );
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&format!("\"{digest}\"")).expect("ascii"),
    );
    Ok(res)
}

pub(crate) async fn put<S: Store>(
    reg: &Registry<S>,
    name: &str,
    reference: &str,
    h: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let too_large = RegistryError::ManifestTooLarge {
        limit: MAX_MANIFEST_BYTES,
    };
    if header_str(h, header::CONTENT_LENGTH)
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|l| l > MAX_MANIFEST_BYTES as u64)
    {
        return Ok(closing(too_large));
    }
    let bytes = match Limited::new(body, MAX_MANIFEST_BYTES).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return Ok(closing(too_large)),
        Err(e) => {
            return Err(RegistryError::ManifestInvalid(format!(
                "reading the body: {e}"
            )))
        }
    };
    // The reference is checked after the body is read: an answer that leaves the body unread makes the server drop
    // the connection, and a client that already sent its next request on it sees a reset instead of the error.
    let reference = parse_reference(reference)?;
    let parsed = parse_manifest(&bytes, header_str(h, header::CONTENT_TYPE))?;
    let digest = Digest::of(&bytes);
    let tag = match reference {
        Reference::Digest(d) if d != digest => return Err(RegistryError::DigestInvalid),
        Reference::Digest(_) => None,
        Reference::Tag(t) => Some(t),
    };
    let content = String::from_utf8(bytes.to_vec())
        .map_err(|_| RegistryError::ManifestInvalid("not UTF-8".into()))?;
    let rec = ManifestRecord {
        digest: digest.to_string(),
        media_type: parsed.media_type,
        size: content.len() as u64,
        content,
        blobs: parsed.blobs,
        manifests: parsed.manifests,
        subject: parsed.subject.clone(),
        artifact_type: parsed.artifact_type,
        pushed_at: now(),
    };
    reg.meta.put_manifest(name, &rec, tag).await?;
    let mut headers = vec![
        (header::LOCATION, format!("/v2/{name}/manifests/{digest}")),
        (DOCKER_CONTENT_DIGEST, digest.to_string()),
    ];
    if let Some(subject) = parsed.subject {
        headers.push((OCI_SUBJECT, subject));
    }
    Ok(empty(StatusCode::CREATED, headers))
}

/// The error answer to a manifest whose body is left unread: says that the connection closes, so that the client
/// does not send its next request on it.
fn closing(e: RegistryError) -> Response {
    let mut res = e.into_response();
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

pub(crate) async fn delete<S: Store>(
    reg: &Registry<S>,
    name: &str,
    reference: &str,
) -> Result<Response> {
    let found = match parse_reference(reference)? {
        Reference::Digest(d) => reg.meta.delete_manifest(name, &d).await?,
        Reference::Tag(t) => reg.meta.delete_tag(name, t).await?,
    };
    if !found {
        return Err(RegistryError::ManifestUnknown);
    }
    Ok(empty(StatusCode::ACCEPTED, vec![]))
}
