//! The OCI distribution API. `router` serves `/v2/`; everything below it goes through one handler that parses the
//! path from the right (repository names contain `/`, digests, tags and upload ids never do) and dispatches by
//! method to the endpoint modules.

mod auth;
mod blobs;
mod manifests;
mod referrers;
mod tags;
mod uploads;

use crate::errors::{RegistryError, Result};
use crate::names::is_valid_name;
use crate::Registry;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use gantry_store::Store;
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) const DOCKER_CONTENT_DIGEST: HeaderName =
    HeaderName::from_static("docker-content-digest");
pub(crate) const DOCKER_UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");

/// The registry's HTTP API under `/v2/`.
pub fn router<S: Store>(registry: Arc<Registry<S>>) -> Router {
    Router::new()
        .route("/v2/", get(base::<S>))
        .route("/v2", get(base::<S>))
        .route("/v2/token", get(auth::token::<S>))
        .route("/v2/{*rest}", any(dispatch::<S>))
        .with_state(registry)
}

/// What a path under `/v2/` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    Blob { name: &'a str, digest: &'a str },
    UploadStart { name: &'a str },
    Upload { name: &'a str, id: &'a str },
    Manifest { name: &'a str, reference: &'a str },
    Tags { name: &'a str },
    Referrers { name: &'a str, digest: &'a str },
}

/// Parses the part of the path after `/v2/`, from the right. The name is not validated here.
pub(crate) fn parse_path(rest: &str) -> Option<Target<'_>> {
    let parts: Vec<&str> = rest.split('/').collect();
    let n = parts.len();
    // The name is everything before the last `k` segments (and the `/` before them).
    let name = |k: usize| -> Option<&str> {
        let tail: usize = parts[n - k..].iter().map(|p| p.len() + 1).sum();
        rest.get(..rest.len().checked_sub(tail)?)
            .filter(|s| !s.is_empty())
    };
    let at = |i: usize| -> &str { parts.get(n.wrapping_sub(i)).copied().unwrap_or("") };
    if n >= 3 && at(2) == "tags" && at(1) == "list" {
        return Some(Target::Tags { name: name(2)? });
    }
    if n >= 3 && at(2) == "manifests" {
        return Some(Target::Manifest {
            name: name(2)?,
            reference: at(1),
        });
    }
    if n >= 4 && at(3) == "blobs" && at(2) == "uploads" {
        let name = name(3)?;
        return Some(if at(1).is_empty() {
            Target::UploadStart { name }
        } else {
            Target::Upload { name, id: at(1) }
        });
    }
    if n >= 3 && at(2) == "blobs" && at(1) == "uploads" {
        return Some(Target::UploadStart { name: name(2)? });
    }
    if n >= 3 && at(2) == "blobs" {
        return Some(Target::Blob {
            name: name(2)?,
            digest: at(1),
        });
    }
    if n >= 3 && at(2) == "referrers" {
        return Some(Target::Referrers {
            name: name(2)?,
            digest: at(1),
        });
    }
    None
}

async fn base<S: Store>(State(reg): State<Arc<Registry<S>>>, headers: HeaderMap) -> Response {
    // Clients probe `/v2/` to learn how to authenticate: the 401 carries the challenge.
    let mut res = match auth::authorize(&reg, &headers) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{}",
        )
            .into_response(),
        Err(e) => e.into_response(),
    };
    auth::add_challenge(&mut res, headers.get(header::HOST));
    res.headers_mut()
        .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    res
}

async fn dispatch<S: Store>(State(reg): State<Arc<Registry<S>>>, req: Request) -> Response {
    // Kept from the request before it is consumed: what the answer may need.
    let host = req.headers().get(header::HOST).cloned();
    let has_body = has_body(req.headers());
    let outcome = match auth::authorize(&reg, req.headers()) {
        Ok(()) => handle(&reg, req).await,
        Err(e) => Err(e),
    };
    let mut res = match outcome {
        Ok(res) => res,
        Err(e) => {
            let mut res = e.into_response();
            // An error may come before the request body was read: the connection cannot carry another request
            // then, and saying so lets the client open a new one instead of meeting a reset.
            if has_body {
                res.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            res
        }
    };
    auth::add_challenge(&mut res, host.as_ref());
    res.headers_mut()
        .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    res
}

async fn handle<S: Store>(reg: &Registry<S>, req: Request) -> Result<Response> {
    let path = req.uri().path().to_string();
    let query: HashMap<String, String> = Query::try_from_uri(req.uri())
        .map(|Query(q)| q)
        .unwrap_or_default();
    let (parts, body) = req.into_parts();
    let rest = path.strip_prefix("/v2/").unwrap_or("");
    let target = parse_path(rest).ok_or(RegistryError::RouteUnknown)?;
    let name = match &target {
        Target::Blob { name, .. }
        | Target::UploadStart { name }
        | Target::Upload { name, .. }
        | Target::Manifest { name, .. }
        | Target::Tags { name }
        | Target::Referrers { name, .. } => *name,
    };
    if !is_valid_name(name) {
        return Err(RegistryError::NameInvalid);
    }
    let (m, h) = (&parts.method, &parts.headers);
    let head = *m == Method::HEAD;
    match target {
        Target::Blob { digest, .. } => match *m {
            Method::GET | Method::HEAD => blobs::get(reg, name, digest, h, head).await,
            Method::DELETE => blobs::delete(reg, name, digest).await,
            _ => Err(RegistryError::MethodNotAllowed),
        },
        Target::UploadStart { .. } => match *m {
            Method::POST => uploads::start(reg, name, &query, h, body).await,
            _ => Err(RegistryError::MethodNotAllowed),
        },
        Target::Upload { id, .. } => match *m {
            Method::GET | Method::HEAD => uploads::status(reg, name, id).await,
            Method::PATCH => uploads::patch(reg, name, id, h, body).await,
            Method::PUT => uploads::finish(reg, name, id, &query, h, body).await,
            Method::DELETE => uploads::cancel(reg, name, id).await,
            _ => Err(RegistryError::MethodNotAllowed),
        },
        Target::Manifest { reference, .. } => match *m {
            Method::GET | Method::HEAD => manifests::get(reg, name, reference, head).await,
            Method::PUT => manifests::put(reg, name, reference, h, body).await,
            Method::DELETE => manifests::delete(reg, name, reference).await,
            _ => Err(RegistryError::MethodNotAllowed),
        },
        Target::Tags { .. } => match *m {
            Method::GET | Method::HEAD => tags::list(reg, name, &query, head),
            _ => Err(RegistryError::MethodNotAllowed),
        },
        Target::Referrers { digest, .. } => match *m {
            Method::GET | Method::HEAD => referrers::list(reg, name, digest, &query, head),
            _ => Err(RegistryError::MethodNotAllowed),
        },
    }
}

/// Whether the request announced a body.
fn has_body(h: &HeaderMap) -> bool {
    h.contains_key(header::TRANSFER_ENCODING)
        || header_str(h, header::CONTENT_LENGTH)
            .and_then(|l| l.parse::<u64>().ok())
            .is_some_and(|l| l > 0)
}

/// A header's value as text.
pub(crate) fn header_str(
    h: &HeaderMap,
    name: impl axum::http::header::AsHeaderName,
) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// A response with no body and the given headers.
pub(crate) fn empty(status: StatusCode, headers: Vec<(HeaderName, String)>) -> Response {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = status;
    let h = res.headers_mut();
    for (k, v) in headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_from_the_right() {
        use Target::*;
        let d = "sha256:abc";
        assert_eq!(
            parse_path("a/b/c/blobs/sha256:abc"),
            Some(Blob {
                name: "a/b/c",
                digest: d
            })
        );
        assert_eq!(
            parse_path("a/blobs/uploads/"),
            Some(UploadStart { name: "a" })
        );
        assert_eq!(
            parse_path("a/blobs/uploads"),
            Some(UploadStart { name: "a" })
        );
        assert_eq!(
            parse_path("x/blobs/uploads/u1"),
            Some(Upload {
                name: "x",
                id: "u1"
            })
        );
        // Components that look like keywords belong to the name.
        assert_eq!(
            parse_path("blobs/blobs/uploads/u1"),
            Some(Upload {
                name: "blobs",
                id: "u1"
            })
        );
        assert_eq!(
            parse_path("a/manifests/manifests/v1"),
            Some(Manifest {
                name: "a/manifests",
                reference: "v1"
            })
        );
        assert_eq!(
            parse_path("a/tags/tags/list"),
            Some(Tags { name: "a/tags" })
        );
        assert_eq!(
            parse_path("a/referrers/sha256:abc"),
            Some(Referrers {
                name: "a",
                digest: d
            })
        );
        assert_eq!(parse_path("manifests/v1"), None);
        assert_eq!(parse_path("/manifests/v1"), None);
        assert_eq!(parse_path(""), None);
        assert_eq!(parse_path("a/b"), None);
        assert_eq!(
            parse_path("a/../../manifests/v1"),
            Some(Manifest {
                name: "a/../..",
                reference: "v1"
            })
        );
    }
}
