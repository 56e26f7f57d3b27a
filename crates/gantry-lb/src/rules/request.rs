//! What the rules look at in a request, and the small parsers that turn a raw request into it.

use std::net::IpAddr;

/// The parts of one HTTP request that listener rules can test. Borrowed, so the data plane builds it per request
/// without copying the request.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The request method as sent (`GET`, `CUSTOM-METHOD`); compared case-sensitively.
    pub method: &'a str,
    /// The Host header (or HTTP/2 `:authority`), possibly with `:port`; `None` when the request has none.
    pub host: Option<&'a str>,
    /// The path, already normalized, without the query string.
    pub path: &'a str,
    /// The query string as decoded key/value pairs, in request order (see [`parse_query`]).
    pub query: &'a [(String, String)],
    /// The request headers in request order; a name may repeat.
    pub headers: &'a [(String, String)],
    /// The address of the peer that connected to the load balancer (not X-Forwarded-For).
    pub source_ip: IpAddr,
}

impl<'a> RequestFacts<'a> {
    /// The values of every header called `name` (case-insensitively), in request order.
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The host name without its port, which host conditions do not compare.
    pub fn host_name(&self) -> Option<&'a str> {
        self.host.map(host_without_port)
    }
}

/// Strips `:port` from a Host header value: `example.com:8080` → `example.com`, `[::1]:443` → `[::1]`.
pub fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        // An IPv6 literal keeps its brackets; the port, if any, follows the closing one.
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Splits a raw query string (without `?`) into decoded key/value pairs. `a=1&b&=2` gives `("a","1")`, `("b","")`,
/// `("","2")`. Percent escapes are decoded (the query-string condition compares decoded text: "any character can
/// be percentage encoded"); `+` stays a plus, since RFC 3986 gives it no meaning in a query.
pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

/// Decodes `%XX` escapes; a malformed escape is kept as written, and invalid UTF-8 becomes U+FFFD, so decoding
/// never fails on hostile input.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
