//! Input validation against the botocore model: lengths, patterns, ranges, with AWS's wording
//! ("1 validation error detected: Value 'x' at 'logGroupName' failed to satisfy constraint: ...").

use gantry_model::{Arn, Scope};

use crate::LogsError;

const GROUP_NAME_PATTERN: &str = r"[\.\-_/#A-Za-z0-9]+";
pub(crate) const MAX_NAME: usize = 512;

fn constraint(field: &str, value: &str, what: &str) -> LogsError {
    let shown: String = value.chars().take(200).collect();
    LogsError::invalid(format!(
        "1 validation error detected: Value '{shown}' at '{field}' failed to satisfy constraint: Member must {what}"
    ))
}

fn length(field: &str, value: &str, min: usize, max: usize) -> Result<(), LogsError> {
    let n = value.chars().count();
    if n < min {
        return Err(constraint(
            field,
            value,
            &format!("have length greater than or equal to {min}"),
        ));
    }
    if n > max {
        return Err(constraint(
            field,
            value,
            &format!("have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

fn is_group_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '#')
}

/// A log group name: 1-512 characters of `[\.\-_/#A-Za-z0-9]`.
pub(crate) fn group_name(field: &str, value: &str) -> Result<(), LogsError> {
    length(field, value, 1, MAX_NAME)?;
    if !value.chars().all(is_group_char) {
        return Err(constraint(
            field,
            value,
            &format!("satisfy regular expression pattern: {GROUP_NAME_PATTERN}"),
        ));
    }
    Ok(())
}

/// `logGroupNamePattern`: 0-512 characters of the same set.
pub(crate) fn group_name_pattern(field: &str, value: &str) -> Result<(), LogsError> {
    length(field, value, 0, MAX_NAME)?;
    if !value.chars().all(is_group_char) {
        return Err(constraint(
            field,
            value,
            r"satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]*",
        ));
    }
    Ok(())
}

/// A log stream name: 1-512 characters, no ':' or '*'.
pub(crate) fn stream_name(field: &str, value: &str) -> Result<(), LogsError> {
    length(field, value, 1, MAX_NAME)?;
    if value.contains([':', '*']) {
        return Err(constraint(
            field,
            value,
            "satisfy regular expression pattern: [^:*]*",
        ));
    }
    Ok(())
}

/// A `limit` in `1..=max`, or `default` when unset.
pub(crate) fn limit(
    field: &str,
    value: Option<i64>,
    max: i64,
    default: usize,
) -> Result<usize, LogsError> {
    match value {
        None => Ok(default),
        Some(v) if v < 1 => Err(constraint(
            field,
            &v.to_string(),
            "have value greater than or equal to 1",
        )),
        Some(v) if v > max => Err(constraint(
            field,
            &v.to_string(),
            &format!("have value less than or equal to {max}"),
        )),
        Some(v) => Ok(v as usize),
    }
}

/// A timestamp (epoch milliseconds), which the model bounds below by 0.
pub(crate) fn timestamp(field: &str, value: Option<i64>) -> Result<Option<i64>, LogsError> {
    match value {
        Some(v) if v < 0 => Err(constraint(
            field,
            &v.to_string(),
            "have value greater than or equal to 0",
        )),
        v => Ok(v),
    }
}

/// A value from an enum of the model.
pub(crate) fn one_of(field: &str, value: &str, allowed: &[&str]) -> Result<(), LogsError> {
    if allowed.contains(&value) {
        return Ok(());
    }
    Err(constraint(
        field,
        value,
        &format!("satisfy enum value set: [{}]", allowed.join(", ")),
    ))
}

/// The group a request names, from `logGroupName` or `logGroupIdentifier` (a name or an ARN): exactly one.
pub(crate) fn group_from(
    scope: &Scope,
    name: Option<&str>,
    identifier: Option<&str>,
) -> Result<String, LogsError> {
    match (name, identifier) {
        (Some(_), Some(_)) => Err(LogsError::invalid(
            "LogGroup name and LogGroup identifier are mutually exclusive parameters.",
        )),
        (None, None) => Err(LogsError::invalid(
            "Either logGroupName or logGroupIdentifier must be specified.",
        )),
        (Some(name), None) => {
            group_name("logGroupName", name)?;
            Ok(name.to_string())
        }
        (None, Some(id)) => group_identifier(scope, "logGroupIdentifier", id),
    }
}

/// A log group name or ARN (with or without the trailing `:*`).
pub(crate) fn group_identifier(
    scope: &Scope,
    field: &str,
    value: &str,
) -> Result<String, LogsError> {
    length(field, value, 1, 2048)?;
    if value.starts_with("arn:") {
        return group_from_arn(scope, field, value);
    }
    group_name(field, value)?;
    Ok(value.to_string())
}

/// The log group an ARN names. An ARN of another account or region names nothing here.
pub(crate) fn group_from_arn(scope: &Scope, field: &str, value: &str) -> Result<String, LogsError> {
    let invalid = || LogsError::invalid(format!("Invalid {field}: {value} is not a log group ARN"));
    let arn = Arn::parse(value).ok_or_else(invalid)?;
    if arn.service != "logs" {
        return Err(invalid());
    }
    let rest = arn
        .resource
        .strip_prefix("log-group:")
        .ok_or_else(invalid)?;
    let name = rest.strip_suffix(":*").unwrap_or(rest);
    if name.is_empty() || name.chars().count() > MAX_NAME || !name.chars().all(is_group_char) {
        return Err(invalid());
    }
    if arn.region != scope.region || arn.account != scope.account {
        return Err(LogsError::ResourceNotFound(format!(
            "The specified resource does not exist: {value}"
        )));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(e: LogsError) -> String {
        e.to_string()
    }

    #[test]
    fn group_names() {
        assert!(group_name("logGroupName", "/ecs/web-1_x.y#z").is_ok());
        assert!(msg(group_name("logGroupName", "a b").unwrap_err())
            .contains("regular expression pattern"));
        assert!(
            msg(group_name("logGroupName", "").unwrap_err()).contains("greater than or equal to 1")
        );
        assert!(group_name("logGroupName", &"a".repeat(512)).is_ok());
        assert!(
            msg(group_name("logGroupName", &"a".repeat(513)).unwrap_err())
                .contains("less than or equal to 512")
        );
        assert!(group_name("logGroupName", "a:b").is_err());
    }

    #[test]
    fn stream_names() {
        assert!(stream_name("logStreamName", "ecs/web/0123 é %").is_ok());
        assert!(stream_name("logStreamName", "a:b").is_err());
        assert!(stream_name("logStreamName", "a*").is_err());
        assert!(stream_name("logStreamName", "").is_err());
    }

    #[test]
    fn limits() {
        assert_eq!(limit("limit", None, 50, 50).unwrap(), 50);
        assert_eq!(limit("limit", Some(3), 50, 50).unwrap(), 3);
        assert!(limit("limit", Some(0), 50, 50).is_err());
        assert!(limit("limit", Some(51), 50, 50).is_err());
    }

    #[test]
    fn identifiers() {
        let scope = Scope::new("us-east-1", "000000000000");
        assert_eq!(group_identifier(&scope, "id", "/a/b").unwrap(), "/a/b");
        assert_eq!(
            group_identifier(
                &scope,
                "id",
                "arn:aws:logs:us-east-1:000000000000:log-group:/a/b:*"
            )
            .unwrap(),
            "/a/b"
        );
        assert_eq!(
            group_identifier(
                &scope,
                "id",
                "arn:aws:logs:us-east-1:000000000000:log-group:/a/b"
            )
            .unwrap(),
            "/a/b"
        );
        assert!(matches!(
            group_identifier(
                &scope,
                "id",
                "arn:aws:logs:eu-west-1:000000000000:log-group:/a/b"
            ),
            Err(LogsError::ResourceNotFound(_))
        ));
        assert!(matches!(
            group_identifier(&scope, "id", "arn:aws:ecs:us-east-1:0:cluster/x"),
            Err(LogsError::InvalidParameter(_))
        ));
        assert!(group_from(&scope, Some("a"), Some("a")).is_err());
        assert!(group_from(&scope, None, None).is_err());
    }
}
