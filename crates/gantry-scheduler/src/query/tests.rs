use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::InstanceFacts;

fn cmp(e: &Expr) -> &Comparison {
    match e {
        Expr::Compare(c) => c,
        other => panic!("not a comparison: {other:?}"),
    }
}

fn err(src: &str) -> String {
    parse(src).expect_err(src).to_string()
}

#[test]
fn every_operator_in_both_forms() {
    let cases = [
        ("==", "equals", Operator::Equals, "x"),
        ("!=", "not_equals", Operator::NotEquals, "x"),
        (">", "greater_than", Operator::GreaterThan, "x"),
        (">=", "greater_than_equal", Operator::GreaterThanEqual, "x"),
        ("<", "less_than", Operator::LessThan, "x"),
        ("<=", "less_than_equal", Operator::LessThanEqual, "x"),
        ("exists", "exists", Operator::Exists, ""),
        ("!exists", "not_exists", Operator::NotExists, ""),
        ("in", "in", Operator::In, "[x, y]"),
        ("!in", "not_in", Operator::NotIn, "[x, y]"),
        ("=~", "matches", Operator::Matches, "x.*"),
        ("!~", "not_matches", Operator::NotMatches, "x.*"),
    ];
    for (symbol, word, op, arg) in cases {
        for form in [symbol, word, &word.to_uppercase()] {
            let src = format!("attribute:a {form} {arg}");
            let e = parse(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(cmp(&e).operator, op, "{src}");
            assert_eq!(cmp(&e).subject, Subject::Attribute("a".into()));
        }
    }
}

#[test]
fn symbols_need_no_spaces() {
    let e = parse("attribute:a==b").unwrap();
    assert_eq!(cmp(&e).argument, Argument::Value("b".into()));
    let e = parse("attribute:a!=b&&runningTasksCount<=3").unwrap();
    assert!(matches!(e, Expr::And(..)));
    let e = parse("attribute:a in[b,c]").unwrap();
    assert_eq!(
        cmp(&e).argument,
        Argument::List(vec!["b".into(), "c".into()])
    );
}

#[test]
fn arguments_lists_and_quotes() {
    let e = parse("attribute:ecs.availability-zone in [us-east-1a, us-east-1b]").unwrap();
    assert_eq!(
        cmp(&e).argument,
        Argument::List(vec!["us-east-1a".into(), "us-east-1b".into()])
    );
    let e = parse("ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']").unwrap();
    assert_eq!(
        cmp(&e).argument,
        Argument::List(vec!["i-abcd1234".into(), "i-wxyx7890".into()])
    );
    let e = parse("attribute:stack == 'prod east'").unwrap();
    assert_eq!(cmp(&e).argument, Argument::Value("prod east".into()));
    let e = parse(r#"attribute:stack == "it's""#).unwrap();
    assert_eq!(cmp(&e).argument, Argument::Value("it's".into()));
    let e = parse(r"attribute:stack == 'it\'s \\ \d'").unwrap();
    assert_eq!(cmp(&e).argument, Argument::Value(r"it's \ \d".into()));
    let e = parse("task:group in [ 'a b' ,c ]").unwrap();
    assert_eq!(
        cmp(&e).argument,
        Argument::List(vec!["a b".into(), "c".into()])
    );
    let e = parse("task:group == service:production").unwrap();
    assert_eq!(cmp(&e).subject, Subject::TaskGroup);
    assert_eq!(
        cmp(&e).argument,
        Argument::Value("service:production".into())
    );
    // A bare value keeps the parentheses and brackets it opens, so regular expressions need no quotes.
    let e = parse("not(attribute:t =~ (t2|m5)\\.[a-z]+)").unwrap();
    let Expr::Not(inner) = e else { panic!() };
    assert_eq!(
        cmp(&inner).argument,
        Argument::Value("(t2|m5)\\.[a-z]+".into())
    );
    // Keywords are values after an operator.
    let e = parse("attribute:a == and").unwrap();
    assert_eq!(cmp(&e).argument, Argument::Value("and".into()));
    // A single value is not a list.
    assert!(err("attribute:a in b").contains("expected a list"));
}

#[test]
fn subjects() {
    for (word, subject) in [
        ("agentConnected == true", Subject::AgentConnected),
        ("agentVersion < 1.14.5", Subject::AgentVersion),
        (
            "attribute:ecs.instance-type == t2.small",
            Subject::Attribute("ecs.instance-type".into()),
        ),
        ("ec2InstanceId == i-1", Subject::Ec2InstanceId),
        ("registeredAt < 2018-02-13", Subject::RegisteredAt),
        ("runningTasksCount == 1", Subject::RunningTasksCount),
        ("task:group == database", Subject::TaskGroup),
        ("AGENTCONNECTED == true", Subject::AgentConnected),
    ] {
        assert_eq!(cmp(&parse(word).unwrap()).subject, subject, "{word}");
    }
}

#[test]
fn precedence_not_and_or() {
    let a = || Box::new(parse("attribute:a exists").unwrap());
    let b = || Box::new(parse("attribute:b exists").unwrap());
    let c = || Box::new(parse("attribute:c exists").unwrap());
    assert_eq!(
        parse("attribute:a exists or attribute:b exists and attribute:c exists").unwrap(),
        Expr::Or(a(), Box::new(Expr::And(b(), c())))
    );
    assert_eq!(
        parse("attribute:a exists && attribute:b exists || attribute:c exists").unwrap(),
        Expr::Or(Box::new(Expr::And(a(), b())), c())
    );
    assert_eq!(
        parse("(attribute:a exists or attribute:b exists) and attribute:c exists").unwrap(),
        Expr::And(Box::new(Expr::Or(a(), b())), c())
    );
    assert_eq!(
        parse("not attribute:a exists and attribute:b exists").unwrap(),
        Expr::And(Box::new(Expr::Not(a())), b())
    );
    assert_eq!(
        parse("!(attribute:a exists || attribute:b exists)").unwrap(),
        Expr::Not(Box::new(Expr::Or(a(), b())))
    );
    assert_eq!(
        parse("NOT NOT attribute:a exists").unwrap(),
        Expr::Not(Box::new(Expr::Not(a())))
    );
    assert_eq!(
        parse("attribute:a exists or attribute:b exists or attribute:c exists").unwrap(),
        Expr::Or(Box::new(Expr::Or(a(), b())), c())
    );
    assert_eq!(parse("((attribute:a exists))").unwrap(), *a());
    assert_eq!(
        parse("not(task:group == database)").unwrap(),
        Expr::Not(Box::new(parse("task:group == database").unwrap()))
    );
}

#[test]
fn malformed_expressions_say_what_and_where() {
    let cases = [
        ("", "the expression is empty at column 1"),
        ("   ", "the expression is empty at column 1"),
        ("foo == bar", "unknown subject 'foo' (expected one of agentConnected, agentVersion, attribute:NAME, ec2InstanceId, registeredAt, runningTasksCount, task:group) at column 1"),
        ("attribute: == x", "unknown subject 'attribute:'"),
        ("attribute:a", "expected an operator at the end of the expression at column 12"),
        ("attribute:a is b", "expected an operator, found 'is' at column 13"),
        ("attribute:a ==", "expected a value at the end of the expression at column 15"),
        ("attribute:a == )", "expected a value, found ')' at column 16"),
        ("attribute:a in [", "the list is not closed with ']' at column 16"),
        ("attribute:a in []", "the list is empty at column 16"),
        ("attribute:a in [b c]", "expected ',' or ']' in the list, found 'c' at column 19"),
        ("attribute:a in [b,,c]", "expected a value in the list at column 19"),
        ("attribute:a == 'b", "the value is missing its closing ' at column 16"),
        ("(attribute:a exists", "'(' is never closed at column 1"),
        ("attribute:a exists)", "unmatched ')' at column 19"),
        ("attribute:a exists attribute:b exists", "expected 'and', 'or' or the end of the expression, found 'attribute:b' at column 20"),
        ("attribute:a exists and", "expected a subject, 'not' or '(', found the end of the expression at column 23"),
        ("and attribute:a exists", "expected a subject, 'not' or '(', found 'and' at column 1"),
        ("attribute:a exists & attribute:b exists", "found '&' at column 20"),
        ("()", "expected a subject, 'not' or '(', found ')' at column 2"),
        ("agentConnected > true", "operator '>' cannot be used with agentConnected at column 16"),
        ("ec2InstanceId exists", "operator 'exists' cannot be used with ec2InstanceId"),
        ("runningTasksCount =~ 1", "operator '=~' cannot be used with runningTasksCount"),
        ("task:group < a", "operator '<' cannot be used with task:group"),
        ("runningTasksCount == one", "runningTasksCount needs a whole number, found 'one' at column 22"),
        ("registeredAt < yesterday", "registeredAt needs a date such as 2018-06-18T22:28:28+00:00"),
        ("agentVersion < 1.x", "agentVersion needs a version such as 1.14.5, found '1.x'"),
        ("attribute:a =~ 'b('", "invalid regular expression 'b(':"),
        ("é == x", "unknown subject 'é'"),
        ("attribute:a == b and é", "unknown subject 'é' (expected one of agentConnected, agentVersion, attribute:NAME, ec2InstanceId, registeredAt, runningTasksCount, task:group) at column 22"),
    ];
    for (src, want) in cases {
        let got = err(src);
        assert!(got.contains(want), "{src:?}: got {got:?}, want {want:?}");
    }
    assert!(err(&"(".repeat(500)).contains("nested too deeply"));
    let long = format!("attribute:a == {}", "x".repeat(1990));
    assert!(err(&long).contains("longer than 2000 characters"));
    assert!(parse(&format!("attribute:a == {}", "x".repeat(1985))).is_ok());
}

fn facts() -> InstanceFacts {
    let mut f = InstanceFacts {
        agent_connected: true,
        agent_version: "1.14.5".into(),
        ec2_instance_id: Some("i-abcd1234".into()),
        registered_at: 1_529_360_908, // 2018-06-18T22:28:28Z
        running_tasks_count: 2,
        ..Default::default()
    };
    f.attributes
        .insert("ecs.instance-type".into(), Some("t2.small".into()));
    f.attributes
        .insert("ecs.availability-zone".into(), Some("us-east-1a".into()));
    f.attributes.insert("cores".into(), Some("8".into()));
    f.attributes.insert("ecs.capability.external".into(), None);
    f.task_groups.insert("service:production".into(), 2);
    f.task_groups.insert("family:web".into(), 1);
    f
}

fn holds(src: &str) -> bool {
    parse(src)
        .unwrap_or_else(|e| panic!("{src}: {e}"))
        .matches(&facts())
}

#[test]
fn evaluates_every_subject() {
    let yes = [
        "agentConnected == true",
        "agentConnected == TRUE",
        "agentConnected != false",
        "agentConnected in [true]",
        "agentConnected !in [false]",
        "agentConnected =~ t.*",
        "agentConnected !~ f.*",
        "agentVersion == 1.14.5",
        "agentVersion >= 1.14.5",
        "agentVersion > 1.9",
        "agentVersion < 1.15",
        "agentVersion <= 1.14.5",
        "agentVersion != 1.14",
        "attribute:ecs.instance-type == t2.small",
        "attribute:ecs.instance-type =~ t2.*",
        "attribute:ecs.instance-type !~ g2.*",
        "attribute:ecs.instance-type != t2.medium",
        "attribute:ecs.instance-type in [t2.small, t2.medium]",
        "attribute:ecs.instance-type !in [t2.medium]",
        "attribute:ecs.instance-type exists",
        "attribute:ecs.capability.external exists",
        "attribute:missing !exists",
        "attribute:cores > 10 or attribute:cores > 7",
        "attribute:cores >= 8",
        "attribute:cores < 10",
        "attribute:ecs.instance-type > t2.medium",
        "ec2InstanceId == i-abcd1234",
        "ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']",
        "ec2InstanceId =~ i-.*",
        "ec2InstanceId != i-other",
        "registeredAt == 2018-06-18T22:28:28Z",
        "registeredAt == 2018-06-18T23:28:28+01:00",
        "registeredAt > 2018-06-18",
        "registeredAt >= 2018-06-18T22:28:28",
        "registeredAt < 2018-06-19",
        "registeredAt <= 2018-06-18T22:28:28+00:00",
        "registeredAt != 2018-06-18",
        "runningTasksCount == 2",
        "runningTasksCount != 1",
        "runningTasksCount > 1",
        "runningTasksCount >= 2",
        "runningTasksCount < 3",
        "runningTasksCount <= 2",
        "task:group == service:production",
        "task:group in [family:db, family:web]",
        "task:group =~ service:.*",
        "task:group exists",
        "task:group != family:web",
        "not(task:group == database)",
        "attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1d",
    ];
    for src in yes {
        assert!(holds(src), "{src} should hold");
    }
    let no = [
        "agentConnected == false",
        "agentVersion < 1.14.5",
        "agentVersion > 1.14.5",
        "attribute:ecs.instance-type == t2.medium",
        // Java's matches(): the whole value.
        "attribute:ecs.instance-type =~ t2",
        "attribute:missing == x",
        // A missing attribute satisfies nothing but !exists, not even !=.
        "attribute:missing != x",
        "attribute:missing !in [x]",
        "attribute:missing !~ x",
        "attribute:missing exists",
        "attribute:ecs.capability.external == x",
        "attribute:cores > 10",
        "ec2InstanceId == i-other",
        "registeredAt < 2018-06-18",
        "registeredAt > 2018-06-19",
        "runningTasksCount == 0",
        "task:group == database",
        "task:group !exists",
        "task:group !in [service:production, family:web]",
        "not agentConnected == true",
        "agentConnected == true and runningTasksCount == 0",
    ];
    for src in no {
        assert!(!holds(src), "{src} should not hold");
    }
    let bare = InstanceFacts::default();
    for src in [
        "ec2InstanceId != x",
        "task:group exists",
        "task:group != x",
        "agentVersion > 0.0.1",
    ] {
        assert!(!parse(src).unwrap().matches(&bare), "{src}");
    }
    assert!(parse("task:group !exists").unwrap().matches(&bare));
}

#[test]
fn prints_back() {
    for (src, printed) in [
        ("attribute:a equals b", "attribute:a == b"),
        ("attribute:a exists", "attribute:a exists"),
        ("attribute:a not_exists", "attribute:a !exists"),
        ("task:group not_in [a, 'b c']", "task:group !in [a, 'b c']"),
        (r"attribute:a matches '\d+'", r"attribute:a =~ '\\d+'"),
        ("!(attribute:a exists)", "not attribute:a exists"),
        (
            "not (attribute:a exists or attribute:b exists) and attribute:c exists",
            "not (attribute:a exists or attribute:b exists) and attribute:c exists",
        ),
        (
            "attribute:a exists and (attribute:b exists and attribute:c exists)",
            "attribute:a exists and (attribute:b exists and attribute:c exists)",
        ),
        (
            "(attribute:a exists && attribute:b exists) || attribute:c exists",
            "attribute:a exists and attribute:b exists or attribute:c exists",
        ),
    ] {
        assert_eq!(parse(src).unwrap().to_string(), printed, "{src}");
    }
}

/// A random expression over every subject and operator, with awkward values.
fn random_expr(rng: &mut StdRng, depth: u32) -> String {
    if depth == 0 || rng.gen_bool(0.35) {
        return random_comparison(rng);
    }
    let a = random_expr(rng, depth - 1);
    let b = random_expr(rng, depth - 1);
    match rng.gen_range(0..5) {
        0 => format!("{a} and {b}"),
        1 => format!("({a}) || {b}"),
        2 => format!("not ({a})"),
        3 => format!("!{b}"),
        _ => format!("{a} && ({b} or {a})"),
    }
}

fn random_value(rng: &mut StdRng) -> String {
    const PARTS: [&str; 10] = [
        "a",
        "us-east-1a",
        "t2.small",
        "x y",
        "it's",
        "q\"",
        "and",
        "\\",
        "[",
        ",",
    ];
    let raw = (0..rng.gen_range(1..3))
        .map(|_| PARTS[rng.gen_range(0..PARTS.len())])
        .collect::<String>();
    let mut quoted = String::from("'");
    for c in raw.chars() {
        if c == '\'' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('\'');
    quoted
}

fn random_comparison(rng: &mut StdRng) -> String {
    let subjects = [
        "attribute:ecs.availability-zone",
        "attribute:stack",
        "task:group",
        "ec2InstanceId",
        "agentConnected",
    ];
    let subject = subjects[rng.gen_range(0..subjects.len())];
    match rng.gen_range(0..9) {
        0 => format!("runningTasksCount >= {}", rng.gen_range(0..5)),
        1 => format!(
            "agentVersion < 1.{}.{}",
            rng.gen_range(0..20),
            rng.gen_range(0..9)
        ),
        2 => format!("registeredAt > 2018-06-{:02}", rng.gen_range(1..30)),
        3 => format!(
            "{subject} in [{}, {}]",
            random_value(rng),
            random_value(rng)
        ),
        4 => format!("{subject} not_in [{}]", random_value(rng)),
        5 => format!(
            "{subject} =~ {}",
            ["'t2.*'", "(a|b).*", "'x y'"][rng.gen_range(0..3)]
        ),
        6 if subject.starts_with("attribute") => format!("{subject} !exists"),
        _ => format!("{subject} != {}", random_value(rng)),
    }
}

#[test]
fn parse_print_roundtrips() {
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..2000 {
        let src = random_expr(&mut rng, 4);
        let expr = parse(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let printed = expr.to_string();
        let again = parse(&printed).unwrap_or_else(|e| panic!("{printed}: {e}"));
        assert_eq!(again, expr, "{src} printed as {printed}");
        assert_eq!(again.to_string(), printed);
    }
}

#[test]
fn evaluation_agrees_with_the_boolean_structure() {
    // not/and/or evaluate as booleans of their parts, whatever the facts.
    let mut rng = StdRng::seed_from_u64(8);
    let f = facts();
    for _ in 0..500 {
        let a = parse(&random_expr(&mut rng, 2)).unwrap();
        let b = parse(&random_expr(&mut rng, 2)).unwrap();
        let (x, y) = (a.matches(&f), b.matches(&f));
        let and = parse(&format!("({a}) and ({b})")).unwrap();
        let or = parse(&format!("({a}) or ({b})")).unwrap();
        let not = parse(&format!("not ({a})")).unwrap();
        assert_eq!(and.matches(&f), x && y);
        assert_eq!(or.matches(&f), x || y);
        assert_eq!(not.matches(&f), !x);
    }
}
