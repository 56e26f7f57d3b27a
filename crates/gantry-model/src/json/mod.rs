//! JSON encoding without nulls: AWS omits unset members rather than sending `null`, and botocore's shape checks
//! (and our store) are happier without them.
//!
//! [`to_value`] and [`to_vec`] drop nulls while serializing (see `SkipNulls`) instead of building a [`Value`] and
//! running [`strip_nulls`] over it; the result is the same as `serde_json::to_value` followed by [`strip_nulls`].

mod skip_nulls;

use serde::Serialize;
use serde_json::Value;

use skip_nulls::SkipNulls;

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
    t.serialize(SkipNulls(serde_json::value::Serializer))
        .unwrap_or(Value::Null)
}

/// Serializes to JSON bytes without nulls.
///
/// On failure this yields `null`, the encoding of [`to_value`]'s fallback.
pub fn to_vec<T: Serialize>(t: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::new(&mut out);
    match t.serialize(SkipNulls(&mut ser)) {
        Ok(()) => out,
        Err(_) => b"null".to_vec(),
    }
}

#[cfg(test)]
mod tests;
