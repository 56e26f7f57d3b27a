//! The EC2 actions, one file per resource. Each handler takes its decoded input (EC2's wire names: `VpcId.N`,
//! `Filter.N.Name`, `TagSpecification.N.Tag.M.Key`) and answers the members of its response, with their
//! `locationName`s (`vpcSet`, `subnet`, `groupId`).

pub mod security_groups;
pub mod subnets;
pub mod tags;
pub mod vpcs;
pub mod zones;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::errors::{Result, VpcError};
use crate::filters::{self, Filter, Filterable};
use crate::model::Tag;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TagInput {
    #[serde(rename = "Key")]
    pub key: Option<String>,
    #[serde(rename = "Value")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TagSpecification {
    #[serde(rename = "ResourceType")]
    pub resource_type: Option<String>,
    #[serde(rename = "Tag", default)]
    pub tags: Vec<TagInput>,
}

/// The tags a create call's `TagSpecification`s give a resource of `resource_type`.
pub(crate) fn tags_for(specs: &[TagSpecification], resource_type: &str) -> Result<Vec<Tag>> {
    let mut out = Vec::new();
    for s in specs {
        match s.resource_type.as_deref() {
            Some(t) if t == resource_type => {}
            Some(t) => {
                return Err(VpcError::InvalidParameterValue(format!(
                    "'{t}' is not a valid taggable resource type for this operation."
                )))
            }
            None => {
                return Err(VpcError::MissingParameter(
                    "TagSpecification.N.ResourceType",
                ))
            }
        }
        for t in &s.tags {
            out = tags::merged(out, tags::tag_of(t)?);
        }
    }
    Ok(out)
}

pub(crate) fn tag_set(tags: &[Tag]) -> Value {
    Value::Array(
        tags.iter()
            .map(|t| json!({"key": t.key, "value": t.value}))
            .collect(),
    )
}

/// Answers `items` that pass the filters, a page at a time: `NextToken` is where the next page starts.
pub(crate) fn filtered<R: Filterable>(
    resources: Vec<R>,
    filters: &[Filter],
    known: &[&str],
    max_results: Option<i32>,
    next_token: Option<&str>,
    render: impl Fn(&R) -> Value,
) -> Result<(Vec<Value>, Option<String>)> {
    filters::check(filters, known).map_err(VpcError::InvalidParameterValue)?;
    let matching: Vec<&R> = resources
        .iter()
        .filter(|r| filters::matches(*r, filters))
        .collect();
    let start = match next_token {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|s| *s <= matching.len())
            .ok_or_else(|| {
                VpcError::InvalidParameterValue(format!("Invalid value '{t}' for nextToken"))
            })?,
    };
    let size = match max_results {
        None => usize::MAX,
        Some(m) if (5..=1000).contains(&m) => m as usize,
        Some(m) => {
            return Err(VpcError::InvalidParameterValue(format!(
                "Value ( {m} ) for parameter maxResults is invalid. Parameter must be between 5 and 1000."
            )))
        }
    };
    let end = start.saturating_add(size).min(matching.len());
    let next = (end < matching.len()).then(|| end.to_string());
    Ok((
        matching[start..end].iter().map(|r| render(r)).collect(),
        next,
    ))
}

/// An id of the given prefix (`vpc`, `subnet`, `sg`): EC2 refuses a malformed one before looking it up.
pub(crate) fn check_id(id: &str, prefix: &str, not_found: fn(String) -> VpcError) -> Result<()> {
    let ok = id
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hex| {
            (8..=17).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit())
        });
    if ok {
        Ok(())
    } else {
        Err(match prefix {
            "vpc" | "subnet" | "sg" => not_found(id.into()),
            _ => VpcError::InvalidId(id.into()),
        })
    }
}
