//! A serde deserializer over the parameter tree. The target type drives it: where it asks for a list, the
//! numbered members below the node are the items; for a number or a boolean, the text is parsed; for a struct,
//! the children are its fields. Errors name the parameter as AWS does (`tags.1.member.key`).

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

use super::params::Node;
use super::validation::{DecodeError, Path};
use crate::AwsError;

pub(crate) fn decode<T: DeserializeOwned>(root: &Node) -> Result<T, AwsError> {
    T::deserialize(NodeDe {
        node: root,
        path: &Path::Root,
    })
    .map_err(|e| e.into_aws())
}

/// The node a missing entry value stands for: no value, no children.
static EMPTY: Node = Node {
    value: None,
    children: std::collections::BTreeMap::new(),
};

struct NodeDe<'n, 'p> {
    node: &'n Node,
    path: &'p Path<'p>,
}

impl<'n> NodeDe<'n, '_> {
    /// The text of a scalar; a node without one (only `X.Y=...` below it) is a missing value.
    fn text(&self) -> Result<&'n str, DecodeError> {
        self.node.value.as_deref().ok_or_else(DecodeError::missing)
    }

    fn parse<T: std::str::FromStr>(&self, constraint: &str) -> Result<T, DecodeError> {
        self.text()?
            .parse()
            .map_err(|_| DecodeError::invalid(constraint))
    }

    fn place<T>(&self, result: Result<T, DecodeError>) -> Result<T, DecodeError> {
        result.map_err(|e| e.at(self.path, self.node))
    }
}

const NUMBER: &str = "Member must be a number";

macro_rules! parse_as {
    ($($method:ident => $visit:ident: $ty:ty, $constraint:expr;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
                let value = self.parse::<$ty>($constraint);
                self.place(value.and_then(|v| visitor.$visit(v)))
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for NodeDe<'_, '_> {
    type Error = DecodeError;

    /// Without a type to go by (`serde_json::Value`, untagged enums): text for a leaf, a map otherwise.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        if self.node.children.is_empty() {
            let text = self.node.value.as_deref().unwrap_or("");
            self.place(visitor.visit_str(text))
        } else {
            self.deserialize_map(visitor)
        }
    }

    parse_as! {
        deserialize_i8 => visit_i8: i8, NUMBER;
        deserialize_i16 => visit_i16: i16, NUMBER;
        deserialize_i32 => visit_i32: i32, NUMBER;
        deserialize_i64 => visit_i64: i64, NUMBER;
        deserialize_i128 => visit_i128: i128, NUMBER;
        deserialize_u8 => visit_u8: u8, NUMBER;
        deserialize_u16 => visit_u16: u16, NUMBER;
        deserialize_u32 => visit_u32: u32, NUMBER;
        deserialize_u64 => visit_u64: u64, NUMBER;
        deserialize_u128 => visit_u128: u128, NUMBER;
        // Rust's float syntax takes botocore's `Infinity`, `-Infinity` and `NaN`.
        deserialize_f32 => visit_f32: f32, NUMBER;
        deserialize_f64 => visit_f64: f64, NUMBER;
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        // botocore sends `true`/`false`; other capitalisations are taken too.
        let value = self.text().and_then(|t| {
            if t.eq_ignore_ascii_case("true") {
                Ok(true)
            } else if t.eq_ignore_ascii_case("false") {
                Ok(false)
            } else {
                Err(DecodeError::invalid("Member must be a boolean"))
            }
        });
        self.place(value.and_then(|b| visitor.visit_bool(b)))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let value = self.text().and_then(|t| {
            let mut chars = t.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Ok(c),
                _ => Err(DecodeError::invalid("Member must have length equal to 1")),
            }
        });
        self.place(value.and_then(|c| visitor.visit_char(c)))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let value = self.text();
        self.place(value.and_then(|t| visitor.visit_str(t)))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    /// Blobs travel base64-encoded; the caller decodes the text.
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let value = self.text();
        self.place(value.and_then(|t| visitor.visit_bytes(t.as_bytes())))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_bytes(visitor)
    }

    /// A node is only visited when its name was sent, so an optional member seen here is present.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let items = list_items(self.node);
        let access = Items {
            items: items.into_iter(),
            position: 0,
            path: self.path,
        };
        self.place(visitor.visit_seq(access))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    /// A map is either entries (`X.entry.N.key`/`.value`, or flattened `X.N.Name`/`.Value`) or, failing that, the
    /// children by name (what `#[serde(flatten)]` asks for).
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let fields: Vec<(&str, &Node)> = match map_entries(self.node) {
            Some(entries) => entries,
            None => self
                .node
                .children
                .iter()
                .map(|(k, v)| (k.as_str(), v))
                .collect(),
        };
        let access = Fields {
            fields: fields.into_iter(),
            current: None,
            path: self.path,
        };
        self.place(visitor.visit_map(access))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let access = Fields {
            fields: self
                .node
                .children
                .iter()
                .map(|(k, v)| (k.as_str(), v))
                .collect::<Vec<_>>()
                .into_iter(),
            current: None,
            path: self.path,
        };
        self.place(visitor.visit_map(access))
    }

    /// Enumerations travel as their value's text.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let value = self.text();
        self.place(value.and_then(|t| {
            let text: de::value::StrDeserializer<'_, DecodeError> = t.into_deserializer();
            visitor.visit_enum(text)
        }))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }
}

/// A list index: ASCII digits only, from 1 (`X.member.0` or `X.member.a` are names AWS does not know, ignored).
fn index(name: &str) -> Option<u64> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok().filter(|n| *n >= 1)
}

fn numbered(node: &Node) -> Vec<(u64, &Node)> {
    node.children
        .iter()
        .filter_map(|(k, v)| Some((index(k)?, v)))
        .collect()
}

/// The items of a list node, ordered by their index: `X.member.N` (the usual form), `X.N` (flattened lists), or
/// `X.Name.N` (a list whose members have their own name, as RDS has). `X=` with no members is the empty list.
fn list_items(node: &Node) -> Vec<&Node> {
    let mut items = match node.children.get("member") {
        Some(member) => numbered(member),
        None => {
            let direct = numbered(node);
            match (direct.is_empty(), node.children.len()) {
                (true, 1) => node
                    .children
                    .values()
                    .next()
                    .map(numbered)
                    .unwrap_or_default(),
                _ => direct,
            }
        }
    };
    // Stable, so the same index sent twice ("1" and "01") keeps the tree's order.
    items.sort_by_key(|(i, _)| *i);
    items.into_iter().map(|(_, n)| n).collect()
}

const KEY_NAMES: [&str; 3] = ["key", "Key", "Name"];
const VALUE_NAMES: [&str; 2] = ["value", "Value"];

fn first_child<'n>(node: &'n Node, names: &[&str]) -> Option<&'n Node> {
    names.iter().find_map(|n| node.children.get(*n))
}

/// The entries of a map node, when it has the shape of one.
fn map_entries(node: &Node) -> Option<Vec<(&str, &Node)>> {
    let container = node.children.get("entry").unwrap_or(node);
    let mut entries = numbered(container);
    if entries.is_empty()
        || !entries
            .iter()
            .all(|(_, e)| first_child(e, &KEY_NAMES).is_some())
    {
        return None;
    }
    entries.sort_by_key(|(i, _)| *i);
    Some(
        entries
            .into_iter()
            .filter_map(|(_, e)| {
                let key = first_child(e, &KEY_NAMES)?.value.as_deref()?;
                Some((key, first_child(e, &VALUE_NAMES).unwrap_or(&EMPTY)))
            })
            .collect(),
    )
}

struct Items<'n, 'p> {
    items: std::vec::IntoIter<&'n Node>,
    position: usize,
    path: &'p Path<'p>,
}

impl<'de> SeqAccess<'de> for Items<'_, '_> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DecodeError> {
        let Some(node) = self.items.next() else {
            return Ok(None);
        };
        self.position += 1;
        let path = Path::Item(self.path, self.position);
        let de = NodeDe { node, path: &path };
        seed.deserialize(de)
            .map(Some)
            .map_err(|e| e.at(&path, node))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Fields<'n, 'p> {
    fields: std::vec::IntoIter<(&'n str, &'n Node)>,
    current: Option<(&'n str, &'n Node)>,
    path: &'p Path<'p>,
}

impl<'de> MapAccess<'de> for Fields<'_, '_> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        let Some((name, node)) = self.fields.next() else {
            return Ok(None);
        };
        self.current = Some((name, node));
        let key: de::value::StrDeserializer<'_, DecodeError> = name.into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DecodeError> {
        // serde asks for a value only after a key; without one, this is a bug in the caller's Deserialize.
        let (name, node) = self
            .current
            .take()
            .ok_or_else(|| DecodeError::invalid("a value was asked for before its name"))?;
        let path = Path::Field(self.path, name);
        let de = NodeDe { node, path: &path };
        seed.deserialize(de).map_err(|e| e.at(&path, node))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.fields.len())
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
