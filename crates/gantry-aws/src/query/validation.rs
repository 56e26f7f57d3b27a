//! The errors of parameter decoding, in AWS's words: `1 validation error detected: Value 'abc' at 'port' failed to
//! satisfy constraint: Member must be a number`, the member named by its camelCase path (`tags.1.member.key`).

use std::fmt::{self, Display};

use serde::de;

use super::params::Node;
use crate::AwsError;

/// Where a node is, rendered only when an error needs it.
#[derive(Clone, Copy)]
pub(crate) enum Path<'p> {
    Root,
    Field(&'p Path<'p>, &'p str),
    Item(&'p Path<'p>, usize),
}

impl Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Field(parent, name) => {
                if !matches!(parent, Path::Root) {
                    write!(f, "{parent}.")?;
                }
                // AWS names members in camelCase in its messages: `Port` is `port`.
                let mut chars = name.chars();
                if let Some(first) = chars.next() {
                    write!(f, "{}{}", first.to_lowercase(), chars.as_str())?;
                }
                Ok(())
            }
            // Coral's form: the 1-based position, then `member`.
            Path::Item(parent, position) => write!(f, "{parent}.{position}.member"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// A required member is absent; the path names it.
    Missing,
    /// Raised by serde's derived code for a field of the struct being decoded, before the path is known.
    MissingField(&'static str),
    Invalid {
        value: Option<String>,
        constraint: String,
    },
}

/// A decoding error; the path is attached on the way out, by the node where it happened.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DecodeError {
    kind: Kind,
    path: Option<String>,
}

impl DecodeError {
    pub(crate) fn missing() -> DecodeError {
        DecodeError {
            kind: Kind::Missing,
            path: None,
        }
    }

    pub(crate) fn invalid(constraint: impl Into<String>) -> DecodeError {
        DecodeError {
            kind: Kind::Invalid {
                value: None,
                constraint: constraint.into(),
            },
            path: None,
        }
    }

    /// Places an error raised while decoding `node` at `path`.
    pub(crate) fn at(mut self, path: &Path<'_>, node: &Node) -> DecodeError {
        if self.path.is_some() {
            return self;
        }
        match &mut self.kind {
            Kind::MissingField(field) => {
                let field: &str = field;
                self.path = Some(Path::Field(path, field).to_string());
                self.kind = Kind::Missing;
            }
            Kind::Invalid { value, .. } => {
                if value.is_none() {
                    value.clone_from(&node.value);
                }
                self.path = Some(path.to_string());
            }
            Kind::Missing => self.path = Some(path.to_string()),
        }
        self
    }

    fn message(&self) -> String {
        let path = self.path.as_deref().unwrap_or("");
        let (value, constraint) = match &self.kind {
            Kind::Missing | Kind::MissingField(_) => {
                ("null".to_string(), "Member must not be null")
            }
            Kind::Invalid { value, constraint } => (
                value
                    .as_ref()
                    .map_or("null".to_string(), |v| format!("'{v}'")),
                constraint.as_str(),
            ),
        };
        format!(
            "1 validation error detected: Value {value} at '{path}' failed to satisfy constraint: {constraint}"
        )
    }

    pub(crate) fn into_aws(self) -> AwsError {
        AwsError::client("ValidationError", self.message())
    }
}

impl Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for DecodeError {}

impl de::Error for DecodeError {
    fn custom<T: Display>(msg: T) -> DecodeError {
        DecodeError::invalid(msg.to_string())
    }

    fn missing_field(field: &'static str) -> DecodeError {
        DecodeError {
            kind: Kind::MissingField(field),
            path: None,
        }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> DecodeError {
        DecodeError {
            kind: Kind::Invalid {
                value: Some(variant.to_string()),
                constraint: format!(
                    "Member must satisfy enum value set: [{}]",
                    expected.join(", ")
                ),
            },
            path: None,
        }
    }
}
