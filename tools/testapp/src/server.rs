//! A tiny HTTP/1.1 server: one thread per connection, one request per connection
//! (`Connection: close`), enough for load balancer, health check and port mapping tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

/// Routes a request to (status, body). `/exit/<code>` is handled by the caller, after the reply.
fn route(path: &str, headers: &[String]) -> (u16, String) {
    let (path, _query) = path.split_once('?').unwrap_or((path, ""));
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        [""] => (200, format!("hello from {}\n", hostname())),
        // What a proxy in front added or changed, one `name: value` line each as received.
        ["headers"] => (200, headers.iter().map(|h| format!("{h}\n")).collect()),
        ["hostname"] => (200, format!("{}\n", hostname())),
        ["env"] => {
            let mut vars: Vec<String> = std::env::vars()
                .map(|(k, v)| format!("{k}={v}\n"))
                .collect();
            vars.sort();
            (200, vars.concat())
        }
        ["health"] => {
            if std::path::Path::new("/tmp/unhealthy").exists() {
                (500, "unhealthy\n".to_string())
            } else {
                (200, "ok\n".to_string())
            }
        }
        // Flip the /health answer from outside without `docker exec`.
        ["unhealthy"] => match std::fs::write("/tmp/unhealthy", b"") {
            Ok(()) => (200, "now unhealthy\n".to_string()),
            Err(e) => (500, format!("cannot create /tmp/unhealthy: {e}\n")),
        },
        ["healthy"] => {
            let _ = std::fs::remove_file("/tmp/unhealthy");
            (200, "now healthy\n".to_string())
        }
        ["exit", code] => match code.parse::<i32>() {
            Ok(code) => (200, format!("exiting with {code}\n")),
            Err(_) => (400, "bad exit code\n".to_string()),
        },
        ["burn", ms] => match ms.parse::<u64>() {
            Ok(ms) => {
                crate::burn(ms);
                (200, format!("burned {ms} ms\n"))
            }
            Err(_) => (400, "bad ms\n".to_string()),
        },
        ["sleep", ms] => match ms.parse::<u64>() {
            Ok(ms) => {
                thread::sleep(Duration::from_millis(ms));
                (200, format!("slept {ms} ms\n"))
            }
            Err(_) => (400, "bad ms\n".to_string()),
        },
        _ => (404, "not found\n".to_string()),
    }
}

pub fn serve(port: u16) {
    let listener = TcpListener::bind(("0.0.0.0", port)).unwrap_or_else(|e| {
        eprintln!("testapp: cannot listen on port {port}: {e}");
        std::process::exit(1);
    });
    println!("listening on port {port}");
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                thread::spawn(move || handle(stream));
            }
            Err(e) => eprintln!("testapp: accept: {e}"),
        }
    }
}

fn handle(mut stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Some((method, path, headers)) = read_request(&stream) else {
        return;
    };

    // Any method is routed the same way (a load balancer test may send POST); HEAD gets no body.
    let (status, body) = route(&path, &headers);
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut reply = head.into_bytes();
    if method != "HEAD" {
        reply.extend_from_slice(body.as_bytes());
    }
    let _ = stream.write_all(&reply);
    let _ = stream.flush();
    println!("{peer} \"{method} {path}\" {status}");

    // /exit/<code> exits only after the reply has left, so the client sees it.
    if status == 200 {
        if let Some(code) = path
            .strip_prefix("/exit/")
            .and_then(|c| c.parse::<i32>().ok())
        {
            let _ = stream.shutdown(Shutdown::Both);
            println!("exiting with {code}");
            std::process::exit(code);
        }
    }
}

/// Reads the request line and headers; the body (if any) is read and dropped.
fn read_request(stream: &TcpStream) -> Option<(String, String, Vec<String>)> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();

    let mut content_length = 0u64;
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 || header.trim().is_empty() {
            break;
        }
        headers.push(header.trim_end().to_string());
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let _ = std::io::copy(&mut reader.take(content_length), &mut std::io::sink());
    Some((method, path, headers))
}

/// The kernel's hostname (in a container: the container's hostname), without libc.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_string())
}
