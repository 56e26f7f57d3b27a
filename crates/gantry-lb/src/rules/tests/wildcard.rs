use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::rules::{count_wildcards, wildcard_match, MatchMode};

const CS: MatchMode = MatchMode::CASE_SENSITIVE;
const CI: MatchMode = MatchMode::CASE_INSENSITIVE;
const QUERY: MatchMode = MatchMode::QUERY;

#[test]
fn literals_match_whole_text_only() {
    assert!(wildcard_match("abc", "abc", CS));
    assert!(!wildcard_match("abc", "abcd", CS));
    assert!(!wildcard_match("abc", "xabc", CS));
    assert!(!wildcard_match("abc", "ab", CS));
    assert!(wildcard_match("", "", CS));
    assert!(!wildcard_match("", "a", CS));
}

#[test]
fn star_matches_zero_or_more_characters() {
    assert!(wildcard_match("*", "", CS));
    assert!(wildcard_match("*", "anything/at/all", CS));
    assert!(wildcard_match("/img/*", "/img/", CS));
    assert!(wildcard_match("/img/*", "/img/a/b/c.png", CS));
    assert!(wildcard_match("/img/*/pics", "/img/2024/06/pics", CS));
    assert!(!wildcard_match("/img/*/pics", "/img/pics", CS));
    assert!(wildcard_match("a**b", "ab", CS));
    assert!(wildcard_match("*.example.com", "test.example.com", CI));
    // The guide: "*.example.com matches test.example.com but doesn't match example.com".
    assert!(!wildcard_match("*.example.com", "example.com", CI));
}

#[test]
fn question_mark_matches_exactly_one_character() {
    assert!(wildcard_match("a?c", "abc", CS));
    assert!(!wildcard_match("a?c", "ac", CS));
    assert!(!wildcard_match("a?c", "abbc", CS));
    assert!(wildcard_match("???", "héé", CS), "a character, not a byte");
    assert!(wildcard_match("?*", "x", CS));
    assert!(!wildcard_match("?*", "", CS));
}

#[test]
fn case_folding_is_ascii_and_optional() {
    assert!(wildcard_match("Example.COM", "example.com", CI));
    assert!(!wildcard_match("Example.COM", "example.com", CS));
    assert!(wildcard_match("*CHROME*", "Mozilla Chrome/120", CI));
}

#[test]
fn backslash_escapes_only_in_query_mode() {
    assert!(wildcard_match(r"a\*b", "a*b", QUERY));
    assert!(!wildcard_match(r"a\*b", "axxb", QUERY));
    assert!(wildcard_match(r"what\?", "what?", QUERY));
    assert!(!wildcard_match(r"what\?", "whatx", QUERY));
    // Elsewhere a backslash is an ordinary character and the star stays a wildcard.
    assert!(wildcard_match(r"a\*b", r"a\xxb", CI));
    // A backslash before anything else is literal.
    assert!(wildcard_match(r"a\b", r"a\b", QUERY));
}

#[test]
fn wildcards_are_counted_as_the_quota_counts_them() {
    assert_eq!(count_wildcards("*.example.?om", CI), 2);
    assert_eq!(count_wildcards("/static", CS), 0);
    assert_eq!(count_wildcards(r"\*lit\?*", QUERY), 1);
    assert_eq!(count_wildcards(r"\*", CI), 1);
}

#[test]
fn pathological_patterns_finish_quickly() {
    let text = "a".repeat(20_000);
    let pattern = "*a*a*a*a*a*a*a*a*a*a*b";
    let started = Instant::now();
    assert!(!wildcard_match(pattern, &text, CS));
    assert!(wildcard_match("*a*a*a*a*a*a*a*a*a*a*", &text, CS));
    let long_pattern = "*?".repeat(60) + "b";
    assert!(!wildcard_match(&long_pattern, &text, CS));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

/// A plainly recursive matcher, exponential but obviously right, to check the iterative one against.
fn reference(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => (0..=text.len()).any(|skip| reference(rest, &text[skip..])),
        Some(('?', rest)) => !text.is_empty() && reference(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && reference(rest, &text[1..]),
    }
}

#[test]
fn agrees_with_a_reference_matcher_on_random_inputs() {
    let mut rng = StdRng::seed_from_u64(0x6a6e7472);
    let alphabet = ['a', 'b', '*', '?'];
    for _ in 0..20_000 {
        let pattern: String = (0..rng.gen_range(0..8))
            .map(|_| alphabet[rng.gen_range(0..4)])
            .collect();
        let text: String = (0..rng.gen_range(0..10))
            .map(|_| alphabet[rng.gen_range(0..2)])
            .collect();
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        assert_eq!(
            wildcard_match(&pattern, &text, CS),
            reference(&p, &t),
            "pattern {pattern:?} text {text:?}"
        );
    }
}
