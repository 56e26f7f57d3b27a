use super::strings;
use crate::rules::{validate_conditions, Condition, RuleError, MAX_VALUE_LENGTH};

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

fn method(values: &[&str]) -> Condition {
    Condition::HttpRequestMethod(strings(values))
}

fn query(pairs: &[(Option<&str>, &str)]) -> Condition {
    Condition::QueryString(
        pairs
            .iter()
            .map(|(k, v)| (k.map(Into::into), v.to_string()))
            .collect(),
    )
}

fn source(values: &[&str]) -> Condition {
    Condition::SourceIp(strings(values))
}

fn check(conditions: Vec<Condition>) -> Result<(), RuleError> {
    validate_conditions(&conditions)
}

#[test]
fn a_typical_rule_is_accepted() {
    assert_eq!(
        check(vec![
            host(&["*.example.com"]),
            path(&["/api/*"]),
            method(&["GET"]),
            source(&["10.0.0.0/8"]),
            header("X-Env", &["prod"]),
        ]),
        Ok(())
    );
}

#[test]
fn a_rule_needs_conditions_and_each_condition_values() {
    assert_eq!(check(vec![]), Err(RuleError::NoConditions));
    assert_eq!(
        check(vec![host(&[])]),
        Err(RuleError::EmptyCondition {
            field: "host-header"
        })
    );
    assert_eq!(
        check(vec![query(&[])]),
        Err(RuleError::EmptyCondition {
            field: "query-string"
        })
    );
    assert_eq!(
        check(vec![path(&[""])]),
        Err(RuleError::EmptyValue {
            field: "path-pattern"
        })
    );
    assert_eq!(
        check(vec![query(&[(Some(""), "v")])]),
        Err(RuleError::EmptyValue {
            field: "query-string"
        })
    );
}

#[test]
fn values_are_at_most_128_characters() {
    let ok = format!("/{}", "a".repeat(MAX_VALUE_LENGTH - 1));
    assert_eq!(check(vec![path(&[&ok])]), Ok(()));
    let long = format!("/{}", "a".repeat(MAX_VALUE_LENGTH));
    assert!(matches!(
        check(vec![path(&[&long])]),
        Err(RuleError::ValueTooLong { max: 128, .. })
    ));
    let long_host = format!("{}.example.com", "a".repeat(120));
    assert!(matches!(
        check(vec![host(&[&long_host])]),
        Err(RuleError::ValueTooLong { .. })
    ));
    let long_header = "v".repeat(129);
    assert!(matches!(
        check(vec![header("X-A", &[&long_header])]),
        Err(RuleError::ValueTooLong { .. })
    ));
}

#[test]
fn host_names_use_their_character_set() {
    assert_eq!(check(vec![host(&["my-app.example.com"])]), Ok(()));
    assert_eq!(check(vec![host(&["?.example.com"])]), Ok(()));
    for bad in [
        "my_app.example.com",
        "example.com:8080",
        "ex ample.com",
        "exämple.com",
        "example.com/",
    ] {
        assert!(
            matches!(
                check(vec![host(&[bad])]),
                Err(RuleError::InvalidCharacters {
                    field: "host-header",
                    ..
                })
            ),
            "{bad}"
        );
    }
}

#[test]
fn host_names_need_a_dot_and_a_letters_only_last_label() {
    for bad in [
        "localhost",
        "*",
        "10.0.0.1",
        "example.c0m",
        "example.*",
        "example.co?",
        "example.",
    ] {
        assert_eq!(
            check(vec![host(&[bad])]),
            Err(RuleError::InvalidHostName(bad.into())),
            "{bad}"
        );
    }
    assert_eq!(check(vec![host(&["*.*.example.com"])]), Ok(()));
}

#[test]
fn path_patterns_use_their_character_set() {
    assert_eq!(check(vec![path(&["/a_b-c.d$e/~\"'@:+&*?"])]), Ok(()));
    assert_eq!(check(vec![path(&["*"])]), Ok(()));
    for bad in ["/a b", "/a#b", "/a%20b", "/a?b=c", "/a\\b", "/é"] {
        // '?' alone is a wildcard, so only the '=' makes "/a?b=c" invalid.
        assert!(
            matches!(
                check(vec![path(&[bad])]),
                Err(RuleError::InvalidCharacters {
                    field: "path-pattern",
                    ..
                })
            ),
            "{bad}"
        );
    }
}

#[test]
fn http_header_names_are_tokens_of_at_most_40_and_not_host() {
    assert_eq!(check(vec![header("X-Custom_Header.1", &["v"])]), Ok(()));
    assert_eq!(check(vec![header(&"x".repeat(40), &["v"])]), Ok(()));
    for bad in ["", "X Custom", "X-Ä", "X:Y", "X-*"] {
        assert_eq!(
            check(vec![header(bad, &["v"])]),
            Err(RuleError::InvalidHeaderName(bad.into())),
            "{bad:?}"
        );
    }
    let long = "x".repeat(41);
    assert_eq!(
        check(vec![header(&long, &["v"])]),
        Err(RuleError::InvalidHeaderName(long))
    );
    assert_eq!(
        check(vec![header("Host", &["a"])]),
        Err(RuleError::HostHeaderInHttpHeader)
    );
    assert_eq!(
        check(vec![header("HOST", &["a"])]),
        Err(RuleError::HostHeaderInHttpHeader)
    );
}

#[test]
fn http_header_and_query_values_refuse_control_and_non_ascii_characters() {
    assert_eq!(
        check(vec![header("User-Agent", &["Mozilla/5.0 (X11; Linux) *"])]),
        Ok(())
    );
    assert!(matches!(
        check(vec![header("X-A", &["a\tb"])]),
        Err(RuleError::InvalidCharacters { .. })
    ));
    assert!(matches!(
        check(vec![header("X-A", &["café"])]),
        Err(RuleError::InvalidCharacters { .. })
    ));
    assert!(matches!(
        check(vec![query(&[(Some("k"), "a\u{7f}")])]),
        Err(RuleError::InvalidCharacters { .. })
    ));
}

#[test]
fn methods_are_upper_case_letters_hyphen_underscore_up_to_40() {
    assert_eq!(
        check(vec![method(&["GET", "CUSTOM-METHOD", "MY_VERB"])]),
        Ok(())
    );
    assert_eq!(check(vec![method(&[&"M".repeat(40)])]), Ok(()));
    for bad in ["get", "GE T", "G*", "PATCH2", ""] {
        assert_eq!(
            check(vec![method(&[bad])]),
            Err(RuleError::InvalidMethod(bad.into())),
            "{bad:?}"
        );
    }
    let long = "M".repeat(41);
    assert_eq!(
        check(vec![method(&[&long])]),
        Err(RuleError::InvalidMethod(long))
    );
}

#[test]
fn source_ips_must_be_cidr_blocks() {
    assert_eq!(
        check(vec![source(&["192.0.2.0/24", "2001:db8::/32"])]),
        Ok(())
    );
    assert_eq!(check(vec![source(&["198.51.100.10/32"])]), Ok(()));
    for bad in [
        "192.0.2.1",
        "192.0.2.0/33",
        "2001:db8::/129",
        "192.0.2.0/",
        "192.0.2.0/+8",
        "10.0.0.*/8",
        "x/8",
        "/8",
    ] {
        assert_eq!(
            check(vec![source(&[bad])]),
            Err(RuleError::InvalidCidr(bad.into())),
            "{bad}"
        );
    }
    assert_eq!(
        check(vec![source(&["255.255.255.255/32"])]),
        Err(RuleError::ReservedCidr)
    );
}

#[test]
fn single_use_conditions_cannot_repeat() {
    assert_eq!(
        check(vec![host(&["a.example.com"]), host(&["b.example.com"])]),
        Err(RuleError::DuplicateCondition("host-header"))
    );
    assert_eq!(
        check(vec![path(&["/a"]), path(&["/b"])]),
        Err(RuleError::DuplicateCondition("path-pattern"))
    );
    assert_eq!(
        check(vec![method(&["GET"]), method(&["PUT"])]),
        Err(RuleError::DuplicateCondition("http-request-method"))
    );
    assert_eq!(
        check(vec![source(&["10.0.0.0/8"]), source(&["::/0"])]),
        Err(RuleError::DuplicateCondition("source-ip"))
    );
}

#[test]
fn header_and_query_conditions_can_repeat() {
    assert_eq!(
        check(vec![
            header("X-A", &["1"]),
            header("X-A", &["2"]),
            query(&[(None, "x")]),
            query(&[(Some("k"), "y")])
        ]),
        Ok(())
    );
}

#[test]
fn a_condition_has_at_most_three_values_and_source_ip_five() {
    assert_eq!(check(vec![path(&["/a", "/b", "/c"])]), Ok(()));
    assert_eq!(
        check(vec![path(&["/a", "/b", "/c", "/d"])]),
        Err(RuleError::TooManyValuesInCondition {
            field: "path-pattern",
            max: 3
        })
    );
    assert_eq!(
        check(vec![query(&[
            (None, "a"),
            (None, "b"),
            (None, "c"),
            (None, "d")
        ])]),
        Err(RuleError::TooManyValuesInCondition {
            field: "query-string",
            max: 3
        })
    );
    let five = [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fd00::/8",
        "198.51.100.0/24",
    ];
    assert_eq!(check(vec![source(&five)]), Ok(()));
    let six = [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fd00::/8",
        "198.51.100.0/24",
        "203.0.113.0/24",
    ];
    assert_eq!(
        check(vec![source(&six)]),
        Err(RuleError::TooManyValuesInCondition {
            field: "source-ip",
            max: 5
        })
    );
}

#[test]
fn a_rule_has_at_most_five_values_in_all() {
    assert_eq!(
        check(vec![path(&["/a", "/b", "/c"]), method(&["GET", "HEAD"])]),
        Ok(())
    );
    assert_eq!(
        check(vec![
            path(&["/a", "/b", "/c"]),
            method(&["GET", "HEAD"]),
            header("X-A", &["1"])
        ]),
        Err(RuleError::TooManyConditionValues { max: 5 })
    );
    // Five single-value conditions are fine, a sixth is not.
    let five: Vec<Condition> = (0..5).map(|i| header(&format!("X-{i}"), &["v"])).collect();
    assert_eq!(check(five.clone()), Ok(()));
    let mut six = five;
    six.push(query(&[(None, "x")]));
    assert_eq!(
        check(six),
        Err(RuleError::TooManyConditionValues { max: 5 })
    );
}

#[test]
fn a_rule_has_at_most_five_wildcards() {
    assert_eq!(
        check(vec![
            host(&["*.example.com"]),
            path(&["/a/*/b/*"]),
            header("X-A", &["??"])
        ]),
        Ok(())
    );
    assert_eq!(
        check(vec![
            host(&["*.example.com"]),
            path(&["/a/*/b/*"]),
            header("X-A", &["???"])
        ]),
        Err(RuleError::TooManyConditionWildcards { max: 5 })
    );
    // Query keys count too; escaped characters do not.
    assert_eq!(
        check(vec![query(&[(Some("k**"), "**"), (None, "??")])]),
        Err(RuleError::TooManyConditionWildcards { max: 5 })
    );
    assert_eq!(
        check(vec![query(&[(Some(r"k\*"), r"\*\?\*\?"), (None, "*")])]),
        Ok(())
    );
}

#[test]
fn messages_read_like_elbv2() {
    assert_eq!(
        RuleError::TooManyConditionValues { max: 5 }.to_string(),
        "A rule can only have '5' condition values"
    );
    assert_eq!(
        RuleError::DuplicateCondition("host-header").to_string(),
        "A rule can only have one 'host-header' condition"
    );
    assert_eq!(
        RuleError::InvalidRedirectProtocol("ftp".into()).to_string(),
        "The redirect protocol 'ftp' must be one of 'HTTP', 'HTTPS' or '#{protocol}'"
    );
}
