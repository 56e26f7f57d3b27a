//! Small shapes used by several ECS resources.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Tag {
    pub key: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KeyValuePair {
    pub name: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Attribute {
    pub name: String,
    pub value: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
}

/// A resource of a container instance (CPU, MEMORY, PORTS, PORTS_UDP).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Resource {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub double_value: f64,
    pub long_value: i64,
    pub integer_value: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub string_set_value: Option<Vec<String>>,
}

impl Resource {
    pub fn integer(name: &str, value: i64) -> Resource {
        Resource {
            name: name.into(),
            kind: "INTEGER".into(),
            integer_value: value,
            ..Default::default()
        }
    }

    pub fn string_set(name: &str, values: Vec<String>) -> Resource {
        Resource {
            name: name.into(),
            kind: "STRINGSET".into(),
            string_set_value: Some(values),
            ..Default::default()
        }
    }
}

/// An entry of a Describe call's `failures`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Failure {
    pub arn: Option<String>,
    pub reason: Option<String>,
    pub detail: Option<String>,
}

impl Failure {
    pub fn new(arn: impl Into<String>, reason: impl Into<String>) -> Failure {
        Failure {
            arn: Some(arn.into()),
            reason: Some(reason.into()),
            detail: None,
        }
    }

    pub fn missing(arn: impl Into<String>) -> Failure {
        Failure::new(arn, "MISSING")
    }
}
