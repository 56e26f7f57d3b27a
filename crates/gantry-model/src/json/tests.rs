use std::collections::{BTreeMap, HashMap};

use serde::ser::{self, SerializeMap};
use serde::Serializer;
use serde_json::json;

use super::*;

#[test]
fn strips_nested_nulls() {
    let mut v = serde_json::json!({"a": null, "b": [{"c": null, "d": 1}], "e": {"f": null}});
    strip_nulls(&mut v);
    assert_eq!(v, serde_json::json!({"b": [{"d": 1}], "e": {}}));
}

/// What `to_value` did before: build the whole `Value`, then strip it.
fn old_value<T: Serialize>(t: &T) -> Value {
    let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
    strip_nulls(&mut v);
    v
}

fn old_vec<T: Serialize>(t: &T) -> Vec<u8> {
    serde_json::to_vec(&old_value(t)).unwrap_or_default()
}

/// `to_value` and `to_vec` agree with the old approach; returns the value.
#[track_caller]
fn same<T: Serialize>(t: &T) -> Value {
    let want = old_value(t);
    assert_eq!(to_value(t), want, "to_value");
    let bytes = to_vec(t);
    let parsed: Value = serde_json::from_slice(&bytes).expect("to_vec writes JSON");
    assert_eq!(parsed, want, "to_vec: {}", String::from_utf8_lossy(&bytes));
    let old: Value = serde_json::from_slice(&old_vec(t)).expect("old to_vec writes JSON");
    assert_eq!(parsed, old, "to_vec vs old to_vec");
    want
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Inner {
    name: Option<String>,
    max_count: Option<u32>,
    maybe_maybe: Option<Option<i64>>,
    tags: Vec<Option<String>>,
    ratio: Option<f32>,
    weight: f64,
}

#[derive(Serialize)]
struct Unit;

#[derive(Serialize)]
struct Newtype(Option<String>);

#[derive(Serialize)]
struct Pair(Option<u8>, Option<u8>);

#[derive(Serialize)]
struct Extra {
    extra_one: Option<String>,
    extra_two: Option<bool>,
}

#[derive(Serialize)]
enum Shape {
    Empty,
    Named(Option<String>),
    Nested(Option<Option<u8>>),
    Point(Option<i32>, Option<i32>),
    Boxed {
        width: Option<u32>,
        height: Option<u32>,
        inner: Option<Inner>,
    },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum Tagged {
    A { x: Option<u8>, y: u8 },
    B(Inner),
    C,
}

#[derive(Serialize)]
#[serde(tag = "t", content = "c")]
enum Adjacent {
    A(Option<u8>),
    B { z: Option<u8> },
    C,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Outer {
    id: u64,
    inner: Inner,
    maybe_inner: Option<Inner>,
    children: Vec<Inner>,
    optional_children: Vec<Option<Inner>>,
    unit: Unit,
    newtype_none: Newtype,
    newtype_some: Newtype,
    pair: Pair,
    shapes: Vec<Shape>,
    shape: Option<Shape>,
    hash: HashMap<String, Option<String>>,
    btree: BTreeMap<u32, Option<Inner>>,
    document: Value,
    documents: Vec<Value>,
    #[serde(flatten)]
    extra: Extra,
    #[serde(flatten)]
    rest: BTreeMap<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<u8>,
    nan: f64,
    small: f32,
    big: i128,
    unit_value: (),
    tuple: (Option<u8>, Unit, Option<Inner>),
}

fn inner(n: u32) -> Inner {
    Inner {
        name: n.is_multiple_of(2).then(|| format!("n{n}")),
        max_count: n.is_multiple_of(3).then_some(n),
        maybe_maybe: match n % 3 {
            0 => None,
            1 => Some(None),
            _ => Some(Some(-i64::from(n))),
        },
        tags: vec![None, Some("t".into()), None],
        ratio: (n % 2 == 1).then_some(0.1),
        weight: f64::from(n) / 3.0,
    }
}

fn outer() -> Outer {
    Outer {
        id: 7,
        inner: inner(1),
        maybe_inner: Some(Inner::default()),
        children: (0..4).map(inner).collect(),
        optional_children: vec![None, Some(inner(2)), None],
        unit: Unit,
        newtype_none: Newtype(None),
        newtype_some: Newtype(Some("x".into())),
        pair: Pair(None, Some(2)),
        shapes: vec![
            Shape::Empty,
            Shape::Named(None),
            Shape::Named(Some("n".into())),
            Shape::Nested(Some(None)),
            Shape::Point(None, Some(1)),
            Shape::Boxed {
                width: Some(2),
                height: None,
                inner: Some(inner(5)),
            },
            Shape::Boxed {
                width: None,
                height: None,
                inner: None,
            },
        ],
        shape: Some(Shape::Named(None)),
        hash: HashMap::from([
            ("a".to_string(), None),
            ("b".to_string(), Some("b".to_string())),
        ]),
        btree: BTreeMap::from([(1, None), (2, Some(inner(4)))]),
        document: json!({
            "a": null,
            "b": {"c": null, "d": [null, {"e": null, "f": 1}, [null]]},
            "g": {"h": {"i": null}},
        }),
        documents: vec![Value::Null, json!({"x": null}), json!([null, {"y": null}])],
        extra: Extra {
            extra_one: None,
            extra_two: Some(false),
        },
        rest: BTreeMap::from([
            ("restNull".to_string(), Value::Null),
            ("restObject".to_string(), json!({"deep": null, "kept": 0})),
        ]),
        skipped: None,
        nan: f64::NAN,
        small: 0.1,
        big: -12,
        unit_value: (),
        tuple: (None, Unit, Some(inner(6))),
    }
}

#[test]
fn matches_old_for_nested_structs() {
    let v = same(&outer());
    // Spot checks that stripping happened where expected.
    assert!(v.get("unit").is_none());
    assert!(v.get("nan").is_none());
    assert!(v.get("extraOne").is_none() && v.get("extra_one").is_none());
    assert_eq!(v["extra_two"], json!(false));
    assert!(v.get("restNull").is_none());
    assert_eq!(v["restObject"], json!({"kept": 0}));
    assert_eq!(
        v["document"],
        json!({"b": {"d": [null, {"f": 1}, [null]]}, "g": {"h": {}}})
    );
    assert_eq!(v["optionalChildren"][0], Value::Null);
    assert_eq!(v["inner"]["tags"], json!([null, "t", null]));
    assert_eq!(v["shapes"][1], json!({}));
    assert_eq!(v["tuple"][0], Value::Null);
    assert_eq!(v["tuple"][1], Value::Null);
}

#[test]
fn matches_old_for_each_kind() {
    same(&inner(0));
    same(&inner(1));
    same(&inner(2));
    same(&Inner::default());
    same(&Unit);
    same(&Newtype(None));
    same(&Newtype(Some("s".into())));
    same(&Pair(None, None));
    same(&None::<u8>);
    same(&Some(None::<u8>));
    same(&Some(Some(3u8)));
    same(&());
    same(&vec![None, Some(1), None]);
    same(&vec![Some(inner(3)), None]);
    same(&HashMap::from([("k".to_string(), None::<String>)]));
    same(&HashMap::from([("k".to_string(), Some(Some(1)))]));
    same(&BTreeMap::from([(1u8, None), (2, Some(Unit))]));
    same(&BTreeMap::from([
        ('c', Some(f64::INFINITY)),
        ('d', Some(1.5)),
    ]));
    same(&BTreeMap::from([(true, Some(1)), (false, None)]));
    same(&json!({"a": null, "b": [null, {"c": null}], "d": {"e": {"f": null, "g": "h"}}}));
    same(&json!([null, {"a": null}]));
    same(&json!(null));
    same(&json!("s"));
    for shape in [
        Shape::Empty,
        Shape::Named(None),
        Shape::Named(Some("n".into())),
        Shape::Nested(None),
        Shape::Nested(Some(None)),
        Shape::Nested(Some(Some(1))),
        Shape::Point(None, None),
        Shape::Boxed {
            width: None,
            height: Some(1),
            inner: Some(Inner::default()),
        },
    ] {
        same(&shape);
    }
    same(&Tagged::A { x: None, y: 1 });
    same(&Tagged::B(inner(2)));
    same(&Tagged::C);
    same(&Adjacent::A(None));
    same(&Adjacent::A(Some(1)));
    same(&Adjacent::B { z: None });
    same(&Adjacent::C);
    same(&(1.5f32, f32::NAN, 1e30f32));
    same(&[Some(f64::NAN), None, Some(2.0)]);
    same(&(u128::from(u64::MAX), i128::from(i64::MIN), 5u128));
    same(&b"bytes".as_slice());
}

#[test]
fn out_of_range_falls_back_like_before() {
    assert_eq!(to_value(&u128::MAX), Value::Null);
    assert_eq!(to_vec(&u128::MAX), old_vec(&u128::MAX));
    assert_eq!(to_value(&vec![i128::MIN]), Value::Null);
    assert_eq!(to_vec(&vec![i128::MIN]), b"null");
}

/// Calls `serialize_key` and `serialize_value` separately, as some hand-written impls do.
struct SplitMap(Vec<(u32, Option<&'static str>)>);

impl Serialize for SplitMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_key(k)?;
            map.serialize_value(v)?;
        }
        map.end()
    }
}

#[test]
fn matches_old_for_split_map_entries() {
    let v = same(&SplitMap(vec![(1, None), (2, Some("two")), (3, None)]));
    assert_eq!(v, json!({"2": "two"}));
    same(&vec![SplitMap(vec![]), SplitMap(vec![(4, Some("four"))])]);
}

struct Failing;

impl Serialize for Failing {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(ser::Error::custom("nope"))
    }
}

#[test]
fn failure_falls_back_like_before() {
    assert_eq!(to_value(&Failing), Value::Null);
    assert_eq!(to_vec(&Failing), old_vec(&Failing));
    assert_eq!(to_vec(&(1, Failing)), old_vec(&(1, Failing)));
    assert_eq!(to_vec(&Some(Failing)), b"null");
}

#[test]
fn to_vec_writes_compact_json_in_field_order() {
    #[derive(Serialize)]
    struct S {
        b: Option<u8>,
        a: u8,
        c: Option<Option<u8>>,
    }
    assert_eq!(
        to_vec(&S {
            b: None,
            a: 1,
            c: Some(None)
        }),
        br#"{"a":1}"#
    );
    assert_eq!(
        to_vec(&S {
            b: Some(2),
            a: 1,
            c: Some(Some(3))
        }),
        br#"{"b":2,"a":1,"c":3}"#
    );
}
