//! The lifecycle policy text: parsed and checked as ECR checks it, so that a policy Gantry accepts is one ECR
//! accepts, and a refusal says which rule and which member is wrong.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::pattern::{all_matched, wildcard_match};

/// At most this many `*` in one entry of `tagPatternList`.
pub const MAX_WILDCARDS: usize = 4;
/// `rulePriority` and `countNumber` are 32-bit integers in ECR.
const MAX_INT: u64 = i32::MAX as u64;
pub const SECONDS_PER_DAY: u64 = 86_400;

/// Why a policy text is refused (the detail; the ECR layer wraps it in ECR's message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

fn fail<T>(msg: impl Into<String>) -> Result<T, PolicyError> {
    Err(PolicyError(msg.into()))
}

/// A checked policy; its rules sorted by priority, lowest (applied first) first.
#[derive(Debug, Clone, PartialEq)]
pub struct LifecyclePolicy {
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub priority: u32,
    pub description: Option<String>,
    pub tags: TagFilter,
    pub count: Count,
}

/// Which images a rule looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum TagFilter {
    Any,
    Untagged,
    /// Tagged images where every prefix starts one of the image's tags.
    Prefixes(Vec<String>),
    /// Tagged images where every pattern matches one of the image's tags.
    Patterns(Vec<String>),
}

impl TagFilter {
    pub fn matches(&self, tags: &[String]) -> bool {
        match self {
            TagFilter::Any => true,
            TagFilter::Untagged => tags.is_empty(),
            TagFilter::Prefixes(p) => all_matched(p, tags, |f, t| t.starts_with(f)),
            TagFilter::Patterns(p) => all_matched(p, tags, wildcard_match),
        }
    }
}

/// Which of the selected images expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// All but the `n` most recently pushed.
    MoreThan(u64),
    /// Those pushed more than `n` days ago.
    SincePushedDays(u64),
}

/// Parses and checks a lifecycle policy text.
pub fn parse_policy(text: &str) -> Result<LifecyclePolicy, PolicyError> {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return fail(format!("the policy is not valid JSON: {e}")),
    };
    let Value::Object(root) = value else {
        return fail("the policy must be a JSON object");
    };
    known_members(&root, "the policy", &["rules"])?;
    let rules = match root.get("rules") {
        Some(Value::Array(r)) if !r.is_empty() => r,
        Some(Value::Array(_)) => return fail("'rules' must hold at least one rule"),
        Some(_) => return fail("'rules' must be an array of rules"),
        None => return fail("the policy must have 'rules'"),
    };
    let mut out = Vec::with_capacity(rules.len());
    for (i, r) in rules.iter().enumerate() {
        out.push(parse_rule(r, i)?);
    }
    check_rule_set(&mut out)?;
    Ok(LifecyclePolicy { rules: out })
}

fn known_members(obj: &Map<String, Value>, what: &str, known: &[&str]) -> Result<(), PolicyError> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => fail(format!(
            "{what} has an unknown member '{k}' (allowed: {})",
            known.join(", ")
        )),
        None => Ok(()),
    }
}

/// A positive 32-bit integer.
fn positive(v: Option<&Value>, what: &str) -> Result<u64, PolicyError> {
    match v {
        None => fail(format!("{what} is required")),
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_INT).contains(&n) => Ok(n),
            _ => fail(format!(
                "{what} must be an integer from 1 to {MAX_INT} (got {v})"
            )),
        },
    }
}

fn string<'a>(v: Option<&'a Value>, what: &str) -> Result<Option<&'a str>, PolicyError> {
    match v {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => fail(format!("{what} must be a string (got {v})")),
    }
}

fn string_list(v: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    let Value::Array(items) = v else {
        return fail(format!("{what} must be an array of strings"));
    };
    if items.is_empty() {
        return fail(format!("{what} must not be empty"));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item.as_str() {
            Some(s) if !s.is_empty() => out.push(s.to_string()),
            _ => return fail(format!("{what} must hold non-empty strings (got {item})")),
        }
    }
    Ok(out)
}

fn parse_rule(rule: &Value, index: usize) -> Result<Rule, PolicyError> {
    let Value::Object(rule) = rule else {
        return fail(format!("rule {} must be a JSON object", index + 1));
    };
    // Rules are named by priority when they have a sound one, else by position.
    let name = match rule.get("rulePriority").and_then(Value::as_u64) {
        Some(p) => format!("rule with rulePriority {p}"),
        None => format!("rule {}", index + 1),
    };
    known_members(
        rule,
        &name,
        &["rulePriority", "description", "selection", "action"],
    )?;
    let priority = positive(
        rule.get("rulePriority"),
        &format!("'rulePriority' of {name}"),
    )? as u32;
    let description = string(rule.get("description"), &format!("'description' of {name}"))?;
    let action = match rule.get("action") {
        Some(Value::Object(a)) => a,
        Some(_) => return fail(format!("'action' of {name} must be an object")),
        None => return fail(format!("{name} must have an 'action'")),
    };
    known_members(
        action,
        &format!("'action' of {name}"),
        &["type", "targetStorageClass"],
    )?;
    match string(action.get("type"), &format!("'action.type' of {name}"))? {
        Some("expire") => {}
        Some("transition") => {
            return fail(format!(
            "{name}: action type 'transition' (archiving) is not supported by Gantry; use 'expire'"
        ))
        }
        Some(other) => {
            return fail(format!(
                "{name}: action type must be 'expire' (got '{other}')"
            ))
        }
        None => return fail(format!("'action' of {name} must have a 'type'")),
    }
    if action.contains_key("targetStorageClass") {
        return fail(format!(
            "{name}: 'targetStorageClass' is only allowed with action type 'transition'"
        ));
    }
    let selection = match rule.get("selection") {
        Some(Value::Object(s)) => s,
        Some(_) => return fail(format!("'selection' of {name} must be an object")),
        None => return fail(format!("{name} must have a 'selection'")),
    };
    let (tags, count) = parse_selection(selection, &name)?;
    Ok(Rule {
        priority,
        description: description.map(str::to_string),
        tags,
        count,
    })
}

fn parse_selection(
    sel: &Map<String, Value>,
    name: &str,
) -> Result<(TagFilter, Count), PolicyError> {
    known_members(
        sel,
        &format!("'selection' of {name}"),
        &[
            "tagStatus",
            "tagPrefixList",
            "tagPatternList",
            "countType",
            "countUnit",
            "countNumber",
        ],
    )?;
    let prefixes = sel.get("tagPrefixList");
    let patterns = sel.get("tagPatternList");
    let tags = match string(sel.get("tagStatus"), &format!("'tagStatus' of {name}"))? {
        Some("tagged") => match (prefixes, patterns) {
            (Some(p), None) => {
                TagFilter::Prefixes(string_list(p, &format!("'tagPrefixList' of {name}"))?)
            }
            (None, Some(p)) => {
                let list = string_list(p, &format!("'tagPatternList' of {name}"))?;
                if let Some(p) = list.iter().find(|p| p.matches('*').count() > MAX_WILDCARDS) {
                    return fail(format!(
                        "'tagPatternList' of {name}: '{p}' has more than {MAX_WILDCARDS} wildcards (*)"
                    ));
                }
                TagFilter::Patterns(list)
            }
            (Some(_), Some(_)) => {
                return fail(format!(
                    "{name}: tagStatus 'tagged' takes either 'tagPrefixList' or 'tagPatternList', not both"
                ))
            }
            (None, None) => {
                return fail(format!(
                    "{name}: tagStatus 'tagged' requires 'tagPrefixList' or 'tagPatternList'"
                ))
            }
        },
        Some(status @ ("untagged" | "any")) => {
            if prefixes.is_some() || patterns.is_some() {
                return fail(format!(
                    "{name}: 'tagPrefixList' and 'tagPatternList' are only allowed with tagStatus 'tagged' (got '{status}')"
                ));
            }
            if status == "any" {
                TagFilter::Any
            } else {
                TagFilter::Untagged
            }
        }
        Some(other) => {
            return fail(format!(
                "{name}: tagStatus must be one of 'tagged', 'untagged', 'any' (got '{other}')"
            ))
        }
        None => return fail(format!("'selection' of {name} must have a 'tagStatus'")),
    };
    let number = positive(sel.get("countNumber"), &format!("'countNumber' of {name}"))?;
    let unit = string(sel.get("countUnit"), &format!("'countUnit' of {name}"))?;
    let count = match string(sel.get("countType"), &format!("'countType' of {name}"))? {
        Some("imageCountMoreThan") => {
            if unit.is_some() {
                return fail(format!(
                    "{name}: 'countUnit' is only allowed with countType 'sinceImagePushed'"
                ));
            }
            Count::MoreThan(number)
        }
        Some("sinceImagePushed") => match unit {
            Some("days") => Count::SincePushedDays(number),
            Some(other) => {
                return fail(format!("{name}: countUnit must be 'days' (got '{other}')"))
            }
            None => {
                return fail(format!(
                    "{name}: countType 'sinceImagePushed' requires countUnit 'days'"
                ))
            }
        },
        Some(other) => {
            return fail(format!(
            "{name}: countType must be 'imageCountMoreThan' or 'sinceImagePushed' (got '{other}')"
        ))
        }
        None => return fail(format!("'selection' of {name} must have a 'countType'")),
    };
    Ok((tags, count))
}

/// The checks across rules: unique priorities, one rule for untagged images, distinct tag lists, and a rule for
/// any image only as the last one. Sorts the rules by priority.
fn check_rule_set(rules: &mut [Rule]) -> Result<(), PolicyError> {
    rules.sort_by_key(|r| r.priority);
    if let Some(w) = rules.windows(2).find(|w| w[0].priority == w[1].priority) {
        return fail(format!(
            "rulePriority {} is used by more than one rule; each rule needs its own",
            w[0].priority
        ));
    }
    if rules
        .iter()
        .filter(|r| r.tags == TagFilter::Untagged)
        .count()
        > 1
    {
        return fail("only one rule may select untagged images (tagStatus 'untagged')");
    }
    let mut lists = HashSet::new();
    for r in rules.iter() {
        let key = match &r.tags {
            TagFilter::Prefixes(p) => ("prefix", sorted(p)),
            TagFilter::Patterns(p) => ("pattern", sorted(p)),
            _ => continue,
        };
        if !lists.insert(key) {
            return fail(format!(
                "rule with rulePriority {} repeats the tag list of an earlier rule; each rule needs its own",
                r.priority
            ));
        }
    }
    let last = rules.len() - 1;
    if let Some(r) = rules[..last].iter().find(|r| r.tags == TagFilter::Any) {
        return fail(format!(
            "rule with rulePriority {} has tagStatus 'any' and must have the highest rulePriority",
            r.priority
        ));
    }
    Ok(())
}

fn sorted(list: &[String]) -> Vec<String> {
    let mut l = list.to_vec();
    l.sort();
    l.dedup();
    l
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(priority: Value, selection: Value) -> Value {
        json!({"rulePriority": priority, "description": "d", "selection": selection, "action": {"type": "expire"}})
    }

    fn policy(rules: Vec<Value>) -> String {
        json!({ "rules": rules }).to_string()
    }

    fn err(text: &str) -> String {
        parse_policy(text).expect_err(text).0
    }

    #[test]
    fn parses_every_rule_form_sorted_by_priority() {
        let text = policy(vec![
            rule(
                json!(9),
                json!({"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30}),
            ),
            rule(
                json!(1),
                json!({"tagStatus": "tagged", "tagPrefixList": ["prod", "v"], "countType": "imageCountMoreThan", "countNumber": 5}),
            ),
            rule(
                json!(2),
                json!({"tagStatus": "tagged", "tagPatternList": ["*-rc*"], "countType": "imageCountMoreThan", "countNumber": 1}),
            ),
            rule(
                json!(4),
                json!({"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1}),
            ),
        ]);
        let p = parse_policy(&text).unwrap();
        let priorities: Vec<u32> = p.rules.iter().map(|r| r.priority).collect();
        assert_eq!(priorities, vec![1, 2, 4, 9]);
        assert_eq!(
            p.rules[0].tags,
            TagFilter::Prefixes(vec!["prod".into(), "v".into()])
        );
        assert_eq!(p.rules[0].count, Count::MoreThan(5));
        assert_eq!(p.rules[1].tags, TagFilter::Patterns(vec!["*-rc*".into()]));
        assert_eq!(p.rules[2].tags, TagFilter::Untagged);
        assert_eq!(p.rules[2].count, Count::SincePushedDays(1));
        assert_eq!(p.rules[3].tags, TagFilter::Any);
        assert_eq!(p.rules[3].description.as_deref(), Some("d"));
    }

    #[test]
    fn description_is_optional() {
        let text = json!({"rules": [{"rulePriority": 1,
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
            "action": {"type": "expire"}}]})
        .to_string();
        assert_eq!(parse_policy(&text).unwrap().rules[0].description, None);
    }

    #[test]
    fn refuses_malformed_documents() {
        assert!(err("not json").contains("not valid JSON"));
        assert!(err("[]").contains("JSON object"));
        assert!(err("{}").contains("'rules'"));
        assert!(err(r#"{"rules": []}"#).contains("at least one"));
        assert!(err(r#"{"rules": {}}"#).contains("array"));
        assert!(err(r#"{"rules": [1]}"#).contains("rule 1 must be a JSON object"));
        assert!(err(r#"{"rules": [], "extra": 1}"#).contains("unknown member 'extra'"));
    }

    #[test]
    fn refuses_bad_rules() {
        let any = json!({"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1});
        let cases: Vec<(Value, &str)> = vec![
            (rule(json!(0), any.clone()), "'rulePriority'"),
            (rule(json!(-1), any.clone()), "'rulePriority'"),
            (rule(json!(1.5), any.clone()), "'rulePriority'"),
            (rule(json!("1"), any.clone()), "'rulePriority'"),
            (
                json!({"rulePriority": 1, "selection": any}),
                "must have an 'action'",
            ),
            (
                json!({"rulePriority": 1, "action": {"type": "expire"}}),
                "must have a 'selection'",
            ),
            (
                json!({"rulePriority": 1, "selection": any, "action": {"type": "delete"}}),
                "action type must be 'expire'",
            ),
            (
                json!({"rulePriority": 1, "selection": any, "action": {"type": "transition", "targetStorageClass": "ARCHIVE"}}),
                "not supported",
            ),
            (
                json!({"rulePriority": 1, "selection": any, "action": {"type": "expire"}, "x": 1}),
                "unknown member 'x'",
            ),
            (
                json!({"rulePriority": 1, "description": 5, "selection": any, "action": {"type": "expire"}}),
                "'description'",
            ),
        ];
        for (r, want) in cases {
            let got = err(&policy(vec![r.clone()]));
            assert!(got.contains(want), "{r}: {got}");
        }
    }

    #[test]
    fn refuses_bad_selections() {
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({"countType": "imageCountMoreThan", "countNumber": 1}),
                "must have a 'tagStatus'",
            ),
            (
                json!({"tagStatus": "TAGGED", "tagPrefixList": ["a"], "countType": "imageCountMoreThan", "countNumber": 1}),
                "tagStatus must be one of",
            ),
            (
                json!({"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 1}),
                "requires 'tagPrefixList' or 'tagPatternList'",
            ),
            (
                json!({"tagStatus": "tagged", "tagPrefixList": ["a"], "tagPatternList": ["b"], "countType": "imageCountMoreThan", "countNumber": 1}),
                "not both",
            ),
            (
                json!({"tagStatus": "tagged", "tagPrefixList": [], "countType": "imageCountMoreThan", "countNumber": 1}),
                "must not be empty",
            ),
            (
                json!({"tagStatus": "tagged", "tagPrefixList": [""], "countType": "imageCountMoreThan", "countNumber": 1}),
                "non-empty strings",
            ),
            (
                json!({"tagStatus": "tagged", "tagPrefixList": "a", "countType": "imageCountMoreThan", "countNumber": 1}),
                "array of strings",
            ),
            (
                json!({"tagStatus": "tagged", "tagPatternList": ["a*b*c*d*e*f"], "countType": "imageCountMoreThan", "countNumber": 1}),
                "more than 4 wildcards",
            ),
            (
                json!({"tagStatus": "untagged", "tagPrefixList": ["a"], "countType": "imageCountMoreThan", "countNumber": 1}),
                "only allowed with tagStatus 'tagged'",
            ),
            (
                json!({"tagStatus": "any", "tagPatternList": ["a*"], "countType": "imageCountMoreThan", "countNumber": 1}),
                "only allowed with tagStatus 'tagged'",
            ),
            (
                json!({"tagStatus": "any", "countNumber": 1}),
                "must have a 'countType'",
            ),
            (
                json!({"tagStatus": "any", "countType": "imageCountMoreThanOrEqual", "countNumber": 1}),
                "countType must be",
            ),
            (
                json!({"tagStatus": "any", "countType": "imageCountMoreThan"}),
                "'countNumber' of rule with rulePriority 1 is required",
            ),
            (
                json!({"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 0}),
                "'countNumber'",
            ),
            (
                json!({"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 3000000000u64}),
                "'countNumber'",
            ),
            (
                json!({"tagStatus": "any", "countType": "imageCountMoreThan", "countUnit": "days", "countNumber": 1}),
                "'countUnit' is only allowed",
            ),
            (
                json!({"tagStatus": "any", "countType": "sinceImagePushed", "countNumber": 1}),
                "requires countUnit 'days'",
            ),
            (
                json!({"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "hours", "countNumber": 1}),
                "countUnit must be 'days'",
            ),
            (
                json!({"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1, "tagList": []}),
                "unknown member 'tagList'",
            ),
        ];
        for (s, want) in cases {
            let got = err(&policy(vec![rule(json!(1), s.clone())]));
            assert!(got.contains(want), "{s}: {got}");
        }
        // Four wildcards are fine.
        let ok = json!({"tagStatus": "tagged", "tagPatternList": ["*test*1*2*3", "test*1*2*3*"], "countType": "imageCountMoreThan", "countNumber": 1});
        parse_policy(&policy(vec![rule(json!(1), ok)])).unwrap();
    }

    #[test]
    fn refuses_bad_rule_sets() {
        let any = json!({"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1});
        let untagged =
            json!({"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1});
        let prefix = |p: Value| json!({"tagStatus": "tagged", "tagPrefixList": p, "countType": "imageCountMoreThan", "countNumber": 1});
        let got = err(&policy(vec![
            rule(json!(1), untagged.clone()),
            rule(json!(1), any.clone()),
        ]));
        assert!(
            got.contains("rulePriority 1 is used by more than one rule"),
            "{got}"
        );
        let got = err(&policy(vec![
            rule(json!(1), any.clone()),
            rule(json!(2), untagged.clone()),
        ]));
        assert!(got.contains("must have the highest rulePriority"), "{got}");
        let got = err(&policy(vec![
            rule(json!(1), untagged.clone()),
            rule(json!(2), untagged.clone()),
        ]));
        assert!(got.contains("only one rule may select untagged"), "{got}");
        let got = err(&policy(vec![
            rule(json!(1), prefix(json!(["a", "b"]))),
            rule(json!(2), prefix(json!(["b", "a"]))),
        ]));
        assert!(got.contains("repeats the tag list"), "{got}");
        // The same list as prefixes and as patterns is two different filters; 'any' last is fine.
        let ok = policy(vec![
            rule(json!(3), any),
            rule(json!(1), prefix(json!(["a"]))),
            rule(
                json!(2),
                json!({"tagStatus": "tagged", "tagPatternList": ["a"], "countType": "imageCountMoreThan", "countNumber": 1}),
            ),
        ]);
        assert_eq!(parse_policy(&ok).unwrap().rules.len(), 3);
    }

    #[test]
    fn tag_filters_match_as_ecr_documents() {
        let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let prefixes = TagFilter::Prefixes(vec!["prod".into(), "v1".into()]);
        assert!(prefixes.matches(&tags(&["prod-a", "v1.2"])));
        assert!(!prefixes.matches(&tags(&["prod-a"])));
        assert!(!prefixes.matches(&[]));
        let patterns = TagFilter::Patterns(vec!["prod*".into()]);
        assert!(patterns.matches(&tags(&["x", "prod2"])));
        assert!(!patterns.matches(&tags(&["xprod"])));
        assert!(TagFilter::Untagged.matches(&[]));
        assert!(!TagFilter::Untagged.matches(&tags(&["a"])));
        assert!(TagFilter::Any.matches(&[]));
        assert!(TagFilter::Any.matches(&tags(&["a"])));
    }
}
