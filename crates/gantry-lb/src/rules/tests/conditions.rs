use super::{strings, Req};
use crate::rules::{condition_matches, rule_matches, Condition};

fn host(values: &[&str]) -> Condition {
    Condition::HostHeader(strings(values))
}

fn path(values: &[&str]) -> Condition {
    Condition::PathPattern(strings(values))
}

fn header(name: &str, values: &[&str]) -> Condition {
    Condition::HttpHeader {
        name: name.into(),
        values: strings(values),
    }
}

fn query(pairs: &[(Option<&str>, &str)]) -> Condition {
    Condition::QueryString(
        pairs
            .iter()
            .map(|(k, v)| (k.map(Into::into), v.to_string()))
            .collect(),
    )
}

#[test]
fn host_header_matches_case_insensitively_with_wildcards() {
    let req = Req::get("/").host(Some("Test.Example.COM"));
    assert!(condition_matches(
        &host(&["test.example.com"]),
        &req.facts()
    ));
    assert!(condition_matches(&host(&["*.example.com"]), &req.facts()));
    assert!(condition_matches(
        &host(&["t?st.example.com"]),
        &req.facts()
    ));
    assert!(!condition_matches(&host(&["example.com"]), &req.facts()));
    assert!(!condition_matches(&host(&["*.example.org"]), &req.facts()));
}

#[test]
fn host_header_ignores_the_port() {
    let req = Req::get("/").host(Some("api.example.com:8080"));
    assert!(condition_matches(&host(&["api.example.com"]), &req.facts()));
    // The port is not part of what the pattern sees, so a pattern cannot reach into it either.
    assert!(!condition_matches(
        &host(&["api.example.com*8080"]),
        &req.facts()
    ));
    let ipv6 = Req::get("/").host(Some("[2001:db8::1]:443"));
    assert!(!condition_matches(&host(&["*.example.com"]), &ipv6.facts()));
}

#[test]
fn host_header_needs_a_host() {
    let req = Req::get("/").host(None);
    assert!(!condition_matches(&host(&["*.example.com"]), &req.facts()));
}

#[test]
fn host_header_values_are_alternatives() {
    let req = Req::get("/").host(Some("b.example.com"));
    assert!(condition_matches(
        &host(&["a.example.com", "b.example.com"]),
        &req.facts()
    ));
    assert!(!condition_matches(
        &host(&["a.example.com", "c.example.com"]),
        &req.facts()
    ));
}

#[test]
fn path_pattern_is_case_sensitive_with_wildcards() {
    let req = Req::get("/img/Picture.jpg");
    assert!(condition_matches(&path(&["/img/*"]), &req.facts()));
    assert!(condition_matches(
        &path(&["/img/Picture.???"]),
        &req.facts()
    ));
    assert!(!condition_matches(&path(&["/IMG/*"]), &req.facts()));
    assert!(!condition_matches(
        &path(&["/img/picture.jpg"]),
        &req.facts()
    ));
    assert!(!condition_matches(&path(&["/img"]), &req.facts()));
}

#[test]
fn path_pattern_never_sees_the_query() {
    let req = Req::get("/search").query(&[("q", "cats")]);
    assert!(condition_matches(&path(&["/search"]), &req.facts()));
    assert!(!condition_matches(&path(&["/search?q=*"]), &req.facts()));
    assert!(!condition_matches(&path(&["*cats*"]), &req.facts()));
}

#[test]
fn http_header_name_and_values_are_case_insensitive() {
    let req = Req::get("/").header("user-agent", "Mozilla/5.0 (X11) Chrome/120.0 Safari/537.36");
    assert!(condition_matches(
        &header("User-Agent", &["*chrome*"]),
        &req.facts()
    ));
    assert!(condition_matches(
        &header("USER-AGENT", &["*Firefox*", "*SAFARI*"]),
        &req.facts()
    ));
    assert!(!condition_matches(
        &header("User-Agent", &["*Firefox*"]),
        &req.facts()
    ));
    assert!(
        !condition_matches(&header("User-Agent", &["chrome"]), &req.facts()),
        "the whole value must match"
    );
}

#[test]
fn http_header_missing_does_not_match_even_a_star() {
    let req = Req::get("/");
    assert!(!condition_matches(
        &header("X-Canary", &["*"]),
        &req.facts()
    ));
}

#[test]
fn http_header_repeated_headers_are_searched_in_order() {
    let req = Req::get("/")
        .header("X-Tenant", "alpha")
        .header("x-tenant", "beta");
    assert!(condition_matches(
        &header("X-Tenant", &["beta"]),
        &req.facts()
    ));
    assert!(condition_matches(
        &header("X-Tenant", &["alpha"]),
        &req.facts()
    ));
    assert!(!condition_matches(
        &header("X-Tenant", &["gamma"]),
        &req.facts()
    ));
}

#[test]
fn http_request_method_is_exact_and_case_sensitive() {
    let req = Req::get("/").method("POST");
    assert!(condition_matches(
        &Condition::HttpRequestMethod(strings(&["GET", "POST"])),
        &req.facts()
    ));
    assert!(!condition_matches(
        &Condition::HttpRequestMethod(strings(&["post"])),
        &req.facts()
    ));
    assert!(!condition_matches(
        &Condition::HttpRequestMethod(strings(&["PO*"])),
        &req.facts()
    ));
    let custom = Req::get("/").method("CUSTOM-METHOD");
    assert!(condition_matches(
        &Condition::HttpRequestMethod(strings(&["CUSTOM-METHOD"])),
        &custom.facts()
    ));
}

#[test]
fn query_string_key_and_value_are_case_insensitive_with_wildcards() {
    let req = Req::get("/").query(&[("Version", "V1"), ("lang", "en-GB")]);
    assert!(condition_matches(
        &query(&[(Some("version"), "v1")]),
        &req.facts()
    ));
    assert!(condition_matches(
        &query(&[(Some("lang"), "en-*")]),
        &req.facts()
    ));
    assert!(condition_matches(
        &query(&[(Some("l?ng"), "EN-gb")]),
        &req.facts()
    ));
    assert!(!condition_matches(
        &query(&[(Some("version"), "v2")]),
        &req.facts()
    ));
    // Key and value must come from the same pair.
    assert!(!condition_matches(
        &query(&[(Some("version"), "en-GB")]),
        &req.facts()
    ));
}

#[test]
fn query_string_without_key_matches_any_key() {
    let req = Req::get("/").query(&[("x", "an-example-value")]);
    assert!(condition_matches(
        &query(&[(None, "*example*")]),
        &req.facts()
    ));
    assert!(!condition_matches(
        &query(&[(None, "example")]),
        &req.facts()
    ));
    // The guide's example: version=v1 or any key set to *example*.
    let cond = query(&[(Some("version"), "v1"), (None, "*example*")]);
    assert!(condition_matches(
        &cond,
        &Req::get("/").query(&[("version", "v1")]).facts()
    ));
    assert!(condition_matches(
        &cond,
        &Req::get("/").query(&[("k", "EXAMPLE")]).facts()
    ));
    assert!(!condition_matches(
        &cond,
        &Req::get("/").query(&[("version", "v2")]).facts()
    ));
}

#[test]
fn query_string_escaped_wildcards_are_literals() {
    let star = Req::get("/").query(&[("q", "a*b")]);
    let other = Req::get("/").query(&[("q", "axb")]);
    assert!(condition_matches(
        &query(&[(Some("q"), r"a\*b")]),
        &star.facts()
    ));
    assert!(!condition_matches(
        &query(&[(Some("q"), r"a\*b")]),
        &other.facts()
    ));
}

#[test]
fn query_string_needs_a_query() {
    assert!(!condition_matches(
        &query(&[(None, "*")]),
        &Req::get("/").facts()
    ));
}

#[test]
fn source_ip_matches_ipv4_cidrs() {
    let cond = Condition::SourceIp(strings(&["192.0.2.0/24", "198.51.100.10/32"]));
    assert!(condition_matches(
        &cond,
        &Req::get("/").from("192.0.2.200").facts()
    ));
    assert!(condition_matches(
        &cond,
        &Req::get("/").from("198.51.100.10").facts()
    ));
    assert!(!condition_matches(
        &cond,
        &Req::get("/").from("198.51.100.11").facts()
    ));
    assert!(!condition_matches(
        &cond,
        &Req::get("/").from("192.0.3.1").facts()
    ));
}

#[test]
fn source_ip_matches_ipv6_cidrs() {
    let cond = Condition::SourceIp(strings(&["2001:db8:1234::/48"]));
    assert!(condition_matches(
        &cond,
        &Req::get("/").from("2001:db8:1234:ffff::1").facts()
    ));
    assert!(!condition_matches(
        &cond,
        &Req::get("/").from("2001:db8:1235::1").facts()
    ));
    // Families never mix.
    assert!(!condition_matches(
        &cond,
        &Req::get("/").from("192.0.2.1").facts()
    ));
    let host = Condition::SourceIp(strings(&["2001:db8::1/128"]));
    assert!(condition_matches(
        &host,
        &Req::get("/").from("2001:db8::1").facts()
    ));
    assert!(!condition_matches(
        &host,
        &Req::get("/").from("2001:db8::2").facts()
    ));
}

#[test]
fn source_ip_treats_ipv4_mapped_clients_as_ipv4() {
    let cond = Condition::SourceIp(strings(&["10.0.0.0/8"]));
    assert!(condition_matches(
        &cond,
        &Req::get("/").from("::ffff:10.1.2.3").facts()
    ));
}

#[test]
fn source_ip_zero_prefix_matches_its_whole_family() {
    let v4 = Condition::SourceIp(strings(&["0.0.0.0/0"]));
    assert!(condition_matches(
        &v4,
        &Req::get("/").from("203.0.113.9").facts()
    ));
    let v6 = Condition::SourceIp(strings(&["::/0"]));
    assert!(condition_matches(
        &v6,
        &Req::get("/").from("2001:db8::9").facts()
    ));
    assert!(!condition_matches(
        &v6,
        &Req::get("/").from("203.0.113.9").facts()
    ));
}

#[test]
fn rule_conditions_are_anded() {
    let conditions = vec![
        host(&["*.example.com"]),
        path(&["/api/*"]),
        Condition::HttpRequestMethod(strings(&["GET"])),
    ];
    assert!(rule_matches(&conditions, &Req::get("/api/users").facts()));
    assert!(!rule_matches(&conditions, &Req::get("/web").facts()));
    assert!(!rule_matches(
        &conditions,
        &Req::get("/api/users").method("PUT").facts()
    ));
    assert!(
        rule_matches(&[], &Req::get("/").facts()),
        "no conditions: the default rule"
    );
}

#[test]
fn two_header_conditions_require_both() {
    let conditions = vec![header("X-A", &["1"]), header("X-B", &["2"])];
    assert!(rule_matches(
        &conditions,
        &Req::get("/").header("X-A", "1").header("X-B", "2").facts()
    ));
    assert!(!rule_matches(
        &conditions,
        &Req::get("/").header("X-A", "1").facts()
    ));
}

#[test]
fn condition_serializes_with_field_names() {
    let json = serde_json::to_value(host(&["a.example.com"])).expect("serializable");
    assert_eq!(json, serde_json::json!({"host-header": ["a.example.com"]}));
    let back: Condition = serde_json::from_value(json).expect("deserializable");
    assert_eq!(back, host(&["a.example.com"]));
    assert_eq!(query(&[(None, "v")]).field(), "query-string");
}
