//! Tag filters of a lifecycle rule: prefixes, and patterns where `*` stands for any run of characters.

/// Whether `tag` matches `pattern`, where each `*` matches any (possibly empty) run of characters and everything
/// else matches itself.
pub fn wildcard_match(pattern: &str, tag: &str) -> bool {
    let mut parts = pattern.split('*');
    // `split` always yields a first part: the literal text before the first `*`.
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = tag.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*` at all: the whole tag must be the literal.
        return rest.is_empty();
    };
    // Leftmost matching of the middle literals is optimal: it leaves the most room for the ones after.
    for lit in middle {
        match rest.find(lit) {
            Some(i) => rest = &rest[i + lit.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// ECR's rule for a tag filter list: every entry must be matched by at least one of the image's tags.
pub fn all_matched(
    filters: &[String],
    tags: &[String],
    matches: impl Fn(&str, &str) -> bool,
) -> bool {
    !tags.is_empty() && filters.iter().all(|f| tags.iter().any(|t| matches(f, t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("prod", "prod"));
        assert!(!wildcard_match("prod", "prod1"));
        assert!(wildcard_match("prod*", "prod"));
        assert!(wildcard_match("prod*", "prod-1.2"));
        assert!(!wildcard_match("prod*", "xprod"));
        assert!(wildcard_match("*prod", "my-prod"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("*", "anything"));
        assert!(wildcard_match("v*.*.*", "v1.2.3"));
        assert!(!wildcard_match("v*.*.*", "v1.2"));
        assert!(wildcard_match("*test*1*2*3", "a-test-x1y2z3"));
        assert!(!wildcard_match("*test*1*2*3", "a-test-x1y2z3w"));
        // The last literal must not overlap the middle ones.
        assert!(!wildcard_match("a*ab", "ab"));
        assert!(wildcard_match("a*ab", "aab"));
        assert!(wildcard_match("**", "x"));
    }

    #[test]
    fn every_filter_needs_a_tag() {
        let tags = vec!["prod".to_string(), "v1".to_string()];
        let starts = |f: &str, t: &str| t.starts_with(f);
        assert!(all_matched(&["pro".into()], &tags, starts));
        assert!(all_matched(&["pro".into(), "v".into()], &tags, starts));
        assert!(!all_matched(&["pro".into(), "x".into()], &tags, starts));
        assert!(!all_matched(&["".into()], &[], starts));
    }
}
