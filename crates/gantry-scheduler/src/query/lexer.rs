//! Splits an expression into tokens. The grammar is context-sensitive (a value such as `g2.*` or `(a|b).*` may
//! hold characters that are operators elsewhere), so the parser asks for the kind of token it expects next.

use super::ast::Operator;

/// A token where an expression, a connective or a parenthesis may stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Token<'a> {
    LParen,
    RParen,
    Not,
    And,
    Or,
    Word(&'a str),
    Unexpected(char),
    End,
}

/// Characters that end a subject word.
const WORD_END: &[char] = &[
    '(', ')', '[', ']', ',', '\'', '"', '!', '=', '<', '>', '&', '|', '~',
];

#[derive(Debug, Clone)]
pub(super) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

/// A lexing failure: what went wrong and the byte offset where.
pub(super) type LexError = (String, usize);

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Self {
        Lexer { src, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// The next token, its start and its end, without consuming it.
    pub fn peek(&mut self) -> (Token<'a>, usize, usize) {
        self.skip_ws();
        let start = self.pos;
        let rest = self.rest();
        let Some(c) = rest.chars().next() else {
            return (Token::End, start, start);
        };
        let one = |t| (t, start, start + 1);
        match c {
            '(' => one(Token::LParen),
            ')' => one(Token::RParen),
            '!' => one(Token::Not),
            '&' if rest.starts_with("&&") => (Token::And, start, start + 2),
            '|' if rest.starts_with("||") => (Token::Or, start, start + 2),
            c if WORD_END.contains(&c) => (Token::Unexpected(c), start, start + c.len_utf8()),
            _ => {
                let len = rest
                    .find(|c: char| c.is_whitespace() || WORD_END.contains(&c))
                    .unwrap_or(rest.len());
                let word = &rest[..len];
                let token = if word.eq_ignore_ascii_case("and") {
                    Token::And
                } else if word.eq_ignore_ascii_case("or") {
                    Token::Or
                } else if word.eq_ignore_ascii_case("not") {
                    Token::Not
                } else {
                    Token::Word(word)
                };
                (token, start, start + len)
            }
        }
    }

    pub fn next(&mut self) -> (Token<'a>, usize) {
        let (t, start, end) = self.peek();
        self.pos = end;
        (t, start)
    }

    /// An operator, in symbol or word form (words without regard to case).
    pub fn operator(&mut self) -> Result<(Operator, usize), LexError> {
        self.skip_ws();
        let start = self.pos;
        let rest = self.rest();
        let symbols = [
            ("==", Operator::Equals),
            ("!=", Operator::NotEquals),
            (">=", Operator::GreaterThanEqual),
            ("<=", Operator::LessThanEqual),
            ("=~", Operator::Matches),
            ("!~", Operator::NotMatches),
            (">", Operator::GreaterThan),
            ("<", Operator::LessThan),
        ];
        let (negated, word_at) = match rest.strip_prefix('!') {
            Some(after) if after.starts_with(|c: char| c.is_ascii_alphabetic()) => (true, 1),
            _ => (false, 0),
        };
        if !negated {
            if let Some((s, op)) = symbols.iter().find(|(s, _)| rest.starts_with(s)) {
                self.pos += s.len();
                return Ok((*op, start));
            }
        }
        let word_rest = &rest[word_at..];
        let len = word_rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(word_rest.len());
        let word = &word_rest[..len];
        let op = match (negated, Operator::from_word(word)) {
            (false, Some(op)) => Some(op),
            (true, Some(Operator::Exists)) if word.eq_ignore_ascii_case("exists") => {
                Some(Operator::NotExists)
            }
            (true, Some(Operator::In)) if word.eq_ignore_ascii_case("in") => Some(Operator::NotIn),
            _ => None,
        };
        match op {
            Some(op) => {
                self.pos += word_at + len;
                Ok((op, start))
            }
            None => {
                let shown = self.shown_token();
                Err((
                    if shown.is_empty() {
                        "expected an operator at the end of the expression".to_string()
                    } else {
                        format!("expected an operator, found '{shown}'")
                    },
                    start,
                ))
            }
        }
    }

    /// The text up to the next whitespace, to quote in an error.
    fn shown_token(&self) -> &'a str {
        let rest = self.rest();
        let len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let token = &rest[..len];
        match token.char_indices().nth(40) {
            Some((i, _)) => &token[..i],
            None => token,
        }
    }

    /// A single value: quoted (`'x'` or `"x"`) or bare. A bare value ends at whitespace, `,`, `&&`, `||` or a
    /// closing `)`/`]` it did not open, so that a regular expression such as `(t2|m5).*` needs no quotes.
    pub fn value(&mut self) -> Result<(String, usize), LexError> {
        self.skip_ws();
        let start = self.pos;
        if let Some(q) = self
            .rest()
            .chars()
            .next()
            .filter(|c| *c == '\'' || *c == '"')
        {
            return self.quoted(q).map(|v| (v, start));
        }
        let rest = self.rest();
        let mut depth = 0usize;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            let stop = match c {
                c if c.is_whitespace() => true,
                '(' | '[' => {
                    depth += 1;
                    false
                }
                ')' | ']' if depth == 0 => true,
                ')' | ']' => {
                    depth -= 1;
                    false
                }
                ',' => depth == 0,
                '&' | '|' => depth == 0 && rest[i + 1..].starts_with(c),
                _ => false,
            };
            if stop {
                end = i;
                break;
            }
        }
        if end == 0 {
            let msg = match rest.chars().next() {
                None => "expected a value at the end of the expression".to_string(),
                Some(c) => format!("expected a value, found '{c}'"),
            };
            return Err((msg, start));
        }
        self.pos += end;
        Ok((rest[..end].to_string(), start))
    }

    /// A list `[a, b, 'c d']` of at least one value.
    pub fn list(&mut self) -> Result<(Vec<String>, usize), LexError> {
        self.skip_ws();
        let start = self.pos;
        if !self.rest().starts_with('[') {
            return Err((
                "expected a list such as [value1, value2]".to_string(),
                start,
            ));
        }
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            let item_at = self.pos;
            let rest = self.rest();
            let item = match rest.chars().next() {
                None => return Err(("the list is not closed with ']'".to_string(), start)),
                Some(']') if items.is_empty() => {
                    return Err(("the list is empty".to_string(), start))
                }
                Some(q @ ('\'' | '"')) => self.quoted(q)?,
                Some(_) => {
                    let len = rest
                        .find(|c: char| c.is_whitespace() || c == ',' || c == ']' || c == '[')
                        .unwrap_or(rest.len());
                    if len == 0 {
                        return Err(("expected a value in the list".to_string(), item_at));
                    }
                    self.pos += len;
                    rest[..len].to_string()
                }
            };
            items.push(item);
            self.skip_ws();
            match self.rest().chars().next() {
                Some(',') => self.pos += 1,
                Some(']') => {
                    self.pos += 1;
                    return Ok((items, start));
                }
                None => return Err(("the list is not closed with ']'".to_string(), start)),
                Some(c) => {
                    return Err((
                        format!("expected ',' or ']' in the list, found '{c}'"),
                        self.pos,
                    ))
                }
            }
        }
    }

    /// A quoted value. Inside, a backslash escapes the quote and itself; any other backslash is kept, so that
    /// regular expressions such as `'\d+'` read naturally.
    fn quoted(&mut self, quote: char) -> Result<String, LexError> {
        let start = self.pos;
        let mut out = String::new();
        let mut chars = self.rest().char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            if c == quote {
                self.pos += i + 1;
                return Ok(out);
            }
            if c == '\\' {
                match chars.next() {
                    Some((_, n)) if n == quote || n == '\\' => out.push(n),
                    Some((_, n)) => {
                        out.push('\\');
                        out.push(n);
                    }
                    None => break,
                }
            } else {
                out.push(c);
            }
        }
        Err((format!("the value is missing its closing {quote}"), start))
    }
}
