//! The parameters of a Query request as a tree: `Tags.member.1.Key=k` is the path `Tags` / `member` / `1` / `Key`.
//! Decoding into typed inputs is in `decode.rs`.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

use crate::AwsError;

/// No AWS input nests this deep; a deeper name is ignored like any unknown parameter, so that a hostile name of
/// millions of dots cannot build a tree whose recursive drop would overflow the stack.
const MAX_DEPTH: usize = 32;

/// One name segment: its own value (`X=...`) and the parameters below it (`X.Y=...`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Node {
    pub(crate) value: Option<String>,
    pub(crate) children: BTreeMap<String, Node>,
}

impl Node {
    fn insert(&mut self, name: &str, value: String) {
        let mut node = self;
        for segment in name.split('.') {
            node = node.children.entry(segment.to_string()).or_default();
        }
        // A repeated name: the last one counts, as in a map.
        node.value = Some(value);
    }
}

/// The decoded parameters of a Query request, without `Action` and `Version` (see [`Params::action`] and
/// [`Params::version`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    pub(crate) root: Node,
    action: Option<String>,
    version: Option<String>,
}

impl Params {
    /// Builds params from (name, value) pairs as decoded from the form (for tests and internal callers).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Params {
        let mut params = Params::default();
        for (name, value) in pairs {
            match name.as_str() {
                "Action" => params.action = Some(value),
                "Version" => params.version = Some(value),
                "" => {}
                _ if name.split('.').count() > MAX_DEPTH => {}
                _ => params.root.insert(&name, value),
            }
        }
        params
    }

    /// The raw value of one top-level parameter, e.g. `get("Name")`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.root.children.get(name)?.value.as_deref()
    }

    /// The `Action` parameter.
    pub fn action(&self) -> Option<&str> {
        self.action.as_deref()
    }

    /// The `Version` parameter (the API version, e.g. `2015-12-01`).
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// Decodes the parameters into a serde type whose fields are named as the wire names (PascalCase): lists
    /// `X.member.N` (N from 1, ordered numerically, gaps allowed; `X=` is the empty list) become `Vec`s, `X.Y`
    /// nested structures, `X.entry.N.key`/`.value` maps; strings parse into numbers and booleans where the type
    /// asks for one. Unknown parameters are ignored. Errors are 400 `ValidationError` naming the parameter.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, AwsError> {
        super::decode::decode(&self.root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn separates_action_and_version() {
        let p = params(&[
            ("Action", "CreateLoadBalancer"),
            ("Version", "2015-12-01"),
            ("Name", "web"),
        ]);
        assert_eq!(p.action(), Some("CreateLoadBalancer"));
        assert_eq!(p.version(), Some("2015-12-01"));
        assert_eq!(p.get("Name"), Some("web"));
        assert_eq!(p.get("Action"), None);
        assert_eq!(p.root.children.len(), 1);
    }

    #[test]
    fn builds_a_tree_of_names() {
        let p = params(&[("Tags.member.1.Key", "k"), ("Tags.member.1.Value", "v")]);
        let member = &p.root.children["Tags"].children["member"].children["1"];
        assert_eq!(member.children["Key"].value.as_deref(), Some("k"));
        assert_eq!(member.children["Value"].value.as_deref(), Some("v"));
        assert_eq!(p.get("Tags"), None);
    }

    #[test]
    fn ignores_names_nested_beyond_any_aws_input() {
        let deep = vec!["a"; MAX_DEPTH + 1].join(".");
        let p = params(&[(deep.as_str(), "x"), ("", "y")]);
        assert!(p.root.children.is_empty());
        let deepest = vec!["a"; MAX_DEPTH].join(".");
        assert!(!params(&[(deepest.as_str(), "x")]).root.children.is_empty());
    }
}
