//! [`AgentApi`] over HTTP: what a remote agent (`gantry agent --server URL`) talks to the server with. The
//! endpoints live under `/agent/v1/` on the server's API port; bodies are the JSON of the protocol structs.
//!
//! `register` authenticates with the server's join token and gets an instance token back; every other call sends
//! that instance token. When the server stops accepting it (401: the server's state was wiped, its join token
//! changed), the client registers again with the same identity and retries the call once, so the agent goes on
//! under the same container instance ARN. Connection failures, timeouts and 5xx answers are retryable errors;
//! other 4xx answers are fatal.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use gantry_model::agent::{
    AgentApi, AgentError, DesiredState, LogBatch, RegisterRequest, RegisterResponse,
    RegistryCredentials, TaskStateChange,
};

/// Answers larger than this are refused (a desired state of thousands of tasks stays far below).
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Every call but the poll gets this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// A poll may take its wait and this much more before the client gives up on it.
const POLL_GRACE: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid server URL {url:?}: {reason}")]
pub struct InvalidServerUrl {
    pub url: String,
    pub reason: &'static str,
}

/// Who the client is registered as: the instance token, and the request to register again with.
#[derive(Default)]
struct Session {
    token: Option<String>,
    /// Bumped by each registration, so that concurrent calls refused with the same old token register once.
    generation: u64,
    registration: Option<RegisterRequest>,
}

/// The agent protocol over HTTP/1.1 to one server.
pub struct HttpAgentApi {
    /// `http://host:port` plus any path prefix, without a trailing `/`.
    base: String,
    join_token: String,
    client: Client<HttpConnector, Full<Bytes>>,
    session: Mutex<Session>,
    /// One re-registration at a time.
    reregistering: tokio::sync::Mutex<()>,
}

/// What a call failed with before it is mapped to an [`AgentError`].
enum CallError {
    /// 401: the token was refused.
    Unauthorized(String),
    Other(AgentError),
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ErrorBody {
    message: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CursorBody {
    cursor: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CredentialsBody {
    credentials: Option<RegistryCredentials>,
}

/// An error and its causes (hyper's errors say little without them: "client error (Connect)").
fn with_sources(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Percent-encodes a query parameter value (everything but RFC 3986's unreserved characters).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Checks and normalises the server URL: `http://host[:port][/prefix]`.
pub fn parse_server_url(url: &str) -> Result<String, InvalidServerUrl> {
    let invalid = |reason| InvalidServerUrl {
        url: url.to_string(),
        reason,
    };
    let trimmed = url.trim();
    let uri: Uri = trimmed
        .parse()
        .map_err(|_| invalid("expected http://HOST:PORT"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(invalid(
                "https is not supported by the agent; use http:// (on a trusted network, or through a tunnel)",
            ))
        }
        _ => return Err(invalid("expected http://HOST:PORT")),
    }
    if !matches!(uri.host(), Some(h) if !h.is_empty()) {
        return Err(invalid("the host is missing"));
    }
    if uri.query().is_some() {
        return Err(invalid("a query string is not allowed"));
    }
    Ok(trimmed.trim_end_matches('/').to_string())
}

impl HttpAgentApi {
    /// A client for the server at `server` (`http://host:port`) joining with `join_token`.
    pub fn new(server: &str, join_token: &str) -> Result<HttpAgentApi, InvalidServerUrl> {
        let base = parse_server_url(server)?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(HttpAgentApi {
            base,
            join_token: join_token.to_string(),
            client,
            session: Mutex::new(Session::default()),
            reregistering: tokio::sync::Mutex::new(()),
        })
    }

    /// The server URL the client talks to.
    pub fn server(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Bytes, CallError> {
        let url = format!("{}{path}", self.base);
        let retryable = |m: String| CallError::Other(AgentError::retryable(m));
        let auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            CallError::Other(AgentError::fatal(
                "the token contains characters not allowed in an HTTP header",
            ))
        })?;
        let mut builder = Request::builder()
            .method(method)
            .uri(&url)
            .header(AUTHORIZATION, auth);
        if body.is_some() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| CallError::Other(AgentError::fatal(format!("bad request {url}: {e}"))))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                retryable(format!(
                    "cannot reach the server at {}: {}",
                    self.base,
                    with_sources(&e)
                ))
            })?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| retryable(format!("reading the answer of {url}: {e}")))?
                .to_bytes();
            Ok::<_, CallError>((status, body))
        };
        let (status, body) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| retryable(format!("{url} did not answer within {timeout:?}")))??;
        if status.is_success() {
            return Ok(body);
        }
        let message = serde_json::from_slice::<ErrorBody>(&body)
            .ok()
            .map(|b| b.message)
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
        let message = format!("{status}: {message}");
        Err(match status {
            StatusCode::UNAUTHORIZED => CallError::Unauthorized(message),
            s if s.is_server_error()
                || s == StatusCode::REQUEST_TIMEOUT
                || s == StatusCode::TOO_MANY_REQUESTS =>
            {
                retryable(message)
            }
            _ => CallError::Other(AgentError::fatal(message)),
        })
    }

    fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, AgentError> {
        serde_json::from_slice(body).map_err(|e| {
            AgentError::retryable(format!("the server's answer is not understood: {e}"))
        })
    }

    async fn register_once(&self, req: &RegisterRequest) -> Result<RegisterResponse, AgentError> {
        let body = serde_json::to_vec(req).map_err(|e| AgentError::fatal(e.to_string()))?;
        let answer = self
            .send(
                Method::POST,
                "/agent/v1/register",
                &self.join_token,
                Some(body),
                REQUEST_TIMEOUT,
            )
            .await;
        let bytes = match answer {
            Ok(bytes) => bytes,
            Err(CallError::Unauthorized(m)) => {
                return Err(AgentError::fatal(format!(
                    "the server refused the join token ({m}); pass the server's token with --token"
                )))
            }
            Err(CallError::Other(e)) => return Err(e),
        };
        let response: RegisterResponse = Self::decode(&bytes)?;
        let token = response
            .token
            .clone()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                AgentError::fatal("the server's registration carries no instance token")
            })?;
        let mut again = req.clone();
        again.container_instance_arn = Some(response.container_instance_arn.clone());
        if let Ok(mut session) = self.session.lock() {
            session.token = Some(token);
            session.generation += 1;
            session.registration = Some(again);
        }
        Ok(response)
    }

    /// Registers again after the token of `generation` was refused, unless another call already did.
    async fn reregister(&self, generation: u64, refused: String) -> Result<(), AgentError> {
        let _one = self.reregistering.lock().await;
        let (current, registration) = match self.session.lock() {
            Ok(s) => (s.generation, s.registration.clone()),
            Err(_) => return Err(AgentError::fatal("the client's session is poisoned")),
        };
        if current != generation {
            return Ok(());
        }
        let Some(req) = registration else {
            return Err(AgentError::retryable(format!(
                "not registered yet ({refused})"
            )));
        };
        let previous = req.container_instance_arn.clone();
        tracing::warn!(reason = %refused, "the server refused the instance token; registering again");
        let response = self.register_once(&req).await?;
        if previous.as_deref() != Some(response.container_instance_arn.as_str()) {
            return Err(AgentError::fatal(format!(
                "the server registered this agent again as a new container instance {} (it was {}); restart the agent",
                response.container_instance_arn,
                previous.unwrap_or_default()
            )));
        }
        Ok(())
    }

    /// A call with the instance token, registering again once if the server refuses the token.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Bytes, AgentError> {
        let mut reregistered = false;
        loop {
            let (token, generation) = match self.session.lock() {
                Ok(s) => (s.token.clone(), s.generation),
                Err(_) => return Err(AgentError::fatal("the client's session is poisoned")),
            };
            let Some(token) = token else {
                return Err(AgentError::retryable("the agent has not registered yet"));
            };
            match self
                .send(method.clone(), path, &token, body.clone(), timeout)
                .await
            {
                Ok(bytes) => return Ok(bytes),
                Err(CallError::Other(e)) => return Err(e),
                Err(CallError::Unauthorized(m)) if reregistered => {
                    return Err(AgentError::retryable(m))
                }
                Err(CallError::Unauthorized(m)) => {
                    self.reregister(generation, m).await?;
                    reregistered = true;
                }
            }
        }
    }
}

impl AgentApi for HttpAgentApi {
    async fn register(&self, req: RegisterRequest) -> Result<RegisterResponse, AgentError> {
        self.register_once(&req).await
    }

    async fn poll(
        &self,
        container_instance_arn: &str,
        index: u64,
        wait: Duration,
    ) -> Result<DesiredState, AgentError> {
        let path = format!(
            "/agent/v1/poll?instance={}&index={index}&wait={}",
            encode(container_instance_arn),
            wait.as_secs_f64()
        );
        let bytes = self
            .call(Method::GET, &path, None, wait + POLL_GRACE)
            .await?;
        Self::decode(&bytes)
    }

    async fn report(
        &self,
        container_instance_arn: &str,
        change: TaskStateChange,
    ) -> Result<(), AgentError> {
        let path = format!(
            "/agent/v1/report?instance={}",
            encode(container_instance_arn)
        );
        let body = serde_json::to_vec(&change).map_err(|e| AgentError::fatal(e.to_string()))?;
        self.call(Method::POST, &path, Some(body), REQUEST_TIMEOUT)
            .await
            .map(|_| ())
    }

    async fn put_logs(&self, batch: LogBatch) -> Result<(), AgentError> {
        let body = serde_json::to_vec(&batch).map_err(|e| AgentError::fatal(e.to_string()))?;
        self.call(Method::POST, "/agent/v1/logs", Some(body), REQUEST_TIMEOUT)
            .await
            .map(|_| ())
    }

    async fn log_cursor(
        &self,
        log_group: &str,
        log_stream: &str,
    ) -> Result<Option<String>, AgentError> {
        let path = format!(
            "/agent/v1/log-cursor?group={}&stream={}",
            encode(log_group),
            encode(log_stream)
        );
        let bytes = self.call(Method::GET, &path, None, REQUEST_TIMEOUT).await?;
        Ok(Self::decode::<CursorBody>(&bytes)?.cursor)
    }

    async fn registry_credentials(
        &self,
        image: &str,
    ) -> Result<Option<RegistryCredentials>, AgentError> {
        let path = format!("/agent/v1/registry-credentials?image={}", encode(image));
        let bytes = self.call(Method::GET, &path, None, REQUEST_TIMEOUT).await?;
        Ok(Self::decode::<CredentialsBody>(&bytes)?.credentials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        assert_eq!(
            parse_server_url("http://10.0.0.5:4566/").unwrap(),
            "http://10.0.0.5:4566"
        );
        assert_eq!(
            parse_server_url(" http://gantry.lan:4566/prefix ").unwrap(),
            "http://gantry.lan:4566/prefix"
        );
        for bad in [
            "",
            "10.0.0.5:4566",
            "https://x:4566",
            "ftp://x",
            "http://",
            "http://x:1?a=b",
        ] {
            assert!(parse_server_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            encode("arn:aws:ecs:us-east-1:0:container-instance/default/ab"),
            "arn%3Aaws%3Aecs%3Aus-east-1%3A0%3Acontainer-instance%2Fdefault%2Fab"
        );
        assert_eq!(encode("a b&c=d~"), "a%20b%26c%3Dd~");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_retryable() {
        // A port nothing listens on: bind one, then drop it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let api = HttpAgentApi::new(&format!("http://127.0.0.1:{port}"), "t").unwrap();
        let e = api.register(RegisterRequest::default()).await.unwrap_err();
        assert!(e.retryable, "{e}");
        let e = api
            .poll("arn", 0, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(e.retryable, "{e}");
    }
}
