//! HTTP/1.1 Upgrade pass-through (WebSockets and any other protocol): the request goes to the target on a
//! connection of its own with its `Upgrade` header; when the target answers 101 the client gets the 101, and once
//! both sides have switched the bytes are copied both ways, the connection counted in the target's in-flight work.
//! Any other answer is passed on as a plain response.

use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use super::routes::InFlight;
use super::splice::splice;
use super::target_tls::TargetConnector;

const CONNECT: Duration = Duration::from_secs(10);

/// Why no answer came from the target.
pub enum Failed {
    /// No connection, or no valid answer: 502.
    Target,
    /// No answer within the idle timeout: 504.
    Timeout,
}

/// Whether the request asks to switch protocols: `Connection: upgrade` and an `Upgrade` header.
pub fn is_upgrade(headers: &hyper::HeaderMap) -> bool {
    headers.contains_key(UPGRADE)
        && headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Puts back the upgrade headers the hop-by-hop cleaning removed.
pub fn keep_upgrade_headers(headers: &mut hyper::HeaderMap, upgrade: HeaderValue) {
    headers.insert(UPGRADE, upgrade);
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
}

/// Sends `req` (its URI in origin form) to `target` and, on a 101, splices the two connections in a task of
/// their own that holds `counted` until they close.
pub async fn forward(
    target: std::net::SocketAddr,
    mark: u32,
    scheme: &str,
    mut req: Request<Incoming>,
    idle: Duration,
    counted: InFlight,
) -> Result<Response<Incoming>, Failed> {
    let client_side = hyper::upgrade::on(&mut req);
    let uri: hyper::Uri = format!("{scheme}://{target}/")
        .parse()
        .map_err(|_| Failed::Target)?;
    let stream = match tokio::time::timeout(CONNECT, TargetConnector::new(mark).connect(uri)).await
    {
        Ok(Ok(s)) => s,
        Ok(Err(_)) => return Err(Failed::Target),
        Err(_) => return Err(Failed::Timeout),
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| Failed::Target)?;
    // The connection task lives until the answer's body is read or, upgraded, hands its socket over.
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let mut resp = match tokio::time::timeout(idle, sender.send_request(req)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::debug!(target = %target, error = %e, "target failed the upgrade request");
            return Err(Failed::Target);
        }
        Err(_) => return Err(Failed::Timeout),
    };
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(resp);
    }
    let target_side = hyper::upgrade::on(&mut resp);
    tokio::spawn(async move {
        let _counted = counted;
        // The client's side switches once hyper has written the 101; a client gone by then just ends it.
        let (client, upstream) = match tokio::join!(client_side, target_side) {
            (Ok(c), Ok(u)) => (c, u),
            (c, u) => {
                tracing::debug!(
                    target = %target,
                    client = c.is_ok(),
                    target_ok = u.is_ok(),
                    "upgrade did not complete"
                );
                return;
            }
        };
        if let Err(e) = splice(TokioIo::new(client), TokioIo::new(upstream), idle).await {
            tracing::debug!(target = %target, error = %e, "upgraded connection ended");
        }
    });
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_requests() {
        let mut h = hyper::HeaderMap::new();
        h.insert(UPGRADE, HeaderValue::from_static("websocket"));
        assert!(!is_upgrade(&h));
        h.insert(CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(is_upgrade(&h));
        h.remove(UPGRADE);
        assert!(!is_upgrade(&h));
        keep_upgrade_headers(&mut h, HeaderValue::from_static("websocket"));
        assert!(is_upgrade(&h));
    }
}
