use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::query::form::parse_form;
use crate::{AwsError, Params};

fn params(pairs: &[(&str, &str)]) -> Params {
    Params::from_pairs(
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    )
}

fn decode<T: serde::de::DeserializeOwned>(pairs: &[(&str, &str)]) -> Result<T, AwsError> {
    params(pairs).decode()
}

fn message<T: serde::de::DeserializeOwned + std::fmt::Debug>(pairs: &[(&str, &str)]) -> String {
    let e = decode::<T>(pairs).unwrap_err();
    assert_eq!(e.code, "ValidationError");
    assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
    e.message
}

#[derive(Deserialize, Debug, PartialEq)]
#[serde(rename_all = "PascalCase")]
struct Tag {
    key: String,
    value: Option<String>,
}

#[derive(Deserialize, Debug, PartialEq)]
#[serde(rename_all = "PascalCase")]
struct Matcher {
    http_code: Option<String>,
}

#[derive(Deserialize, Debug, PartialEq)]
enum Protocol {
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "HTTPS")]
    Https,
}

#[derive(Deserialize, Debug, PartialEq)]
#[serde(rename_all = "PascalCase")]
struct Input {
    name: String,
    port: Option<i64>,
    enabled: Option<bool>,
    weight: Option<f64>,
    protocol: Option<Protocol>,
    subnets: Option<Vec<String>>,
    tags: Option<Vec<Tag>>,
    matcher: Option<Matcher>,
    #[serde(rename = "PrivateIPv4Address")]
    private_ipv4_address: Option<String>,
}

#[test]
fn decodes_scalars_lists_and_nested_structures() {
    let input: Input = decode(&[
        ("Name", "web"),
        ("Port", "8080"),
        ("Enabled", "true"),
        ("Weight", "0.5"),
        ("Protocol", "HTTPS"),
        ("Subnets.member.1", "subnet-a"),
        ("Subnets.member.2", "subnet-b"),
        ("Tags.member.1.Key", "env"),
        ("Tags.member.1.Value", "prod"),
        ("Tags.member.2.Key", "team"),
        ("Matcher.HttpCode", "200-299"),
        ("PrivateIPv4Address", "10.0.0.1"),
        ("SomethingAwsAddedLater", "ignored"),
        ("Other.member.1.Deep", "ignored"),
    ])
    .unwrap();
    assert_eq!(
        input,
        Input {
            name: "web".into(),
            port: Some(8080),
            enabled: Some(true),
            weight: Some(0.5),
            protocol: Some(Protocol::Https),
            subnets: Some(vec!["subnet-a".into(), "subnet-b".into()]),
            tags: Some(vec![
                Tag {
                    key: "env".into(),
                    value: Some("prod".into())
                },
                Tag {
                    key: "team".into(),
                    value: None
                },
            ]),
            matcher: Some(Matcher {
                http_code: Some("200-299".into())
            }),
            private_ipv4_address: Some("10.0.0.1".into()),
        }
    );
}

#[test]
fn absent_options_are_none() {
    let input: Input = decode(&[("Name", "web")]).unwrap();
    assert_eq!(
        (input.port, input.subnets, input.tags, input.matcher),
        (None, None, None, None)
    );
}

#[derive(Deserialize, Debug, PartialEq)]
#[serde(rename_all = "PascalCase")]
struct Lists {
    #[serde(default)]
    names: Vec<String>,
    subnets: Option<Vec<String>>,
}

#[test]
fn orders_members_by_number_with_gaps() {
    let lists: Lists = decode(&[
        ("Names.member.10", "ten"),
        ("Names.member.2", "two"),
        ("Names.member.1", "one"),
        ("Names.member.7", "seven"),
    ])
    .unwrap();
    assert_eq!(lists.names, vec!["one", "two", "seven", "ten"]);
}

#[test]
fn ignores_member_names_that_are_not_indexes_from_one() {
    let lists: Lists = decode(&[
        ("Names.member.0", "zero"),
        ("Names.member.x", "x"),
        ("Names.member.-1", "minus"),
        ("Names.member.1", "one"),
    ])
    .unwrap();
    assert_eq!(lists.names, vec!["one"]);
}

#[test]
fn an_empty_list_is_sent_as_an_empty_value() {
    // botocore's QuerySerializer sends `Subnets=` for `Subnets=[]`.
    let lists: Lists = decode(&[("Subnets", ""), ("Names", "")]).unwrap();
    assert_eq!(lists.subnets, Some(vec![]));
    assert_eq!(lists.names, Vec::<String>::new());
    let lists: Lists = decode(&[]).unwrap();
    assert_eq!(lists.subnets, None);
}

#[test]
fn decodes_flattened_and_custom_named_lists() {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        attribute_name: Vec<String>,
        groups: Vec<String>,
    }
    let input: In = decode(&[
        ("AttributeName.2", "b"),
        ("AttributeName.1", "a"),
        ("Groups.GroupName.1", "g1"),
    ])
    .unwrap();
    assert_eq!(input.attribute_name, vec!["a", "b"]);
    assert_eq!(input.groups, vec!["g1"]);
}

#[test]
fn decodes_nested_lists() {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Condition {
        field: String,
        values: Vec<String>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        conditions: Vec<Condition>,
        matrix: Vec<Vec<u32>>,
    }
    let input: In = decode(&[
        ("Conditions.member.1.Field", "path-pattern"),
        ("Conditions.member.1.Values.member.2", "/b"),
        ("Conditions.member.1.Values.member.1", "/a"),
        ("Conditions.member.2.Field", "host-header"),
        ("Conditions.member.2.Values", ""),
        ("Matrix.member.1.member.1", "1"),
        ("Matrix.member.1.member.2", "2"),
        ("Matrix.member.2.member.1", "3"),
    ])
    .unwrap();
    assert_eq!(input.conditions[0].field, "path-pattern");
    assert_eq!(input.conditions[0].values, vec!["/a", "/b"]);
    assert_eq!(input.conditions[1].field, "host-header");
    assert!(input.conditions[1].values.is_empty());
    assert_eq!(input.matrix, vec![vec![1, 2], vec![3]]);
}

#[test]
fn decodes_maps_in_both_forms() {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        attributes: HashMap<String, String>,
        attribute: BTreeMap<String, i32>,
    }
    let input: In = decode(&[
        ("Attributes.entry.1.key", "DelaySeconds"),
        ("Attributes.entry.1.value", "5"),
        ("Attributes.entry.2.key", "Policy"),
        ("Attributes.entry.2.value", "{}"),
        ("Attribute.1.Name", "a"),
        ("Attribute.1.Value", "1"),
        ("Attribute.2.Name", "b"),
        ("Attribute.2.Value", "2"),
    ])
    .unwrap();
    assert_eq!(input.attributes["DelaySeconds"], "5");
    assert_eq!(input.attributes["Policy"], "{}");
    assert_eq!(
        input.attribute,
        BTreeMap::from([("a".into(), 1), ("b".into(), 2)])
    );
}

#[test]
fn parses_numbers_and_booleans_as_botocore_writes_them() {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        a: f64,
        b: f64,
        c: f64,
        d: u16,
        e: i32,
        f: bool,
        g: bool,
    }
    let input: In = decode(&[
        ("A", "Infinity"),
        ("B", "-Infinity"),
        ("C", "1e-05"),
        ("D", "65535"),
        ("E", "-3"),
        ("F", "false"),
        ("G", "true"),
    ])
    .unwrap();
    assert!(input.a.is_infinite() && input.a > 0.0);
    assert!(input.b.is_infinite() && input.b < 0.0);
    assert_eq!(input.c, 1e-5);
    assert_eq!(
        (input.d, input.e, input.f, input.g),
        (65535, -3, false, true)
    );
}

#[test]
fn names_the_parameter_in_validation_errors() {
    assert_eq!(
        message::<Input>(&[("Name", "web"), ("Port", "abc")]),
        "1 validation error detected: Value 'abc' at 'port' failed to satisfy constraint: Member must be a number"
    );
    assert_eq!(
        message::<Input>(&[("Port", "80")]),
        "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null"
    );
    assert_eq!(
        message::<Input>(&[("Name", "web"), ("Tags.member.1.Key", "a"), ("Tags.member.3.Value", "v")]),
        "1 validation error detected: Value null at 'tags.2.member.key' failed to satisfy constraint: Member must not be null"
    );
    assert_eq!(
        message::<Input>(&[("Name", "web"), ("Enabled", "yes")]),
        "1 validation error detected: Value 'yes' at 'enabled' failed to satisfy constraint: Member must be a boolean"
    );
    assert_eq!(
        message::<Input>(&[("Name", "web"), ("Protocol", "FTP")]),
        "1 validation error detected: Value 'FTP' at 'protocol' failed to satisfy constraint: Member must satisfy enum value set: [HTTP, HTTPS]"
    );
    assert_eq!(
        message::<Input>(&[("Name", "web"), ("PrivateIPv4Address.x", "1")]),
        "1 validation error detected: Value null at 'privateIPv4Address' failed to satisfy constraint: Member must not be null"
    );
    #[derive(Deserialize, Debug)]
    #[serde(rename_all = "PascalCase")]
    #[allow(dead_code)]
    struct Ports {
        ports: Vec<u16>,
    }
    assert_eq!(
        message::<Ports>(&[("Ports.member.1", "80"), ("Ports.member.2", "70000")]),
        "1 validation error detected: Value '70000' at 'ports.2.member' failed to satisfy constraint: Member must be a number"
    );
}

#[test]
fn places_errors_raised_by_the_callers_own_deserialize() {
    fn even<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let n = u32::deserialize(d)?;
        if n % 2 == 0 {
            Ok(n)
        } else {
            Err(serde::de::Error::custom("Member must be even"))
        }
    }
    #[derive(Deserialize, Debug)]
    #[serde(rename_all = "PascalCase")]
    #[allow(dead_code)]
    struct In {
        #[serde(deserialize_with = "even")]
        count: u32,
    }
    assert_eq!(
        message::<In>(&[("Count", "3")]),
        "1 validation error detected: Value '3' at 'count' failed to satisfy constraint: Member must be even"
    );
}

#[test]
fn decodes_into_untyped_json() {
    let v: serde_json::Value = decode(&[("A", "1"), ("B.C", "x")]).unwrap();
    assert_eq!(v, serde_json::json!({"A": "1", "B": {"C": "x"}}));
}

#[test]
fn decodes_what_the_form_decoder_gives() {
    let pairs = parse_form(
        b"Action=CreateLoadBalancer&Version=2015-12-01&Name=my+lb%21&Tags.member.1.Key=a%2Bb&Tags.member.1.Value=x%20y",
    )
    .unwrap();
    let p = Params::from_pairs(pairs);
    assert_eq!(p.action(), Some("CreateLoadBalancer"));
    let input: Input = p.decode().unwrap();
    assert_eq!(input.name, "my lb!");
    assert_eq!(
        input.tags,
        Some(vec![Tag {
            key: "a+b".into(),
            value: Some("x y".into())
        }])
    );
}
