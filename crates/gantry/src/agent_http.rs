//! The agent protocol over HTTP (DESIGN.md §5): the `/agent/v1/` endpoints remote agents (`gantry agent`) call on
//! the API port. Each endpoint decodes its request, checks the caller's token and hands over to the same
//! [`Embedded`] adapter the embedded agent calls in-process; bodies are the JSON of the protocol structs.
//!
//! Authentication: `register` takes the server's join token (`Authorization: Bearer <join token>`) and answers
//! with an instance token bound to the container instance ARN; every other call takes that instance token and may
//! act only on its own instance. Errors are `{"message": .., "retryable": bool}`: 400 for a malformed request, 401
//! for a missing or wrong token (and for an instance the server no longer knows: the agent registers again), 403
//! for another instance's ARN, 409 for a refusal retrying cannot change, 503 when retrying may help.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use gantry_model::agent::{AgentApi, AgentError, LogBatch, RegisterRequest, TaskStateChange};
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::embedded::Embedded;

type HmacSha256 = Hmac<Sha256>;

/// The longest a poll may wait, whatever the agent asks.
pub const MAX_POLL_WAIT: Duration = Duration::from_secs(60);
/// Log batches reach about a MiB of text; JSON escaping may grow them.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// The file in the data dir that keeps a generated join token.
pub const JOIN_TOKEN_FILE: &str = "agent-token";
const TOKEN_PREFIX: &str = "v1";

/// The join token and the key instance tokens are signed with (derived from the join token: a new join token
/// makes every agent register again).
pub struct AgentAuth {
    join_digest: [u8; 32],
    key: [u8; 32],
}

impl AgentAuth {
    pub fn new(join_token: &str) -> AgentAuth {
        let mut key = Sha256::new();
        key.update(b"gantry agent instance tokens\0");
        key.update(join_token.as_bytes());
        AgentAuth {
            join_digest: Sha256::digest(join_token.as_bytes()).into(),
            key: key.finalize().into(),
        }
    }

    fn mac(&self, arn: &str) -> HmacSha256 {
        // HMAC takes keys of any length: this cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key).expect("HMAC key");
        mac.update(arn.as_bytes());
        mac
    }

    /// `v1.<hex of the ARN>.<hex of HMAC-SHA256(key, ARN)>`: the ARN travels in the token so that a request for
    /// another instance is told apart (403) from a forged token (401).
    pub fn instance_token(&self, arn: &str) -> String {
        let tag = self.mac(arn).finalize().into_bytes();
        format!("{TOKEN_PREFIX}.{}.{}", hex::encode(arn), hex::encode(tag))
    }

    /// The ARN an instance token was issued for, if the token is genuine.
    pub fn verify_instance(&self, token: &str) -> Option<String> {
        let mut parts = token.split('.');
        let (Some(TOKEN_PREFIX), Some(arn), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let arn = String::from_utf8(hex::decode(arn).ok()?).ok()?;
        let tag = hex::decode(tag).ok()?;
        self.mac(&arn).verify_slice(&tag).ok()?;
        Some(arn)
    }

    /// Compares digests in constant time, so the comparison leaks nothing of the token.
    pub fn verify_join(&self, token: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        presented
            .iter()
            .zip(self.join_digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// The join token: the configured one, else the one kept in `DATA_DIR/agent-token`, else a new random one written
/// there (mode 0600). Returns the token and the file it is kept in (`None` when configured).
pub fn join_token(
    configured: Option<&str>,
    data_dir: &Path,
) -> std::io::Result<(String, Option<PathBuf>)> {
    if let Some(token) = configured {
        return Ok((token.to_string(), None));
    }
    let path = data_dir.join(JOIN_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok((text.trim().to_string(), Some(path))),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    let token = hex::encode(bytes);
    let tmp = data_dir.join(format!("{JOIN_TOKEN_FILE}.tmp"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(format!("{token}\n").as_bytes())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, &path)?;
    Ok((token, Some(path)))
}

/// What the endpoints need: the adapter shared with the embedded agent and the token keys.
pub struct AgentHttp {
    pub api: Arc<Embedded>,
    pub auth: AgentAuth,
}

/// A protocol error as JSON.
#[derive(Debug)]
struct HttpError {
    status: StatusCode,
    message: String,
    retryable: bool,
}

impl HttpError {
    fn new(status: StatusCode, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            message: message.into(),
            retryable: status == StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn bad_request(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::BAD_REQUEST, message)
    }

    fn unauthorized(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::UNAUTHORIZED, message)
    }
}

impl From<AgentError> for HttpError {
    fn from(e: AgentError) -> HttpError {
        if e.retryable {
            HttpError::new(StatusCode::SERVICE_UNAVAILABLE, e.message)
        } else {
            HttpError::new(StatusCode::CONFLICT, e.message)
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"message": self.message, "retryable": self.retryable});
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"gantry-agent\""),
            );
        }
        response
    }
}

type HttpResult = Result<Response, HttpError>;

fn json_response<T: serde::Serialize>(value: &T) -> HttpResult {
    let body = serde_json::to_vec(value).map_err(|e| {
        HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the answer: {e}"),
        )
    })?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, HttpError> {
    serde_json::from_slice(body)
        .map_err(|e| HttpError::bad_request(format!("malformed JSON body: {e}")))
}

fn bearer(headers: &HeaderMap) -> Result<&str, HttpError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| HttpError::unauthorized("missing Authorization: Bearer <token>"))?;
    let value = value
        .to_str()
        .map_err(|_| HttpError::unauthorized("the Authorization header is not valid text"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| HttpError::unauthorized("expected Authorization: Bearer <token>"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(HttpError::unauthorized(
            "expected Authorization: Bearer <token>",
        ));
    }
    Ok(token.trim())
}

impl AgentHttp {
    /// The instance a request's instance token was issued for.
    fn instance(&self, headers: &HeaderMap) -> Result<String, HttpError> {
        let token = bearer(headers)?;
        self.auth.verify_instance(token).ok_or_else(|| {
            HttpError::unauthorized(
                "invalid instance token (the server's join token changed?): register again",
            )
        })
    }

    /// Checks that the token's instance is the one the request names and that the server still knows it.
    fn own_instance(&self, headers: &HeaderMap, named: &str) -> Result<(), HttpError> {
        let arn = self.instance(headers)?;
        if arn != named {
            return Err(HttpError::new(
                StatusCode::FORBIDDEN,
                format!("this token belongs to {arn}, not to {named}"),
            ));
        }
        self.known(&arn)
    }

    /// An instance whose record is gone (the server's state was wiped) registers again; 401 tells its agent so.
    fn known(&self, arn: &str) -> Result<(), HttpError> {
        if self.api.ecs.container_instance_status(arn).is_none() {
            return Err(HttpError::new(
                StatusCode::UNAUTHORIZED,
                format!("container instance {arn} is not known to this server: register again"),
            ));
        }
        Ok(())
    }
}

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

fn params(query: Params) -> Result<HashMap<String, String>, HttpError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| HttpError::bad_request(format!("invalid query string: {e}")))
}

fn required<'a>(params: &'a HashMap<String, String>, name: &str) -> Result<&'a str, HttpError> {
    params
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| HttpError::bad_request(format!("missing query parameter {name}")))
}

/// `30`, `30s` or `2.5`: seconds, capped at [`MAX_POLL_WAIT`].
fn parse_wait(value: Option<&String>) -> Result<Duration, HttpError> {
    let Some(value) = value else {
        return Ok(Duration::ZERO);
    };
    let secs: f64 = value
        .strip_suffix('s')
        .unwrap_or(value)
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| {
            HttpError::bad_request(format!("invalid wait {value:?}: expected seconds, e.g. 30"))
        })?;
    Ok(Duration::from_secs_f64(
        secs.min(MAX_POLL_WAIT.as_secs_f64()),
    ))
}

async fn register(
    State(http): State<Arc<AgentHttp>>,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    let token = bearer(&headers)?;
    if !http.auth.verify_join(token) {
        return Err(HttpError::unauthorized(
            "wrong join token (see the server's --agent-token or its DATA_DIR/agent-token)",
        ));
    }
    let req: RegisterRequest = json_body(&body)?;
    if req.cluster.is_empty() {
        return Err(HttpError::bad_request("cluster is required"));
    }
    let mut response = http.api.register(req).await?;
    response.token = Some(http.auth.instance_token(&response.container_instance_arn));
    json_response(&response)
}

async fn poll(State(http): State<Arc<AgentHttp>>, headers: HeaderMap, query: Params) -> HttpResult {
    http.instance(&headers)?;
    let params = params(query)?;
    let arn = required(&params, "instance")?;
    let index = match params.get("index") {
        None => 0,
        Some(i) => i.parse::<u64>().map_err(|_| {
            HttpError::bad_request(format!("invalid index {i:?}: expected an unsigned integer"))
        })?,
    };
    let wait = parse_wait(params.get("wait"))?;
    http.own_instance(&headers, arn)?;
    let state = http.api.poll(arn, index, wait).await?;
    if !state.registered {
        // Deregistered (the record says INACTIVE) ends the agent; a record wiped during the wait re-registers it.
        http.known(arn)?;
    }
    json_response(&state)
}

async fn report(
    State(http): State<Arc<AgentHttp>>,
    headers: HeaderMap,
    query: Params,
    body: Bytes,
) -> HttpResult {
    http.instance(&headers)?;
    let params = params(query)?;
    let arn = required(&params, "instance")?;
    let change: TaskStateChange = json_body(&body)?;
    http.own_instance(&headers, arn)?;
    http.api.report(arn, change).await?;
    json_response(&serde_json::json!({}))
}

async fn put_logs(
    State(http): State<Arc<AgentHttp>>,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    http.instance(&headers)?;
    let batch: LogBatch = json_body(&body)?;
    if batch.log_group.is_empty() || batch.log_stream.is_empty() {
        return Err(HttpError::bad_request(
            "logGroup and logStream are required",
        ));
    }
    http.api.put_logs(batch).await?;
    json_response(&serde_json::json!({}))
}

async fn log_cursor(
    State(http): State<Arc<AgentHttp>>,
    headers: HeaderMap,
    query: Params,
) -> HttpResult {
    http.instance(&headers)?;
    let params = params(query)?;
    let group = required(&params, "group")?;
    let stream = required(&params, "stream")?;
    let cursor = http.api.log_cursor(group, stream).await?;
    json_response(&serde_json::json!({ "cursor": cursor }))
}

async fn registry_credentials(
    State(http): State<Arc<AgentHttp>>,
    headers: HeaderMap,
    query: Params,
) -> HttpResult {
    http.instance(&headers)?;
    let params = params(query)?;
    let image = required(&params, "image")?;
    let credentials = http.api.registry_credentials(image).await?;
    json_response(&serde_json::json!({ "credentials": credentials }))
}

async fn not_found() -> HttpError {
    HttpError::new(
        StatusCode::NOT_FOUND,
        "no such agent endpoint (this server speaks /agent/v1/)",
    )
}

/// The `/agent/v1/` routes, to merge beside the AWS edge.
pub fn router(http: Arc<AgentHttp>) -> Router {
    Router::new()
        .route("/agent/v1/register", post(register))
        .route("/agent/v1/poll", get(poll))
        .route("/agent/v1/report", post(report))
        .route("/agent/v1/logs", post(put_logs))
        .route("/agent/v1/log-cursor", get(log_cursor))
        .route("/agent/v1/registry-credentials", get(registry_credentials))
        .route("/agent/v1/{*rest}", any(not_found))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(http)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_tokens_are_bound_to_their_arn_and_key() {
        let auth = AgentAuth::new("join-secret");
        let arn = "arn:aws:ecs:us-east-1:000000000000:container-instance/default/abc";
        let token = auth.instance_token(arn);
        assert_eq!(auth.verify_instance(&token).as_deref(), Some(arn));
        // Another key, a changed ARN, a truncated tag, garbage: all refused.
        assert!(AgentAuth::new("other").verify_instance(&token).is_none());
        let forged = format!(
            "v1.{}.{}",
            hex::encode(format!("{arn}x")),
            token.rsplit('.').next().unwrap()
        );
        assert!(auth.verify_instance(&forged).is_none());
        assert!(auth.verify_instance(&token[..token.len() - 2]).is_none());
        assert!(auth.verify_instance("v1.zz.zz").is_none());
        assert!(auth.verify_instance("").is_none());
        assert!(auth.verify_instance("v1.aa.bb.cc").is_none());
        assert!(auth.verify_join("join-secret"));
        assert!(!auth.verify_join("join-secreT"));
        assert!(!auth.verify_join(""));
    }

    #[test]
    fn a_generated_join_token_is_kept() {
        let dir = std::env::temp_dir().join(format!(
            "gantry-agent-token-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (token, path) = join_token(None, &dir).unwrap();
        assert_eq!(token.len(), 64);
        let path = path.unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(join_token(None, &dir).unwrap().0, token);
        assert_eq!(
            join_token(Some("given"), &dir).unwrap(),
            ("given".to_string(), None)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn wait_is_parsed_and_capped() {
        assert_eq!(parse_wait(None).unwrap(), Duration::ZERO);
        assert_eq!(
            parse_wait(Some(&"30".into())).unwrap(),
            Duration::from_secs(30)
        );
        assert_eq!(
            parse_wait(Some(&"2.5s".into())).unwrap(),
            Duration::from_millis(2500)
        );
        assert_eq!(parse_wait(Some(&"3600".into())).unwrap(), MAX_POLL_WAIT);
        assert!(parse_wait(Some(&"-1".into())).is_err());
        assert!(parse_wait(Some(&"NaN".into())).is_err());
        assert!(parse_wait(Some(&"soon".into())).is_err());
    }
}

/// The endpoints end to end: a real server on a loopback port over the real services, called with the remote
/// agent's client and with raw requests for what the client never sends.
#[cfg(test)]
mod http_tests {
    use std::net::SocketAddr;

    use gantry_agent::HttpAgentApi;
    use gantry_aws::{JsonService, RequestContext};
    use gantry_ecs::{EcsConfig, EcsService};
    use gantry_logs::LogsService;
    use gantry_model::Scope;
    use gantry_store::{Store, Txn, WalStore};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const JOIN: &str = "join-token-for-tests";

    struct TestServer {
        addr: SocketAddr,
        ecs: Arc<EcsService<WalStore>>,
        store: Arc<WalStore>,
        auth: AgentAuth,
        dir: PathBuf,
    }

    impl Drop for TestServer {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    async fn start() -> TestServer {
        let dir = std::env::temp_dir().join(format!(
            "gantry-agent-http-{}-{}",
            std::process::id(),
            gantry_model::new_id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Arc::new(WalStore::open(&dir.join("state")).unwrap());
        let ecs = EcsService::new(
            store.clone(),
            EcsConfig {
                agent_timeout: Duration::from_secs(20),
                ..Default::default()
            },
        );
        let logs = Arc::new(LogsService::open((*store).clone(), &dir).unwrap());
        let registry = Arc::new(gantry_registry::Registry::open((*store).clone(), &dir).unwrap());
        let ecr = gantry_registry::ecr::EcrService::new(
            registry,
            gantry_registry::ecr::EcrConfig { port: 4566 },
        );
        let api = Arc::new(Embedded::new(
            ecs.clone(),
            logs,
            ecr,
            Scope::new("us-east-1", "000000000000"),
            false,
            Duration::from_secs(20),
        ));
        let app = router(Arc::new(AgentHttp {
            api,
            auth: AgentAuth::new(JOIN),
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestServer {
            addr,
            ecs,
            store,
            auth: AgentAuth::new(JOIN),
            dir,
        }
    }

    fn registration(instance_id: &str) -> RegisterRequest {
        RegisterRequest {
            cluster: "default".into(),
            instance_id: instance_id.into(),
            cpu: 1024,
            memory: 512,
            agent_version: "test".into(),
            docker_version: "test".into(),
            ..Default::default()
        }
    }

    /// One HTTP/1.1 exchange: the status and the body as JSON (Null when it is not JSON).
    async fn raw(
        addr: SocketAddr,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, serde_json::Value) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer).to_string();
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap();
        let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        (
            status,
            serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
        )
    }

    fn client(server: &TestServer, join: &str) -> HttpAgentApi {
        HttpAgentApi::new(&format!("http://{}", server.addr), join).unwrap()
    }

    #[tokio::test]
    async fn register_needs_the_join_token_and_a_valid_body() {
        let server = start().await;
        let body = serde_json::to_string(&registration("i-1")).unwrap();
        let (status, answer) = raw(server.addr, "POST", "/agent/v1/register", None, &body).await;
        assert_eq!(status, 401);
        assert_eq!(answer["retryable"], false);
        assert!(answer["message"].as_str().unwrap().contains("Bearer"));
        let (status, _) = raw(
            server.addr,
            "POST",
            "/agent/v1/register",
            Some("wrong"),
            &body,
        )
        .await;
        assert_eq!(status, 401);
        let (status, answer) = raw(
            server.addr,
            "POST",
            "/agent/v1/register",
            Some(JOIN),
            "{not json",
        )
        .await;
        assert_eq!(status, 400);
        assert!(answer["message"].as_str().unwrap().contains("JSON"));
        let (status, answer) = raw(
            server.addr,
            "POST",
            "/agent/v1/register",
            Some(JOIN),
            r#"{"cluster":"default","cpu":"lots"}"#,
        )
        .await;
        assert_eq!(status, 400, "{answer}");
        // No resources: the service refuses, for good.
        let (status, answer) = raw(
            server.addr,
            "POST",
            "/agent/v1/register",
            Some(JOIN),
            r#"{"cluster":"default"}"#,
        )
        .await;
        assert_eq!(status, 409, "{answer}");
        assert_eq!(answer["retryable"], false);

        let (status, answer) =
            raw(server.addr, "POST", "/agent/v1/register", Some(JOIN), &body).await;
        assert_eq!(status, 200, "{answer}");
        let arn = answer["containerInstanceArn"].as_str().unwrap();
        let token = answer["token"].as_str().unwrap();
        assert_eq!(server.auth.verify_instance(token).as_deref(), Some(arn));

        // The client: a wrong join token is fatal, the right one registers.
        let e = client(&server, "wrong")
            .register(registration("i-2"))
            .await
            .unwrap_err();
        assert!(!e.retryable);
        assert!(e.message.contains("join token"), "{e}");
        let ok = client(&server, JOIN)
            .register(registration("i-2"))
            .await
            .unwrap();
        assert!(ok.token.is_some());
    }

    #[tokio::test]
    async fn calls_need_their_own_instance_token() {
        let server = start().await;
        let a = client(&server, JOIN);
        let b = client(&server, JOIN);
        let arn_a = a
            .register(registration("i-a"))
            .await
            .unwrap()
            .container_instance_arn;
        let reg_b = b.register(registration("i-b")).await.unwrap();
        let arn_b = reg_b.container_instance_arn.clone();
        let token_b = reg_b.token.unwrap();
        let q = |arn: &str| format!("/agent/v1/poll?instance={}&index=0&wait=0", arn);

        let (status, _) = raw(server.addr, "GET", &q(&arn_b), None, "").await;
        assert_eq!(status, 401);
        let (status, _) = raw(server.addr, "GET", &q(&arn_b), Some(JOIN), "").await;
        assert_eq!(status, 401, "the join token is not an instance token");
        // The last character changed (to one it is not, so that the forgery never equals the token).
        let last = if token_b.ends_with('0') { '1' } else { '0' };
        let forged = format!("{}{last}", &token_b[..token_b.len() - 1]);
        let (status, _) = raw(server.addr, "GET", &q(&arn_b), Some(&forged), "").await;
        assert_eq!(status, 401);
        let (status, answer) = raw(server.addr, "GET", &q(&arn_b), Some(&token_b), "").await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["registered"], true);
        // B's token for A's instance.
        let (status, answer) = raw(server.addr, "GET", &q(&arn_a), Some(&token_b), "").await;
        assert_eq!(status, 403, "{answer}");
        let report = format!("/agent/v1/report?instance={arn_a}");
        let (status, _) = raw(server.addr, "POST", &report, Some(&token_b), "{}").await;
        assert_eq!(status, 403);
        // Malformed requests.
        let (status, answer) = raw(
            server.addr,
            "GET",
            "/agent/v1/poll?index=0",
            Some(&token_b),
            "",
        )
        .await;
        assert_eq!(status, 400);
        assert!(answer["message"].as_str().unwrap().contains("instance"));
        let bad_index = format!("/agent/v1/poll?instance={arn_b}&index=-1");
        let (status, _) = raw(server.addr, "GET", &bad_index, Some(&token_b), "").await;
        assert_eq!(status, 400);
        let bad_wait = format!("/agent/v1/poll?instance={arn_b}&wait=forever");
        let (status, _) = raw(server.addr, "GET", &bad_wait, Some(&token_b), "").await;
        assert_eq!(status, 400);
        let own_report = format!("/agent/v1/report?instance={arn_b}");
        let (status, _) = raw(server.addr, "POST", &own_report, Some(&token_b), "[1,").await;
        assert_eq!(status, 400);
        let (status, _) = raw(server.addr, "POST", "/agent/v1/logs", Some(&token_b), "{}").await;
        assert_eq!(status, 400);
        let (status, _) = raw(
            server.addr,
            "GET",
            "/agent/v1/log-cursor?group=g",
            Some(&token_b),
            "",
        )
        .await;
        assert_eq!(status, 400);
        let (status, _) = raw(server.addr, "GET", "/agent/v1/nope", Some(&token_b), "").await;
        assert_eq!(status, 404);
        // A report of a task the instance does not run is refused for good.
        let e = b
            .report(
                &arn_b,
                TaskStateChange {
                    task_arn: "arn:aws:ecs:us-east-1:000000000000:task/default/0123".into(),
                    last_status: "RUNNING".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert!(!e.retryable, "{e}");
        // The other calls work with the client.
        assert_eq!(b.log_cursor("g", "s").await.unwrap(), None);
        assert_eq!(
            b.registry_credentials("docker.io/library/busybox:latest")
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn a_long_poll_is_answered_on_change() {
        let server = start().await;
        let api = client(&server, JOIN);
        let arn = api
            .register(registration("i-poll"))
            .await
            .unwrap()
            .container_instance_arn;
        let first = api.poll(&arn, 0, Duration::from_secs(5)).await.unwrap();
        assert!(first.registered);
        // No change: the poll waits its time.
        let started = std::time::Instant::now();
        let same = api
            .poll(&arn, first.index, Duration::from_millis(600))
            .await
            .unwrap();
        assert_eq!(same.index, first.index);
        assert!(started.elapsed() >= Duration::from_millis(500));
        // A change (the instance is deregistered) answers a 20 s poll at once.
        let ecs = server.ecs.clone();
        let deregistered = arn.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let ctx = RequestContext {
                request_id: "test".into(),
                scope: Scope::new("us-east-1", "000000000000"),
                access_key: "test".into(),
            };
            let body = serde_json::json!({"containerInstance": deregistered}).to_string();
            ecs.call(&ctx, "DeregisterContainerInstance", body.as_bytes())
                .await
                .unwrap();
        });
        let started = std::time::Instant::now();
        let changed = api
            .poll(&arn, first.index, Duration::from_secs(20))
            .await
            .unwrap();
        assert!(!changed.registered);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn an_agent_whose_instance_vanished_registers_again() {
        let server = start().await;
        let api = client(&server, JOIN);
        let arn = api
            .register(registration("i-wiped"))
            .await
            .unwrap()
            .container_instance_arn;
        // The server's state is wiped (its join token stays): the next call registers again, same ARN.
        server
            .store
            .txn(Txn::new().delete_prefix("/"))
            .await
            .unwrap();
        assert_eq!(server.ecs.container_instance_status(&arn), None);
        let state = api.poll(&arn, 0, Duration::ZERO).await.unwrap();
        assert!(state.registered);
        assert_eq!(
            server.ecs.container_instance_status(&arn).as_deref(),
            Some("ACTIVE")
        );
    }
}
