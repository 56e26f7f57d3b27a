//! CloudWatch Logs filter patterns for unstructured events. Pure.
//!
//! - empty: every event;
//! - terms separated by spaces: every term must appear (case-sensitive); `"a phrase"` is one term;
//! - `?term`: at least one of the `?` terms must appear;
//! - `-term`: the term must not appear;
//! - `%regex%`: a regular expression, with AWS's restrictions (ASCII, no parentheses).
//!
//! JSON (`{ $.x = 1 }`) and space-delimited (`[a, b]`) patterns are refused as unsupported.

use regex::Regex;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PatternError {
    #[error("{0} filter patterns are not supported by Gantry")]
    Unsupported(&'static str),
    #[error("Invalid filter pattern: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone)]
pub(crate) enum FilterPattern {
    All,
    Terms {
        required: Vec<String>,
        any: Vec<String>,
        excluded: Vec<String>,
    },
    Regex(Regex),
}

impl FilterPattern {
    pub fn parse(pattern: &str) -> Result<FilterPattern, PatternError> {
        let p = pattern.trim();
        if p.is_empty() {
            return Ok(FilterPattern::All);
        }
        if p.starts_with('{') {
            return Err(PatternError::Unsupported("JSON ({ $.field = value })"));
        }
        if p.starts_with('[') {
            return Err(PatternError::Unsupported(
                "Space-delimited ([field1, field2])",
            ));
        }
        if p.len() >= 2 && p.starts_with('%') && p.ends_with('%') {
            return parse_regex(&p[1..p.len() - 1]);
        }
        parse_terms(p)
    }

    pub fn matches(&self, message: &str) -> bool {
        match self {
            FilterPattern::All => true,
            FilterPattern::Terms {
                required,
                any,
                excluded,
            } => {
                required.iter().all(|t| message.contains(t.as_str()))
                    && !excluded.iter().any(|t| message.contains(t.as_str()))
                    && (any.is_empty() || any.iter().any(|t| message.contains(t.as_str())))
            }
            FilterPattern::Regex(re) => re.is_match(message),
        }
    }
}

fn parse_regex(body: &str) -> Result<FilterPattern, PatternError> {
    if body.is_empty() {
        return Err(PatternError::Invalid(
            "the regular expression between % and % is empty".into(),
        ));
    }
    if let Some(c) = body.chars().find(|c| !c.is_ascii() || c.is_ascii_control()) {
        return Err(PatternError::Invalid(format!(
            "the character {c:?} is not supported in a regular expression"
        )));
    }
    if body.contains(['(', ')']) {
        return Err(PatternError::Invalid(
            "the ( and ) operators are not supported in a regular expression".into(),
        ));
    }
    Regex::new(body)
        .map(FilterPattern::Regex)
        .map_err(|e| PatternError::Invalid(e.to_string()))
}

#[derive(Clone, Copy)]
enum Kind {
    Required,
    Any,
    Excluded,
}

fn parse_terms(p: &str) -> Result<FilterPattern, PatternError> {
    let (mut required, mut any, mut excluded) = (Vec::new(), Vec::new(), Vec::new());
    let mut chars = p.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else { break };
        let kind = match first {
            '?' => Kind::Any,
            '-' => Kind::Excluded,
            _ => Kind::Required,
        };
        if !matches!(kind, Kind::Required) {
            chars.next();
        }
        let term = match chars.peek() {
            Some('"') => {
                chars.next();
                let mut term = String::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some(e) => term.push(e),
                            None => break,
                        },
                        '"' => {
                            closed = true;
                            break;
                        }
                        c => term.push(c),
                    }
                }
                if !closed {
                    return Err(PatternError::Invalid(format!(
                        "unterminated quoted term in {p:?}"
                    )));
                }
                if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                    return Err(PatternError::Invalid(format!(
                        "a quoted term must be followed by a space in {p:?}"
                    )));
                }
                term
            }
            Some(c) if !c.is_whitespace() => {
                let mut term = String::new();
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    if c == '"' {
                        return Err(PatternError::Invalid(format!("unexpected quote in {p:?}")));
                    }
                    term.push(c);
                }
                term
            }
            _ => {
                return Err(PatternError::Invalid(format!(
                    "'{first}' must be followed by a term in {p:?}"
                )))
            }
        };
        match kind {
            Kind::Required => required.push(term),
            Kind::Any => any.push(term),
            Kind::Excluded => excluded.push(term),
        }
    }
    Ok(FilterPattern::Terms {
        required,
        any,
        excluded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, message: &str) -> bool {
        FilterPattern::parse(pattern).unwrap().matches(message)
    }

    #[test]
    fn empty_matches_everything() {
        assert!(m("", "anything"));
        assert!(m("   ", "anything"));
        assert!(m("\"\"", "anything"));
    }

    #[test]
    fn all_terms_must_appear() {
        assert!(m("ERROR", "[ERROR 400] BAD REQUEST"));
        assert!(!m("ERROR", "[error 400] bad request"));
        assert!(m("ERROR 400", "[ERROR 400] BAD REQUEST"));
        assert!(m("400 ERROR", "[ERROR 400] BAD REQUEST"));
        assert!(!m("ERROR 401", "[ERROR 400] BAD REQUEST"));
    }

    #[test]
    fn quoted_phrases_are_exact() {
        assert!(m("\"BAD REQUEST\"", "[ERROR 400] BAD REQUEST"));
        assert!(!m("\"REQUEST BAD\"", "[ERROR 400] BAD REQUEST"));
        assert!(m("\"[ERROR 400]\" BAD", "[ERROR 400] BAD REQUEST"));
        assert!(m(r#""say \"hi\"""#, r#"they say "hi" twice"#));
    }

    #[test]
    fn question_marks_are_or() {
        assert!(m("?ERROR ?WARN", "WARN low disk"));
        assert!(m("?ERROR ?WARN", "ERROR no disk"));
        assert!(!m("?ERROR ?WARN", "INFO fine"));
        assert!(m("?\"no disk\" ?WARN", "ERROR no disk"));
        // Required terms still apply alongside the alternatives.
        assert!(!m("disk ?ERROR ?WARN", "WARN low memory"));
    }

    #[test]
    fn minus_excludes() {
        assert!(m("ERROR -Exiting", "ERROR something"));
        assert!(!m("ERROR -Exiting", "ERROR Exiting now"));
        assert!(!m("-\"health check\"", "GET / health check"));
        assert!(m("-\"health check\"", "GET /"));
    }

    #[test]
    fn regexes() {
        assert!(m("%AUTHORIZED%", "[SUCCESS 200] AUTHORIZED REQUEST"));
        assert!(m("%colou?r%", "the color"));
        assert!(m("%^GET /api/v[0-9]+%", "GET /api/v2/x"));
        assert!(!m("%^GET%", "POST GET"));
        assert!(FilterPattern::parse("%(a|b)%").is_err());
        assert!(FilterPattern::parse("%[%").is_err());
        assert!(FilterPattern::parse("%é%").is_err());
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        assert!(matches!(
            FilterPattern::parse("{ $.level = \"error\" }"),
            Err(PatternError::Unsupported(_))
        ));
        assert!(matches!(
            FilterPattern::parse("[ip, user, status=404]"),
            Err(PatternError::Unsupported(_))
        ));
        assert!(matches!(
            FilterPattern::parse("\"unterminated"),
            Err(PatternError::Invalid(_))
        ));
        assert!(matches!(
            FilterPattern::parse("ERROR ?"),
            Err(PatternError::Invalid(_))
        ));
        assert!(matches!(
            FilterPattern::parse("a\"b"),
            Err(PatternError::Invalid(_))
        ));
    }
}
