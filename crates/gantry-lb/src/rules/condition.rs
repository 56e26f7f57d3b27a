//! The six ALB condition types and how a request is tested against them.

use serde::{Deserialize, Serialize};

use super::cidr::Cidr;
use super::request::RequestFacts;
use super::wildcard::{wildcard_match, MatchMode};

/// One rule condition. A condition holds alternatives (any one value matching satisfies it); a rule's conditions
/// must all be satisfied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Condition {
    /// Host names, case-insensitive, with `*` and `?`; the port of the Host header is not compared.
    HostHeader(Vec<String>),
    /// Path patterns, case-sensitive, with `*` and `?`; compared with the path only, never the query.
    PathPattern(Vec<String>),
    /// A header name (case-insensitive, no wildcards) and value patterns (case-insensitive, `*` and `?`).
    HttpHeader { name: String, values: Vec<String> },
    /// Method names, exact and case-sensitive.
    HttpRequestMethod(Vec<String>),
    /// `(key, value)` patterns, case-insensitive with `*` and `?` (`\*`, `\?` for literals); without a key, the
    /// value may be that of any key.
    QueryString(Vec<(Option<String>, String)>),
    /// CIDR blocks, IPv4 or IPv6, as given.
    SourceIp(Vec<String>),
}

impl Condition {
    /// The ELBv2 `Field` name of the condition.
    pub fn field(&self) -> &'static str {
        match self {
            Condition::HostHeader(_) => "host-header",
            Condition::PathPattern(_) => "path-pattern",
            Condition::HttpHeader { .. } => "http-header",
            Condition::HttpRequestMethod(_) => "http-request-method",
            Condition::QueryString(_) => "query-string",
            Condition::SourceIp(_) => "source-ip",
        }
    }

    /// How many values (match evaluations) the condition holds; a query-string pair counts once.
    pub fn value_count(&self) -> usize {
        match self {
            Condition::HostHeader(v)
            | Condition::PathPattern(v)
            | Condition::HttpRequestMethod(v)
            | Condition::SourceIp(v)
            | Condition::HttpHeader { values: v, .. } => v.len(),
            Condition::QueryString(pairs) => pairs.len(),
        }
    }
}

/// Whether the request satisfies one condition: any of its values matching is enough.
pub fn condition_matches(condition: &Condition, req: &RequestFacts<'_>) -> bool {
    match condition {
        Condition::HostHeader(patterns) => match req.host_name() {
            Some(host) => patterns
                .iter()
                .any(|p| wildcard_match(p, host, MatchMode::CASE_INSENSITIVE)),
            None => false,
        },
        Condition::PathPattern(patterns) => patterns
            .iter()
            .any(|p| wildcard_match(p, req.path, MatchMode::CASE_SENSITIVE)),
        // "If the same header appears multiple times in the request, we search them in order until a match is
        // found."
        Condition::HttpHeader { name, values } => req.header_values(name).any(|actual| {
            values
                .iter()
                .any(|p| wildcard_match(p, actual, MatchMode::CASE_INSENSITIVE))
        }),
        Condition::HttpRequestMethod(methods) => methods.iter().any(|m| m == req.method),
        Condition::QueryString(pairs) => pairs.iter().any(|(key, value)| {
            req.query.iter().any(|(k, v)| {
                key.as_deref()
                    .is_none_or(|key| wildcard_match(key, k, MatchMode::QUERY))
                    && wildcard_match(value, v, MatchMode::QUERY)
            })
        }),
        // A value that does not parse matches nothing: validation refuses it on input, so this only guards
        // against stored data written by something else.
        Condition::SourceIp(cidrs) => cidrs
            .iter()
            .filter_map(|c| c.parse::<Cidr>().ok())
            .any(|c| c.contains(req.source_ip)),
    }
}

/// Whether the request satisfies every condition of a rule. A rule without conditions (only the default rule)
/// matches everything.
pub fn rule_matches(conditions: &[Condition], req: &RequestFacts<'_>) -> bool {
    conditions.iter().all(|c| condition_matches(c, req))
}

/// The rule a listener applies to the request: the matching rule of lowest priority, else the default rule
/// (`priority` gives `None`), which always matches and whose conditions are not looked at. Returns `None` only
/// when nothing matches and there is no default rule. Priorities are unique within a listener; on a tie the
/// earlier rule in the slice wins. The rules need not be sorted.
pub fn select_rule<'r, R>(
    rules: &'r [R],
    priority: impl Fn(&R) -> Option<u32>,
    conditions: impl Fn(&R) -> &[Condition],
    req: &RequestFacts<'_>,
) -> Option<&'r R> {
    let mut best: Option<(u32, &'r R)> = None;
    let mut default: Option<&'r R> = None;
    for rule in rules {
        match priority(rule) {
            // Only rules that would beat the current best are worth evaluating.
            Some(p) if best.is_none_or(|(best_p, _)| p < best_p) => {
                if rule_matches(conditions(rule), req) {
                    best = Some((p, rule));
                }
            }
            Some(_) => {}
            None => {
                default = default.or(Some(rule));
            }
        }
    }
    best.map(|(_, rule)| rule).or(default)
}
