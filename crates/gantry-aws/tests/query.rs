//! The Query protocol through the edge's router: signed form requests to a small test service, the XML answers
//! and error documents, and the JSON path beside it.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use gantry_aws::{
    sign_request_headers, AwsError, Credentials, Edge, EdgeConfig, JsonService, Params,
    QueryService, RequestContext, ServiceFuture, MAX_BODY_BYTES,
};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tower::ServiceExt;

const NS: &str = "http://test.example/doc/2020-01-01/";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Tag {
    key: String,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EchoInput {
    name: String,
    port: Option<u16>,
    enabled: Option<bool>,
    subnets: Option<Vec<String>>,
    #[serde(default)]
    tags: Vec<Tag>,
}

struct TestService;

impl TestService {
    async fn dispatch(
        &self,
        ctx: &RequestContext,
        action: &str,
        params: &Params,
    ) -> Result<Value, AwsError> {
        match action {
            "Echo" => {
                let input: EchoInput = params.decode()?;
                // Members in name order, so that the XML is the same whether serde_json keeps insertion order.
                Ok(json!({
                    "Enabled": input.enabled,
                    "Name": input.name,
                    "Port": input.port,
                    "Region": ctx.scope.region,
                    "Subnets": input.subnets,
                    "Tags": input.tags.iter().map(|t| json!({"Key": t.key, "Value": t.value})).collect::<Vec<_>>(),
                }))
            }
            "Empty" => Ok(json!({})),
            "Nothing" => Ok(Value::Null),
            "Busy" => Err(AwsError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "try <later>",
            )),
            "Boom" => panic!("a bug in a handler"),
            other => Err(AwsError::invalid_action(other, params.version())),
        }
    }
}

impl QueryService for TestService {
    fn signing_name(&self) -> &'static str {
        "testsvc"
    }

    fn xml_namespace(&self) -> &'static str {
        NS
    }

    fn call<'a>(
        &'a self,
        ctx: &'a RequestContext,
        action: &'a str,
        params: &'a Params,
    ) -> ServiceFuture<'a> {
        Box::pin(self.dispatch(ctx, action, params))
    }
}

struct JsonEcho;

impl JsonService for JsonEcho {
    fn target_prefix(&self) -> &'static str {
        "JsonEcho_20200101"
    }

    fn call<'a>(&'a self, _: &'a RequestContext, op: &'a str, _: &'a [u8]) -> ServiceFuture<'a> {
        Box::pin(async move { Ok(json!({"operation": op})) })
    }
}

fn router() -> axum::Router {
    Edge::new(
        EdgeConfig {
            credentials: Credentials::new([("test".to_string(), "test".to_string())]),
            account: "000000000000".into(),
        },
        vec![Arc::new(JsonEcho)],
    )
    .with_query_services(vec![Arc::new(TestService)])
    .router()
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn request_id(&self) -> String {
        self.header("x-amzn-requestid").to_string()
    }

    /// The text of the first `<tag>` of the body.
    fn element(&self, tag: &str) -> &str {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        self.body
            .split_once(&open)
            .and_then(|(_, rest)| rest.split_once(&close))
            .map(|(text, _)| text)
            .unwrap_or("")
    }
}

struct Call<'a> {
    method: Method,
    path: &'a str,
    service: &'a str,
    secret: &'a str,
    content_type: Option<&'a str>,
    target: Option<&'a str>,
    body: Vec<u8>,
}

impl<'a> Call<'a> {
    fn form(body: &str) -> Call<'a> {
        Call {
            method: Method::POST,
            path: "/",
            service: "testsvc",
            secret: "test",
            content_type: Some("application/x-www-form-urlencoded; charset=utf-8"),
            target: None,
            body: body.as_bytes().to_vec(),
        }
    }

    async fn send(self) -> Reply {
        let mut headers = HeaderMap::new();
        if let Some(ct) = self.content_type {
            headers.insert("content-type", ct.parse().unwrap());
        }
        if let Some(t) = self.target {
            headers.insert("x-amz-target", t.parse().unwrap());
        }
        sign_request_headers(
            "test",
            self.secret,
            "eu-west-1",
            self.service,
            &self.method,
            "localhost:4566",
            self.path,
            &mut headers,
            &self.body,
        );
        let mut req = Request::builder().method(self.method).uri(self.path);
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        send(req.body(Body::from(self.body)).unwrap()).await
    }
}

async fn send(req: Request<Body>) -> Reply {
    let res = router().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

fn error_body(ns: Option<&str>, kind: &str, code: &str, message: &str, id: &str) -> String {
    let xmlns = ns.map(|n| format!(" xmlns=\"{n}\"")).unwrap_or_default();
    format!(
        "<ErrorResponse{xmlns}><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>\
         <RequestId>{id}</RequestId></ErrorResponse>"
    )
}

/// The body botocore 1.44.8 sends for an ELBv2-like call (serialised by its QuerySerializer and urlencode).
const BOTOCORE_BODY: &str =
    "Action=Echo&Version=2020-01-01&Name=my+lb&Port=8080&Enabled=false&Subnets=\
    &Tags.member.2.Key=b&Tags.member.1.Key=a%2Bb&Tags.member.1.Value=x+y%26z%3C%C3%A9%3E";

#[tokio::test]
async fn answers_a_signed_form_post_in_xml() {
    let reply = Call::form(BOTOCORE_BODY).send().await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), "text/xml");
    let id = reply.request_id();
    assert!(!id.is_empty());
    assert_eq!(
        reply.body,
        format!(
            "<EchoResponse xmlns=\"{NS}\"><EchoResult><Enabled>false</Enabled><Name>my lb</Name><Port>8080</Port>\
             <Region>eu-west-1</Region><Subnets/><Tags><member><Key>a+b</Key><Value>x y&amp;z&lt;é&gt;</Value></member>\
             <member><Key>b</Key></member></Tags></EchoResult>\
             <ResponseMetadata><RequestId>{id}</RequestId></ResponseMetadata></EchoResponse>"
        )
    );
}

#[tokio::test]
async fn renders_empty_and_absent_results() {
    let reply = Call::form("Action=Empty&Version=2020-01-01").send().await;
    let id = reply.request_id();
    assert_eq!(
        reply.body,
        format!(
            "<EmptyResponse xmlns=\"{NS}\"><EmptyResult/><ResponseMetadata><RequestId>{id}</RequestId>\
             </ResponseMetadata></EmptyResponse>"
        )
    );
    let reply = Call::form("Action=Nothing").send().await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(!reply.body.contains("NothingResult"), "{}", reply.body);
}

#[tokio::test]
async fn answers_a_get_with_the_parameters_in_the_url() {
    let reply = Call {
        method: Method::GET,
        path: "/?Action=Echo&Version=2020-01-01&Name=from%20get",
        content_type: None,
        body: vec![],
        ..Call::form("")
    }
    .send()
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.element("Name"), "from get");
}

#[tokio::test]
async fn validation_errors_come_in_the_query_error_shape() {
    let reply = Call::form("Action=Echo&Version=2020-01-01&Name=a&Port=abc")
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.header("content-type"), "text/xml");
    assert_eq!(
        reply.body,
        error_body(
            Some(NS),
            "Sender",
            "ValidationError",
            "1 validation error detected: Value &apos;abc&apos; at &apos;port&apos; failed to satisfy constraint: \
             Member must be a number",
            &reply.request_id()
        )
    );
    let reply = Call::form("Action=Echo&Version=2020-01-01").send().await;
    assert_eq!(
        reply.element("Message"),
        "1 validation error detected: Value null at &apos;name&apos; failed to satisfy constraint: Member must not \
         be null"
    );
}

#[tokio::test]
async fn server_errors_are_the_receivers_fault() {
    let reply = Call::form("Action=Busy").send().await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.body,
        error_body(
            Some(NS),
            "Receiver",
            "ServiceUnavailable",
            "try &lt;later&gt;",
            &reply.request_id()
        )
    );
}

#[tokio::test]
async fn a_panicking_handler_costs_one_request() {
    let reply = Call::form("Action=Boom").send().await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.element("Type"), "Receiver");
    assert_eq!(reply.element("Code"), "InternalFailure");
    assert_eq!(
        Call::form("Action=Empty").send().await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn refuses_bad_signatures_and_unknown_keys() {
    let reply = Call {
        secret: "wrong",
        ..Call::form("Action=Empty")
    }
    .send()
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.header("content-type"), "text/xml");
    assert_eq!(reply.element("Code"), "SignatureDoesNotMatch");
    assert_eq!(reply.element("Type"), "Sender");
    assert_eq!(reply.element("RequestId"), reply.request_id());

    // Signed over one body, sent with another: the body is part of the signature.
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    sign_request_headers(
        "test",
        "test",
        "us-east-1",
        "testsvc",
        &Method::POST,
        "localhost",
        "/",
        &mut headers,
        b"Action=Empty",
    );
    let mut req = Request::builder().method(Method::POST).uri("/");
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    let reply = send(req.body(Body::from("Action=Boom")).unwrap()).await;
    assert_eq!(reply.element("Code"), "SignatureDoesNotMatch");

    let mut req = Request::builder()
        .method(Method::POST)
        .uri("/")
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=nobody/20240101/us-east-1/testsvc/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=00",
        );
    req = req.header("x-amz-date", headers["x-amz-date"].to_str().unwrap());
    let reply = send(req.body(Body::from("Action=Empty")).unwrap()).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.element("Code"), "InvalidClientTokenId");

    let reply = send(
        Request::builder()
            .method(Method::POST)
            .uri("/")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("Action=Empty"))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.element("Code"), "MissingAuthenticationToken");
}

#[tokio::test]
async fn unknown_and_missing_actions() {
    let reply = Call::form("Action=Launch&Version=2020-01-01").send().await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body,
        error_body(
            Some(NS),
            "Sender",
            "InvalidAction",
            "Could not find operation Launch for version 2020-01-01",
            &reply.request_id()
        )
    );
    let reply = Call::form("Version=2020-01-01&Name=x").send().await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.element("Code"), "MissingAction");
    let reply = Call::form("Action=").send().await;
    assert_eq!(reply.element("Code"), "MissingAction");
    // An action that could not be an element name never reaches the service.
    let reply = Call::form("Action=%3Cx%3E").send().await;
    assert_eq!(reply.element("Code"), "InvalidAction");
    assert_eq!(
        reply.element("Message"),
        "Could not find operation &lt;x&gt; for version NO_VERSION_SPECIFIED"
    );
}

#[tokio::test]
async fn a_service_gantry_does_not_serve() {
    let reply = Call {
        service: "sts",
        ..Call::form("Action=GetCallerIdentity&Version=2011-06-15")
    }
    .send()
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.element("Code"), "InvalidAction");
    assert!(
        reply.body.starts_with("<ErrorResponse><Error>"),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn a_malformed_form_is_a_400() {
    for body in [
        "Action=Echo&Name=%zz",
        "Action=Echo&Name=%",
        "Action=Echo&Name=%C3",
    ] {
        let reply = Call::form(body).send().await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.element("Code"), "InvalidQueryParameter", "{body}");
        assert!(reply
            .body
            .starts_with(&format!("<ErrorResponse xmlns=\"{NS}\">")));
    }
    let mut call = Call::form("");
    call.body = b"Action=Echo&Name=\xff\xfe".to_vec();
    let reply = call.send().await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.element("Code"), "InvalidQueryParameter");
}

#[tokio::test]
async fn a_body_beyond_the_limit_is_refused() {
    let body = vec![b'a'; MAX_BODY_BYTES + 1];
    let reply = send(
        Request::builder()
            .method(Method::POST)
            .uri("/")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.header("content-type"), "text/xml");
    assert!(reply.body.starts_with("<ErrorResponse>"), "{}", reply.body);
}

#[tokio::test]
async fn json_requests_are_routed_as_before() {
    let reply = Call {
        service: "jsonecho",
        content_type: Some("application/x-amz-json-1.1"),
        target: Some("JsonEcho_20200101.Ping"),
        body: b"{}".to_vec(),
        ..Call::form("")
    }
    .send()
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), "application/x-amz-json-1.1");
    assert_eq!(reply.body, r#"{"operation":"Ping"}"#);

    // A target wins over a form content type.
    let reply = Call {
        target: Some("JsonEcho_20200101.Ping"),
        ..Call::form("Action=Echo")
    }
    .send()
    .await;
    assert_eq!(reply.body, r#"{"operation":"Ping"}"#);

    // Neither a target nor a form: the JSON path's answers, unchanged.
    let reply = Call {
        content_type: Some("application/json"),
        ..Call::form("{}")
    }
    .send()
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.header("x-amzn-errortype"),
        "UnknownOperationException"
    );
    let reply = send(Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.header("x-amzn-errortype"),
        "UnknownOperationException"
    );
}
