//! JSON encoding without nulls: AWS omits unset members rather than sending `null`, and botocore's shape checks
//! (and our store) are happier without them.

use serde::Serialize;
use serde_json::Value;

/// Removes `null` members from objects, recursively.
pub fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Serializes to a JSON value without nulls.
pub fn to_value<T: Serialize>(t: &T) -> Value {
    let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
    strip_nulls(&mut v);
    v
}

/// Serializes to JSON bytes without nulls.
pub fn to_vec<T: Serialize>(t: &T) -> Vec<u8> {
    serde_json::to_vec(&to_value(t)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_nested_nulls() {
        let mut v = serde_json::json!({"a": null, "b": [{"c": null, "d": 1}], "e": {"f": null}});
        strip_nulls(&mut v);
        assert_eq!(v, serde_json::json!({"b": [{"d": 1}], "e": {}}));
    }
}
