use super::{strings, Req};
use crate::rules::{select_rule, Condition};

struct Rule {
    name: &'static str,
    priority: Option<u32>,
    conditions: Vec<Condition>,
}

fn rule(name: &'static str, priority: Option<u32>, conditions: Vec<Condition>) -> Rule {
    Rule {
        name,
        priority,
        conditions,
    }
}

fn pick(rules: &[Rule], req: &Req) -> Option<&'static str> {
    select_rule(rules, |r| r.priority, |r| &r.conditions, &req.facts()).map(|r| r.name)
}

fn path(p: &str) -> Vec<Condition> {
    vec![Condition::PathPattern(strings(&[p]))]
}

#[test]
fn lowest_priority_number_wins_whatever_the_slice_order() {
    let rules = vec![
        rule("default", None, vec![]),
        rule("broad", Some(20), path("/api/*")),
        rule("narrow", Some(10), path("/api/users*")),
        rule("catch-all", Some(30), path("*")),
    ];
    assert_eq!(pick(&rules, &Req::get("/api/users/7")), Some("narrow"));
    assert_eq!(pick(&rules, &Req::get("/api/orders")), Some("broad"));
    assert_eq!(pick(&rules, &Req::get("/index.html")), Some("catch-all"));
}

#[test]
fn default_rule_comes_last_and_always_matches() {
    // The default rule's conditions, if a caller ever left some, are not looked at.
    let rules = vec![
        rule("default", None, path("/never")),
        rule("api", Some(1), path("/api/*")),
    ];
    assert_eq!(pick(&rules, &Req::get("/api/x")), Some("api"));
    assert_eq!(pick(&rules, &Req::get("/elsewhere")), Some("default"));
}

#[test]
fn no_match_and_no_default_selects_nothing() {
    let rules = vec![rule("api", Some(1), path("/api/*"))];
    assert_eq!(pick(&rules, &Req::get("/x")), None);
    assert_eq!(pick(&[], &Req::get("/x")), None);
}

#[test]
fn equal_priorities_keep_slice_order() {
    let rules = vec![
        rule("first", Some(5), path("*")),
        rule("second", Some(5), path("*")),
    ];
    assert_eq!(pick(&rules, &Req::get("/")), Some("first"));
}

#[test]
fn priority_extremes_order_correctly() {
    let rules = vec![
        rule("max", Some(50_000), path("*")),
        rule("min", Some(1), path("*")),
    ];
    assert_eq!(pick(&rules, &Req::get("/")), Some("min"));
}
