//! A registry over an in-memory store and a temporary data directory, driven through its router.

#![allow(dead_code)]

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use bytes::Bytes;
use gantry_registry::{router, Digest, Registry};
use gantry_store::WalStore;
use http_body_util::BodyExt;
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;

pub struct Harness {
    pub app: Router,
    /// A directory holding only `data` (the registry's data dir), so that writes outside it show.
    pub base: PathBuf,
    pub data: PathBuf,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The spec's error code of an error reply.
    pub fn code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

impl Harness {
    pub fn new() -> Harness {
        let base =
            std::env::temp_dir().join(format!("gantry-registry-test-{}", uuid::Uuid::new_v4()));
        let data = base.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let registry = Registry::open(WalStore::in_memory().unwrap(), &data).unwrap();
        Harness {
            app: router(Arc::new(registry)),
            base,
            data,
        }
    }

    pub async fn send(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Reply {
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = self
            .app
            .clone()
            .oneshot(req.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send("GET", uri, &[], Body::empty()).await
    }

    /// Pushes a blob monolithically and returns its digest.
    pub async fn push_blob(&self, repo: &str, bytes: &[u8]) -> Digest {
        let d = Digest::of(bytes);
        let r = self
            .send(
                "POST",
                &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
                &[],
                bytes.to_vec(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        d
    }

    /// Files under the uploads directory.
    pub fn staged_files(&self) -> usize {
        std::fs::read_dir(self.data.join("registry/uploads"))
            .unwrap()
            .count()
    }

    /// Whether the blob's file exists.
    pub fn blob_file_exists(&self, d: &Digest) -> bool {
        self.data
            .join("registry/blobs/sha256")
            .join(&d.hex()[..2])
            .join(d.hex())
            .exists()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}
