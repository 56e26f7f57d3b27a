use super::Req;
use crate::rules::{host_without_port, parse_query, percent_decode, Cidr};

#[test]
fn ports_are_stripped_from_host_headers() {
    assert_eq!(host_without_port("example.com"), "example.com");
    assert_eq!(host_without_port("example.com:8080"), "example.com");
    assert_eq!(host_without_port("[2001:db8::1]:443"), "[2001:db8::1]");
    assert_eq!(host_without_port("[2001:db8::1]"), "[2001:db8::1]");
    assert_eq!(host_without_port("example.com:"), "example.com");
    assert_eq!(host_without_port("odd:name"), "odd:name");
}

#[test]
fn queries_are_split_and_decoded() {
    assert_eq!(
        parse_query("a=1&b&=2&&c=x%20y&d=a+b&e=%zz&f=%41%42"),
        vec![
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), String::new()),
            (String::new(), "2".to_string()),
            ("c".to_string(), "x y".to_string()),
            ("d".to_string(), "a+b".to_string()),
            ("e".to_string(), "%zz".to_string()),
            ("f".to_string(), "AB".to_string()),
        ]
    );
    assert!(parse_query("").is_empty());
    assert_eq!(percent_decode("%"), "%");
    assert_eq!(percent_decode("a%4"), "a%4");
    assert_eq!(percent_decode("%ff"), "\u{fffd}");
    assert_eq!(percent_decode("caf%C3%A9"), "café");
}

#[test]
fn header_lookup_is_case_insensitive_and_keeps_order() {
    let req = Req::get("/")
        .header("Accept", "a")
        .header("X-Y", "1")
        .header("accept", "b");
    let facts = req.facts();
    assert_eq!(
        facts.header_values("ACCEPT").collect::<Vec<_>>(),
        vec!["a", "b"]
    );
    assert_eq!(facts.header_values("missing").count(), 0);
}

#[test]
fn cidrs_parse_and_contain() {
    let net: Cidr = "10.1.0.0/16".parse().expect("valid");
    assert_eq!(net.prefix(), 16);
    assert!(net.contains("10.1.255.255".parse().expect("ip")));
    assert!(!net.contains("10.2.0.0".parse().expect("ip")));
    // Host bits under the prefix are ignored.
    let loose: Cidr = "10.1.2.3/16".parse().expect("valid");
    assert!(loose.contains("10.1.9.9".parse().expect("ip")));
    assert!("10.0.0.0".parse::<Cidr>().is_err());
    assert!("10.0.0.0/8/8".parse::<Cidr>().is_err());
    assert!("::1/1000".parse::<Cidr>().is_err());
}
