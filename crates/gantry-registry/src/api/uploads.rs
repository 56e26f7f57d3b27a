//! Blob uploads: start (POST, also monolithic with `?digest=` and cross-repository mount with `?mount=&from=`),
//! chunks (PATCH, with or without `Content-Range`), finish (PUT `?digest=`), status (GET) and cancel (DELETE).
//! Bodies stream to the session's file; nothing becomes visible before the digest is verified. The step that makes
//! a blob part of a repository (commit and link, or mount) holds the gate's shared guard, so that the garbage
//! collector never deletes a file a link is being made to.

use super::blobs::parse_digest;
use super::{empty, header_str, DOCKER_CONTENT_DIGEST, DOCKER_UPLOAD_UUID};
use crate::digest::Digest;
use crate::errors::{range_value, RegistryError, Result};
use crate::names::is_valid_name;
use crate::storage::uploads::Session;
use crate::Registry;
use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use gantry_store::Store;
use std::collections::HashMap;

fn upload_location(name: &str, session: &Session) -> String {
    format!("/v2/{name}/blobs/uploads/{}", session.id)
}

/// 202 (or 204 for status) with where the upload stands.
fn in_progress(status: StatusCode, name: &str, s: &Session) -> Response {
    let mut res = empty(
        status,
        vec![
            (header::LOCATION, upload_location(name, s)),
            (DOCKER_UPLOAD_UUID, s.id.to_string()),
        ],
    );
    res.headers_mut()
        .insert(header::RANGE, range_value(s.size()));
    res
}

/// 201 for a blob now in the repository.
fn created(name: &str, digest: &Digest) -> Response {
    empty(
        StatusCode::CREATED,
        vec![
            (header::LOCATION, format!("/v2/{name}/blobs/{digest}")),
            (DOCKER_CONTENT_DIGEST, digest.to_string()),
        ],
    )
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    header_str(h, header::CONTENT_LENGTH).and_then(|v| v.trim().parse().ok())
}

/// A chunk's `Content-Range`: `<start>-<end>` (inclusive; `bytes=` or `bytes ` tolerated). Returns start and length.
pub(crate) fn parse_content_range(v: &str) -> Result<(u64, u64)> {
    let bad = || RegistryError::BlobUploadInvalid(format!("invalid Content-Range {v:?}"));
    let v = v.trim();
    let v = v
        .strip_prefix("bytes=")
        .or_else(|| v.strip_prefix("bytes "))
        .unwrap_or(v);
    let v = v.split('/').next().unwrap_or(v);
    let (a, b) = v.split_once('-').ok_or_else(bad)?;
    let start: u64 = a.trim().parse().map_err(|_| bad())?;
    let end: u64 = b.trim().parse().map_err(|_| bad())?;
    if end < start {
        return Err(bad());
    }
    Ok((start, end - start + 1))
}

/// Appends the request body to the session, honouring `Content-Range` and `Content-Length` when present.
async fn append(s: &mut Session, h: &HeaderMap, body: Body) -> Result<u64> {
    let (start, len) = match header_str(h, header::CONTENT_RANGE) {
        Some(v) => {
            let (start, len) = parse_content_range(v)?;
            if content_length(h).is_some_and(|l| l != len) {
                return Err(RegistryError::SizeInvalid);
            }
            (Some(start), Some(len))
        }
        None => (None, content_length(h)),
    };
    s.append(start, len, body.into_data_stream()).await
}

/// Verifies and commits a complete upload, then links the blob to the repository. The session ends either way.
async fn complete<S: Store>(
    reg: &Registry<S>,
    name: &str,
    s: &mut Session,
    digest: &Digest,
) -> Result<Response> {
    s.closed = true;
    let outcome = async {
        if s.digest().await? != *digest {
            return Err(RegistryError::DigestInvalid);
        }
        // The file may be there already (then commit keeps it): the collector must not take it before the link.
        let _gate = reg.meta.gate().shared().await;
        reg.blobs.commit(s.path(), digest).await?;
        reg.meta.link_blob(name, digest, s.size()).await?;
        Ok(created(name, digest))
    }
    .await;
    reg.uploads.remove(s.id).await;
    outcome
}

pub(crate) async fn start<S: Store>(
    reg: &Registry<S>,
    name: &str,
    query: &HashMap<String, String>,
    h: &HeaderMap,
    body: Body,
) -> Result<Response> {
    reg.meta.check_push(name)?;
    if let Some(mount) = query.get("mount") {
        let digest = parse_digest(mount)?;
        if let Some(from) = query.get("from") {
            if !is_valid_name(from) {
                return Err(RegistryError::NameInvalid);
            }
            let _gate = reg.meta.gate().shared().await;
            if let Some(link) = reg.meta.blob_link(from, &digest) {
                if reg.blobs.size(&digest).await?.is_some() {
                    reg.meta.link_blob(name, &digest, link.size).await?;
                    return Ok(created(name, &digest));
                }
            }
        }
        // Not mountable: a plain upload session, as the spec says.
    } else if let Some(d) = query.get("digest") {
        // Monolithic upload: the whole blob in this request.
        let digest = parse_digest(d)?;
        let session = reg.uploads.start(name).await?;
        let mut s = session.lock().await;
        if let Err(e) = append(&mut s, h, body).await {
            s.closed = true;
            reg.uploads.remove(s.id).await;
            return Err(e);
        }
        return complete(reg, name, &mut s, &digest).await;
    }
    let session = reg.uploads.start(name).await?;
    let mut s = session.lock().await;
    // The client gets a location it may come back to, after a restart too.
    if let Err(e) = s.make_resumable().await {
        s.closed = true;
        reg.uploads.remove(s.id).await;
        return Err(e);
    }
    Ok(in_progress(StatusCode::ACCEPTED, name, &s))
}

pub(crate) async fn status<S: Store>(reg: &Registry<S>, name: &str, id: &str) -> Result<Response> {
    let session = reg.uploads.get(name, id)?;
    let mut s = session.lock().await;
    if s.closed {
        return Err(RegistryError::BlobUploadUnknown);
    }
    s.touch();
    Ok(in_progress(StatusCode::NO_CONTENT, name, &s))
}

pub(crate) async fn patch<S: Store>(
    reg: &Registry<S>,
    name: &str,
    id: &str,
    h: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let session = reg.uploads.get(name, id)?;
    let mut s = session.lock().await;
    if s.closed {
        return Err(RegistryError::BlobUploadUnknown);
    }
    match append(&mut s, h, body).await {
        Ok(_) => Ok(in_progress(StatusCode::ACCEPTED, name, &s)),
        Err(RegistryError::RangeNotSatisfiable { size }) => {
            let mut res =
                axum::response::IntoResponse::into_response(RegistryError::RangeNotSatisfiable {
                    size,
                });
            if let Ok(v) = upload_location(name, &s).parse() {
                res.headers_mut().insert(header::LOCATION, v);
            }
            Ok(res)
        }
        Err(e) => Err(e),
    }
}

pub(crate) async fn finish<S: Store>(
    reg: &Registry<S>,
    name: &str,
    id: &str,
    query: &HashMap<String, String>,
    h: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let session = reg.uploads.get(name, id)?;
    let mut s = session.lock().await;
    if s.closed {
        return Err(RegistryError::BlobUploadUnknown);
    }
    let digest = match query.get("digest") {
        Some(d) => parse_digest(d)?,
        None => {
            return Err(RegistryError::DigestMalformed(
                "the digest parameter is missing".into(),
            ))
        }
    };
    append(&mut s, h, body).await?;
    complete(reg, name, &mut s, &digest).await
}

pub(crate) async fn cancel<S: Store>(reg: &Registry<S>, name: &str, id: &str) -> Result<Response> {
    let session = reg.uploads.get(name, id)?;
    let mut s = session.lock().await;
    if s.closed {
        return Err(RegistryError::BlobUploadUnknown);
    }
    s.closed = true;
    reg.uploads.remove(s.id).await;
    Ok(empty(StatusCode::NO_CONTENT, vec![]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("0-9").unwrap(), (0, 10));
        assert_eq!(parse_content_range("bytes=10-19").unwrap(), (10, 10));
        assert_eq!(parse_content_range("bytes 10-19/100").unwrap(), (10, 10));
        assert!(parse_content_range("9-0").is_err());
        assert!(parse_content_range("x").is_err());
        assert!(parse_content_range("-5").is_err());
    }
}
