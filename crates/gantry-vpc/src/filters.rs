//! EC2's `Filter.N.Name` / `Filter.N.Value.M` matching: a resource matches when every filter has a value that
//! matches one of the resource's values for that name; values may use `*` and `?` wildcards. `tag:Key` filters
//! match a tag's value, `tag-key` the tag keys.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filter {
    #[serde(rename = "Name")]
    pub name: Option<String>,
    #[serde(rename = "Value", default)]
    pub values: Vec<String>,
}

/// What a resource offers to filters: its values for a filter name (empty: it has none, so it does not match).
pub trait Filterable {
    fn filter_values(&self, name: &str) -> Vec<String>;
}

/// Whether `resource` passes every filter. A filter with no name or no values matches nothing, as EC2 refuses it
/// (the caller checks that first, see [`check`]).
pub fn matches(resource: &impl Filterable, filters: &[Filter]) -> bool {
    filters.iter().all(|f| {
        let Some(name) = &f.name else { return false };
        let have = resource.filter_values(name);
        f.values
            .iter()
            .any(|pattern| have.iter().any(|v| wildcard(pattern, v)))
    })
}

/// The filter names a call accepts: an unknown one is EC2's `InvalidParameterValue`.
pub fn check(filters: &[Filter], known: &[&str]) -> Result<(), String> {
    for f in filters {
        let Some(name) = f.name.as_deref() else {
            return Err("The filter 'null' is invalid".into());
        };
        let tag = name.starts_with("tag:") && name.len() > 4;
        if !(tag || known.contains(&name)) {
            return Err(format!("The filter '{name}' is invalid"));
        }
    }
    Ok(())
}

/// The values of the `tag:Key` and `tag-key` / `tag-value` filters for a resource's tags.
pub fn tag_values(tags: &[crate::model::Tag], name: &str) -> Option<Vec<String>> {
    if let Some(key) = name.strip_prefix("tag:") {
        return Some(
            tags.iter()
                .filter(|t| t.key == key)
                .map(|t| t.value.clone())
                .collect(),
        );
    }
    match name {
        "tag-key" => Some(tags.iter().map(|t| t.key.clone()).collect()),
        "tag-value" => Some(tags.iter().map(|t| t.value.clone()).collect()),
        _ => None,
    }
}

/// `*` any run of characters, `?` any one character, `\` escapes the next one; the rest literal.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Classic two-pointer glob with backtracking to the last star.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some('\\') if p.get(pi + 1) == Some(&t[ti]) => {
                pi += 2;
                ti += 1;
                continue;
            }
            Some('?') => {
                pi += 1;
                ti += 1;
                continue;
            }
            Some(c) if *c != '\\' && *c == t[ti] => {
                pi += 1;
                ti += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Tag;

    struct R(Vec<(&'static str, &'static str)>);

    impl Filterable for R {
        fn filter_values(&self, name: &str) -> Vec<String> {
            self.0
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
                .collect()
        }
    }

    fn f(name: &str, values: &[&str]) -> Filter {
        Filter {
            name: Some(name.into()),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("us-east-1*", "us-east-1a"));
        assert!(wildcard("*", ""));
        assert!(wildcard("a?c", "abc"));
        assert!(!wildcard("a?c", "ac"));
        assert!(wildcard("*web*", "my-web-sg"));
        assert!(!wildcard("web", "web2"));
        assert!(wildcard("a\\*", "a*"));
        assert!(!wildcard("a\\*", "ab"));
        assert!(wildcard("*a*b*c", "xxaybzzc"));
    }

    #[test]
    fn every_filter_must_match_one_of_its_values() {
        let r = R(vec![
            ("vpc-id", "vpc-1"),
            ("availability-zone", "us-east-1a"),
        ]);
        assert!(matches(&r, &[]));
        assert!(matches(&r, &[f("vpc-id", &["vpc-2", "vpc-1"])]));
        assert!(matches(
            &r,
            &[
                f("vpc-id", &["vpc-1"]),
                f("availability-zone", &["us-east-1*"])
            ]
        ));
        assert!(!matches(
            &r,
            &[
                f("vpc-id", &["vpc-1"]),
                f("availability-zone", &["us-east-1b"])
            ]
        ));
        assert!(!matches(&r, &[f("vpc-id", &[])]));
    }

    #[test]
    fn unknown_filter_names_are_refused_and_tags_filter() {
        assert!(check(&[f("vpc-id", &["x"]), f("tag:Name", &["x"])], &["vpc-id"]).is_ok());
        assert_eq!(
            check(&[f("color", &["x"])], &["vpc-id"]).unwrap_err(),
            "The filter 'color' is invalid"
        );
        let tags = vec![Tag {
            key: "Name".into(),
            value: "web".into(),
        }];
        assert_eq!(tag_values(&tags, "tag:Name"), Some(vec!["web".to_string()]));
        assert_eq!(tag_values(&tags, "tag-key"), Some(vec!["Name".to_string()]));
        assert_eq!(tag_values(&tags, "vpc-id"), None);
    }
}
