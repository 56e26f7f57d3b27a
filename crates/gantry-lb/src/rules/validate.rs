//! The checks ELBv2 makes on a rule's conditions before storing it, with the documented limits as constants.

use super::cidr::Cidr;
use super::condition::Condition;
use super::error::RuleError;
use super::wildcard::{count_wildcards, MatchMode};

/// Longest host name, path pattern, header value or query key/value ("up to 128 characters").
pub const MAX_VALUE_LENGTH: usize = 128;
/// Longest header name and method name (HttpHeaderConditionConfig, HttpRequestMethodConditionConfig).
pub const MAX_HEADER_NAME_LENGTH: usize = 40;
pub const MAX_METHOD_LENGTH: usize = 40;
/// "You can specify up to three match evaluations per condition."
pub const MAX_VALUES_PER_CONDITION: usize = 3;
/// SourceIpConditionConfig: "The total number of values must be less than, or equal to five." The one condition
/// whose own limit the API reference states differently from the user guide's three.
pub const MAX_SOURCE_IP_VALUES: usize = 5;
/// Quotas: "Condition values per rule" and "Match evaluations per rule", both 5.
pub const MAX_VALUES_PER_RULE: usize = 5;
/// Quotas: "Condition wildcards per rule" 5 ("There is a limit of five wildcard characters per rule").
pub const MAX_WILDCARDS_PER_RULE: usize = 5;

/// Checks a (non-default) rule's conditions: each value on its own, then the per-condition and per-rule limits.
pub fn validate_conditions(conditions: &[Condition]) -> Result<(), RuleError> {
    if conditions.is_empty() {
        return Err(RuleError::NoConditions);
    }
    let mut seen: Vec<&'static str> = Vec::new();
    let (mut values, mut wildcards) = (0usize, 0usize);
    for condition in conditions {
        let field = condition.field();
        // http-header and query-string may repeat (one condition per string to AND them); the others may not.
        let repeatable = matches!(
            condition,
            Condition::HttpHeader { .. } | Condition::QueryString(_)
        );
        if !repeatable {
            if seen.contains(&field) {
                return Err(RuleError::DuplicateCondition(field));
            }
            seen.push(field);
        }
        wildcards += validate_condition(condition)?;
        values += condition.value_count();
    }
    if values > MAX_VALUES_PER_RULE {
        return Err(RuleError::TooManyConditionValues {
            max: MAX_VALUES_PER_RULE,
        });
    }
    if wildcards > MAX_WILDCARDS_PER_RULE {
        return Err(RuleError::TooManyConditionWildcards {
            max: MAX_WILDCARDS_PER_RULE,
        });
    }
    Ok(())
}

/// Checks one condition and returns how many wildcard characters it uses.
fn validate_condition(condition: &Condition) -> Result<usize, RuleError> {
    let field = condition.field();
    let count = condition.value_count();
    if count == 0 {
        return Err(RuleError::EmptyCondition { field });
    }
    let max = if matches!(condition, Condition::SourceIp(_)) {
        MAX_SOURCE_IP_VALUES
    } else {
        MAX_VALUES_PER_CONDITION
    };
    if count > max {
        return Err(RuleError::TooManyValuesInCondition { field, max });
    }
    let mut wildcards = 0;
    match condition {
        Condition::HostHeader(hosts) => {
            for host in hosts {
                check_value(field, host, is_host_char)?;
                check_host_shape(host)?;
                wildcards += count_wildcards(host, MatchMode::CASE_INSENSITIVE);
            }
        }
        Condition::PathPattern(paths) => {
            for path in paths {
                check_value(field, path, is_path_char)?;
                wildcards += count_wildcards(path, MatchMode::CASE_SENSITIVE);
            }
        }
        Condition::HttpHeader { name, values } => {
            check_header_name(name)?;
            for value in values {
                check_value(field, value, is_text_char)?;
                wildcards += count_wildcards(value, MatchMode::CASE_INSENSITIVE);
            }
        }
        Condition::HttpRequestMethod(methods) => {
            for method in methods {
                let valid = !method.is_empty()
                    && method.len() <= MAX_METHOD_LENGTH
                    && method
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_');
                if !valid {
                    return Err(RuleError::InvalidMethod(method.clone()));
                }
            }
        }
        Condition::QueryString(pairs) => {
            for (key, value) in pairs {
                if let Some(key) = key {
                    check_value(field, key, is_text_char)?;
                    wildcards += count_wildcards(key, MatchMode::QUERY);
                }
                check_value(field, value, is_text_char)?;
                wildcards += count_wildcards(value, MatchMode::QUERY);
            }
        }
        Condition::SourceIp(cidrs) => {
            for cidr in cidrs {
                if cidr.parse::<Cidr>().is_err() {
                    return Err(RuleError::InvalidCidr(cidr.clone()));
                }
                // "You cannot specify the 255.255.255.255/32 CIDR for the source IP rule condition."
                if cidr == "255.255.255.255/32" {
                    return Err(RuleError::ReservedCidr);
                }
            }
        }
    }
    Ok(wildcards)
}

/// Non-empty, at most [`MAX_VALUE_LENGTH`] characters, every character allowed for the field.
fn check_value(
    field: &'static str,
    value: &str,
    allowed: fn(char) -> bool,
) -> Result<(), RuleError> {
    if value.is_empty() {
        return Err(RuleError::EmptyValue { field });
    }
    if value.chars().count() > MAX_VALUE_LENGTH {
        return Err(RuleError::ValueTooLong {
            field,
            value: value.to_string(),
            max: MAX_VALUE_LENGTH,
        });
    }
    if !value.chars().all(allowed) {
        return Err(RuleError::InvalidCharacters {
            field,
            value: value.to_string(),
        });
    }
    Ok(())
}

/// Host names: A–Z, a–z, 0–9, `-`, `.`, `*`, `?`.
fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '*' | '?')
}

/// Path patterns: A–Z, a–z, 0–9, `_ - . $ / ~ " ' @ : +`, `&` (the guide's "using &amp;" is about XML escaping,
/// the character itself is allowed), `*`, `?`.
fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '_' | '-' | '.' | '$' | '/' | '~' | '"' | '\'' | '@' | ':' | '+' | '&' | '*' | '?'
        )
}

/// Header and query-string values have no documented character set beyond "rules are applied only to visible
/// ASCII characters", so visible ASCII and the space are accepted, control characters and non-ASCII refused.
fn is_text_char(c: char) -> bool {
    c == ' ' || c.is_ascii_graphic()
}

/// "You must include at least one "." character. You can include only alphabetical characters after the final
/// "." character." An empty last label is refused too: no request host ends that way.
fn check_host_shape(host: &str) -> Result<(), RuleError> {
    match host.rsplit_once('.') {
        Some((_, last)) if !last.is_empty() && last.chars().all(|c| c.is_ascii_alphabetic()) => {
            Ok(())
        }
        _ => Err(RuleError::InvalidHostName(host.to_string())),
    }
}

/// Header names: an RFC 7230 token of at most 40 characters, no wildcard, and not Host (which has its own
/// condition type).
fn check_header_name(name: &str) -> Result<(), RuleError> {
    let is_tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'+-.^_`|~".contains(c);
    if name.is_empty() || name.len() > MAX_HEADER_NAME_LENGTH || !name.chars().all(is_tchar) {
        return Err(RuleError::InvalidHeaderName(name.to_string()));
    }
    if name.eq_ignore_ascii_case("host") {
        return Err(RuleError::HostHeaderInHttpHeader);
    }
    Ok(())
}
