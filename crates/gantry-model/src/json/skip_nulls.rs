//! `SkipNulls`: a serializer adapter that leaves out null members while serializing.

use std::fmt::{self, Display};

use serde::ser::{self, Impossible};
use serde::{Serialize, Serializer};
use serde_json::Value;

/// Would `v` come out of `serde_json::to_value` as [`Value::Null`]?
fn is_null<T: ?Sized + Serialize>(v: &T) -> bool {
    matches!(v.serialize(IsNull), Ok(true))
}

/// A [`Serializer`] wrapper that leaves out the members of objects (struct fields, map entries) whose value is
/// null, at every depth. Array items are kept, null or not, as [`strip_nulls`] does.
///
/// It also reproduces the few places where the [`Value`] representation differs from what `S` would write
/// directly: `f32` goes through `f64`, 128-bit integers must fit in 64 bits, and a newtype variant holding a null
/// becomes an empty object (its only member is null).
pub(super) struct SkipNulls<S>(pub(super) S);

/// Serializes the wrapped value through [`SkipNulls`].
pub(super) struct Wrap<'a, T: ?Sized>(&'a T);

impl<T: ?Sized + Serialize> Serialize for Wrap<'_, T> {
    #[inline]
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(SkipNulls(s))
    }
}

/// The compound states of [`SkipNulls`], other than maps.
pub(super) struct Compound<C>(C);

/// The map state of [`SkipNulls`]: a key given on its own waits here (as the string `serde_json::Value` would make
/// of it) until its value shows whether the entry is kept.
pub(super) struct MapCompound<M> {
    inner: M,
    key: Option<String>,
}

fn out_of_range<E: ser::Error>() -> E {
    E::custom("number out of range")
}

impl<S: Serializer> Serializer for SkipNulls<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Compound<S::SerializeSeq>;
    type SerializeTuple = Compound<S::SerializeTuple>;
    type SerializeTupleStruct = Compound<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Compound<S::SerializeTupleVariant>;
    type SerializeMap = MapCompound<S::SerializeMap>;
    type SerializeStruct = Compound<S::SerializeStruct>;
    type SerializeStructVariant = Compound<S::SerializeStructVariant>;

    fn serialize_bool(self, v: bool) -> Result<S::Ok, S::Error> {
        self.0.serialize_bool(v)
    }
    fn serialize_i8(self, v: i8) -> Result<S::Ok, S::Error> {
        self.0.serialize_i8(v)
    }
    fn serialize_i16(self, v: i16) -> Result<S::Ok, S::Error> {
        self.0.serialize_i16(v)
    }
    fn serialize_i32(self, v: i32) -> Result<S::Ok, S::Error> {
        self.0.serialize_i32(v)
    }
    fn serialize_i64(self, v: i64) -> Result<S::Ok, S::Error> {
        self.0.serialize_i64(v)
    }
    fn serialize_i128(self, v: i128) -> Result<S::Ok, S::Error> {
        if let Ok(v) = u64::try_from(v) {
            self.0.serialize_u64(v)
        } else if let Ok(v) = i64::try_from(v) {
            self.0.serialize_i64(v)
        } else {
            Err(out_of_range())
        }
    }
    fn serialize_u8(self, v: u8) -> Result<S::Ok, S::Error> {
        self.0.serialize_u8(v)
    }
    fn serialize_u16(self, v: u16) -> Result<S::Ok, S::Error> {
        self.0.serialize_u16(v)
    }
    fn serialize_u32(self, v: u32) -> Result<S::Ok, S::Error> {
        self.0.serialize_u32(v)
    }
    fn serialize_u64(self, v: u64) -> Result<S::Ok, S::Error> {
        self.0.serialize_u64(v)
    }
    fn serialize_u128(self, v: u128) -> Result<S::Ok, S::Error> {
        match u64::try_from(v) {
            Ok(v) => self.0.serialize_u64(v),
            Err(_) => Err(out_of_range()),
        }
    }
    fn serialize_f32(self, v: f32) -> Result<S::Ok, S::Error> {
        // `Value` keeps every float as `f64`, so `0.1f32` comes out as `0.10000000149011612`.
        self.0.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<S::Ok, S::Error> {
        self.0.serialize_f64(v)
    }
    fn serialize_char(self, v: char) -> Result<S::Ok, S::Error> {
        self.0.serialize_char(v)
    }
    fn serialize_str(self, v: &str) -> Result<S::Ok, S::Error> {
        self.0.serialize_str(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<S::Ok, S::Error> {
        self.0.serialize_bytes(v)
    }
    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_none()
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&Wrap(v))
    }
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit()
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit_struct(name)
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit_variant(name, index, variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        v: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &Wrap(v))
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<S::Ok, S::Error> {
        if is_null(v) {
            // `{"Variant": null}` loses its only member.
            return ser::SerializeMap::end(self.0.serialize_map(Some(0))?);
        }
        self.0
            .serialize_newtype_variant(name, index, variant, &Wrap(v))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len).map(Compound)
    }
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len).map(Compound)
    }
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len).map(Compound)
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0
            .serialize_tuple_variant(name, index, variant, len)
            .map(Compound)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.0
            .serialize_map(len)
            .map(|inner| MapCompound { inner, key: None })
    }
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        self.0.serialize_struct(name, len).map(Compound)
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0
            .serialize_struct_variant(name, index, variant, len)
            .map(Compound)
    }
    fn collect_str<T: ?Sized + Display>(self, v: &T) -> Result<S::Ok, S::Error> {
        self.0.collect_str(v)
    }
    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

impl<C: ser::SerializeSeq> ser::SerializeSeq for Compound<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), C::Error> {
        self.0.serialize_element(&Wrap(v))
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

impl<C: ser::SerializeTuple> ser::SerializeTuple for Compound<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), C::Error> {
        self.0.serialize_element(&Wrap(v))
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

impl<C: ser::SerializeTupleStruct> ser::SerializeTupleStruct for Compound<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), C::Error> {
        self.0.serialize_field(&Wrap(v))
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

impl<C: ser::SerializeTupleVariant> ser::SerializeTupleVariant for Compound<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), C::Error> {
        self.0.serialize_field(&Wrap(v))
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

impl<C: ser::SerializeStruct> ser::SerializeStruct for Compound<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), C::Error> {
        if is_null(v) {
            return Ok(());
        }
        self.0.serialize_field(key, &Wrap(v))
    }
    fn skip_field(&mut self, key: &'static str) -> Result<(), C::Error> {
        self.0.skip_field(key)
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

impl<C: ser::SerializeStructVariant> ser::SerializeStructVariant for Compound<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), C::Error> {
        if is_null(v) {
            return Ok(());
        }
        self.0.serialize_field(key, &Wrap(v))
    }
    fn skip_field(&mut self, key: &'static str) -> Result<(), C::Error> {
        self.0.skip_field(key)
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

impl<M: ser::SerializeMap> ser::SerializeMap for MapCompound<M> {
    type Ok = M::Ok;
    type Error = M::Error;

    fn serialize_entry<K: ?Sized + Serialize, V: ?Sized + Serialize>(
        &mut self,
        key: &K,
        v: &V,
    ) -> Result<(), M::Error> {
        if is_null(v) {
            return Ok(());
        }
        self.inner.serialize_entry(key, &Wrap(v))
    }

    // Keys and values given one at a time (rare: `serialize_entry` is what derives, maps and `Value` use). The key
    // has to wait for its value, so it is turned into the string `serde_json::Value` would make of it.
    fn serialize_key<K: ?Sized + Serialize>(&mut self, key: &K) -> Result<(), M::Error> {
        self.key = Some(key_string(key).map_err(ser::Error::custom)?);
        Ok(())
    }
    fn serialize_value<V: ?Sized + Serialize>(&mut self, v: &V) -> Result<(), M::Error> {
        let Some(key) = self.key.take() else {
            return Err(ser::Error::custom("map value without a key"));
        };
        if is_null(v) {
            return Ok(());
        }
        self.inner.serialize_entry(&key, &Wrap(v))
    }

    fn end(self) -> Result<M::Ok, M::Error> {
        self.inner.end()
    }
}

/// The object key `serde_json::Value` makes of `key` (a string, or an error if `key` can't be one).
fn key_string<K: ?Sized + Serialize>(key: &K) -> Result<String, serde_json::Error> {
    struct KeyOnly<'a, K: ?Sized>(&'a K);
    impl<K: ?Sized + Serialize> Serialize for KeyOnly<'_, K> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(1))?;
            ser::SerializeMap::serialize_entry(&mut map, self.0, &())?;
            ser::SerializeMap::end(map)
        }
    }
    match serde_json::to_value(KeyOnly(key))? {
        Value::Object(map) => map
            .into_iter()
            .next()
            .map(|(k, _)| k)
            .ok_or_else(|| <serde_json::Error as ser::Error>::custom("map key vanished")),
        _ => Err(<serde_json::Error as ser::Error>::custom(
            "map key vanished",
        )),
    }
}

/// Answers [`is_null`] from the start of a value's serialization: `Ok(true)` for what becomes [`Value::Null`],
/// `Ok(false)` for other scalars, and [`NotNull`] (an error, to stop early) for anything compound.
pub(super) struct IsNull;

#[derive(Debug)]
pub(super) struct NotNull;

impl Display for NotNull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not null")
    }
}

impl std::error::Error for NotNull {}

impl ser::Error for NotNull {
    fn custom<T: Display>(_: T) -> Self {
        NotNull
    }
}

impl Serializer for IsNull {
    type Ok = bool;
    type Error = NotNull;
    type SerializeSeq = Impossible<bool, NotNull>;
    type SerializeTuple = Impossible<bool, NotNull>;
    type SerializeTupleStruct = Impossible<bool, NotNull>;
    type SerializeTupleVariant = Impossible<bool, NotNull>;
    type SerializeMap = Impossible<bool, NotNull>;
    type SerializeStruct = Impossible<bool, NotNull>;
    type SerializeStructVariant = Impossible<bool, NotNull>;

    fn serialize_bool(self, _: bool) -> Result<bool, NotNull> {
        Ok(false)
    }
    fn serialize_i8(self, _: i8) -> Result<bool, NotNull> {
        Ok(false)
    }
    fn serialize_i16(self, _: i16) -> Result<bool, NotNull> {
        Ok(false)
    }
    fn serialize_i32(self, _: i32) -> Result<bool, NotNull> {
        Ok(false)
    }
    fn serialize_i64(self, _: i64) -> Result<bool, NotNull> {
        Ok(false)
    }
    fn serialize_i128(self, _: i128) -> Result<bool, NotNull> {
        Ok(false)
    }
    fn serialize_u8(self, _: u8) -> Result<bool, NotNull> {
        Ok(false)
    }
    fn serialize_u16(self, _: u16) -> Result<bool, NotNull> {
        Ok(false)
    }
    fn serialize_u32(self, _: u32) -> Result<bool, NotNull> {
        Ok(false)
    }
    fn serialize_u64(self, _: u64) -> Result<bool, NotNull> {
        Ok(false)
    }
    fn serialize_u128(self, _: u128) -> Result<bool, NotNull> {
        Ok(false)
    }
    // `Value` has no NaN or infinity: they become null.
    fn serialize_f32(self, v: f32) -> Result<bool, NotNull> {
        Ok(!v.is_finite())
    }
    fn serialize_f64(self, v: f64) -> Result<bool, NotNull> {
        Ok(!v.is_finite())
    }
    fn serialize_char(self, _: char) -> Result<bool, NotNull> {
        Ok(false)
    }
    fn serialize_str(self, _: &str) -> Result<bool, NotNull> {
        Ok(false)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<bool, NotNull> {
        Ok(false)
    }
    fn serialize_none(self) -> Result<bool, NotNull> {
        Ok(true)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result<bool, NotNull> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<bool, NotNull> {
        Ok(true)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<bool, NotNull> {
        Ok(true)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<bool, NotNull> {
        Ok(false)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<bool, NotNull> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<bool, NotNull> {
        Ok(false)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotNull> {
        Err(NotNull)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotNull> {
        Err(NotNull)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotNull> {
        Err(NotNull)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotNull> {
        Err(NotNull)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotNull> {
        Err(NotNull)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, NotNull> {
        Err(NotNull)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotNull> {
        Err(NotNull)
    }
    fn collect_str<T: ?Sized + Display>(self, _: &T) -> Result<bool, NotNull> {
        Ok(false)
    }
    // Same answer as the serializers `is_null` stands in front of (`serde_json`'s).
    fn is_human_readable(&self) -> bool {
        true
    }
}
