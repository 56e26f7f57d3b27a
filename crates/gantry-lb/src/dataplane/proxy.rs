//! The HTTP proxy of one listener: keep-alive connections from clients, rules evaluated per request, requests and
//! answers streamed to and from a pooled upstream connection (upgrades on one of their own), and ALB's own answers
//! when it cannot forward.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, HOST, LOCATION, SET_COOKIE, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;

use super::target_tls::TargetConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};

use super::{sticky, upgrade, DataPlane, ListenerRoutes, Routes, Socket};
use crate::model::Action;
use crate::rules::{self, RequestFacts};

pub type Upstream = Client<TargetConnector, Body>;
pub(crate) type Body = BoxBody<Bytes, hyper::Error>;

pub fn upstream(mark: u32) -> Upstream {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .build(TargetConnector::new(mark))
}

/// Accepts connections until the socket is closed (its task aborted).
pub(crate) async fn serve(plane: Arc<DataPlane>, target: Socket, socket: TcpListener) {
    loop {
        let (stream, peer) = match socket.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(plane.clone(), target.clone(), stream, peer));
    }
}

/// How long a client has to start talking and to finish its TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// The HTTP version a connection speaks, known before it is served.
#[derive(Clone, Copy, PartialEq)]
enum Version {
    Http1,
    Http2,
}

/// What a cleartext connection opens with: a TLS handshake record (0x16), HTTP/2's preface (`PRI * HTTP/2.0`,
/// prior knowledge) or else HTTP/1. `None` when the client sends nothing in time.
async fn opening(stream: &TcpStream) -> Option<Opening> {
    let mut buf = [0u8; 3];
    let deadline = tokio::time::Instant::now() + HANDSHAKE;
    loop {
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        if buf[0] == 0x16 {
            return Some(Opening::Tls);
        }
        if n == 3 || !b"PRI".starts_with(&buf[..n]) {
            return Some(if &buf[..n] == b"PRI" {
                Opening::Http(Version::Http2)
            } else {
                Opening::Http(Version::Http1)
            });
        }
        // A preface split before its third byte: rare; wait for the rest.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

enum Opening {
    Tls,
    Http(Version),
}

/// The version a cleartext connection is served with: HTTP/2 only where the listener allows it.
fn cleartext(opening: Opening, http2: bool) -> Option<Version> {
    match opening {
        Opening::Http(Version::Http2) if !http2 => Some(Version::Http1),
        Opening::Http(v) => Some(v),
        Opening::Tls => None,
    }
}

/// The version ALPN chose on a TLS connection.
fn negotiated<I>(tls: &tokio_rustls::server::TlsStream<I>) -> Version {
    if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
        Version::Http2
    } else {
        Version::Http1
    }
}

/// One client connection: TLS first on HTTPS listeners, then HTTP/1.1, or HTTP/2 where the listener allows it (by
/// ALPN on TLS, by its preface in clear text).
async fn connection(plane: Arc<DataPlane>, socket: Socket, stream: TcpStream, peer: SocketAddr) {
    match &socket {
        Socket::Listener(arn) => {
            // A listener not in the routes yet (just created) is answered over HTTP/1.1: 503 until it is.
            let (tls, http2, lb) = match plane.routes().listeners.get(&**arn) {
                Some(l) => (l.tls.clone(), l.http2, Some(l.load_balancer.clone())),
                None => (None, false, None),
            };
            // ActiveConnectionCount of the load balancer whose own socket this is, while the connection lasts.
            let _open = lb.map(|lb| ConnectionOpen::new(plane.metrics.load_balancer(&lb)));
            match tls {
                Some(config) => {
                    let accept = tokio_rustls::TlsAcceptor::from(config).accept(stream);
                    if let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE, accept).await {
                        let version = negotiated(&tls);
                        serve_http(plane, socket, peer, tls, version).await;
                    }
                }
                None => {
                    let Some(version) = opening(&stream).await.and_then(|o| cleartext(o, http2))
                    else {
                        return;
                    };
                    serve_http(plane, socket, peer, stream, version).await;
                }
            }
        }
        Socket::Front(port) => {
            match opening(&stream).await {
                Some(Opening::Tls) => {}
                // Which load balancer is known only from the Host header: HTTP/2 is not refused here.
                Some(o) => {
                    if let Some(version) = cleartext(o, true) {
                        serve_http(plane, socket, peer, stream, version).await;
                    }
                    return;
                }
                None => return,
            }
            let lazy =
                tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
            let Ok(Ok(start)) = tokio::time::timeout(HANDSHAKE, lazy).await else {
                return;
            };
            let sni = start
                .client_hello()
                .server_name()
                .map(str::to_ascii_lowercase);
            let Some((arn, config, lb)) = front_tls_listener(&plane.routes(), *port, sni) else {
                return;
            };
            let _open = ConnectionOpen::new(plane.metrics.load_balancer(&lb));
            if let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE, start.into_stream(config)).await {
                let version = negotiated(&tls);
                serve_http(plane, Socket::Listener(arn), peer, tls, version).await;
            }
        }
    }
}

/// The HTTPS listener a TLS connection to a front socket is for: the one whose DNS name the client's SNI is, or
/// the only HTTPS listener on the port.
fn front_tls_listener(
    routes: &Routes,
    port: u16,
    sni: Option<String>,
) -> Option<(Arc<str>, Arc<rustls::ServerConfig>, String)> {
    let by_name = sni.and_then(|name| routes.by_host.get(&(name, port)));
    let arn = match by_name {
        Some(arn) => arn,
        None => match routes.tls_by_port.get(&port)?.as_slice() {
            [only] => only,
            _ => return None,
        },
    };
    let l = routes.listeners.get(arn)?;
    Some((arn.as_str().into(), l.tls.clone()?, l.load_balancer.clone()))
}

async fn serve_http<I>(
    plane: Arc<DataPlane>,
    socket: Socket,
    peer: SocketAddr,
    io: I,
    version: Version,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // A cleartext connection to a shared port counts in ActiveConnectionCount of the load balancer its first
    // request names (only the Host header says which it is).
    let front_open = matches!(socket, Socket::Front(_)).then(|| Arc::new(OnceLock::new()));
    let service = hyper::service::service_fn(move |req| {
        let plane = plane.clone();
        let socket = socket.clone();
        let front_open = front_open.clone();
        async move {
            Ok::<_, Infallible>(handle(&plane, &socket, front_open.as_deref(), peer, req).await)
        }
    });
    let io = TokioIo::new(io);
    // One builder per version, chosen above, rather than hyper-util's auto-detecting one: that one cost about a
    // tenth more CPU per HTTP/1.1 request in bench/lb.py.
    let _ = match version {
        Version::Http1 => {
            hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(io, service)
                .with_upgrades()
                .await
        }
        Version::Http2 => {
            hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(io, service)
                .await
        }
    };
}

/// Counts a client connection in its load balancer's ActiveConnectionCount until dropped.
struct ConnectionOpen(Arc<super::metrics::Counters>);

impl ConnectionOpen {
    fn new(c: Arc<super::metrics::Counters>) -> ConnectionOpen {
        c.active_connections.fetch_add(1, Ordering::Relaxed);
        ConnectionOpen(c)
    }
}

impl Drop for ConnectionOpen {
    fn drop(&mut self) {
        self.0.active_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// ALB's own answer: the status and its plain HTML page.
fn elb_answer(status: StatusCode) -> Response<Body> {
    let text = match status.as_u16() {
        502 => "502 Bad Gateway",
        503 => "503 Service Temporarily Unavailable",
        504 => "504 Gateway Time-out",
        404 => "404 Not Found",
        _ => "500 Internal Server Error",
    };
    let body = format!(
        "<html>\r\n<head><title>{text}</title></head>\r\n<body>\r\n<center><h1>{text}</h1></center>\r\n</body>\r\n</html>\r\n"
    );
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("text/html"));
    r.headers_mut()
        .insert("server", HeaderValue::from_static("awselb/2.0"));
    r
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed()
}

/// The actions of the first rule that matches the request.
fn matching_actions<'r>(
    listener: &'r ListenerRoutes,
    req: &Request<Incoming>,
    peer: SocketAddr,
) -> Option<&'r [Action]> {
    let (first_conditions, first_actions) = listener.rules.first()?;
    // Every rule but the default has a condition: a first rule without one is the default, alone.
    if first_conditions.is_empty() {
        return Some(first_actions.as_slice());
    }
    // Headers and query pairs are copied out only when a rule looks at them.
    let looks_at =
        |f: fn(&rules::Condition) -> bool| listener.rules.iter().any(|(c, _)| c.iter().any(f));
    let headers: Vec<(String, String)> =
        if looks_at(|c| matches!(c, rules::Condition::HttpHeader { .. })) {
            req.headers()
                .iter()
                .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
                .collect()
        } else {
            Vec::new()
        };
    let query = if looks_at(|c| matches!(c, rules::Condition::QueryString(_))) {
        rules::parse_query(req.uri().query().unwrap_or(""))
    } else {
        Vec::new()
    };
    let host = request_host(req);
    let facts = RequestFacts {
        method: req.method().as_str(),
        host,
        path: req.uri().path(),
        query: &query,
        headers: &headers,
        source_ip: peer.ip(),
    };
    listener
        .rules
        .iter()
        .find(|(conditions, _)| rules::rule_matches(conditions, &facts))
        .map(|(_, actions)| actions.as_slice())
}

/// The host a request names: its Host header, or the authority of its URI (HTTP/2's `:authority`).
fn request_host(req: &Request<Incoming>) -> Option<&str> {
    req.headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
}

/// The listener a request on `socket` is for.
fn listener_of<'r>(
    routes: &'r Routes,
    socket: &Socket,
    req: &Request<Incoming>,
) -> Option<&'r ListenerRoutes> {
    match socket {
        Socket::Listener(arn) => routes.listeners.get(&**arn),
        Socket::Front(port) => {
            let host = request_host(req)?;
            let name = rules::host_without_port(host).to_ascii_lowercase();
            routes.listeners.get(routes.by_host.get(&(name, *port))?)
        }
    }
}

/// Marks an answer that came from a target (the others are the load balancer's own), for the metrics.
#[derive(Clone)]
struct FromTarget {
    group: String,
    /// Until the target's answer headers came: TargetResponseTime.
    seconds: f64,
}

async fn handle(
    plane: &DataPlane,
    socket: &Socket,
    front_open: Option<&OnceLock<ConnectionOpen>>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    let routes = plane.routes();
    let Some(listener) = listener_of(&routes, socket, &req) else {
        // No load balancer of that name listens on this port.
        return elb_answer(StatusCode::SERVICE_UNAVAILABLE);
    };
    let lb = plane.metrics.load_balancer(&listener.load_balancer);
    if let Some(open) = front_open {
        open.get_or_init(|| ConnectionOpen::new(lb.clone()));
    }
    lb.requests.fetch_add(1, Ordering::Relaxed);
    let resp = route(plane, &routes, listener, peer, req).await;
    let status = resp.status().as_u16();
    match resp.extensions().get::<FromTarget>() {
        Some(t) => {
            lb.target_answer(status, t.seconds);
            let tg = plane.metrics.target_group(&t.group);
            tg.requests.fetch_add(1, Ordering::Relaxed);
            tg.target_answer(status, t.seconds);
        }
        None => lb.elb_answer(status),
    }
    resp
}

/// The answer to a request on one of the listener's rules.
async fn route(
    plane: &DataPlane,
    routes: &Routes,
    listener: &ListenerRoutes,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    let Some(actions) = matching_actions(listener, &req, peer) else {
        return elb_answer(StatusCode::NOT_FOUND);
    };
    let Some(action) = actions.last() else {
        return elb_answer(StatusCode::INTERNAL_SERVER_ERROR);
    };
    match action.kind.as_str() {
        "fixed-response" => fixed_response(action),
        "redirect" => redirect(action, listener, &req),
        _ => forward(plane, routes, listener, action, peer, req).await,
    }
}

fn fixed_response(action: &Action) -> Response<Body> {
    let Some(c) = &action.fixed_response_config else {
        return elb_answer(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let status = c
        .status_code
        .parse::<u16>()
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok());
    let mut r = Response::new(full(c.message_body.clone().unwrap_or_default()));
    *r.status_mut() = status.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let ct = c.content_type.as_deref().unwrap_or("text/plain");
    if let Ok(v) = HeaderValue::from_str(ct) {
        r.headers_mut().insert("content-type", v);
    }
    r.headers_mut()
        .insert("server", HeaderValue::from_static("awselb/2.0"));
    r
}

fn redirect(action: &Action, listener: &ListenerRoutes, req: &Request<Incoming>) -> Response<Body> {
    let Some(c) = &action.redirect_config else {
        return elb_answer(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let host = request_host(req).unwrap_or("");
    let facts = rules::RedirectFacts {
        protocol: listener.protocol.clone(),
        host: rules::host_without_port(host).to_string(),
        port: listener.port,
        path: req.uri().path().to_string(),
        query: req.uri().query().unwrap_or("").to_string(),
    };
    let location = rules::redirect_location(&crate::api::redirect_of(c), &facts);
    let status = if c.status_code == "HTTP_301" {
        StatusCode::MOVED_PERMANENTLY
    } else {
        StatusCode::FOUND
    };
    let mut r = elb_answer(status);
    *r.body_mut() = full(Bytes::new());
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

/// Headers a proxy must not pass on (RFC 9110 7.6.1), besides those `Connection` names.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn trace_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let random: u128 = rand::random();
    format!("Root=1-{secs:08x}-{:024x}", random & ((1u128 << 96) - 1))
}

async fn forward(
    plane: &DataPlane,
    routes: &Routes,
    listener: &ListenerRoutes,
    action: &Action,
    peer: SocketAddr,
    mut req: Request<Incoming>,
) -> Response<Body> {
    let ask = sticky::Ask {
        headers: req.headers(),
        https: listener.protocol == "HTTPS",
        now: epoch_seconds(),
    };
    let Some(choice) = sticky::choose(&plane.sealer, routes, action, &ask) else {
        return elb_answer(StatusCode::SERVICE_UNAVAILABLE);
    };
    let target = choice.target;
    let upgrade = if upgrade::is_upgrade(req.headers()) {
        req.headers().get(UPGRADE).cloned()
    } else {
        None
    };

    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    // The pooled client wants an absolute URI; an upgrade's own connection sends the origin form as it is.
    let uri = if upgrade.is_some() {
        path.parse()
    } else {
        format!("{}://{}{path}", choice.group.scheme, target.addr).parse()
    };
    let Ok(uri) = uri else {
        return elb_answer(StatusCode::BAD_REQUEST);
    };
    // An HTTP/2 request names its host in the URI only; the target hears HTTP/1.1, which needs the header.
    if !req.headers().contains_key(HOST) {
        if let Some(v) = req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            req.headers_mut().insert(HOST, v);
        }
    }
    *req.uri_mut() = uri;
    *req.version_mut() = hyper::Version::HTTP_11;
    let h = req.headers_mut();
    remove_hop_by_hop(h);
    if let Some(u) = upgrade.clone() {
        upgrade::keep_upgrade_headers(h, u);
    }
    let client_ip = peer.ip().to_string();
    let xff = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prior) => format!("{prior}, {client_ip}"),
        None => client_ip,
    };
    let set = |h: &mut hyper::HeaderMap, name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static(name), v);
        }
    };
    set(h, "x-forwarded-for", xff);
    set(
        h,
        "x-forwarded-proto",
        listener.protocol.to_ascii_lowercase(),
    );
    set(h, "x-forwarded-port", listener.port.to_string());
    if !h.contains_key("x-amzn-trace-id") {
        set(h, "x-amzn-trace-id", trace_id());
    }

    let addr = target.addr;
    let counted = target.begin();
    let mut resp = if upgrade.is_some() {
        match upgrade::forward(
            addr,
            listener.mark,
            choice.group.scheme,
            req,
            listener.idle_timeout,
            counted,
        )
        .await
        {
            Ok(resp) => {
                let switched = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
                let (mut parts, body) = resp.into_parts();
                for name in HOP_BY_HOP {
                    // A 101 keeps the headers that say what the connection switched to.
                    if !(switched && matches!(*name, "upgrade" | "connection")) {
                        parts.headers.remove(*name);
                    }
                }
                Response::from_parts(parts, body.boxed())
            }
            Err(upgrade::Failed::Target) => return elb_answer(StatusCode::BAD_GATEWAY),
            Err(upgrade::Failed::Timeout) => return elb_answer(StatusCode::GATEWAY_TIMEOUT),
        }
    } else {
        // A request without a body can go to another target when its connection was refused, or, for an
        // idempotent method, failed before any answer came (as nginx's proxy_next_upstream does): a task that has
        // just died costs no request. (Docker's port proxy accepts for a dead container, then closes or resets.)
        let idempotent = matches!(
            *req.method(),
            hyper::Method::GET | hyper::Method::HEAD | hyper::Method::OPTIONS
        );
        let again = bodyless(req.headers()).then(|| (req.method().clone(), req.headers().clone()));
        let mut counted = counted;
        let mut tried = vec![addr];
        let started = std::time::Instant::now();
        let mut result = tokio::time::timeout(
            listener.idle_timeout,
            listener.upstream.request(req.map(|b| b.boxed())),
        )
        .await;
        while let (Ok(Err(e)), Some((method, headers))) = (&result, &again) {
            if !(e.is_connect() || idempotent) {
                break;
            }
            let Some(next) = choice
                .group
                .targets
                .iter()
                .find(|t| !tried.contains(&t.addr))
            else {
                break;
            };
            let Ok(uri) =
                format!("{}://{}{path}", choice.group.scheme, next.addr).parse::<hyper::Uri>()
            else {
                break;
            };
            tracing::debug!(refused = %tried[tried.len() - 1], error = %e, "target failed before answering; trying another");
            tried.push(next.addr);
            counted = next.begin();
            let mut retry = Request::new(Empty::new().map_err(|never| match never {}).boxed());
            *retry.method_mut() = method.clone();
            *retry.uri_mut() = uri;
            *retry.headers_mut() = headers.clone();
            result =
                tokio::time::timeout(listener.idle_timeout, listener.upstream.request(retry)).await;
        }
        match result {
            Ok(Ok(resp)) => {
                let (mut parts, body) = resp.into_parts();
                for name in HOP_BY_HOP {
                    parts.headers.remove(*name);
                }
                parts.extensions.insert(FromTarget {
                    group: choice.group.arn.clone(),
                    seconds: started.elapsed().as_secs_f64(),
                });
                // The request stays counted until its answer's body is sent (or the client goes away).
                let body = body.map_frame(move |frame| {
                    let _counted = &counted;
                    frame
                });
                Response::from_parts(parts, body.boxed())
            }
            Ok(Err(e)) => {
                tracing::debug!(target = %tried[tried.len() - 1], group = %choice.group.arn, error = %e, "target failed");
                return elb_answer(StatusCode::BAD_GATEWAY);
            }
            Err(_) => return elb_answer(StatusCode::GATEWAY_TIMEOUT),
        }
    };
    for cookie in &choice.cookies {
        if let Ok(v) = HeaderValue::from_str(cookie) {
            resp.headers_mut().append(SET_COOKIE, v);
        }
    }
    resp
}

/// Whether a request carries no body (so it can be sent again as it is).
fn bodyless(h: &hyper::HeaderMap) -> bool {
    !h.contains_key(hyper::header::TRANSFER_ENCODING)
        && h.get(hyper::header::CONTENT_LENGTH)
            .is_none_or(|v| v == "0")
}

/// Removes the hop-by-hop headers and those `Connection` names.
fn remove_hop_by_hop(h: &mut hyper::HeaderMap) {
    // The headers `Connection` names are hop-by-hop too (looked at only when there is one).
    if h.contains_key(hyper::header::CONNECTION) {
        let named: Vec<String> = h
            .get_all(hyper::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
            .collect();
        for name in named {
            h.remove(name.as_str());
        }
    }
    for name in HOP_BY_HOP {
        h.remove(*name);
    }
}

fn epoch_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
