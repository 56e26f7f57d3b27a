//! ARNs and ids. ECS ids are 32 lowercase hex digits; ARNs carry the region and account of the request.

use std::fmt;

/// The region and account a request acts in. Every stored resource belongs to exactly one scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub region: String,
    pub account: String,
}

impl Scope {
    pub fn new(region: impl Into<String>, account: impl Into<String>) -> Self {
        Scope {
            region: region.into(),
            account: account.into(),
        }
    }

    /// `arn:aws:{service}:{region}:{account}:{resource}`
    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:aws:{service}:{}:{}:{resource}",
            self.region, self.account
        )
    }
}

/// A fresh 32-hex-digit id, as ECS uses for tasks and container instances. Time-ordered (UUID v7, 74 random
/// bits after the millisecond): new records then go to the end of the store's B-tree instead of dirtying a
/// random page each, which makes a batch of new tasks several times cheaper to commit.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// A parsed ARN: `arn:partition:service:region:account:resource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn {
    pub service: String,
    pub region: String,
    pub account: String,
    /// Everything after the account, e.g. `task/default/0123...`.
    pub resource: String,
}

impl Arn {
    pub fn parse(s: &str) -> Option<Arn> {
        let mut parts = s.splitn(6, ':');
        if parts.next()? != "arn" {
            return None;
        }
        let _partition = parts.next()?;
        let service = parts.next()?.to_string();
        let region = parts.next()?.to_string();
        let account = parts.next()?.to_string();
        let resource = parts.next()?.to_string();
        if service.is_empty() || resource.is_empty() {
            return None;
        }
        Some(Arn {
            service,
            region,
            account,
            resource,
        })
    }

    /// The resource type: `task` in `task/default/abc`.
    pub fn resource_type(&self) -> &str {
        self.resource.split(['/', ':']).next().unwrap_or("")
    }

    /// The last path element of the resource: the id or name.
    pub fn resource_id(&self) -> &str {
        self.resource.rsplit('/').next().unwrap_or("")
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:aws:{}:{}:{}:{}",
            self.service, self.region, self.account, self.resource
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_task_arn() {
        let a = Arn::parse("arn:aws:ecs:us-east-1:000000000000:task/default/abc").unwrap();
        assert_eq!(a.service, "ecs");
        assert_eq!(a.resource_type(), "task");
        assert_eq!(a.resource_id(), "abc");
        assert_eq!(
            a.to_string(),
            "arn:aws:ecs:us-east-1:000000000000:task/default/abc"
        );
    }

    #[test]
    fn parses_task_definition_arn() {
        let a = Arn::parse("arn:aws:ecs:us-east-1:000000000000:task-definition/web:3").unwrap();
        assert_eq!(a.resource_type(), "task-definition");
        assert_eq!(a.resource_id(), "web:3");
    }

    #[test]
    fn rejects_garbage() {
        assert!(Arn::parse("nope").is_none());
        assert!(Arn::parse("arn:aws:ecs").is_none());
        assert_eq!(new_id().len(), 32);
    }
}
