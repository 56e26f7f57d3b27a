//! The edge: one HTTP handler for every AWS JSON service. It reads the body (bounded), verifies SigV4, finds the
//! service by the `X-Amz-Target` prefix, calls it, and renders the answer or the AWS error shape.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use gantry_model::Scope;
use serde_json::{json, Value};

use crate::sigv4::{verify, Credentials, SigV4Error};
use crate::AwsError;

/// Larger request bodies are refused with 413.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Who is calling, where, and the id of this request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub scope: Scope,
    pub access_key: String,
}

pub type ServiceFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, AwsError>> + Send + 'a>>;

/// An AWS service spoken in the JSON protocol.
pub trait JsonService: Send + Sync + 'static {
    /// The `X-Amz-Target` prefix before the dot, e.g. `AmazonEC2ContainerServiceV20141113`.
    fn target_prefix(&self) -> &'static str;

    /// `1.0` or `1.1`, for the response content type.
    fn json_version(&self) -> &'static str {
        "1.1"
    }

    fn call<'a>(
        &'a self,
        ctx: &'a RequestContext,
        operation: &'a str,
        body: &'a [u8],
    ) -> ServiceFuture<'a>;
}

#[derive(Clone)]
pub struct EdgeConfig {
    pub credentials: Credentials,
    pub account: String,
}

/// Routes JSON-protocol requests to their services.
#[derive(Clone)]
pub struct Edge {
    inner: Arc<EdgeInner>,
}

struct EdgeInner {
    config: EdgeConfig,
    services: HashMap<&'static str, Arc<dyn JsonService>>,
}

impl Edge {
    pub fn new(config: EdgeConfig, services: Vec<Arc<dyn JsonService>>) -> Edge {
        let services = services
            .into_iter()
            .map(|s| (s.target_prefix(), s))
            .collect();
        Edge {
            inner: Arc::new(EdgeInner { config, services }),
        }
    }

    /// A router that answers every AWS JSON request. Mount other routes beside it; this is the fallback.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .fallback(handle)
            .with_state(self.clone())
    }
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn render_error(err: &AwsError, request_id: &str, content_type: &str) -> Response {
    let body = json!({"__type": err.code, "message": err.message});
    let mut resp = (err.status, body.to_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/json")),
    );
    if let Ok(v) = HeaderValue::from_str(&err.code) {
        h.insert("x-amzn-errortype", v);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

fn sigv4_error(e: SigV4Error) -> AwsError {
    let code = match e {
        SigV4Error::Missing => "MissingAuthenticationTokenException",
        SigV4Error::Incomplete(_) => "IncompleteSignatureException",
        SigV4Error::UnknownKey => "UnrecognizedClientException",
        SigV4Error::Mismatch | SigV4Error::Expired(_) => "InvalidSignatureException",
    };
    let status = if matches!(e, SigV4Error::Incomplete(_)) {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::FORBIDDEN
    };
    AwsError::new(status, code, e.to_string())
}

async fn handle(State(edge): State<Edge>, req: Request) -> Response {
    let id = request_id();
    let (parts, body) = req.into_parts();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let service = target
        .split_once('.')
        .and_then(|(prefix, _)| edge.inner.services.get(prefix))
        .cloned();
    let content_type = match &service {
        Some(s) => format!("application/x-amz-json-{}", s.json_version()),
        None => "application/x-amz-json-1.1".to_string(),
    };
    let fail = |e: AwsError| render_error(&e, &id, &content_type);

    let body: Bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return fail(AwsError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLargeException",
                format!("Request body is larger than {MAX_BODY_BYTES} bytes"),
            ))
        }
    };
    let Some(service) = service else {
        let e = if target.is_empty() && parts.method == axum::http::Method::GET {
            AwsError::new(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                "No such resource",
            )
        } else {
            AwsError::unknown_operation(if target.is_empty() { "(none)" } else { &target })
        };
        return fail(e);
    };
    let query = parts.uri.query().unwrap_or("");
    let verified = match verify(
        &edge.inner.config.credentials,
        &parts.method,
        parts.uri.path(),
        query,
        &parts.headers,
        &body,
    ) {
        Ok(v) => v,
        Err(e) => return fail(sigv4_error(e)),
    };
    let operation = target.split_once('.').map(|(_, op)| op).unwrap_or("");
    let ctx = RequestContext {
        request_id: id.clone(),
        scope: Scope::new(verified.region, edge.inner.config.account.clone()),
        access_key: verified.access_key,
    };
    // A bug in one handler must cost one request, never the server.
    let result = AssertUnwindSafe(service.call(&ctx, operation, &body))
        .catch_unwind()
        .await;
    match result {
        Ok(Ok(value)) => {
            let mut resp = Response::new(Body::from(value.to_string()));
            let h = resp.headers_mut();
            h.insert(
                "content-type",
                HeaderValue::from_str(&content_type)
                    .unwrap_or(HeaderValue::from_static("application/json")),
            );
            if let Ok(v) = HeaderValue::from_str(&id) {
                h.insert("x-amzn-requestid", v);
            }
            resp
        }
        Ok(Err(e)) => {
            if e.status.is_server_error() {
                tracing::error!(target = %target, error = %e, "request failed");
            }
            fail(e)
        }
        Err(_) => {
            tracing::error!(target = %target, "handler panicked");
            fail(AwsError::internal(
                "Internal error; the request was not completed",
            ))
        }
    }
}
