//! Hostile input: path traversal in names, digests, upload ids and references is refused and writes nothing outside
//! the data directory; unknown endpoints answer with an error body; HEAD keeps its Content-Length over real HTTP.

mod common;

use axum::http::StatusCode;
use common::Harness;
use gantry_registry::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        }
        out.push(p);
    }
}

#[tokio::test]
async fn path_traversal_is_refused_and_writes_nothing_outside() {
    let h = Harness::new();
    let d = Digest::of(b"payload");
    let attempts: Vec<(&str, String)> = vec![
        ("POST", "/v2/../blobs/uploads/".into()),
        ("POST", "/v2/a/../../blobs/uploads/".into()),
        ("POST", "/v2/a/..%2F..%2Fx/blobs/uploads/".into()),
        ("POST", format!("/v2/../../etc/blobs/uploads/?digest={d}")),
        ("POST", format!("/v2/%2e%2e/blobs/uploads/?digest={d}")),
        (
            "POST",
            "/v2/a/blobs/uploads/?digest=sha256:../../../../x".into(),
        ),
        (
            "POST",
            "/v2/a/blobs/uploads/?mount=sha256:..%2F..%2Fx&from=b".into(),
        ),
        ("POST", format!("/v2/a/blobs/uploads/?mount={d}&from=../b")),
        ("PATCH", "/v2/a/blobs/uploads/..%2F..%2Fescape".into()),
        (
            "PUT",
            format!("/v2/a/blobs/uploads/..%2F..%2Fescape?digest={d}"),
        ),
        (
            "GET",
            "/v2/a/blobs/sha256:..%2F..%2F..%2Fetc%2Fpasswd".into(),
        ),
        ("GET", "/v2/a/blobs/..%2F..%2Fregistry".into()),
        ("PUT", "/v2/a/manifests/..%2F..%2Fx".into()),
        ("PUT", "/v2/a/manifests/sha256:..%2F..".into()),
        ("GET", "/v2/./a/tags/list".into()),
        ("GET", "/v2/a//b/tags/list".into()),
    ];
    for (m, uri) in &attempts {
        let r = h.send(m, uri, &[], "payload").await;
        assert!(r.status.is_client_error(), "{m} {uri}: {}", r.status);
        assert!(!r.code().is_empty(), "{m} {uri}: no error body");
    }
    // Only the data directory exists next to it, and nothing inside but the registry's empty directories and the
    // key it signs login tokens with (written when the registry opens).
    let top: Vec<_> = std::fs::read_dir(&h.base)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(top, vec![std::ffi::OsString::from("data")]);
    let mut files = Vec::new();
    walk(&h.data, &mut files);
    let key = h.data.join("registry").join("token-key");
    assert!(
        files.iter().all(|p| p.is_dir() || *p == key),
        "files written: {files:?}"
    );
    assert!(!h.blob_file_exists(&d));
}

#[tokio::test]
async fn unknown_endpoints_answer_with_error_bodies() {
    let h = Harness::new();
    for uri in ["/v2/a", "/v2/a/b", "/v2/a/tags"] {
        let r = h.get(uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(r.code(), "UNSUPPORTED");
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
}

/// Over a real connection, HEAD answers keep their Content-Length and send no body.
#[tokio::test]
async fn head_over_tcp_keeps_content_length() {
    let h = Harness::new();
    let d = h.push_blob("a/b", b"twelve bytes").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = h.app.clone();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("HEAD /v2/a/b/blobs/{d} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    conn.read_to_string(&mut out).await.unwrap();
    let lower = out.to_ascii_lowercase();
    assert!(lower.starts_with("http/1.1 200"), "{out}");
    assert!(lower.contains("content-length: 12\r\n"), "{out}");
    assert!(
        lower.contains(&format!("docker-content-digest: {d}")),
        "{out}"
    );
    assert!(out.ends_with("\r\n\r\n"), "a body was sent: {out}");
    server.abort();
}
