//! `testapp health <url>`: a minimal HTTP GET for Docker HEALTHCHECK commands in a scratch image
//! (no curl there). It always connects to 127.0.0.1 (or a literal IP in the url), so it needs no
//! DNS, which a static binary in an empty image does not have.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

/// Accepts `http://host[:port]/path`, `host:port/path`, `:port/path` or `/path` (port 8080 or $PORT).
pub fn is_healthy(url: &str) -> bool {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().ok()),
        None => (authority, None),
    };
    let port: u16 = port
        .or_else(|| std::env::var("PORT").ok()?.parse().ok())
        .unwrap_or(if authority.is_empty() { 8080 } else { 80 });
    // Only literal IPs are honoured; names such as `localhost` mean 127.0.0.1.
    let ip: IpAddr = host.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]));

    match get_status(SocketAddr::new(ip, port), host, path) {
        Ok(200) => true,
        Ok(status) => {
            eprintln!("health: HTTP {status}");
            false
        }
        Err(e) => {
            eprintln!("health: {e}");
            false
        }
    }
}

fn get_status(addr: SocketAddr, host: &str, path: &str) -> std::io::Result<u16> {
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let host = if host.is_empty() { "127.0.0.1" } else { host };
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;

    // The status line is all we need: `HTTP/1.1 200 OK`.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while head.len() < 1024 && stream.read(&mut byte)? == 1 && byte[0] != b'\n' {
        head.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&head);
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("bad status line {line:?}"),
            )
        })
}
