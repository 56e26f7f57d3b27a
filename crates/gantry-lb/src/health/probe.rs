//! One health check of one target: an HTTP GET of the health check path on a new connection (closed after, as
//! ALB does; in TLS for `HTTPS` checks, the target's certificate not validated), or a TCP connect.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::state::Probe;
use crate::dataplane::target_tls;
use crate::model::TargetGroup;

#[derive(Debug, Clone)]
pub struct Check {
    pub addr: SocketAddr,
    /// `None` for a TCP check.
    pub path: Option<String>,
    pub matcher: String,
    pub timeout: Duration,
    /// An `HTTPS` check: the GET goes in TLS.
    pub tls: bool,
    /// The packet mark of the load balancer the check is for.
    pub mark: u32,
}

impl Check {
    pub fn of(tg: &TargetGroup, target: SocketAddr, mark: u32) -> Check {
        let port = match tg.health_check_port.as_deref() {
            Some("traffic-port") | None => target.port(),
            Some(p) => p.parse().unwrap_or(target.port()),
        };
        let protocol = tg.health_check_protocol.as_deref();
        let http = matches!(protocol, Some("HTTP") | Some("HTTPS"));
        Check {
            addr: SocketAddr::new(target.ip(), port),
            path: http.then(|| tg.health_check_path.clone().unwrap_or_else(|| "/".into())),
            matcher: tg
                .matcher
                .as_ref()
                .and_then(|m| m.http_code.clone())
                .unwrap_or_else(|| "200".into()),
            timeout: Duration::from_secs(tg.health_check_timeout_seconds.max(1) as u64),
            tls: protocol == Some("HTTPS"),
            mark,
        }
    }

    pub async fn run(&self) -> Probe {
        match tokio::time::timeout(self.timeout, self.exchange()).await {
            Ok(p) => p,
            Err(_) => Probe::TimedOut,
        }
    }

    async fn exchange(&self) -> Probe {
        let Ok(stream) = crate::dataplane::mark::connect(self.addr, self.mark).await else {
            return Probe::Failed;
        };
        let Some(path) = &self.path else {
            return Probe::Passed;
        };
        if !self.tls {
            return self.get(stream, path).await;
        }
        match target_tls::handshake(stream, &self.addr.ip().to_string()).await {
            Ok(stream) => self.get(stream, path).await,
            Err(_) => Probe::Failed,
        }
    }

    async fn get(&self, mut stream: impl AsyncRead + AsyncWrite + Unpin, path: &str) -> Probe {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ELB-HealthChecker/2.0\r\nConnection: close\r\n\r\n",
            self.addr
        );
        if stream.write_all(request.as_bytes()).await.is_err() {
            return Probe::Failed;
        }
        // The status line is all a check reads.
        let mut buf = Vec::with_capacity(64);
        let mut chunk = [0u8; 256];
        while !buf.contains(&b'\n') && buf.len() < 4096 {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        match status_code(&buf) {
            Some(code) if code_matches(&self.matcher, code) => Probe::Passed,
            Some(code) => Probe::CodeMismatch(code),
            None => Probe::Failed,
        }
    }
}

/// The code of an HTTP/1.x status line.
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// Whether `code` is among a matcher's codes (`200`, `200,202`, `200-299`).
pub fn code_matches(matcher: &str, code: u16) -> bool {
    matcher.split(',').any(|part| match part.split_once('-') {
        Some((a, b)) => matches!((a.trim().parse::<u16>(), b.trim().parse::<u16>()), (Ok(a), Ok(b)) if (a..=b).contains(&code)),
        None => part.trim().parse::<u16>() == Ok(code),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn parses_and_matches() {
        assert_eq!(status_code(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(status_code(b"garbage\r\n"), None);
        assert!(code_matches("200-299", 204));
        assert!(code_matches("200,302", 302));
        assert!(!code_matches("200", 500));
    }

    #[tokio::test]
    async fn checks_a_real_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for code in ["200 OK", "500 Oops"] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(format!("HTTP/1.1 {code}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await;
            }
        });
        let check = Check {
            addr,
            path: Some("/health".into()),
            matcher: "200".into(),
            timeout: Duration::from_secs(2),
            tls: false,
            mark: 0,
        };
        assert_eq!(check.run().await, Probe::Passed);
        assert_eq!(check.run().await, Probe::CodeMismatch(500));
        // Nothing listens any more.
        assert_eq!(check.run().await, Probe::Failed);
    }

    /// A server that answers each connection in TLS (a self-signed certificate, as tasks have) with `code`.
    async fn tls_server(codes: &'static [&'static str]) -> SocketAddr {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["task.internal".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for code in codes {
                let (s, _) = listener.accept().await.unwrap();
                let Ok(mut s) = acceptor.accept(s).await else {
                    continue;
                };
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf).await;
                let head = format!("HTTP/1.1 {code}\r\nContent-Length: 0\r\n\r\n");
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.shutdown().await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn an_https_check_speaks_tls_and_accepts_a_self_signed_certificate() {
        let addr = tls_server(&["200 OK", "503 Busy", "200 OK"]).await;
        let mut check = Check {
            addr,
            path: Some("/health".into()),
            matcher: "200-299".into(),
            timeout: Duration::from_secs(2),
            tls: true,
            mark: 0,
        };
        assert_eq!(check.run().await, Probe::Passed);
        assert_eq!(check.run().await, Probe::CodeMismatch(503));
        // In clear, a TLS server gives no status line.
        check.tls = false;
        assert_eq!(check.run().await, Probe::Failed);
    }
}
