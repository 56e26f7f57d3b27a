//! Checks shared by several actions: names, tags, ports.

use std::collections::HashSet;

use crate::errors::{invalid, LbError, Result};
use crate::model::Tag;

pub const MAX_TAGS: usize = 50;

/// A load balancer or target group name: 1-32 alphanumerics and hyphens, not starting or ending with a hyphen.
pub fn name(value: &str, what: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 32
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if !ok {
        return Err(LbError::Validation(format!(
            "{what} name '{value}' is not valid: it must have 1-32 characters, only alphanumerics and hyphens, and must not begin or end with a hyphen"
        )));
    }
    Ok(())
}

pub fn port(value: u32, member: &str) -> Result<u16> {
    if (1..=65535).contains(&value) {
        Ok(value as u16)
    } else {
        Err(invalid(
            member,
            value,
            "Member must have value less than or equal to 65535 and greater than or equal to 1",
        ))
    }
}

pub fn tags(tags: &[Tag]) -> Result<()> {
    let mut seen = HashSet::new();
    for t in tags {
        if t.key.is_empty() || t.key.len() > 128 {
            return Err(invalid(
                "tags.member.key",
                &t.key,
                "Member must have length between 1 and 128",
            ));
        }
        if t.value.as_deref().is_some_and(|v| v.len() > 256) {
            return Err(invalid(
                "tags.member.value",
                t.value.as_deref().unwrap_or_default(),
                "Member must have length less than or equal to 256",
            ));
        }
        if t.key.starts_with("aws:") {
            return Err(LbError::Validation(format!(
                "Tag key '{}' is reserved: keys must not start with 'aws:'",
                t.key
            )));
        }
        if !seen.insert(t.key.as_str()) {
            return Err(LbError::DuplicateTagKeys(format!(
                "Tag key '{}' is given more than once",
                t.key
            )));
        }
    }
    Ok(())
}

/// Merges `add` into `tags` (a key given again replaces its value); at most [`MAX_TAGS`].
pub fn merge_tags(tags: &mut Vec<Tag>, add: &[Tag]) -> Result<()> {
    self::tags(add)?;
    for t in add {
        match tags.iter_mut().find(|x| x.key == t.key) {
            Some(x) => x.value = t.value.clone(),
            None => tags.push(t.clone()),
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(LbError::TooManyTags(format!(
            "A resource can have at most {MAX_TAGS} tags"
        )));
    }
    Ok(())
}

/// An enum member: one of `allowed`.
pub fn one_of(value: &str, member: &str, allowed: &[&str]) -> Result<()> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            member,
            value,
            &format!(
                "Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags() {
        assert!(name("web-1", "Load balancer").is_ok());
        for bad in ["", "-a", "a-", "a_b", &"x".repeat(33)] {
            assert!(name(bad, "Load balancer").is_err(), "{bad}");
        }
        let t = |k: &str| Tag {
            key: k.into(),
            value: Some("v".into()),
        };
        assert!(matches!(
            tags(&[t("a"), t("a")]),
            Err(LbError::DuplicateTagKeys(_))
        ));
        assert!(tags(&[t("aws:x")]).is_err());
        let mut have: Vec<Tag> = (0..50).map(|i| t(&format!("k{i}"))).collect();
        assert!(merge_tags(&mut have, &[t("k1")]).is_ok());
        assert!(matches!(
            merge_tags(&mut have, &[t("new")]),
            Err(LbError::TooManyTags(_))
        ));
        assert!(
            port(0, "port").is_err() && port(65536, "port").is_err() && port(80, "port").is_ok()
        );
    }
}
