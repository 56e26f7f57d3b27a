//! Resolving the ways a request may name a resource (name, id or ARN) to store keys.

use gantry_model::Arn;

use crate::error::{invalid, Result};

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The cluster name from `cluster` (a name or an ARN), `default` when absent.
pub fn cluster_name(cluster: Option<&str>) -> Result<String> {
    let raw = cluster.unwrap_or("default");
    let name = if raw.starts_with("arn:") {
        let arn = Arn::parse(raw).ok_or_else(|| invalid(format!("Invalid cluster ARN: {raw}")))?;
        arn.resource
            .strip_prefix("cluster/")
            .map(str::to_string)
            .ok_or_else(|| invalid(format!("Invalid cluster ARN: {raw}")))?
    } else {
        raw.to_string()
    };
    if !valid_name(&name) {
        return Err(invalid(format!("Invalid cluster name: {raw}. Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed.")));
    }
    Ok(name)
}

/// `(cluster, id)` of a task or container instance named by ARN (`task/cluster/id`, or the old `task/id`) or by id.
pub fn member_id(reference: &str, kind: &str, default_cluster: &str) -> Option<(String, String)> {
    if reference.starts_with("arn:") {
        let arn = Arn::parse(reference)?;
        let rest = arn.resource.strip_prefix(kind)?.strip_prefix('/')?;
        match rest.split_once('/') {
            Some((cluster, id)) if valid_name(cluster) && valid_id(id) => {
                Some((cluster.to_string(), id.to_string()))
            }
            None if valid_id(rest) => Some((default_cluster.to_string(), rest.to_string())),
            _ => None,
        }
    } else if valid_id(reference) {
        Some((default_cluster.to_string(), reference.to_string()))
    } else {
        None
    }
}

fn valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A task definition reference: `family`, `family:revision` or an ARN of `task-definition/family:revision`.
#[derive(Debug, PartialEq)]
pub struct TaskDefinitionRef {
    pub family: String,
    pub revision: Option<i64>,
}

pub fn task_definition(reference: &str) -> Result<TaskDefinitionRef> {
    let bad = || invalid(format!("Invalid revision number. Number: {reference}"));
    let body = if reference.starts_with("arn:") {
        let arn = Arn::parse(reference)
            .ok_or_else(|| invalid(format!("Invalid task definition ARN: {reference}")))?;
        arn.resource
            .strip_prefix("task-definition/")
            .map(str::to_string)
            .ok_or_else(bad)?
    } else {
        reference.to_string()
    };
    let (family, revision) = match body.split_once(':') {
        Some((f, r)) => (
            f.to_string(),
            Some(r.parse::<i64>().ok().filter(|r| *r >= 1).ok_or_else(bad)?),
        ),
        None => (body, None),
    };
    if !valid_name(&family) {
        return Err(invalid(format!(
            "Invalid task definition family: {reference}"
        )));
    }
    Ok(TaskDefinitionRef { family, revision })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names_and_arns() {
        assert_eq!(cluster_name(None).unwrap(), "default");
        assert_eq!(
            cluster_name(Some("arn:aws:ecs:us-east-1:000000000000:cluster/prod")).unwrap(),
            "prod"
        );
        assert!(cluster_name(Some("bad name")).is_err());
        assert!(cluster_name(Some("arn:aws:ecs:us-east-1:000000000000:task/x")).is_err());
    }

    #[test]
    fn member_ids() {
        assert_eq!(
            member_id("arn:aws:ecs:r:a:task/c1/abc", "task", "d"),
            Some(("c1".into(), "abc".into()))
        );
        assert_eq!(
            member_id("arn:aws:ecs:r:a:task/abc", "task", "d"),
            Some(("d".into(), "abc".into()))
        );
        assert_eq!(
            member_id("abc", "task", "d"),
            Some(("d".into(), "abc".into()))
        );
        assert_eq!(
            member_id("arn:aws:ecs:r:a:container-instance/c/abc", "task", "d"),
            None
        );
        assert_eq!(member_id("../etc", "task", "d"), None);
    }

    #[test]
    fn task_definition_refs() {
        assert_eq!(
            task_definition("web").unwrap(),
            TaskDefinitionRef {
                family: "web".into(),
                revision: None
            }
        );
        assert_eq!(task_definition("web:3").unwrap().revision, Some(3));
        assert_eq!(
            task_definition("arn:aws:ecs:r:a:task-definition/web:2")
                .unwrap()
                .revision,
            Some(2)
        );
        assert!(task_definition("web:x").is_err());
        assert!(task_definition("web:0").is_err());
        assert!(task_definition("").is_err());
    }
}
