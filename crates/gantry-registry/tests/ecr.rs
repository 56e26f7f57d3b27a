//! The ECR API through `JsonService::call`, as the edge drives it, together with the OCI API it shares state with.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use gantry_aws::{AwsError, JsonService, RequestContext};
use gantry_model::Scope;
use gantry_registry::ecr::{EcrConfig, EcrService};
use gantry_registry::{router, Digest, Registry};
use gantry_store::WalStore;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

struct Ecr {
    service: Arc<EcrService<WalStore>>,
    app: axum::Router,
    ctx: RequestContext,
    _dir: std::path::PathBuf,
}

impl Ecr {
    fn new() -> Ecr {
        let dir = std::env::temp_dir().join(format!("gantry-ecr-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let registry = Arc::new(Registry::open(WalStore::in_memory().unwrap(), &dir).unwrap());
        let service = EcrService::new(registry.clone(), EcrConfig { port: 4566 });
        Ecr {
            service,
            app: router(registry),
            ctx: RequestContext {
                request_id: "r".into(),
                scope: Scope::new("us-east-1", "000000000000"),
                access_key: "test".into(),
            },
            _dir: dir,
        }
    }

    async fn call(&self, op: &str, body: Value) -> Result<Value, AwsError> {
        let body = serde_json::to_vec(&body).unwrap();
        self.service.call(&self.ctx, op, &body).await
    }

    async fn ok(&self, op: &str, body: Value) -> Value {
        self.call(op, body)
            .await
            .unwrap_or_else(|e| panic!("{op}: {e}"))
    }

    async fn err(&self, op: &str, body: Value) -> String {
        self.call(op, body).await.expect_err(op).code
    }

    async fn http(
        &self,
        method: Method,
        uri: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> (u16, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", content_type)
            .header("authorization", self.login().await)
            .body(Body::from(body))
            .unwrap();
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// `Basic base64(AWS:<token>)` from GetAuthorizationToken, as `docker login` sends it.
    async fn login(&self) -> String {
        let data = self.ok("GetAuthorizationToken", json!({})).await;
        format!(
            "Basic {}",
            data["authorizationData"][0]["authorizationToken"]
                .as_str()
                .unwrap()
        )
    }

    /// Pushes a blob over the OCI API (monolithic upload); returns its digest.
    async fn push_blob(&self, name: &str, content: &[u8]) -> (u16, String) {
        let d = Digest::of(content).to_string();
        let (status, _) = self
            .http(
                Method::POST,
                &format!("/v2/{name}/blobs/uploads/?digest={d}"),
                content.to_vec(),
                "application/octet-stream",
            )
            .await;
        (status, d)
    }
}

fn manifest(config: &str, layer: &str, sizes: (usize, usize)) -> String {
    json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": sizes.0},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": sizes.1}],
    })
    .to_string()
}

#[tokio::test]
async fn repositories_images_and_immutability() {
    let ecr = Ecr::new();
    // A push to a repository that was not created is refused, as ECR does.
    let (status, _) = ecr.push_blob("web", b"layer").await;
    assert_eq!(status, 404);

    let created = ecr
        .ok(
            "CreateRepository",
            json!({"repositoryName": "web", "tags": [{"Key": "team", "Value": "a"}],
                   "imageScanningConfiguration": {"scanOnPush": true}}),
        )
        .await;
    let repo = &created["repository"];
    assert_eq!(repo["repositoryUri"], "localhost:4566/web");
    assert_eq!(
        repo["repositoryArn"],
        "arn:aws:ecr:us-east-1:000000000000:repository/web"
    );
    assert_eq!(repo["imageTagMutability"], "MUTABLE");
    assert_eq!(repo["imageScanningConfiguration"]["scanOnPush"], true);
    assert_eq!(
        ecr.err("CreateRepository", json!({"repositoryName": "web"}))
            .await,
        "RepositoryAlreadyExistsException"
    );
    assert_eq!(
        ecr.err("CreateRepository", json!({"repositoryName": "Web!"}))
            .await,
        "InvalidParameterException"
    );
    assert_eq!(
        ecr.err(
            "CreateRepository",
            json!({"repositoryName": "x1", "imageTagMutability": "SOMETIMES"})
        )
        .await,
        "InvalidParameterException"
    );
    let tags = ecr
        .ok(
            "ListTagsForResource",
            json!({"resourceArn": repo["repositoryArn"]}),
        )
        .await;
    assert_eq!(tags["tags"], json!([{"Key": "team", "Value": "a"}]));

    // Push over the OCI API, then see the image over ECR.
    let (status, config) = ecr.push_blob("web", b"{}").await;
    assert_eq!(status, 201);
    let (_, layer) = ecr.push_blob("web", b"layer-bytes").await;
    let m1 = manifest(&config, &layer, (2, 11));
    let (status, _) = ecr
        .http(
            Method::PUT,
            "/v2/web/manifests/1",
            m1.clone().into_bytes(),
            "application/vnd.oci.image.manifest.v1+json",
        )
        .await;
    assert_eq!(status, 201);
    let d1 = Digest::of(m1.as_bytes()).to_string();

    let details = ecr
        .ok("DescribeImages", json!({"repositoryName": "web"}))
        .await;
    let image = &details["imageDetails"][0];
    assert_eq!(image["imageDigest"], d1.as_str());
    assert_eq!(image["imageTags"], json!(["1"]));
    assert_eq!(image["imageSizeInBytes"], 13);
    assert!(image["imagePushedAt"].as_u64().unwrap() > 0);
    assert_eq!(
        ecr.err(
            "DescribeImages",
            json!({"repositoryName": "web", "imageIds": [{"imageTag": "nope"}]})
        )
        .await,
        "ImageNotFoundException"
    );

    let got = ecr
        .ok(
            "BatchGetImage",
            json!({"repositoryName": "web", "imageIds": [{"imageTag": "1"}, {"imageTag": "2"}]}),
        )
        .await;
    assert_eq!(got["images"][0]["imageManifest"], m1.as_str());
    assert_eq!(got["failures"][0]["failureCode"], "ImageNotFound");

    // PutImage: the same manifest under a new tag, then again (already exists).
    let put = json!({"repositoryName": "web", "imageManifest": m1, "imageTag": "2"});
    ecr.ok("PutImage", put.clone()).await;
    assert_eq!(
        ecr.err("PutImage", put).await,
        "ImageAlreadyExistsException"
    );
    let listed = ecr
        .ok(
            "ListImages",
            json!({"repositoryName": "web", "maxResults": 1}),
        )
        .await;
    assert_eq!(listed["imageIds"].as_array().unwrap().len(), 1);
    assert!(listed["nextToken"].is_string());
    let untagged = ecr
        .ok(
            "ListImages",
            json!({"repositoryName": "web", "filter": {"tagStatus": "UNTAGGED"}}),
        )
        .await;
    assert_eq!(untagged["imageIds"], json!([]));

    // Immutable: neither PutImage nor a manifest PUT may move tag 1.
    ecr.ok(
        "PutImageTagMutability",
        json!({"repositoryName": "web", "imageTagMutability": "IMMUTABLE"}),
    )
    .await;
    let m2 = manifest(&config, &layer, (2, 12));
    assert_eq!(
        ecr.err(
            "PutImage",
            json!({"repositoryName": "web", "imageManifest": m2, "imageTag": "1"})
        )
        .await,
        "ImageTagAlreadyExistsException"
    );
    let (status, body) = ecr
        .http(
            Method::PUT,
            "/v2/web/manifests/1",
            m2.clone().into_bytes(),
            "application/vnd.oci.image.manifest.v1+json",
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["code"], "TAG_INVALID");
    let missing = manifest(&config, &Digest::of(b"nothing").to_string(), (2, 7));
    assert_eq!(
        ecr.err(
            "PutImage",
            json!({"repositoryName": "web", "imageManifest": missing, "imageTag": "3"})
        )
        .await,
        "LayersNotFoundException"
    );

    // Delete tag 2 (the image keeps tag 1), then the image by digest.
    let del = ecr
        .ok(
            "BatchDeleteImage",
            json!({"repositoryName": "web", "imageIds": [{"imageTag": "2"}, {"imageTag": "9"}]}),
        )
        .await;
    assert_eq!(
        del["imageIds"],
        json!([{"imageDigest": d1, "imageTag": "2"}])
    );
    assert_eq!(del["failures"][0]["failureCode"], "ImageNotFound");
    assert_eq!(
        ecr.err("DeleteRepository", json!({"repositoryName": "web"}))
            .await,
        "RepositoryNotEmptyException"
    );
    ecr.ok(
        "BatchDeleteImage",
        json!({"repositoryName": "web", "imageIds": [{"imageDigest": d1}]}),
    )
    .await;
    let none = ecr
        .ok("DescribeImages", json!({"repositoryName": "web"}))
        .await;
    assert_eq!(none["imageDetails"], json!([]));
    ecr.ok("DeleteRepository", json!({"repositoryName": "web"}))
        .await;
    assert_eq!(
        ecr.err("DescribeRepositories", json!({"repositoryNames": ["web"]}))
            .await,
        "RepositoryNotFoundException"
    );
    assert_eq!(
        ecr.err("ListImages", json!({"repositoryName": "web"}))
            .await,
        "RepositoryNotFoundException"
    );
}

#[tokio::test]
async fn force_delete_pagination_tags_and_tokens() {
    let ecr = Ecr::new();
    for i in 0..5 {
        ecr.ok(
            "CreateRepository",
            json!({"repositoryName": format!("r{i}")}),
        )
        .await;
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = json!({"maxResults": 2});
        if let Some(t) = &token {
            req["nextToken"] = t.clone().into();
        }
        let page = ecr.ok("DescribeRepositories", req).await;
        names.extend(
            page["repositories"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["repositoryName"].clone()),
        );
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(names, vec!["r0", "r1", "r2", "r3", "r4"]);

    let (_, config) = ecr.push_blob("r0", b"{}").await;
    let m = manifest(&config, &config, (2, 2));
    ecr.ok(
        "PutImage",
        json!({"repositoryName": "r0", "imageManifest": m, "imageTag": "v"}),
    )
    .await;
    assert_eq!(
        ecr.err("DeleteRepository", json!({"repositoryName": "r0"}))
            .await,
        "RepositoryNotEmptyException"
    );
    ecr.ok(
        "DeleteRepository",
        json!({"repositoryName": "r0", "force": true}),
    )
    .await;
    let (status, _) = ecr
        .http(Method::GET, "/v2/r0/manifests/v", vec![], "")
        .await;
    assert_eq!(status, 404);

    let arn = "arn:aws:ecr:us-east-1:000000000000:repository/r1";
    ecr.ok("TagResource", json!({"resourceArn": arn, "tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]})).await;
    ecr.ok(
        "UntagResource",
        json!({"resourceArn": arn, "tagKeys": ["a"]}),
    )
    .await;
    let tags = ecr
        .ok("ListTagsForResource", json!({"resourceArn": arn}))
        .await;
    assert_eq!(tags["tags"], json!([{"Key": "b", "Value": "2"}]));
    assert_eq!(
        ecr.err(
            "TagResource",
            json!({"resourceArn": arn, "tags": [{"Key": "", "Value": "x"}]})
        )
        .await,
        "InvalidTagParameterException"
    );
    assert_eq!(
        ecr.err(
            "ListTagsForResource",
            json!({"resourceArn": "arn:aws:ecr:us-east-1:000000000000:repository/zz"})
        )
        .await,
        "RepositoryNotFoundException"
    );

    let auth = ecr.ok("GetAuthorizationToken", json!({})).await;
    let data = &auth["authorizationData"][0];
    assert_eq!(data["proxyEndpoint"], "http://localhost:4566");
    assert!(data["expiresAt"].as_u64().unwrap() >= gantry_registry::meta::now() + 12 * 3600 - 5);
    assert_eq!(
        ecr.err("Nope", json!({})).await,
        "UnknownOperationException"
    );
    assert_eq!(
        ecr.err("CreateRepository", json!({})).await,
        "InvalidParameterException"
    );
}
