//! Redirect actions: the `Location` a redirect produces from the request, and the checks on its configuration.

use serde::{Deserialize, Serialize};

use super::error::RuleError;
use super::request::host_without_port;

pub const PROTOCOL_KEYWORD: &str = "#{protocol}";
pub const HOST_KEYWORD: &str = "#{host}";
pub const PORT_KEYWORD: &str = "#{port}";
pub const PATH_KEYWORD: &str = "#{path}";
pub const QUERY_KEYWORD: &str = "#{query}";

/// What an unset component means: keep the original ("Any components that you do not modify retain their
/// original values").
pub const DEFAULT_PATH: &str = "/#{path}";

/// RedirectActionConfig length constraints.
pub const MAX_REDIRECT_HOST_LENGTH: usize = 128;
pub const MAX_REDIRECT_PATH_LENGTH: usize = 128;
pub const MAX_REDIRECT_QUERY_LENGTH: usize = 128;

/// The listener protocols an ALB redirect knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Http,
    Https,
}

impl Protocol {
    /// Parses the API spelling, case-insensitively.
    pub fn parse(s: &str) -> Option<Protocol> {
        if s.eq_ignore_ascii_case("HTTP") {
            Some(Protocol::Http)
        } else if s.eq_ignore_ascii_case("HTTPS") {
            Some(Protocol::Https)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "HTTP",
            Protocol::Https => "HTTPS",
        }
    }

    pub fn scheme(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Https => "https",
        }
    }

    /// The port a URL of this scheme leaves out.
    pub fn default_port(self) -> u16 {
        match self {
            Protocol::Http => 80,
            Protocol::Https => 443,
        }
    }
}

/// A redirect action's configuration, shaped like the wire's RedirectActionConfig; `None` keeps the original
/// component.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RedirectConfig {
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub query: Option<String>,
    /// `HTTP_301` or `HTTP_302`.
    pub status_code: String,
}

impl RedirectConfig {
    /// The HTTP status the redirect answers with (302 for anything but `HTTP_301`, which validation prevents).
    pub fn status(&self) -> u16 {
        if self.status_code == "HTTP_301" {
            301
        } else {
            302
        }
    }
}

/// The parts of the original request a redirect may reuse. Owned, because a redirect is built once per request
/// that takes it and the data plane has these as fresh strings anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectFacts {
    /// The listener's protocol, `HTTP` or `HTTPS` (any case; anything else is taken as HTTP).
    pub protocol: String,
    /// The Host header; a `:port` in it is dropped (the port comes from `port`).
    pub host: String,
    /// The listener port the request arrived on.
    pub port: u16,
    /// The original path with its leading `/`, as received.
    pub path: String,
    /// The original raw query string, without `?` (empty when there is none).
    pub query: String,
}

impl RedirectFacts {
    fn protocol(&self) -> Protocol {
        Protocol::parse(&self.protocol).unwrap_or(Protocol::Http)
    }
}

/// The `Location` of the redirect for this request.
pub fn redirect_location(config: &RedirectConfig, req: &RedirectFacts) -> String {
    let original = req.protocol();
    let protocol_template = config.protocol.as_deref().unwrap_or(PROTOCOL_KEYWORD);
    let protocol = if protocol_template == PROTOCOL_KEYWORD {
        original
    } else {
        Protocol::parse(protocol_template).unwrap_or(original)
    };
    let host = substitute(config.host.as_deref().unwrap_or(HOST_KEYWORD), req);
    let port = match config.port.as_deref() {
        None | Some(PORT_KEYWORD) => req.port,
        // Validation keeps non-numbers out; a stored bad value falls back to the original port.
        Some(port) => port.parse().unwrap_or(req.port),
    };
    let mut path = substitute(config.path.as_deref().unwrap_or(DEFAULT_PATH), req);
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    let query = substitute(config.query.as_deref().unwrap_or(QUERY_KEYWORD), req);

    let mut location = format!("{}://{}", protocol.scheme(), host);
    if port != protocol.default_port() {
        location.push(':');
        location.push_str(&port.to_string());
    }
    location.push_str(&path);
    // The `?` is added only for a non-empty query ("Do not include the leading "?", as it is automatically
    // added").
    if !query.is_empty() {
        location.push('?');
        location.push_str(&query);
    }
    location
}

/// Replaces the keywords in one pass, so text brought in from the request is never itself expanded; an unknown
/// `#{...}` stays as written.
fn substitute(template: &str, req: &RedirectFacts) -> String {
    let mut out = String::with_capacity(template.len() + req.path.len() + req.query.len());
    let mut rest = template;
    while let Some(start) = rest.find("#{") {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let replacement = KEYWORDS
            .iter()
            .find(|k| tail.starts_with(**k))
            .map(|k| (*k, expand(k, req)));
        match replacement {
            Some((keyword, value)) => {
                out.push_str(&value);
                rest = &tail[keyword.len()..];
            }
            None => {
                out.push_str("#{");
                rest = &tail[2..];
            }
        }
    }
    out.push_str(rest);
    out
}

const KEYWORDS: [&str; 5] = [
    PROTOCOL_KEYWORD,
    HOST_KEYWORD,
    PORT_KEYWORD,
    PATH_KEYWORD,
    QUERY_KEYWORD,
];

fn expand(keyword: &str, req: &RedirectFacts) -> String {
    match keyword {
        PROTOCOL_KEYWORD => req.protocol().as_str().to_string(),
        HOST_KEYWORD => host_without_port(&req.host).to_string(),
        PORT_KEYWORD => req.port.to_string(),
        // "#{path} (the leading "/" is removed)".
        PATH_KEYWORD => req.path.strip_prefix('/').unwrap_or(&req.path).to_string(),
        QUERY_KEYWORD => req.query.clone(),
        _ => keyword.to_string(),
    }
}

/// Checks a redirect configuration on its own (protocol, port, host, path, query, status, where each keyword may
/// appear, and the loop that keeping every component would make).
pub fn validate_redirect(config: &RedirectConfig) -> Result<(), RuleError> {
    if config.status_code != "HTTP_301" && config.status_code != "HTTP_302" {
        return Err(RuleError::InvalidRedirectStatusCode(
            config.status_code.clone(),
        ));
    }
    if let Some(protocol) = &config.protocol {
        // The model's pattern is `^(HTTPS?|#\{protocol\})$`: upper case only.
        if !matches!(protocol.as_str(), "HTTP" | "HTTPS" | PROTOCOL_KEYWORD) {
            return Err(RuleError::InvalidRedirectProtocol(protocol.clone()));
        }
    }
    if let Some(port) = &config.port {
        let numeric = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
        if port != PORT_KEYWORD && !numeric {
            return Err(RuleError::InvalidRedirectPort(port.clone()));
        }
    }
    if let Some(host) = &config.host {
        check_length("host", host, 1, MAX_REDIRECT_HOST_LENGTH)?;
        // "The hostname can contain #{host}."
        check_keywords("host", host, &[HOST_KEYWORD])?;
        // "alpha-numeric characters, wildcards (* and ?), and hyphens (-)", and the dots every host name has.
        let literal = strip_keywords(host);
        if !literal
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '*' | '?'))
        {
            return Err(RuleError::InvalidRedirectCharacters {
                component: "host",
                value: host.clone(),
            });
        }
    }
    if let Some(path) = &config.path {
        check_length("path", path, 1, MAX_REDIRECT_PATH_LENGTH)?;
        if !path.starts_with('/') {
            return Err(RuleError::RedirectPathNotAbsolute(path.clone()));
        }
        // "The path can contain #{host}, #{path}, and #{port}."
        check_keywords("path", path, &[HOST_KEYWORD, PATH_KEYWORD, PORT_KEYWORD])?;
        let literal = strip_keywords(path);
        let allowed = |c: char| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    '*' | '?'
                        | '&'
                        | '_'
                        | '-'
                        | '.'
                        | '$'
                        | '/'
                        | '~'
                        | '"'
                        | '\''
                        | '@'
                        | ':'
                        | '+'
                )
        };
        if !literal.chars().all(allowed) {
            return Err(RuleError::InvalidRedirectCharacters {
                component: "path",
                value: path.clone(),
            });
        }
    }
    if let Some(query) = &config.query {
        // Any keyword may appear in the query; only its length is constrained.
        check_length("query", query, 0, MAX_REDIRECT_QUERY_LENGTH)?;
    }
    // "You must modify at least one of the following components to avoid a redirect loop: protocol, hostname,
    // port, or path." The query does not count.
    let keeps =
        |value: &Option<String>, identity: &str| value.as_deref().is_none_or(|v| v == identity);
    if keeps(&config.protocol, PROTOCOL_KEYWORD)
        && keeps(&config.host, HOST_KEYWORD)
        && keeps(&config.port, PORT_KEYWORD)
        && keeps(&config.path, DEFAULT_PATH)
    {
        return Err(RuleError::RedirectLoop);
    }
    Ok(())
}

/// [`validate_redirect`], plus what depends on the listener the rule belongs to: no HTTPS to HTTP ("You can't
/// redirect HTTPS to HTTP"), and no loop made by naming the listener's own protocol and port literally.
pub fn validate_redirect_for_listener(
    config: &RedirectConfig,
    listener_protocol: Protocol,
    listener_port: u16,
) -> Result<(), RuleError> {
    validate_redirect(config)?;
    let target = match config.protocol.as_deref() {
        None | Some(PROTOCOL_KEYWORD) => listener_protocol,
        Some(p) => Protocol::parse(p).unwrap_or(listener_protocol),
    };
    if listener_protocol == Protocol::Https && target == Protocol::Http {
        return Err(RuleError::RedirectHttpsToHttp);
    }
    let port_kept = match config.port.as_deref() {
        None | Some(PORT_KEYWORD) => true,
        Some(p) => p.parse::<u16>().ok() == Some(listener_port),
    };
    let host_kept = config.host.as_deref().is_none_or(|h| h == HOST_KEYWORD);
    let path_kept = config.path.as_deref().is_none_or(|p| p == DEFAULT_PATH);
    if target == listener_protocol && port_kept && host_kept && path_kept {
        return Err(RuleError::RedirectLoop);
    }
    Ok(())
}

fn check_length(
    component: &'static str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<(), RuleError> {
    let len = value.chars().count();
    if len < min || len > max {
        return Err(RuleError::RedirectComponentLength {
            component,
            min,
            max,
        });
    }
    Ok(())
}

/// Refuses a keyword the component does not support (per the user guide: `#{protocol}` only in the protocol and
/// query, `#{query}` only in the query, and so on).
fn check_keywords(component: &'static str, value: &str, allowed: &[&str]) -> Result<(), RuleError> {
    match KEYWORDS
        .iter()
        .find(|k| value.contains(**k) && !allowed.contains(k))
    {
        Some(keyword) => Err(RuleError::KeywordNotAllowed { keyword, component }),
        None => Ok(()),
    }
}

fn strip_keywords(value: &str) -> String {
    KEYWORDS
        .iter()
        .fold(value.to_string(), |acc, k| acc.replace(k, ""))
}
