//! Registry authentication in ECR mode: tokens from GetAuthorizationToken, sent as Basic or traded for a bearer
//! token at `/v2/token`; everything else gets 401 with the spec's error body and a challenge.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use base64::Engine;
use gantry_aws::{JsonService, RequestContext};
use gantry_model::Scope;
use gantry_registry::ecr::{EcrConfig, EcrService};
use gantry_registry::{router, Registry};
use gantry_store::WalStore;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

struct Reply {
    status: u16,
    challenge: Option<String>,
    body: Value,
}

async fn get(app: &axum::Router, uri: &str, auth: Option<&str>) -> Reply {
    let mut req = Request::builder()
        .uri(uri)
        .header("host", "registry.test:4566");
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        challenge,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[tokio::test]
async fn requests_need_a_token_from_get_authorization_token() {
    let dir = std::env::temp_dir().join(format!("gantry-auth-test-{}", uuid::Uuid::new_v4()));
    let registry = Arc::new(Registry::open(WalStore::in_memory().unwrap(), &dir).unwrap());
    let ecr = EcrService::new(registry.clone(), EcrConfig { port: 4566 });
    let app = router(registry.clone());
    let ctx = RequestContext {
        request_id: "r".into(),
        scope: Scope::new("us-east-1", "000000000000"),
        access_key: "test".into(),
    };
    let out: Value = ecr
        .call(&ctx, "GetAuthorizationToken", b"{}")
        .await
        .map(|v| serde_json::from_slice(&serde_json::to_vec(&v).unwrap()).unwrap())
        .unwrap();
    let login = out["authorizationData"][0]["authorizationToken"]
        .as_str()
        .unwrap()
        .to_string();
    let decoded = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&login)
            .unwrap(),
    )
    .unwrap();
    let token = decoded.strip_prefix("AWS:").unwrap().to_string();

    // Refused without credentials, with a wrong token, a wrong user, garbage: 401, challenge, spec body.
    let other = Registry::open(WalStore::in_memory().unwrap(), &dir.join("other")).unwrap();
    let (foreign, _) = other.issue_token(3600);
    for auth in [
        None,
        Some(basic("AWS", "nope")),
        Some(basic("AWS", &foreign)),
        Some(basic("admin", &token)),
        Some("Bearer nope".to_string()),
        Some("Basic !!!".to_string()),
        Some("Negotiate abc".to_string()),
    ] {
        for uri in ["/v2/", "/v2/web/tags/list", "/v2/web/manifests/latest"] {
            let r = get(&app, uri, auth.as_deref()).await;
            assert_eq!(r.status, 401, "{uri} with {auth:?}");
            assert_eq!(r.body["errors"][0]["code"], "UNAUTHORIZED", "{auth:?}");
            assert_eq!(
                r.challenge.as_deref(),
                Some(
                    "Bearer realm=\"http://registry.test:4566/v2/token\",service=\"registry.test:4566\""
                )
            );
        }
    }

    // Basic AWS:<token>, as `docker login` stores it.
    let r = get(&app, "/v2/", Some(&format!("Basic {login}"))).await;
    assert_eq!((r.status, r.challenge), (200, None));
    assert_eq!(
        get(
            &app,
            "/v2/web/manifests/latest",
            Some(&basic("AWS", &token))
        )
        .await
        .status,
        404
    );

    // The bearer flow: the token endpoint takes the login and hands out a bearer token.
    assert_eq!(get(&app, "/v2/token", None).await.status, 401);
    let r = get(
        &app,
        "/v2/token?service=x&scope=repository:web:pull,push",
        Some(&basic("AWS", &token)),
    )
    .await;
    assert_eq!(r.status, 200);
    let bearer = r.body["token"].as_str().unwrap().to_string();
    assert_eq!(r.body["access_token"], r.body["token"]);
    assert!(r.body["expires_in"].as_u64().unwrap() > 11 * 3600);
    assert_eq!(
        get(&app, "/v2/", Some(&format!("Bearer {bearer}")))
            .await
            .status,
        200
    );

    // Tasks pulling from the server's own registry get a working login; other images none.
    for image in [
        "localhost:4566/web:1",
        "127.0.0.1:4566/a/b:2",
        "[::1]:4566/x",
    ] {
        let c = ecr.pull_credentials(image).expect(image);
        assert_eq!(c.username, "AWS");
        assert_eq!(
            get(&app, "/v2/", Some(&basic(&c.username, &c.password)))
                .await
                .status,
            200
        );
    }
    for image in [
        "localhost:4567/web:1",
        "gantry-test/testapp",
        "example.com/web",
    ] {
        assert!(ecr.pull_credentials(image).is_none(), "{image}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
