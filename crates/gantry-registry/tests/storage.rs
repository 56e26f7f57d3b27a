//! Storage robustness: garbage collection (what goes, what stays, and pushes racing a pass) and upload sessions
//! that survive a reopen of the registry on the same data directory.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use common::Reply;
use gantry_registry::gc::{GcOptions, GcReport};
use gantry_registry::meta::{blob_key, now, BlobLink};
use gantry_registry::{router, Digest, Registry};
use gantry_store::{Store, Txn, WalStore};
use http_body_util::BodyExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const IMAGE: &str = "application/vnd.oci.image.manifest.v1+json";

struct Reg {
    reg: Arc<Registry<WalStore>>,
    app: Router,
    base: PathBuf,
    data: PathBuf,
    /// Whether dropping removes the data directory.
    cleanup: bool,
}

impl Reg {
    fn new() -> Reg {
        let base =
            std::env::temp_dir().join(format!("gantry-registry-gc-{}", uuid::Uuid::new_v4()));
        let data = base.join("data");
        std::fs::create_dir_all(&data).unwrap();
        Reg::open(base, data)
    }

    /// A registry over the same data directory (a new, empty store: upload sessions live in files).
    fn open(base: PathBuf, data: PathBuf) -> Reg {
        let reg = Arc::new(Registry::open(WalStore::in_memory().unwrap(), &data).unwrap());
        Reg {
            app: router(reg.clone()),
            reg,
            base,
            data,
            cleanup: true,
        }
    }

    /// Drops the registry, keeping its data directory; returns it.
    fn close(mut self) -> (PathBuf, PathBuf) {
        self.cleanup = false;
        (self.base.clone(), self.data.clone())
    }

    async fn send(
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

    async fn push_blob(&self, repo: &str, bytes: &[u8]) -> Digest {
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

    /// Pushes an image manifest over `config` and `layers` (already pushed) under `tag`; returns its digest.
    async fn push_manifest(
        &self,
        repo: &str,
        tag: &str,
        config: &Digest,
        layers: &[&Digest],
    ) -> Digest {
        let desc = |d: &Digest| serde_json::json!({"mediaType": "application/octet-stream", "digest": d.to_string(), "size": 1});
        let m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": IMAGE,
            "config": desc(config),
            "layers": layers.iter().map(|d| desc(d)).collect::<Vec<_>>(),
        })
        .to_string();
        let r = self
            .send(
                "PUT",
                &format!("/v2/{repo}/manifests/{tag}"),
                &[("content-type", IMAGE)],
                m.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        Digest::of(m.as_bytes())
    }

    async fn blob_status(&self, repo: &str, d: &Digest) -> StatusCode {
        self.send("GET", &format!("/v2/{repo}/blobs/{d}"), &[], Body::empty())
            .await
            .status
    }

    fn file_exists(&self, d: &Digest) -> bool {
        self.data
            .join("registry/blobs/sha256")
            .join(&d.hex()[..2])
            .join(d.hex())
            .exists()
    }

    fn blob_files(&self) -> usize {
        let root = self.data.join("registry/blobs/sha256");
        std::fs::read_dir(root)
            .unwrap()
            .map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().count())
            .sum()
    }

    fn staged_files(&self) -> usize {
        std::fs::read_dir(self.data.join("registry/uploads"))
            .unwrap()
            .count()
    }

    /// Makes the link look as if it were made long ago (an abandoned push).
    async fn age_link(&self, repo: &str, d: &Digest) {
        let link = BlobLink {
            size: 1,
            linked_at: 0,
        };
        let txn = Txn::new().put(
            blob_key(repo, d.as_str()),
            serde_json::to_vec(&link).unwrap(),
        );
        assert!(self.reg.store().txn(txn).await.unwrap().is_committed());
    }

    async fn gc_at(&self, now: u64) -> GcReport {
        let pass = self.reg.gc_plan(GcOptions::default(), now).await.unwrap();
        self.reg.gc_apply(&pass).await.unwrap()
    }
}

impl Drop for Reg {
    fn drop(&mut self) {
        if self.cleanup {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }
}

const HOUR: u64 = 3600;

#[tokio::test]
async fn gc_removes_unreferenced_blobs_and_keeps_referenced_and_shared_ones() {
    let h = Reg::new();
    let (ca, l1, shared) = (
        h.push_blob("a", b"config a").await,
        h.push_blob("a", b"layer only in a").await,
        h.push_blob("a", b"shared layer").await,
    );
    let ma = h.push_manifest("a", "v1", &ca, &[&l1, &shared]).await;
    let cb = h.push_blob("b", b"config b").await;
    // The second push of the shared layer stores no second copy.
    assert_eq!(h.push_blob("b", b"shared layer").await, shared);
    h.push_manifest("b", "v1", &cb, &[&shared]).await;
    let abandoned = h.push_blob("a", b"a layer whose manifest never came").await;
    assert_eq!(h.blob_files(), 5);

    // Everything is referenced or freshly linked.
    let r = h.reg.collect_garbage(GcOptions::default()).await.unwrap();
    assert_eq!(r, GcReport::default());

    // The image of "a" goes; its links are recent, so nothing goes yet.
    let r = h
        .send(
            "DELETE",
            &format!("/v2/a/manifests/{ma}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(h.gc_at(now()).await, GcReport::default());

    // Past the grace period: the links of "a" go, and the blobs no other repository uses.
    let r = h.gc_at(now() + 2 * HOUR).await;
    assert_eq!(r.links_removed, 4);
    assert_eq!(r.blobs_removed, 3);
    let freed: usize = [
        &b"config a"[..],
        b"layer only in a",
        b"a layer whose manifest never came",
    ]
    .iter()
    .map(|b| b.len())
    .sum();
    assert_eq!(r.bytes_freed, freed as u64);
    for gone in [&ca, &l1, &abandoned] {
        assert!(!h.file_exists(gone));
        assert_eq!(h.blob_status("a", gone).await, StatusCode::NOT_FOUND);
    }
    assert!(h.file_exists(&shared) && h.file_exists(&cb));
    let r = h
        .send("GET", &format!("/v2/b/blobs/{shared}"), &[], Body::empty())
        .await;
    assert_eq!(
        (r.status, &r.body[..]),
        (StatusCode::OK, &b"shared layer"[..])
    );
    assert_eq!(
        h.send("GET", "/v2/b/manifests/v1", &[], Body::empty())
            .await
            .status,
        StatusCode::OK
    );
    // A second pass finds nothing more.
    assert_eq!(h.gc_at(now() + 2 * HOUR).await, GcReport::default());
}

#[tokio::test]
async fn gc_collects_everything_after_a_reset() {
    let h = Reg::new();
    let c = h.push_blob("a", b"config").await;
    let l = h.push_blob("a", b"layer").await;
    h.push_manifest("a", "v1", &c, &[&l]).await;
    let txn = Txn::new().delete_prefix("/");
    h.reg.store().txn(txn).await.unwrap();
    let r = h.reg.collect_garbage(GcOptions::default()).await.unwrap();
    assert_eq!((r.blobs_removed, r.links_removed), (2, 0));
    assert_eq!(h.blob_files(), 0);
}

#[tokio::test]
async fn gc_ends_idle_upload_sessions() {
    let h = Reg::new();
    let r = h
        .send("POST", "/v2/a/blobs/uploads/", &[], Body::empty())
        .await;
    let loc = r.header("location").unwrap().to_string();
    let r = h
        .send("PATCH", &loc, &[("content-range", "0-4")], "hello")
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(h.gc_at(now()).await.uploads_removed, 0);
    assert_eq!(
        h.send("GET", &loc, &[], Body::empty()).await.status,
        StatusCode::NO_CONTENT
    );
    let r = h.gc_at(now() + 2 * HOUR).await;
    assert_eq!((r.uploads_removed, r.bytes_freed), (1, 5));
    let r = h.send("GET", &loc, &[], Body::empty()).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN")
    );
    assert_eq!(h.staged_files(), 0);
}

// The race: a pass decides a blob is garbage, then a push makes it referenced again before the pass deletes.

#[tokio::test]
async fn an_upload_of_the_same_blob_finishing_after_the_decision_keeps_it() {
    let h = Reg::new();
    let d = h.push_blob("a", b"layer").await;
    let r = h
        .send("DELETE", &format!("/v2/a/blobs/{d}"), &[], Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let pass = h.reg.gc_plan(GcOptions::default(), now()).await.unwrap();
    assert_eq!(pass.plan.blobs.len(), 1, "{pass:?}");
    // The file is there, so this commit writes nothing: only its link says the blob is needed.
    h.push_blob("b", b"layer").await;
    let r = h.reg.gc_apply(&pass).await.unwrap();
    assert_eq!(r.blobs_removed, 0);
    let r = h
        .send("GET", &format!("/v2/b/blobs/{d}"), &[], Body::empty())
        .await;
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &b"layer"[..]));
}

#[tokio::test]
async fn a_mount_after_the_decision_keeps_the_blob() {
    let h = Reg::new();
    let d = h.push_blob("a", b"layer").await;
    h.age_link("a", &d).await;
    let pass = h.reg.gc_plan(GcOptions::default(), now()).await.unwrap();
    assert_eq!((pass.plan.links.len(), pass.plan.blobs.len()), (1, 1));
    let r = h
        .send(
            "POST",
            &format!("/v2/b/blobs/uploads/?mount={d}&from=a"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = h.reg.gc_apply(&pass).await.unwrap();
    // The abandoned link in "a" goes; the file stays for "b".
    assert_eq!((r.links_removed, r.blobs_removed), (1, 0));
    assert_eq!(h.blob_status("a", &d).await, StatusCode::NOT_FOUND);
    assert_eq!(h.blob_status("b", &d).await, StatusCode::OK);
}

#[tokio::test]
async fn a_manifest_put_after_the_decision_keeps_the_link_and_the_blob() {
    let h = Reg::new();
    let c = h.push_blob("a", b"config").await;
    let l = h.push_blob("a", b"layer").await;
    h.age_link("a", &l).await;
    let pass = h.reg.gc_plan(GcOptions::default(), now()).await.unwrap();
    assert_eq!((pass.plan.links.len(), pass.plan.blobs.len()), (1, 1));
    h.push_manifest("a", "v1", &c, &[&l]).await;
    let r = h.reg.gc_apply(&pass).await.unwrap();
    assert_eq!(r, GcReport::default());
    assert_eq!(h.blob_status("a", &l).await, StatusCode::OK);
}

#[tokio::test]
async fn a_pass_waits_for_a_linking_step_in_flight() {
    let h = Reg::new();
    let d = h.push_blob("a", b"layer").await;
    h.send("DELETE", &format!("/v2/a/blobs/{d}"), &[], Body::empty())
        .await;
    let pass = h.reg.gc_plan(GcOptions::default(), now()).await.unwrap();
    // A push stands between "the file is there" and "the link is committed".
    let guard = h.reg.gc_gate().shared().await;
    let reg = h.reg.clone();
    let apply = tokio::spawn(async move { reg.gc_apply(&pass).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !apply.is_finished(),
        "the pass deleted while a link was being made"
    );
    assert!(h.file_exists(&d));
    let link = BlobLink {
        size: 5,
        linked_at: now(),
    };
    let txn = Txn::new().put(
        blob_key("b", d.as_str()),
        serde_json::to_vec(&link).unwrap(),
    );
    h.reg.store().txn(txn).await.unwrap();
    drop(guard);
    let r = apply.await.unwrap();
    assert_eq!(r.blobs_removed, 0);
    assert!(h.file_exists(&d));
}

#[tokio::test]
async fn concurrent_pushes_of_one_layer_during_passes_store_one_good_copy() {
    let h = Arc::new(Reg::new());
    let body = vec![7u8; 256 * 1024];
    let d = Digest::of(&body);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (h, body) = (h.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            h.push_blob(&format!("r{i}"), &body).await;
            // Then delete it again, so that passes have something to collect.
            if i % 2 == 0 {
                h.send(
                    "DELETE",
                    &format!("/v2/r{i}/blobs/{}", Digest::of(&body)),
                    &[],
                    Body::empty(),
                )
                .await;
            }
        }));
    }
    for _ in 0..4 {
        h.reg.collect_garbage(GcOptions::default()).await.unwrap();
    }
    for t in tasks {
        t.await.unwrap();
    }
    h.reg.collect_garbage(GcOptions::default()).await.unwrap();
    // The odd repositories still link it: one good copy serves them.
    assert_eq!(h.blob_files(), 1);
    for i in (1..8).step_by(2) {
        let r = h
            .send("GET", &format!("/v2/r{i}/blobs/{d}"), &[], Body::empty())
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(Digest::of(&r.body), d);
    }
}

#[tokio::test]
async fn an_upload_resumes_after_the_registry_is_reopened() {
    let h = Reg::new();
    let r = h
        .send("POST", "/v2/a/blobs/uploads/", &[], Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let loc = r.header("location").unwrap().to_string();
    let r = h
        .send("PATCH", &loc, &[("content-range", "0-5")], "hello ")
        .await;
    assert_eq!(
        (r.status, r.header("range")),
        (StatusCode::ACCEPTED, Some("0-5"))
    );
    let id = loc.rsplit('/').next().unwrap().to_string();
    let (base, data) = h.close();
    // A crash in the middle of the next chunk: bytes past what was acknowledged.
    let staged = data.join("registry/uploads").join(&id);
    let mut bytes = std::fs::read(&staged).unwrap();
    bytes.extend_from_slice(b"wor");
    std::fs::write(&staged, bytes).unwrap();

    let h = Reg::open(base, data);
    let r = h.send("GET", &loc, &[], Body::empty()).await;
    assert_eq!(
        (r.status, r.header("range")),
        (StatusCode::NO_CONTENT, Some("0-5"))
    );
    let r = h
        .send("PATCH", &loc, &[("content-range", "6-10")], "world")
        .await;
    assert_eq!(
        (r.status, r.header("range")),
        (StatusCode::ACCEPTED, Some("0-10"))
    );
    let d = Digest::of(b"hello world");
    let r = h
        .send("PUT", &format!("{loc}?digest={d}"), &[], Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = h
        .send("GET", &format!("/v2/a/blobs/{d}"), &[], Body::empty())
        .await;
    assert_eq!(
        (r.status, &r.body[..]),
        (StatusCode::OK, &b"hello world"[..])
    );
    assert_eq!(h.staged_files(), 0);
}
