//! The edge: one HTTP handler for every AWS service. A request with `X-Amz-Target` is JSON, routed by the
//! target's prefix; a form POST (or a GET with `Action=`) without it is Query, routed by the service of its SigV4
//! credential scope (see `query/handler.rs`). Both paths share the steps here: request id, bounded body, SigV4,
//! a handler call that survives a panic.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use gantry_model::Scope;
use serde_json::{json, Value};

use crate::metrics::ApiMetrics;
use crate::query::{self, QueryService};
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

/// Routes AWS requests (JSON and Query) to their services.
#[derive(Clone)]
pub struct Edge {
    inner: Arc<EdgeInner>,
}

#[derive(Clone)]
struct EdgeInner {
    config: EdgeConfig,
    services: HashMap<&'static str, Arc<dyn JsonService>>,
    /// By SigV4 signing name.
    query_services: HashMap<&'static str, Arc<dyn QueryService>>,
    metrics: Arc<ApiMetrics>,
}

impl Edge {
    pub fn new(config: EdgeConfig, services: Vec<Arc<dyn JsonService>>) -> Edge {
        let services = services
            .into_iter()
            .map(|s| (s.target_prefix(), s))
            .collect();
        Edge {
            inner: Arc::new(EdgeInner {
                config,
                services,
                query_services: HashMap::new(),
                metrics: Arc::default(),
            }),
        }
    }

    /// As `new`, with Query services too.
    pub fn with_query_services(self, services: Vec<Arc<dyn QueryService>>) -> Edge {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        inner
            .query_services
            .extend(services.into_iter().map(|s| (s.signing_name(), s)));
        Edge {
            inner: Arc::new(inner),
        }
    }

    /// A router that answers every AWS request. Mount other routes beside it; this is the fallback.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .fallback(handle)
            .with_state(self.clone())
    }

    pub(crate) fn query_service(&self, signing_name: &str) -> Option<&Arc<dyn QueryService>> {
        self.inner.query_services.get(signing_name)
    }

    /// The API's calls and latency per operation, in the Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        self.inner.metrics.render(out);
    }
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Which wire protocol a request speaks: the SigV4 error codes differ between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Json,
    Query,
}

fn sigv4_error(e: SigV4Error, protocol: Protocol) -> AwsError {
    use Protocol::{Json, Query};
    let code = match (&e, protocol) {
        (SigV4Error::Missing, Json) => "MissingAuthenticationTokenException",
        (SigV4Error::Missing, Query) => "MissingAuthenticationToken",
        (SigV4Error::Incomplete(_), Json) => "IncompleteSignatureException",
        (SigV4Error::Incomplete(_), Query) => "IncompleteSignature",
        (SigV4Error::UnknownKey, Json) => "UnrecognizedClientException",
        (SigV4Error::UnknownKey, Query) => "InvalidClientTokenId",
        (SigV4Error::Mismatch | SigV4Error::Expired(_), Json) => "InvalidSignatureException",
        (SigV4Error::Mismatch | SigV4Error::Expired(_), Query) => "SignatureDoesNotMatch",
    };
    let status = if matches!(e, SigV4Error::Incomplete(_)) {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::FORBIDDEN
    };
    AwsError::new(status, code, e.to_string())
}

/// Reads the whole body, refusing more than [`MAX_BODY_BYTES`].
pub(crate) async fn read_body(body: Body) -> Result<Bytes, AwsError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            AwsError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLargeException",
                format!("Request body is larger than {MAX_BODY_BYTES} bytes"),
            )
        })
}

/// Verifies the request's SigV4 signature (over the body too) and returns the caller's context and the service
/// named in the credential scope.
pub(crate) fn authenticate(
    edge: &Edge,
    parts: &Parts,
    body: &[u8],
    request_id: &str,
    protocol: Protocol,
) -> Result<(RequestContext, String), AwsError> {
    let verified = verify(
        &edge.inner.config.credentials,
        &parts.method,
        parts.uri.path(),
        parts.uri.query().unwrap_or(""),
        &parts.headers,
        body,
    )
    .map_err(|e| sigv4_error(e, protocol))?;
    let ctx = RequestContext {
        request_id: request_id.to_string(),
        scope: Scope::new(verified.region, edge.inner.config.account.clone()),
        access_key: verified.access_key,
    };
    Ok((ctx, verified.service))
}

/// Runs a handler's future: a bug in one handler must cost one request, never the server. `what` names the call
/// in the log and the metrics.
pub(crate) async fn call_guarded(
    edge: &Edge,
    call: ServiceFuture<'_>,
    what: &str,
) -> Result<Value, AwsError> {
    let started = std::time::Instant::now();
    let result = run_guarded(call, what).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code.as_str(),
    };
    edge.inner.metrics.record(what, outcome, started.elapsed());
    result
}

async fn run_guarded(call: ServiceFuture<'_>, what: &str) -> Result<Value, AwsError> {
    match AssertUnwindSafe(call).catch_unwind().await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            if e.status.is_server_error() {
                tracing::error!(target = %what, error = %e, "request failed");
            }
            Err(e)
        }
        Err(_) => {
            tracing::error!(target = %what, "handler panicked");
            Err(AwsError::internal(
                "Internal error; the request was not completed",
            ))
        }
    }
}

/// A response with its content type and `x-amzn-RequestId`.
pub(crate) fn respond(
    status: StatusCode,
    content_type: &str,
    request_id: &str,
    body: String,
) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/json")),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

fn render_error(err: &AwsError, request_id: &str, content_type: &str) -> Response {
    let body = json!({"__type": err.code, "message": err.message});
    let mut resp = respond(err.status, content_type, request_id, body.to_string());
    if let Ok(v) = HeaderValue::from_str(&err.code) {
        resp.headers_mut().insert("x-amzn-errortype", v);
    }
    resp
}

/// A Query request has no `X-Amz-Target` and carries its parameters in a form body (POST) or the URL (GET).
fn is_query_request(parts: &Parts) -> bool {
    if parts.headers.contains_key("x-amz-target") {
        return false;
    }
    if parts.method == Method::POST {
        parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                // `application/x-www-form-urlencoded; charset=utf-8` from botocore.
                let form = "application/x-www-form-urlencoded";
                ct.trim_start()
                    .get(..form.len())
                    .is_some_and(|t| t.eq_ignore_ascii_case(form))
            })
    } else {
        parts.method == Method::GET
            && parts
                .uri
                .query()
                .is_some_and(|q| query::has_param(q, "Action"))
    }
}

async fn handle(State(edge): State<Edge>, req: Request) -> Response {
    let id = request_id();
    let (parts, body) = req.into_parts();
    if is_query_request(&parts) {
        query::handle(&edge, parts, body, id).await
    } else {
        handle_json(&edge, parts, body, id).await
    }
}

async fn handle_json(edge: &Edge, parts: Parts, body: Body, id: String) -> Response {
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

    let body = match read_body(body).await {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let Some(service) = service else {
        let e = if target.is_empty() && parts.method == Method::GET {
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
    let ctx = match authenticate(edge, &parts, &body, &id, Protocol::Json) {
        Ok((ctx, _)) => ctx,
        Err(e) => return fail(e),
    };
    let operation = target.split_once('.').map(|(_, op)| op).unwrap_or("");
    match call_guarded(edge, service.call(&ctx, operation, &body), &target).await {
        Ok(value) => respond(StatusCode::OK, &content_type, &id, value.to_string()),
        Err(e) => fail(e),
    }
}
