//! The registry's errors, and their one mapping to the distribution spec's error body
//! `{"errors":[{"code":"...","message":"...","detail":...}]}` and HTTP status.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use gantry_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("blob unknown to registry")]
    BlobUnknown,
    #[error("blob upload unknown to registry")]
    BlobUploadUnknown,
    #[error("blob upload invalid: {0}")]
    BlobUploadInvalid(String),
    /// A chunk that does not start where the upload stands; carries the upload's current size.
    #[error("chunk out of order: the upload has {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    /// A `Range` on a blob GET that lies outside the blob.
    #[error("requested range not satisfiable")]
    BlobRangeInvalid { size: u64 },
    #[error("provided digest did not match uploaded content")]
    DigestInvalid,
    #[error("invalid digest: {0}")]
    DigestMalformed(String),
    #[error("manifest references a blob unknown to the repository: {0}")]
    ManifestBlobUnknown(String),
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    #[error("manifest larger than {limit} bytes")]
    ManifestTooLarge { limit: usize },
    #[error("manifest unknown to registry")]
    ManifestUnknown,
    #[error("invalid repository name")]
    NameInvalid,
    #[error("repository name not known to registry")]
    NameUnknown,
    #[error("provided length did not match content length")]
    SizeInvalid,
    #[error("manifest tag did not match URI")]
    TagInvalid,
    #[error("the operation is unsupported")]
    Unsupported,
    #[error("authentication required: {0}")]
    Unauthorized(#[from] crate::token::TokenError),
    #[error("no such endpoint")]
    RouteUnknown,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("storage: {0}")]
    Io(#[from] std::io::Error),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("concurrent change, retry")]
    Conflict,
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

impl RegistryError {
    /// The spec's error code and the HTTP status.
    pub fn code_and_status(&self) -> (&'static str, StatusCode) {
        use RegistryError::*;
        match self {
            BlobUnknown => ("BLOB_UNKNOWN", StatusCode::NOT_FOUND),
            BlobUploadUnknown => ("BLOB_UPLOAD_UNKNOWN", StatusCode::NOT_FOUND),
            BlobUploadInvalid(_) => ("BLOB_UPLOAD_INVALID", StatusCode::BAD_REQUEST),
            RangeNotSatisfiable { .. } => {
                ("BLOB_UPLOAD_INVALID", StatusCode::RANGE_NOT_SATISFIABLE)
            }
            BlobRangeInvalid { .. } => ("BLOB_UNKNOWN", StatusCode::RANGE_NOT_SATISFIABLE),
            DigestInvalid | DigestMalformed(_) => ("DIGEST_INVALID", StatusCode::BAD_REQUEST),
            ManifestBlobUnknown(_) => ("MANIFEST_BLOB_UNKNOWN", StatusCode::BAD_REQUEST),
            ManifestInvalid(_) => ("MANIFEST_INVALID", StatusCode::BAD_REQUEST),
            ManifestTooLarge { .. } => ("MANIFEST_INVALID", StatusCode::PAYLOAD_TOO_LARGE),
            ManifestUnknown => ("MANIFEST_UNKNOWN", StatusCode::NOT_FOUND),
            NameInvalid => ("NAME_INVALID", StatusCode::BAD_REQUEST),
            NameUnknown => ("NAME_UNKNOWN", StatusCode::NOT_FOUND),
            SizeInvalid => ("SIZE_INVALID", StatusCode::BAD_REQUEST),
            TagInvalid => ("TAG_INVALID", StatusCode::BAD_REQUEST),
            Unsupported => ("UNSUPPORTED", StatusCode::UNSUPPORTED_MEDIA_TYPE),
            Unauthorized(_) => ("UNAUTHORIZED", StatusCode::UNAUTHORIZED),
            MethodNotAllowed => ("UNSUPPORTED", StatusCode::METHOD_NOT_ALLOWED),
            RouteUnknown => ("UNSUPPORTED", StatusCode::NOT_FOUND),
            Conflict => ("UNKNOWN", StatusCode::SERVICE_UNAVAILABLE),
            Io(_) | Store(_) => ("UNKNOWN", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    fn detail(&self) -> Option<serde_json::Value> {
        match self {
            RegistryError::ManifestBlobUnknown(d) => Some(serde_json::json!({ "digest": d })),
            RegistryError::RangeNotSatisfiable { size } => {
                Some(serde_json::json!({ "size": size }))
            }
            _ => None,
        }
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let (code, status) = self.code_and_status();
        if status.is_server_error() {
            tracing::error!(error = %self, "registry request failed");
        }
        let mut error = serde_json::json!({ "code": code, "message": self.to_string() });
        if let Some(detail) = self.detail() {
            error["detail"] = detail;
        }
        let body =
            serde_json::to_vec(&serde_json::json!({ "errors": [error] })).unwrap_or_default();
        let mut res = (status, body).into_response();
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        match self {
            RegistryError::RangeNotSatisfiable { size } => {
                headers.insert(header::RANGE, range_value(size));
            }
            RegistryError::BlobRangeInvalid { size } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    headers.insert(header::CONTENT_RANGE, v);
                }
            }
            _ => {}
        }
        res
    }
}

/// The `Range` header of an upload of `size` bytes: `0-{size-1}`, and `0-0` when empty (as distribution does).
pub fn range_value(size: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("0-{}", size.saturating_sub(1))).expect("ascii")
}
