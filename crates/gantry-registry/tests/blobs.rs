//! Blob endpoints of the distribution spec: end-1, end-2, end-4a/b, end-5, end-6, end-10, end-11, end-13 and upload
//! cancel, with their statuses, headers and error bodies.

mod common;

use axum::http::StatusCode;
use common::Harness;
use gantry_registry::Digest;

#[tokio::test]
async fn end_1_base() {
    let h = Harness::new();
    for uri in ["/v2/", "/v2"] {
        let r = h.get(uri).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.header("docker-distribution-api-version"),
            Some("registry/2.0")
        );
        assert_eq!(r.json(), serde_json::json!({}));
    }
}

#[tokio::test]
async fn chunked_upload_then_pull_with_ranges() {
    let h = Harness::new();
    let repo = "team/app/web";
    // end-4a
    let r = h
        .send("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], "")
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let loc = r.header("location").unwrap().to_string();
    let uuid = r.header("docker-upload-uuid").unwrap().to_string();
    assert_eq!(loc, format!("/v2/{repo}/blobs/uploads/{uuid}"));
    assert_eq!(r.header("range"), Some("0-0"));
    assert_eq!(
        r.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );

    // end-5 with Content-Range
    let r = h
        .send(
            "PATCH",
            &loc,
            &[("content-range", "0-4"), ("content-length", "5")],
            "hello",
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.header("range"), Some("0-4"));
    assert_eq!(r.header("location"), Some(loc.as_str()));
    assert_eq!(r.header("docker-upload-uuid"), Some(uuid.as_str()));

    // Out of order: 416, the upload stays where it was.
    let r = h
        .send("PATCH", &loc, &[("content-range", "10-12")], "abc")
        .await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.code(), "BLOB_UPLOAD_INVALID");
    assert_eq!(r.header("range"), Some("0-4"));
    // A Content-Range that does not match the body: refused, rolled back.
    let r = h
        .send("PATCH", &loc, &[("content-range", "5-20")], "abc")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // A malformed one.
    let r = h
        .send("PATCH", &loc, &[("content-range", "five-six")], "abc")
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID")
    );

    // end-13
    let r = h.get(&loc).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.header("range"), Some("0-4"));
    assert_eq!(r.header("docker-upload-uuid"), Some(uuid.as_str()));

    // docker's streamed PATCH: no Content-Range, no Content-Length.
    let r = h.send("PATCH", &loc, &[], " world").await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.header("range"), Some("0-10"));

    // end-6, with a last chunk in the PUT.
    let content = b"hello world!";
    let d = Digest::of(content);
    let r = h
        .send(
            "PUT",
            &format!("{loc}?digest={d}"),
            &[("content-range", "11-11")],
            "!",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/{repo}/blobs/{d}").as_str())
    );
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    assert_eq!(h.staged_files(), 0);
    // The session is over.
    assert_eq!(h.get(&loc).await.code(), "BLOB_UPLOAD_UNKNOWN");

    // end-2
    let blob = format!("/v2/{repo}/blobs/{d}");
    let r = h.send("HEAD", &blob, &[], "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-length"), Some("12"));
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    assert!(r.body.is_empty());
    let r = h.get(&blob).await;
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &content[..]));
    assert_eq!(r.header("content-length"), Some("12"));
    let r = h.send("GET", &blob, &[("range", "bytes=6-10")], "").await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&r.body[..], b"world");
    assert_eq!(r.header("content-range"), Some("bytes 6-10/12"));
    assert_eq!(r.header("content-length"), Some("5"));
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    let r = h.send("GET", &blob, &[("range", "bytes=-1")], "").await;
    assert_eq!(&r.body[..], b"!");
    let r = h.send("GET", &blob, &[("range", "bytes=12-")], "").await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.header("content-range"), Some("bytes */12"));

    // The blob is not visible in another repository.
    let r = h.get(&format!("/v2/other/blobs/{d}")).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "BLOB_UNKNOWN")
    );
    let r = h
        .get(&format!("/v2/{repo}/blobs/{}", Digest::of(b"nope")))
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "BLOB_UNKNOWN")
    );
    let r = h.get(&format!("/v2/{repo}/blobs/sha256:XYZ")).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
}

#[tokio::test]
async fn monolithic_upload_and_wrong_digests_leave_nothing() {
    let h = Harness::new();
    // end-4b
    let d = Digest::of(b"layer");
    let r = h
        .send(
            "POST",
            &format!("/v2/a/blobs/uploads/?digest={d}"),
            &[("content-length", "5")],
            "layer",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/a/blobs/{d}").as_str())
    );
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    assert!(h.blob_file_exists(&d));
    // A second push of the same blob, to another repository: fine, one file.
    h.push_blob("b", b"layer").await;
    assert_eq!(
        h.get(&format!("/v2/b/blobs/{d}")).await.status,
        StatusCode::OK
    );

    // Monolithic with a wrong digest.
    let claimed = Digest::of(b"something else");
    let r = h
        .send(
            "POST",
            &format!("/v2/a/blobs/uploads/?digest={claimed}"),
            &[],
            "evil",
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
    assert!(!h.blob_file_exists(&claimed) && !h.blob_file_exists(&Digest::of(b"evil")));
    assert_eq!(
        h.get(&format!("/v2/a/blobs/{claimed}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(h.staged_files(), 0);

    // POST + PUT with a wrong digest: 400, nothing visible, the session ends.
    let r = h.send("POST", "/v2/a/blobs/uploads/", &[], "").await;
    let loc = r.header("location").unwrap().to_string();
    let r = h
        .send("PUT", &format!("{loc}?digest={claimed}"), &[], "evil")
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
    assert!(!h.blob_file_exists(&claimed) && !h.blob_file_exists(&Digest::of(b"evil")));
    assert_eq!(
        h.get(&format!("/v2/a/blobs/{claimed}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(h.staged_files(), 0);
    assert_eq!(h.get(&loc).await.status, StatusCode::NOT_FOUND);

    // PUT without a digest, or with a malformed one.
    let r = h.send("POST", "/v2/a/blobs/uploads/", &[], "").await;
    let loc = r.header("location").unwrap().to_string();
    let r = h.send("PUT", &loc, &[], "x").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
    let r = h
        .send("PUT", &format!("{loc}?digest=md5:abc"), &[], "x")
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
    // The session is still usable.
    let r = h
        .send("PUT", &format!("{loc}?digest={}", Digest::of(b"")), &[], "")
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn upload_cancel_and_unknown_uploads() {
    let h = Harness::new();
    let r = h.send("POST", "/v2/a/blobs/uploads/", &[], "").await;
    let loc = r.header("location").unwrap().to_string();
    h.send("PATCH", &loc, &[], "partial").await;
    // The staged bytes and the session's record (it survives a restart).
    assert_eq!(h.staged_files(), 2);
    let r = h.send("DELETE", &loc, &[], "").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(h.staged_files(), 0);
    for (m, uri) in [
        ("GET", loc.clone()),
        ("PATCH", loc.clone()),
        ("DELETE", loc.clone()),
        ("PUT", format!("{loc}?digest={}", Digest::of(b""))),
        ("GET", "/v2/a/blobs/uploads/not-a-uuid".to_string()),
        (
            "GET",
            format!("/v2/a/blobs/uploads/{}", uuid::Uuid::new_v4()),
        ),
    ] {
        let r = h.send(m, &uri, &[], "").await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"),
            "{m} {uri}"
        );
    }
    // A session belongs to its repository.
    let r = h.send("POST", "/v2/a/blobs/uploads/", &[], "").await;
    let id = r.header("docker-upload-uuid").unwrap().to_string();
    assert_eq!(
        h.get(&format!("/v2/b/blobs/uploads/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn end_11_cross_repository_mount() {
    let h = Harness::new();
    let d = h.push_blob("lib/base", b"shared layer").await;
    let r = h
        .send(
            "POST",
            &format!("/v2/app/blobs/uploads/?mount={d}&from=lib/base"),
            &[],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/app/blobs/{d}").as_str())
    );
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    assert_eq!(
        h.get(&format!("/v2/app/blobs/{d}")).await.body.as_ref(),
        b"shared layer"
    );
    // Percent-encoded source names work too.
    let r = h
        .send(
            "POST",
            &format!("/v2/app2/blobs/uploads/?mount={d}&from=lib%2Fbase"),
            &[],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);

    // Not in the source repository: an ordinary upload session instead.
    let r = h
        .send(
            "POST",
            &format!("/v2/app/blobs/uploads/?mount={d}&from=elsewhere"),
            &[],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert!(r
        .header("location")
        .unwrap()
        .starts_with("/v2/app/blobs/uploads/"));
    let missing = Digest::of(b"missing");
    let r = h
        .send(
            "POST",
            &format!("/v2/app/blobs/uploads/?mount={missing}&from=lib/base"),
            &[],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = h
        .send(
            "POST",
            &format!("/v2/app/blobs/uploads/?mount={d}&from=Bad..Name"),
            &[],
            "",
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "NAME_INVALID")
    );
}

#[tokio::test]
async fn end_10_blob_delete() {
    let h = Harness::new();
    let d = h.push_blob("a", b"bytes").await;
    let r = h.send("DELETE", &format!("/v2/a/blobs/{d}"), &[], "").await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = h.get(&format!("/v2/a/blobs/{d}")).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "BLOB_UNKNOWN")
    );
    let r = h.send("DELETE", &format!("/v2/a/blobs/{d}"), &[], "").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "BLOB_UNKNOWN")
    );
    // Unsupported methods.
    let r = h.send("PUT", &format!("/v2/a/blobs/{d}"), &[], "").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED")
    );
}

#[tokio::test]
async fn large_blobs_stream_past_the_default_body_limit() {
    let h = Harness::new();
    let big: Vec<u8> = (0..5 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let d = h.push_blob("big", &big).await;
    let r = h.get(&format!("/v2/big/blobs/{d}")).await;
    assert_eq!(r.body.len(), big.len());
    assert_eq!(Digest::of(&r.body), d);

    // The same in chunked PATCHes.
    let r = h.send("POST", "/v2/big2/blobs/uploads/", &[], "").await;
    let loc = r.header("location").unwrap().to_string();
    let half = big.len() / 2;
    let range = format!("0-{}", half - 1);
    let r = h
        .send(
            "PATCH",
            &loc,
            &[("content-range", range.as_str())],
            big[..half].to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let range = format!("{half}-{}", big.len() - 1);
    let r = h
        .send(
            "PATCH",
            &loc,
            &[("content-range", range.as_str())],
            big[half..].to_vec(),
        )
        .await;
    assert_eq!(
        r.header("range"),
        Some(format!("0-{}", big.len() - 1).as_str())
    );
    let r = h.send("PUT", &format!("{loc}?digest={d}"), &[], "").await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn concurrent_pushes_of_the_same_layer() {
    let h = std::sync::Arc::new(Harness::new());
    let layer: Vec<u8> = (0..300_000u32).map(|i| (i % 13) as u8).collect();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (h, layer) = (h.clone(), layer.clone());
        tasks.push(tokio::spawn(async move {
            h.push_blob(&format!("repo{}", i % 3), &layer).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), Digest::of(&layer));
    }
    for i in 0..3 {
        let r = h
            .get(&format!("/v2/repo{i}/blobs/{}", Digest::of(&layer)))
            .await;
        assert_eq!(r.body.as_ref(), &layer[..]);
    }
    assert_eq!(h.staged_files(), 0);
}
