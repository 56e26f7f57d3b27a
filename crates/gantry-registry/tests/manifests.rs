//! Manifest and tag endpoints: end-3, end-7, end-8a/b, end-9, byte-exact round trips and their errors.

mod common;

use axum::http::StatusCode;
use common::Harness;
use gantry_registry::Digest;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// An image manifest over `config` and `layers`, in an unusual but valid layout (the bytes must survive as pushed).
fn image_manifest(config: &Digest, layers: &[&Digest]) -> String {
    let layers: Vec<String> = layers
        .iter()
        .map(|d| format!("{{ \"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\", \"digest\" : \"{d}\", \"size\": 5 }}"))
        .collect();
    format!(
        "{{\n   \"schemaVersion\": 2,\n\t\"mediaType\": \"{OCI_MANIFEST}\",\n  \"config\": {{\"mediaType\": \"application/vnd.oci.image.config.v1+json\", \"digest\": \"{config}\", \"size\": 2}},\n  \"layers\": [{}]\n}}\n\n",
        layers.join(" ,\n ")
    )
}

async fn push_image(h: &Harness, repo: &str, tag: &str, salt: &str) -> (String, Digest) {
    let config = h
        .push_blob(repo, format!("{{\"salt\":\"{salt}\"}}").as_bytes())
        .await;
    let layer = h.push_blob(repo, format!("layer {salt}").as_bytes()).await;
    let m = image_manifest(&config, &[&layer]);
    let r = h
        .send(
            "PUT",
            &format!("/v2/{repo}/manifests/{tag}"),
            &[("content-type", OCI_MANIFEST)],
            m.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    (m.clone(), Digest::of(m.as_bytes()))
}

#[tokio::test]
async fn manifest_round_trip_is_byte_exact() {
    let h = Harness::new();
    let repo = "org/team/app";
    let config = h.push_blob(repo, b"{}").await;
    let layer = h.push_blob(repo, b"layer").await;
    let m = image_manifest(&config, &[&layer]);
    let d = Digest::of(m.as_bytes());

    // end-7 by tag
    let r = h
        .send(
            "PUT",
            &format!("/v2/{repo}/manifests/v1"),
            &[("content-type", OCI_MANIFEST)],
            m.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/{repo}/manifests/{d}").as_str())
    );
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));

    // end-3 by tag and by digest, GET and HEAD
    for reference in ["v1".to_string(), d.to_string()] {
        let uri = format!("/v2/{repo}/manifests/{reference}");
        let r = h.get(&uri).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body.as_ref(), m.as_bytes());
        assert_eq!(r.header("content-type"), Some(OCI_MANIFEST));
        assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
        assert_eq!(
            r.header("content-length"),
            Some(m.len().to_string().as_str())
        );
        let r = h.send("HEAD", &uri, &[], "").await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.is_empty());
        assert_eq!(
            r.header("content-length"),
            Some(m.len().to_string().as_str())
        );
        assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    }

    // end-7 by digest; the media type from the body when the header is generic.
    let r = h
        .send(
            "PUT",
            &format!("/v2/{repo}/manifests/{d}"),
            &[("content-type", "application/json")],
            m.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = h
        .send(
            "PUT",
            &format!("/v2/{repo}/manifests/{}", Digest::of(b"x")),
            &[],
            m.clone(),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
}

#[tokio::test]
async fn manifest_put_errors() {
    let h = Harness::new();
    let config = h.push_blob("a", b"{}").await;
    let missing = Digest::of(b"never pushed");
    let m = image_manifest(&config, &[&missing]);
    let r = h
        .send(
            "PUT",
            "/v2/a/manifests/v1",
            &[("content-type", OCI_MANIFEST)],
            m,
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN")
    );
    assert_eq!(r.json()["errors"][0]["detail"]["digest"], missing.as_str());
    assert_eq!(
        h.get("/v2/a/manifests/v1").await.status,
        StatusCode::NOT_FOUND
    );

    // A blob of another repository is not enough.
    let other = h.push_blob("b", b"layer").await;
    let m = image_manifest(&config, &[&other]);
    let r = h
        .send(
            "PUT",
            "/v2/a/manifests/v1",
            &[("content-type", OCI_MANIFEST)],
            m.clone(),
        )
        .await;
    assert_eq!(r.code(), "MANIFEST_BLOB_UNKNOWN");

    let r = h
        .send(
            "PUT",
            "/v2/a/manifests/v1",
            &[("content-type", OCI_MANIFEST)],
            "{not json",
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "MANIFEST_INVALID")
    );
    let r = h
        .send(
            "PUT",
            "/v2/a/manifests/v1",
            &[("content-type", OCI_INDEX)],
            m.clone(),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "MANIFEST_INVALID")
    );
    let r = h
        .send(
            "PUT",
            "/v2/a/manifests/-bad-tag",
            &[("content-type", OCI_MANIFEST)],
            m.clone(),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "TAG_INVALID")
    );

    // Over 4 MiB: 413, whether announced or not.
    let huge = format!(
        "{{\"schemaVersion\":2,\"pad\":\"{}\"}}",
        "x".repeat(4 * 1024 * 1024)
    );
    let r = h
        .send(
            "PUT",
            "/v2/a/manifests/big",
            &[("content-type", OCI_MANIFEST)],
            huge.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let len = huge.len().to_string();
    let r = h
        .send(
            "PUT",
            "/v2/a/manifests/big",
            &[("content-length", len.as_str())],
            huge,
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Unknown manifests.
    for uri in [
        "/v2/a/manifests/nope",
        &format!("/v2/a/manifests/{missing}"),
        "/v2/unknown/manifests/v1",
    ] {
        let r = h.get(uri).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"),
            "{uri}"
        );
    }
    let r = h.get("/v2/a/manifests/sha256:zz").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
    let r = h.send("POST", "/v2/a/manifests/v1", &[], "").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn index_needs_its_manifests_and_docker_types_are_kept() {
    let h = Harness::new();
    let config = h.push_blob("a", b"{}").await;
    let layer = h.push_blob("a", b"l").await;
    let child = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_V2}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{config}","size":2}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{layer}","size":1}}]}}"#
    );
    let cd = Digest::of(child.as_bytes());
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{DOCKER_V2}","digest":"{cd}","size":{}}}]}}"#,
        child.len()
    );
    let r = h
        .send(
            "PUT",
            "/v2/a/manifests/multi",
            &[("content-type", OCI_INDEX)],
            index.clone(),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN")
    );
    let r = h
        .send(
            "PUT",
            &format!("/v2/a/manifests/{cd}"),
            &[("content-type", DOCKER_V2)],
            child.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = h
        .send(
            "PUT",
            "/v2/a/manifests/multi",
            &[("content-type", OCI_INDEX)],
            index.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = h.get("/v2/a/manifests/multi").await;
    assert_eq!(
        (r.header("content-type"), r.body.as_ref()),
        (Some(OCI_INDEX), index.as_bytes())
    );
    let r = h.get(&format!("/v2/a/manifests/{cd}")).await;
    assert_eq!(r.header("content-type"), Some(DOCKER_V2));

    // A manifest with a subject answers with OCI-Subject.
    let artifact = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.example.sbom","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{config}","size":2}},"layers":[],"subject":{{"mediaType":"{DOCKER_V2}","digest":"{cd}","size":1}}}}"#
    );
    let r = h
        .send(
            "PUT",
            "/v2/a/manifests/sbom",
            &[("content-type", OCI_MANIFEST)],
            artifact,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("oci-subject"), Some(cd.as_str()));
}

#[tokio::test]
async fn end_9_manifest_delete() {
    let h = Harness::new();
    let (_, d) = push_image(&h, "a", "v1", "1").await;
    let r = h
        .send(
            "PUT",
            "/v2/a/manifests/v2",
            &[("content-type", OCI_MANIFEST)],
            h.get("/v2/a/manifests/v1").await.body,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // By tag: the tag goes, the manifest stays.
    let r = h.send("DELETE", "/v2/a/manifests/v1", &[], "").await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(h.get("/v2/a/manifests/v1").await.code(), "MANIFEST_UNKNOWN");
    assert_eq!(
        h.get(&format!("/v2/a/manifests/{d}")).await.status,
        StatusCode::OK
    );
    // By digest: the manifest and its remaining tags go.
    let r = h
        .send("DELETE", &format!("/v2/a/manifests/{d}"), &[], "")
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(
        h.get(&format!("/v2/a/manifests/{d}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.get("/v2/a/manifests/v2").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.get("/v2/a/tags/list").await.json()["tags"],
        serde_json::json!([])
    );
    let r = h
        .send("DELETE", &format!("/v2/a/manifests/{d}"), &[], "")
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN")
    );
}

#[tokio::test]
async fn end_8_tags_list_with_pagination() {
    let h = Harness::new();
    let (m, _) = push_image(&h, "x/y", "t3", "1").await;
    for tag in ["t1", "t5", "t2", "t4"] {
        let r = h
            .send(
                "PUT",
                &format!("/v2/x/y/manifests/{tag}"),
                &[("content-type", OCI_MANIFEST)],
                m.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let r = h.get("/v2/x/y/tags/list").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json(),
        serde_json::json!({"name": "x/y", "tags": ["t1", "t2", "t3", "t4", "t5"]})
    );
    assert!(r.header("link").is_none());
    let r = h.get("/v2/x/y/tags/list?n=2").await;
    assert_eq!(r.json()["tags"], serde_json::json!(["t1", "t2"]));
    assert_eq!(
        r.header("link"),
        Some("</v2/x/y/tags/list?n=2&last=t2>; rel=\"next\"")
    );
    let r = h.get("/v2/x/y/tags/list?n=2&last=t2").await;
    assert_eq!(r.json()["tags"], serde_json::json!(["t3", "t4"]));
    let r = h.get("/v2/x/y/tags/list?n=2&last=t4").await;
    assert_eq!(r.json()["tags"], serde_json::json!(["t5"]));
    assert!(r.header("link").is_none());
    let r = h.get("/v2/x/y/tags/list?last=t3").await;
    assert_eq!(r.json()["tags"], serde_json::json!(["t4", "t5"]));
    let r = h.get("/v2/x/y/tags/list?n=0").await;
    assert_eq!(r.json()["tags"], serde_json::json!([]));

    let r = h.get("/v2/x/z/tags/list").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "NAME_UNKNOWN")
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let r = h.get("/v2/X/tags/list").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "NAME_INVALID")
    );
}
