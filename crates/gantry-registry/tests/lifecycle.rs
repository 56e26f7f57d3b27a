//! ECR lifecycle and repository policies through `JsonService::call`, and the lifecycle job expiring images.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request};
use gantry_aws::{AwsError, JsonService, RequestContext};
use gantry_model::Scope;
use gantry_registry::ecr::{EcrConfig, EcrService};
use gantry_registry::lifecycle::{run_once, spawn_lifecycle};
use gantry_registry::{router, Digest, Registry};
use gantry_store::WalStore;
use serde_json::{json, Value};
use tower::ServiceExt;

const DAY: u64 = 86_400;

struct Ecr {
    registry: Arc<Registry<WalStore>>,
    service: Arc<EcrService<WalStore>>,
    app: axum::Router,
    ctx: RequestContext,
    dir: std::path::PathBuf,
}

impl Drop for Ecr {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Ecr {
    fn new() -> Ecr {
        let dir =
            std::env::temp_dir().join(format!("gantry-lifecycle-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let registry = Arc::new(Registry::open(WalStore::in_memory().unwrap(), &dir).unwrap());
        let service = EcrService::new(registry.clone(), EcrConfig { port: 4566 });
        Ecr {
            registry: registry.clone(),
            service,
            app: router(registry),
            ctx: RequestContext {
                request_id: "r".into(),
                scope: Scope::new("us-east-1", "000000000000"),
                access_key: "test".into(),
            },
            dir,
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

    async fn err(&self, op: &str, body: Value) -> AwsError {
        self.call(op, body).await.expect_err(op)
    }

    /// Pushes a blob over the OCI API with the registry's own login token.
    async fn push_blob(&self, name: &str, content: &[u8]) -> String {
        let d = Digest::of(content).to_string();
        let (token, _) = self.registry.issue_token(600);
        let req = Request::builder()
            .method(Method::POST)
            .uri(format!("/v2/{name}/blobs/uploads/?digest={d}"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/octet-stream")
            .body(Body::from(content.to_vec()))
            .unwrap();
        let res = self.app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status().as_u16(), 201, "blob push");
        d
    }

    /// Puts a distinct image (its own config blob) under `tag`; returns its digest.
    async fn image(&self, name: &str, seed: &str, tag: Option<&str>) -> String {
        let config = self.push_blob(name, seed.as_bytes()).await;
        let layer = self.push_blob(name, b"shared layer").await;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": seed.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 12}],
        })
        .to_string();
        let mut body = json!({"repositoryName": name, "imageManifest": manifest});
        if let Some(t) = tag {
            body["imageTag"] = t.into();
        }
        let out = self.ok("PutImage", body).await;
        out["image"]["imageId"]["imageDigest"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn tag(&self, name: &str, digest: &str, tag: &str) {
        let got = self
            .ok(
                "BatchGetImage",
                json!({"repositoryName": name, "imageIds": [{"imageDigest": digest}]}),
            )
            .await;
        let manifest = got["images"][0]["imageManifest"].as_str().unwrap();
        self.ok(
            "PutImage",
            json!({"repositoryName": name, "imageManifest": manifest, "imageTag": tag}),
        )
        .await;
    }

    async fn digests(&self, name: &str) -> Vec<String> {
        let out = self
            .ok("DescribeImages", json!({"repositoryName": name}))
            .await;
        let mut d: Vec<String> = out["imageDetails"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["imageDigest"].as_str().unwrap().to_string())
            .collect();
        d.sort();
        d
    }
}

fn policy(rules: Value) -> String {
    json!({ "rules": rules }).to_string()
}

fn keep_untagged(priority: u32, n: u64) -> Value {
    json!({"rulePriority": priority, "description": "untagged",
           "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": n},
           "action": {"type": "expire"}})
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn put_get_delete_lifecycle_policy() {
    let ecr = Ecr::new();
    ecr.ok("CreateRepository", json!({"repositoryName": "web"}))
        .await;
    let text = policy(json!([keep_untagged(1, 1)]));
    let e = ecr
        .err("GetLifecyclePolicy", json!({"repositoryName": "web"}))
        .await;
    assert_eq!(e.code, "LifecyclePolicyNotFoundException");
    assert!(e.message.contains("'web'"), "{}", e.message);
    let put = ecr
        .ok(
            "PutLifecyclePolicy",
            json!({"repositoryName": "web", "lifecyclePolicyText": text}),
        )
        .await;
    assert_eq!(
        put,
        json!({"registryId": "000000000000", "repositoryName": "web", "lifecyclePolicyText": text})
    );
    let got = ecr
        .ok("GetLifecyclePolicy", json!({"repositoryName": "web"}))
        .await;
    assert_eq!(got["lifecyclePolicyText"], text);
    assert!(got.get("lastEvaluatedAt").is_none());
    // The job stamps the evaluation time.
    run_once(&ecr.registry, 1_700_000_000).await;
    let got = ecr
        .ok("GetLifecyclePolicy", json!({"repositoryName": "web"}))
        .await;
    assert_eq!(got["lastEvaluatedAt"], 1_700_000_000u64);
    let deleted = ecr
        .ok("DeleteLifecyclePolicy", json!({"repositoryName": "web"}))
        .await;
    assert_eq!(deleted["lifecyclePolicyText"], text);
    assert_eq!(deleted["lastEvaluatedAt"], 1_700_000_000u64);
    for op in ["GetLifecyclePolicy", "DeleteLifecyclePolicy"] {
        let e = ecr.err(op, json!({"repositoryName": "web"})).await;
        assert_eq!(e.code, "LifecyclePolicyNotFoundException", "{op}");
    }
    for op in [
        "GetLifecyclePolicy",
        "DeleteLifecyclePolicy",
        "GetLifecyclePolicyPreview",
        "StartLifecyclePolicyPreview",
    ] {
        let e = ecr.err(op, json!({"repositoryName": "nope"})).await;
        assert_eq!(e.code, "RepositoryNotFoundException", "{op}");
    }
    let e = ecr
        .err(
            "PutLifecyclePolicy",
            json!({"repositoryName": "nope", "lifecyclePolicyText": text}),
        )
        .await;
    assert_eq!(e.code, "RepositoryNotFoundException");
}

#[tokio::test]
async fn invalid_policies_are_refused_with_a_reason() {
    let ecr = Ecr::new();
    ecr.ok("CreateRepository", json!({"repositoryName": "web"}))
        .await;
    let any_first = policy(json!([
        {"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}},
        {"rulePriority": 2, "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}},
    ]));
    let cases = [
        (json!("x".repeat(150)), "not valid JSON"),
        (json!(r#"{"rules": []}"#), "length between 100"),
        (json!(any_first), "highest rulePriority"),
        (
            json!(policy(
                json!([{"rulePriority": 1, "selection": {"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}])
            )),
            "requires 'tagPrefixList' or 'tagPatternList'",
        ),
    ];
    for (text, want) in cases {
        let e = ecr
            .err(
                "PutLifecyclePolicy",
                json!({"repositoryName": "web", "lifecyclePolicyText": text}),
            )
            .await;
        assert_eq!(e.code, "InvalidParameterException");
        assert!(e.message.contains(want), "{want}: {}", e.message);
        let e = ecr
            .err(
                "StartLifecyclePolicyPreview",
                json!({"repositoryName": "web", "lifecyclePolicyText": text}),
            )
            .await;
        assert_eq!(e.code, "InvalidParameterException");
    }
    let e = ecr
        .err("PutLifecyclePolicy", json!({"repositoryName": "web"}))
        .await;
    assert_eq!(e.code, "InvalidParameterException");
    // Nothing was stored.
    let e = ecr
        .err("GetLifecyclePolicy", json!({"repositoryName": "web"}))
        .await;
    assert_eq!(e.code, "LifecyclePolicyNotFoundException");
}

#[tokio::test]
async fn preview_shows_what_would_expire() {
    let ecr = Ecr::new();
    ecr.ok("CreateRepository", json!({"repositoryName": "web"}))
        .await;
    let e = ecr
        .err(
            "GetLifecyclePolicyPreview",
            json!({"repositoryName": "web"}),
        )
        .await;
    assert_eq!(e.code, "LifecyclePolicyPreviewNotFoundException");
    // No policy given and none stored.
    let e = ecr
        .err(
            "StartLifecyclePolicyPreview",
            json!({"repositoryName": "web"}),
        )
        .await;
    assert_eq!(e.code, "LifecyclePolicyNotFoundException");

    let u1 = ecr.image("web", "u1", None).await;
    let u2 = ecr.image("web", "u2", None).await;
    let u3 = ecr.image("web", "u3", None).await;
    let tagged = ecr.image("web", "t1", Some("v1")).await;
    // All pushed in the same second: the evaluator breaks ties by digest, so the greatest digest is the newest.
    let untagged = sorted(vec![u1, u2, u3]);
    let text = policy(json!([keep_untagged(1, 1)]));
    let started = ecr
        .ok(
            "StartLifecyclePolicyPreview",
            json!({"repositoryName": "web", "lifecyclePolicyText": text}),
        )
        .await;
    assert_eq!(started["status"], "COMPLETE");
    assert_eq!(started["lifecyclePolicyText"], text);
    let preview = ecr
        .ok(
            "GetLifecyclePolicyPreview",
            json!({"repositoryName": "web"}),
        )
        .await;
    assert_eq!(preview["status"], "COMPLETE");
    assert_eq!(preview["summary"]["expiringImageTotalCount"], 2);
    let results = preview["previewResults"].as_array().unwrap();
    let digests: Vec<String> = results
        .iter()
        .map(|r| r["imageDigest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sorted(digests), untagged[..2].to_vec());
    for r in results {
        assert_eq!(r["action"], json!({"type": "EXPIRE"}));
        assert_eq!(r["appliedRulePriority"], 1);
        assert!(r["imagePushedAt"].as_u64().unwrap() > 0);
        assert!(r.get("imageTags").is_none_or(|t| t == &json!([])));
    }
    // Paging, filters and image ids.
    let page = ecr
        .ok(
            "GetLifecyclePolicyPreview",
            json!({"repositoryName": "web", "maxResults": 1}),
        )
        .await;
    assert_eq!(page["previewResults"].as_array().unwrap().len(), 1);
    let token = page["nextToken"].as_str().unwrap();
    let rest = ecr
        .ok(
            "GetLifecyclePolicyPreview",
            json!({"repositoryName": "web", "maxResults": 1, "nextToken": token}),
        )
        .await;
    assert_eq!(rest["previewResults"].as_array().unwrap().len(), 1);
    assert!(rest.get("nextToken").is_none());
    let none = ecr
        .ok(
            "GetLifecyclePolicyPreview",
            json!({"repositoryName": "web", "filter": {"tagStatus": "TAGGED"}}),
        )
        .await;
    assert_eq!(none["previewResults"], json!([]));
    let one = ecr
        .ok(
            "GetLifecyclePolicyPreview",
            json!({"repositoryName": "web", "imageIds": [{"imageDigest": untagged[0]}]}),
        )
        .await;
    assert_eq!(one["previewResults"].as_array().unwrap().len(), 1);

    // A preview of the stored policy; tagged images by tag.
    let tagged_text = policy(json!([
        {"rulePriority": 3, "selection": {"tagStatus": "tagged", "tagPatternList": ["v*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1}, "action": {"type": "expire"}},
        {"rulePriority": 7, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 10}, "action": {"type": "expire"}},
    ]));
    ecr.ok(
        "PutLifecyclePolicy",
        json!({"repositoryName": "web", "lifecyclePolicyText": tagged_text}),
    )
    .await;
    ecr.ok(
        "StartLifecyclePolicyPreview",
        json!({"repositoryName": "web"}),
    )
    .await;
    let preview = ecr
        .ok(
            "GetLifecyclePolicyPreview",
            json!({"repositoryName": "web"}),
        )
        .await;
    assert_eq!(preview["lifecyclePolicyText"], tagged_text);
    // Nothing is a day old yet.
    assert_eq!(preview["summary"]["expiringImageTotalCount"], 0);
    // A preview deletes nothing.
    assert_eq!(ecr.digests("web").await.len(), 4);
    let _ = tagged;
}

#[tokio::test]
async fn the_job_expires_images_by_count_and_age() {
    let ecr = Ecr::new();
    ecr.ok("CreateRepository", json!({"repositoryName": "web"}))
        .await;
    let old_prod = ecr.image("web", "p1", Some("prod-1")).await;
    let untagged = sorted(vec![
        ecr.image("web", "u1", None).await,
        ecr.image("web", "u2", None).await,
        ecr.image("web", "u3", None).await,
    ]);
    let dev = ecr.image("web", "d1", Some("dev-1")).await;
    let text = policy(json!([
        {"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPrefixList": ["prod"], "countType": "imageCountMoreThan", "countNumber": 5}, "action": {"type": "expire"}},
        keep_untagged(2, 1),
        {"rulePriority": 9, "selection": {"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30}, "action": {"type": "expire"}},
    ]));
    ecr.ok(
        "PutLifecyclePolicy",
        json!({"repositoryName": "web", "lifecyclePolicyText": text}),
    )
    .await;
    // Now: the two older untagged images go; prod and dev stay.
    let now = gantry_registry::meta::now();
    assert_eq!(run_once(&ecr.registry, now).await, 2);
    assert_eq!(
        ecr.digests("web").await,
        sorted(vec![old_prod.clone(), untagged[2].clone(), dev.clone()])
    );
    // Their tags went with them: ListImages shows no stray ids.
    let listed = ecr.ok("ListImages", json!({"repositoryName": "web"})).await;
    assert_eq!(listed["imageIds"].as_array().unwrap().len(), 3);
    // A month later: the any-rule expires the dev image, but neither the prod image nor the last untagged one:
    // rules 1 and 2 select them, so a later rule may not expire them.
    assert_eq!(run_once(&ecr.registry, now + 31 * DAY).await, 1);
    assert_eq!(
        ecr.digests("web").await,
        sorted(vec![old_prod.clone(), untagged[2].clone()])
    );
    assert_eq!(run_once(&ecr.registry, now + 31 * DAY).await, 0);
    // Repositories without a policy are left alone.
    ecr.ok("CreateRepository", json!({"repositoryName": "other"}))
        .await;
    ecr.image("other", "o1", None).await;
    assert_eq!(run_once(&ecr.registry, now + 365 * DAY).await, 0);
    assert_eq!(ecr.digests("other").await.len(), 1);
}

#[tokio::test]
async fn images_tagged_since_they_were_pushed_are_not_untagged() {
    let ecr = Ecr::new();
    ecr.ok("CreateRepository", json!({"repositoryName": "web"}))
        .await;
    let a = ecr.image("web", "a", None).await;
    let b = ecr.image("web", "b", None).await;
    ecr.tag("web", &a, "keep").await;
    ecr.tag("web", &b, "keep2").await;
    ecr.ok(
        "PutLifecyclePolicy",
        json!({"repositoryName": "web", "lifecyclePolicyText": policy(json!([keep_untagged(1, 1)]))}),
    )
    .await;
    // Both are tagged now: nothing is untagged, nothing expires.
    assert_eq!(
        run_once(&ecr.registry, gantry_registry::meta::now()).await,
        0
    );
    assert_eq!(ecr.digests("web").await.len(), 2);
}

#[tokio::test]
async fn the_spawned_job_runs_on_its_interval() {
    let ecr = Ecr::new();
    ecr.ok("CreateRepository", json!({"repositoryName": "web"}))
        .await;
    for seed in ["a", "b", "c"] {
        ecr.image("web", seed, None).await;
    }
    ecr.ok(
        "PutLifecyclePolicy",
        json!({"repositoryName": "web", "lifecyclePolicyText": policy(json!([keep_untagged(1, 1)]))}),
    )
    .await;
    let job = spawn_lifecycle(
        ecr.registry.clone(),
        Duration::from_millis(50),
        gantry_store::lease::Lease::single_server("ecr/lifecycle"),
    );
    let mut left = 3;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        left = ecr.digests("web").await.len();
        if left == 1 {
            break;
        }
    }
    job.abort();
    assert_eq!(left, 1);
}

#[tokio::test]
async fn repository_policies_are_stored() {
    let ecr = Ecr::new();
    ecr.ok("CreateRepository", json!({"repositoryName": "web"}))
        .await;
    let text = json!({"Version": "2012-10-17", "Statement": [{"Sid": "pull", "Effect": "Allow",
        "Principal": "*", "Action": ["ecr:BatchGetImage"]}]})
    .to_string();
    for op in ["GetRepositoryPolicy", "DeleteRepositoryPolicy"] {
        let e = ecr.err(op, json!({"repositoryName": "web"})).await;
        assert_eq!(e.code, "RepositoryPolicyNotFoundException", "{op}");
    }
    let set = ecr
        .ok(
            "SetRepositoryPolicy",
            json!({"repositoryName": "web", "policyText": text, "force": true}),
        )
        .await;
    assert_eq!(
        set,
        json!({"registryId": "000000000000", "repositoryName": "web", "policyText": text})
    );
    let got = ecr
        .ok("GetRepositoryPolicy", json!({"repositoryName": "web"}))
        .await;
    assert_eq!(got["policyText"], text);
    // It survives other changes to the repository.
    ecr.ok(
        "PutImageTagMutability",
        json!({"repositoryName": "web", "imageTagMutability": "IMMUTABLE"}),
    )
    .await;
    let deleted = ecr
        .ok("DeleteRepositoryPolicy", json!({"repositoryName": "web"}))
        .await;
    assert_eq!(deleted["policyText"], text);
    let e = ecr
        .err("GetRepositoryPolicy", json!({"repositoryName": "web"}))
        .await;
    assert_eq!(e.code, "RepositoryPolicyNotFoundException");
    for bad in ["not json", "[1]"] {
        let e = ecr
            .err(
                "SetRepositoryPolicy",
                json!({"repositoryName": "web", "policyText": bad}),
            )
            .await;
        assert_eq!(e.code, "InvalidParameterException", "{bad}");
    }
    let e = ecr
        .err(
            "SetRepositoryPolicy",
            json!({"repositoryName": "nope", "policyText": text}),
        )
        .await;
    assert_eq!(e.code, "RepositoryNotFoundException");
}
