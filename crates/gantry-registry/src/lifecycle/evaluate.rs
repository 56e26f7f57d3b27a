//! Which images a lifecycle policy expires. ECR's evaluation rules: rules apply lowest priority number first; a
//! rule expires images of its own selection only; an image selected (matched by the tag filter) by an earlier rule
//! is never expired by a later one, though the later rule still counts it; each image is expired by at most one
//! rule; older images expire before newer ones.

use std::collections::HashSet;

use super::policy::{Count, LifecyclePolicy, SECONDS_PER_DAY};

/// An image as the evaluator sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub digest: String,
    pub tags: Vec<String>,
    /// Epoch seconds.
    pub pushed_at: u64,
}

/// An image the policy expires, and the priority of the rule that expires it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    pub digest: String,
    pub rule_priority: u32,
}

/// The images `policy` expires at `now` (epoch seconds), oldest first. Images pushed in the same second are
/// ordered by digest, so that the result does not depend on the order of `images`.
pub fn evaluate(policy: &LifecyclePolicy, images: &[Image], now: u64) -> Vec<Expiry> {
    // Newest first: the order in which `imageCountMoreThan` keeps images.
    let mut order: Vec<&Image> = images.iter().collect();
    order.sort_by(|a, b| {
        b.pushed_at
            .cmp(&a.pushed_at)
            .then_with(|| b.digest.cmp(&a.digest))
    });
    let mut claimed: HashSet<&str> = HashSet::new();
    let mut expired: Vec<(&Image, u32)> = Vec::new();
    for rule in &policy.rules {
        let selected: Vec<&Image> = order
            .iter()
            .copied()
            .filter(|i| rule.tags.matches(&i.tags))
            .collect();
        let candidates: Vec<&Image> = match rule.count {
            Count::MoreThan(keep) => selected
                .iter()
                .copied()
                .skip(usize::try_from(keep).unwrap_or(usize::MAX))
                .collect(),
            Count::SincePushedDays(days) => {
                let max_age = days.saturating_mul(SECONDS_PER_DAY);
                selected
                    .iter()
                    .copied()
                    .filter(|i| now.saturating_sub(i.pushed_at) > max_age)
                    .collect()
            }
        };
        for image in candidates {
            if !claimed.contains(image.digest.as_str()) {
                expired.push((image, rule.priority));
            }
        }
        claimed.extend(selected.iter().map(|i| i.digest.as_str()));
    }
    expired.sort_by(|(a, _), (b, _)| {
        a.pushed_at
            .cmp(&b.pushed_at)
            .then_with(|| a.digest.cmp(&b.digest))
    });
    expired
        .into_iter()
        .map(|(i, rule_priority)| Expiry {
            digest: i.digest.clone(),
            rule_priority,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::policy::parse_policy;
    use serde_json::{json, Value};

    const DAY: u64 = SECONDS_PER_DAY;
    const NOW: u64 = 1_000 * DAY;

    fn image(digest: &str, tags: &[&str], age_days: u64) -> Image {
        Image {
            digest: digest.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pushed_at: NOW - age_days * DAY,
        }
    }

    fn policy(rules: &[Value]) -> LifecyclePolicy {
        let rules: Vec<Value> = rules
            .iter()
            .enumerate()
            .map(|(i, sel)| {
                let mut sel = sel.clone();
                let priority = sel
                    .as_object_mut()
                    .and_then(|o| o.remove("priority"))
                    .unwrap_or(json!(i + 1));
                json!({"rulePriority": priority, "selection": sel, "action": {"type": "expire"}})
            })
            .collect();
        parse_policy(&json!({ "rules": rules }).to_string()).unwrap()
    }

    fn run(rules: &[Value], images: &[Image]) -> Vec<(String, u32)> {
        evaluate(&policy(rules), images, NOW)
            .into_iter()
            .map(|e| (e.digest, e.rule_priority))
            .collect()
    }

    fn keep(status: &str, n: u64) -> Value {
        json!({"tagStatus": status, "countType": "imageCountMoreThan", "countNumber": n})
    }

    fn older_than(status: &str, days: u64) -> Value {
        json!({"tagStatus": status, "countType": "sinceImagePushed", "countUnit": "days", "countNumber": days})
    }

    fn ids(v: &[(&str, u32)]) -> Vec<(String, u32)> {
        v.iter().map(|(d, p)| (d.to_string(), *p)).collect()
    }

    #[test]
    fn count_keeps_the_newest() {
        let images = [
            image("a", &[], 4),
            image("b", &[], 3),
            image("c", &["v1"], 2),
            image("d", &[], 1),
        ];
        // Untagged: a, b, d; the newest two (d, b) stay.
        assert_eq!(run(&[keep("untagged", 2)], &images), ids(&[("a", 1)]));
        assert_eq!(
            run(&[keep("any", 1)], &images),
            ids(&[("a", 1), ("b", 1), ("c", 1)])
        );
        assert!(run(&[keep("any", 4)], &images).is_empty());
        assert!(run(&[keep("any", 100)], &[]).is_empty());
    }

    #[test]
    fn age_expires_the_old() {
        let images = [
            image("a", &["v1"], 10),
            image("b", &[], 8),
            image("c", &[], 7),
            image("d", &[], 0),
        ];
        // Exactly 7 days old is not more than 7 days.
        assert_eq!(run(&[older_than("untagged", 7)], &images), ids(&[("b", 1)]));
        assert_eq!(
            run(&[older_than("any", 1)], &images),
            ids(&[("a", 1), ("b", 1), ("c", 1)])
        );
        let mut fresh = image("f", &[], 0);
        fresh.pushed_at = NOW + 5; // clock skew: never "old"
        assert!(run(&[older_than("any", 1)], &[fresh]).is_empty());
    }

    #[test]
    fn tagged_rules_need_every_prefix_or_pattern() {
        let images = [
            image("a", &["prod-1", "stable"], 5),
            image("b", &["prod-2"], 4),
            image("c", &["dev-1"], 3),
            image("d", &[], 2),
        ];
        let prefixes = json!({"tagStatus": "tagged", "tagPrefixList": ["prod", "stable"],
                              "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1});
        assert_eq!(run(&[prefixes], &images), ids(&[("a", 1)]));
        let one = json!({"tagStatus": "tagged", "tagPrefixList": ["prod"],
                         "countType": "imageCountMoreThan", "countNumber": 1});
        assert_eq!(run(&[one], &images), ids(&[("a", 1)]));
        let pattern = json!({"tagStatus": "tagged", "tagPatternList": ["*-1"],
                             "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1});
        assert_eq!(run(&[pattern], &images), ids(&[("a", 1), ("c", 1)]));
        let both = json!({"tagStatus": "tagged", "tagPatternList": ["prod-*", "st*le"],
                          "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1});
        assert_eq!(run(&[both], &images), ids(&[("a", 1)]));
    }

    #[test]
    fn earlier_rules_protect_what_they_select() {
        let images = [
            image("p1", &["prod-1"], 6),
            image("p2", &["prod-2"], 5),
            image("u1", &[], 4),
            image("d1", &["dev-1"], 3),
            image("u2", &[], 2),
            image("d2", &["dev-2"], 1),
        ];
        // Rule 1 keeps every prod image (up to 100); rule 2 keeps the newest 2 images of any kind. Rule 2 counts
        // prod images among its newest but may not expire them.
        let prod = json!({"tagStatus": "tagged", "tagPrefixList": ["prod"],
                          "countType": "imageCountMoreThan", "countNumber": 100});
        assert_eq!(
            run(&[prod.clone(), keep("any", 2)], &images),
            ids(&[("u1", 2), ("d1", 2)])
        );
        // Each image is expired by the first rule that expires it, and one rule's choice is not repeated.
        let untagged_age = older_than("untagged", 3);
        assert_eq!(
            run(&[untagged_age, keep("any", 1)], &images),
            ids(&[("p1", 2), ("p2", 2), ("u1", 1), ("d1", 2)])
        );
        // Priorities, not positions, decide: the untagged rule at priority 1 goes first.
        let mut late = keep("untagged", 1);
        late["priority"] = json!(1);
        let mut prod_late = prod;
        prod_late["priority"] = json!(5);
        assert_eq!(run(&[prod_late, late], &images), ids(&[("u1", 1)]));
    }

    #[test]
    fn the_matched_images_of_an_earlier_rule_stay_even_when_it_expires_nothing() {
        let images = [image("old", &["keep-me"], 100), image("new", &[], 0)];
        let keep_tag = json!({"tagStatus": "tagged", "tagPatternList": ["keep-*"],
                              "countType": "imageCountMoreThan", "countNumber": 1});
        assert!(run(&[keep_tag, older_than("any", 30)], &images).is_empty());
    }

    #[test]
    fn ties_in_push_time_are_broken_by_digest() {
        let images = [image("b", &[], 1), image("a", &[], 1), image("c", &[], 1)];
        // Same second: the greater digest counts as newer, whatever the input order.
        assert_eq!(run(&[keep("any", 1)], &images), ids(&[("a", 1), ("b", 1)]));
        let reversed: Vec<Image> = images.iter().rev().cloned().collect();
        assert_eq!(
            run(&[keep("any", 1)], &reversed),
            run(&[keep("any", 1)], &images)
        );
    }

    #[test]
    fn results_are_oldest_first() {
        let images = [image("n", &[], 1), image("o", &[], 9), image("m", &[], 5)];
        let got = run(&[older_than("any", 1)], &images);
        assert_eq!(got, ids(&[("o", 1), ("m", 1)]));
    }
}
