//! Blob GET/HEAD (with `Range`) and DELETE. A blob is visible in a repository only when linked to it.

use super::{empty, header_str, DOCKER_CONTENT_DIGEST};
use crate::digest::Digest;
use crate::errors::{RegistryError, Result};
use crate::storage::blobs::read_stream;
use crate::Registry;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use gantry_store::Store;

pub(crate) fn parse_digest(s: &str) -> Result<Digest> {
    Digest::parse(s).ok_or_else(|| RegistryError::DigestMalformed(s.to_string()))
}

/// The byte range asked by a `Range` header over a blob of `size` bytes: `Ok(None)` for the whole blob (no header,
/// or a form we serve whole, such as several ranges), `Err` when unsatisfiable. Inclusive bounds.
pub(crate) fn parse_range(
    value: Option<&str>,
    size: u64,
) -> std::result::Result<Option<(u64, u64)>, ()> {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        // The last `b` bytes.
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 || size == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size - 1)
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end: u64 = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            b.parse().map_err(|_| ())?
        };
        (start, end.min(size.saturating_sub(1)))
    };
    if start >= size || start > end {
        return Err(());
    }
    Ok(Some((start, end)))
}

pub(crate) async fn get<S: Store>(
    reg: &Registry<S>,
    name: &str,
    digest: &str,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response> {
    let digest = parse_digest(digest)?;
    reg.meta
        .blob_link(name, &digest)
        .ok_or(RegistryError::BlobUnknown)?;
    let (file, size) = reg
        .blobs
        .open_blob(&digest)
        .await?
        .ok_or(RegistryError::BlobUnknown)?;
    let range = parse_range(header_str(headers, header::RANGE), size)
        .map_err(|_| RegistryError::BlobRangeInvalid { size })?;
    let (status, start, len) = match range {
        Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e - s + 1),
        None => (StatusCode::OK, 0, size),
    };
    let body = if head {
        Body::empty()
    } else {
        Body::from_stream(read_stream(file, start, len))
    };
    let mut res = Response::new(body);
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(header::CONTENT_LENGTH, len.into());
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let digest_value = HeaderValue::from_str(digest.as_str()).expect("digest is ascii");
    h.insert(DOCKER_CONTENT_DIGEST, digest_value);
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&format!("\"{digest}\"")).expect("ascii"),
    );
    if range.is_some() {
        let v = format!("bytes {}-{}/{size}", start, start + len - 1);
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&v).expect("ascii"),
        );
    }
    Ok(res)
}

/// Unlinks the blob from the repository; its file stays until garbage collection (later) finds it unreferenced.
pub(crate) async fn delete<S: Store>(
    reg: &Registry<S>,
    name: &str,
    digest: &str,
) -> Result<Response> {
    let digest = parse_digest(digest)?;
    if !reg.meta.unlink_blob(name, &digest).await? {
        return Err(RegistryError::BlobUnknown);
    }
    Ok(empty(
        StatusCode::ACCEPTED,
        vec![(DOCKER_CONTENT_DIGEST, digest.to_string())],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-4"), 10), Ok(Some((0, 4))));
        assert_eq!(parse_range(Some("bytes=5-"), 10), Ok(Some((5, 9))));
        assert_eq!(parse_range(Some("bytes=5-100"), 10), Ok(Some((5, 9))));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Ok(Some((7, 9))));
        assert_eq!(parse_range(Some("bytes=-30"), 10), Ok(Some((0, 9))));
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), Ok(None));
        assert_eq!(parse_range(Some("items=0-1"), 10), Ok(None));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=5-4"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=x-4"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=0-0"), 0), Err(()));
    }
}
