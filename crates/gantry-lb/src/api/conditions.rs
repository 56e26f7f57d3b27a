//! Rule conditions between their wire shape (a `Field` with legacy `Values` or the field's own config) and the
//! rule matcher's [`Condition`].

use crate::errors::{LbError, Result};
use crate::model::{HostHeaderConditionConfig, RuleCondition};
use crate::rules::{validate_conditions, Condition};

const FIELDS: &[&str] = &[
    "host-header",
    "path-pattern",
    "http-header",
    "http-request-method",
    "query-string",
    "source-ip",
];

fn values(
    c: &RuleCondition,
    config: &Option<HostHeaderConditionConfig>,
    field: &str,
) -> Result<Vec<String>> {
    let legacy = c.values.clone().filter(|v| !v.is_empty());
    let own = config.as_ref().and_then(|x| x.values.clone());
    match (legacy, own) {
        // As answered (and stored), host-header and path-pattern carry both.
        (Some(v), Some(o)) if v == o => Ok(v),
        (Some(_), Some(_)) => Err(LbError::Validation(format!(
            "A {field} condition cannot have both Values and its own config"
        ))),
        (Some(v), None) if matches!(field, "host-header" | "path-pattern") => Ok(v),
        (Some(_), None) => Err(LbError::Validation(format!(
            "A {field} condition takes its values in its own config, not in Values"
        ))),
        (None, Some(v)) => Ok(v),
        (None, None) => Err(LbError::Validation(format!(
            "A {field} condition needs at least one value"
        ))),
    }
}

/// The matcher's form of the conditions, checked as ELBv2 checks them.
pub fn convert(conditions: &[RuleCondition]) -> Result<Vec<Condition>> {
    let out = to_conditions(conditions)?;
    validate_conditions(&out).map_err(|e| LbError::Validation(e.to_string()))?;
    Ok(out)
}

/// The matcher's form of the conditions, without the checks of a rule's (a default rule has none).
pub fn to_conditions(conditions: &[RuleCondition]) -> Result<Vec<Condition>> {
    let mut out = Vec::new();
    for c in conditions {
        if c.regex_values.as_ref().is_some_and(|r| !r.is_empty()) {
            return Err(LbError::Validation(
                "Regular expression conditions are not supported by Gantry".into(),
            ));
        }
        let Some(field) = c.field.as_deref() else {
            return Err(LbError::Validation("A rule condition needs a Field".into()));
        };
        if !FIELDS.contains(&field) {
            return Err(LbError::Validation(format!(
                "Condition field '{field}' must be one of {}",
                FIELDS.join(", ")
            )));
        }
        out.push(match field {
            "host-header" => Condition::HostHeader(values(c, &c.host_header_config, field)?),
            "path-pattern" => Condition::PathPattern(values(c, &c.path_pattern_config, field)?),
            "http-request-method" => {
                Condition::HttpRequestMethod(values(c, &c.http_request_method_config, field)?)
            }
            "source-ip" => Condition::SourceIp(values(c, &c.source_ip_config, field)?),
            "http-header" => {
                let cfg = c.http_header_config.clone().unwrap_or_default();
                let name = cfg.http_header_name.clone().unwrap_or_default();
                let as_host = Some(HostHeaderConditionConfig { values: cfg.values });
                Condition::HttpHeader {
                    name,
                    values: values(c, &as_host, field)?,
                }
            }
            _ => {
                let pairs = c
                    .query_string_config
                    .as_ref()
                    .and_then(|q| q.values.clone())
                    .unwrap_or_default();
                if c.values.as_ref().is_some_and(|v| !v.is_empty()) || pairs.is_empty() {
                    return Err(LbError::Validation(
                        "A query-string condition needs key/value pairs in its QueryStringConfig"
                            .into(),
                    ));
                }
                Condition::QueryString(
                    pairs
                        .into_iter()
                        .map(|p| (p.key, p.value.unwrap_or_default()))
                        .collect(),
                )
            }
        });
    }
    Ok(out)
}

/// Conditions as ELBv2 answers them: host-header and path-pattern with both `Values` and their config.
pub fn normalized(conditions: Vec<RuleCondition>) -> Vec<RuleCondition> {
    conditions
        .into_iter()
        .map(|mut c| {
            let both = |c: &mut RuleCondition, cfg: &mut Option<HostHeaderConditionConfig>| {
                let v = c
                    .values
                    .clone()
                    .filter(|v| !v.is_empty())
                    .or_else(|| cfg.as_ref().and_then(|x| x.values.clone()));
                c.values = v.clone();
                *cfg = Some(HostHeaderConditionConfig { values: v });
            };
            match c.field.as_deref() {
                Some("host-header") => {
                    let mut cfg = c.host_header_config.take();
                    both(&mut c, &mut cfg);
                    c.host_header_config = cfg;
                }
                Some("path-pattern") => {
                    let mut cfg = c.path_pattern_config.take();
                    both(&mut c, &mut cfg);
                    c.path_pattern_config = cfg;
                }
                _ => {}
            }
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(values: &[&str]) -> RuleCondition {
        RuleCondition {
            field: Some("path-pattern".into()),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn stored_conditions_convert_back() {
        // What is stored is the normalized form, with both Values and the config: it must still convert.
        let stored = normalized(vec![path(&["/old/*"])]);
        assert!(stored[0].path_pattern_config.is_some() && stored[0].values.is_some());
        assert_eq!(
            convert(&stored).unwrap(),
            vec![Condition::PathPattern(vec!["/old/*".into()])]
        );
        let mut both = path(&["/a"]);
        both.path_pattern_config = Some(HostHeaderConditionConfig {
            values: Some(vec!["/b".into()]),
        });
        assert!(convert(&[both]).is_err());
        assert!(convert(&[]).is_err(), "a rule needs a condition");
        assert_eq!(to_conditions(&[]).unwrap(), vec![]);
    }

    #[test]
    fn each_field_takes_its_config() {
        let header = RuleCondition {
            field: Some("http-header".into()),
            http_header_config: Some(crate::model::HttpHeaderConditionConfig {
                http_header_name: Some("X-Pick".into()),
                values: Some(vec!["b*".into()]),
            }),
            ..Default::default()
        };
        assert_eq!(
            convert(&[header]).unwrap(),
            vec![Condition::HttpHeader {
                name: "X-Pick".into(),
                values: vec!["b*".into()]
            }]
        );
        let legacy_method = RuleCondition {
            field: Some("http-request-method".into()),
            values: Some(vec!["GET".into()]),
            ..Default::default()
        };
        assert!(convert(&[legacy_method]).is_err());
        let unknown = RuleCondition {
            field: Some("cookie".into()),
            values: Some(vec!["x".into()]),
            ..Default::default()
        };
        assert!(convert(&[unknown]).is_err());
    }
}
