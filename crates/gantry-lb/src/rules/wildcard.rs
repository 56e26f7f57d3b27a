//! The `*` / `?` wildcard matcher shared by the host-header, path-pattern, http-header and query-string conditions.
//!
//! Iterative, with a single remembered star: on a mismatch it only ever retries from the most recent `*`, which is
//! enough for glob patterns (an earlier star can absorb whatever a later one would) and bounds the work by
//! `pattern.len() * text.len()` instead of the exponential blow-up of a recursive matcher on `*a*a*a*b`.

/// One element of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`: exactly one character.
    One,
    /// `*`: zero or more characters.
    Many,
}

/// How a pattern is compared with its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchMode {
    /// ASCII case folding (host, header and query conditions); path patterns are case-sensitive.
    pub case_insensitive: bool,
    /// `\*` and `\?` stand for the literal characters: only query-string values have this escape, per the
    /// QueryStringConditionConfig reference.
    pub backslash_escapes: bool,
}

impl MatchMode {
    pub const CASE_SENSITIVE: MatchMode = MatchMode {
        case_insensitive: false,
        backslash_escapes: false,
    };
    pub const CASE_INSENSITIVE: MatchMode = MatchMode {
        case_insensitive: true,
        backslash_escapes: false,
    };
    pub const QUERY: MatchMode = MatchMode {
        case_insensitive: true,
        backslash_escapes: true,
    };
}

fn compile(pattern: &str, mode: MatchMode) -> Vec<Token> {
    let mut tokens = Vec::with_capacity(pattern.len());
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        let token = match c {
            '\\' if mode.backslash_escapes && matches!(chars.peek(), Some('*') | Some('?')) => {
                // The peeked character exists, so `next` yields it.
                Token::Literal(chars.next().unwrap_or(c))
            }
            '*' => Token::Many,
            '?' => Token::One,
            other => Token::Literal(other),
        };
        // Consecutive stars mean the same as one; folding them keeps the backtracking short.
        if token == Token::Many && tokens.last() == Some(&Token::Many) {
            continue;
        }
        tokens.push(token);
    }
    tokens
}

/// Counts the wildcard characters of a pattern as the per-rule quota does (escaped ones are literals).
pub fn count_wildcards(pattern: &str, mode: MatchMode) -> usize {
    let mut count = 0;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if mode.backslash_escapes && matches!(chars.peek(), Some('*') | Some('?')) => {
                chars.next();
            }
            '*' | '?' => count += 1,
            _ => {}
        }
    }
    count
}

/// Whether `text` matches `pattern` as a whole (anchored at both ends).
pub fn wildcard_match(pattern: &str, text: &str, mode: MatchMode) -> bool {
    let tokens = compile(pattern, mode);
    let text: Vec<char> = text.chars().collect();
    let same = |p: char, t: char| {
        if mode.case_insensitive {
            p.eq_ignore_ascii_case(&t)
        } else {
            p == t
        }
    };

    let (mut p, mut t) = (0usize, 0usize);
    // The last star seen, and the text position its current attempt started at.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match tokens.get(p) {
            Some(Token::Literal(c)) if same(*c, text[t]) => {
                p += 1;
                t += 1;
            }
            Some(Token::One) => {
                p += 1;
                t += 1;
            }
            Some(Token::Many) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                // Let the last star swallow one more character and retry what follows it.
                Some((star_p, star_t)) => {
                    star = Some((star_p, star_t + 1));
                    p = star_p + 1;
                    t = star_t + 1;
                }
                None => return false,
            },
        }
    }
    // The text is used up: only stars may remain.
    tokens[p..].iter().all(|token| *token == Token::Many)
}
