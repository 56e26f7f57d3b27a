//! AddTagsToCertificate, RemoveTagsFromCertificate, ListTagsForCertificate, and ACM's tag rules.

use gantry_model::Scope;
use gantry_store::Store;
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::AcmError;
use super::record::Tag;
use super::AcmService;

const MAX_TAGS: usize = 50;

fn tag_text_ok(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
}

/// Keys of 1 to 128 and values of up to 256 characters of ACM's set, no `aws:` prefix, each key once.
pub fn check_tags(tags: &[Tag]) -> Result<(), AcmError> {
    if tags.len() > MAX_TAGS {
        return Err(AcmError::TooManyTags(format!(
            "A certificate can have at most {MAX_TAGS} tags"
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for t in tags {
        let key_len = t.key.chars().count();
        if !(1..=128).contains(&key_len) || !tag_text_ok(&t.key) {
            return Err(AcmError::InvalidTag(format!(
                "Tag key '{}' must be 1 to 128 letters, digits, spaces or _.:/=+-@",
                t.key
            )));
        }
        if let Some(v) = &t.value {
            if v.chars().count() > 256 || !tag_text_ok(v) {
                return Err(AcmError::InvalidTag(format!(
                    "Tag value '{v}' must be up to 256 letters, digits, spaces or _.:/=+-@"
                )));
            }
        }
        if t.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(AcmError::InvalidTag(format!(
                "Tag key '{}' uses the reserved prefix aws:",
                t.key
            )));
        }
        if !seen.insert(t.key.as_str()) {
            return Err(AcmError::InvalidParameter(format!(
                "Tag key '{}' is given more than once",
                t.key
            )));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagsInput {
    certificate_arn: String,
    tags: Vec<Tag>,
}

pub async fn add<S: Store>(
    acm: &AcmService<S>,
    scope: &Scope,
    input: TagsInput,
) -> Result<Value, AcmError> {
    if input.tags.is_empty() {
        return Err(AcmError::Validation(
            "1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
        ));
    }
    check_tags(&input.tags)?;
    let _w = acm.lb.writes.lock().await;
    let (key, mut r) = acm.record(scope, &input.certificate_arn)?;
    for t in input.tags {
        match r.tags.iter_mut().find(|x| x.key == t.key) {
            Some(x) => x.value = t.value,
            None => r.tags.push(t),
        }
    }
    if r.tags.len() > MAX_TAGS {
        return Err(AcmError::TooManyTags(format!(
            "A certificate can have at most {MAX_TAGS} tags"
        )));
    }
    acm.put(key, &r).await?;
    Ok(json!({}))
}

pub async fn remove<S: Store>(
    acm: &AcmService<S>,
    scope: &Scope,
    input: TagsInput,
) -> Result<Value, AcmError> {
    let _w = acm.lb.writes.lock().await;
    let (key, mut r) = acm.record(scope, &input.certificate_arn)?;
    // A tag given with a value is removed only when the value matches, as ACM does.
    r.tags.retain(|t| {
        !input
            .tags
            .iter()
            .any(|x| x.key == t.key && x.value.as_ref().is_none_or(|v| Some(v) == t.value.as_ref()))
    });
    acm.put(key, &r).await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ArnInput {
    certificate_arn: String,
}

pub fn list<S: Store>(
    acm: &AcmService<S>,
    scope: &Scope,
    input: ArnInput,
) -> Result<Value, AcmError> {
    let (_, r) = acm.record(scope, &input.certificate_arn)?;
    Ok(json!({"Tags": r.tags}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: k.into(),
            value: Some(v.into()),
        }
    }

    #[test]
    fn acm_s_tag_rules() {
        assert!(check_tags(&[tag("env", "prod"), tag("team name", "a/b")]).is_ok());
        assert!(check_tags(&[tag("", "x")]).is_err());
        assert!(check_tags(&[tag("aws:x", "x")]).is_err());
        assert!(check_tags(&[tag("k", "x"), tag("k", "y")]).is_err());
        assert!(check_tags(&[tag("k", "semi;colon")]).is_err());
        let many: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert!(matches!(check_tags(&many), Err(AcmError::TooManyTags(_))));
    }
}
