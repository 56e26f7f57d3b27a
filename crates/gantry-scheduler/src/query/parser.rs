//! Recursive descent over the lexer: `or` binds loosest, then `and`, then `not`; parentheses group.
//!
//! ```text
//! expr       := and (("||" | "or") and)*
//! and        := unary (("&&" | "and") unary)*
//! unary      := ("!" | "not") unary | "(" expr ")" | comparison
//! comparison := subject operator [value | list]
//! ```

use regex::Regex;

use super::ast::{Argument, Comparison, Compiled, Expr, Operator, Subject};
use super::lexer::{LexError, Lexer, Token};
use super::literal::{parse_instant, parse_version};

/// ECS refuses longer expressions.
pub const MAX_EXPRESSION_LENGTH: usize = 2000;

/// A malformed expression: what is wrong and where (1-based character column), for InvalidParameterException.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at column {column}")]
pub struct ParseError {
    pub message: String,
    pub column: usize,
}

/// Parses an expression once; evaluate it per instance with [`Expr::matches`]. Linear in the length of the text
/// (plus regular expression compilation).
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    if src.chars().count() > MAX_EXPRESSION_LENGTH {
        return Err(ParseError {
            message: format!("the expression is longer than {MAX_EXPRESSION_LENGTH} characters"),
            column: MAX_EXPRESSION_LENGTH + 1,
        });
    }
    let mut p = Parser {
        src,
        lexer: Lexer::new(src),
        depth: 0,
    };
    if src.trim().is_empty() {
        return Err(p.error("the expression is empty", 0));
    }
    let expr = p.or()?;
    match p.lexer.next() {
        (Token::End, _) => Ok(expr),
        (Token::RParen, at) => Err(p.error("unmatched ')'", at)),
        (t, at) => Err(p.error(
            format!(
                "expected 'and', 'or' or the end of the expression, found {}",
                describe(t)
            ),
            at,
        )),
    }
}

/// Nesting deeper than this is refused rather than risking the stack on hostile input.
const MAX_DEPTH: usize = 100;

struct Parser<'a> {
    src: &'a str,
    lexer: Lexer<'a>,
    depth: usize,
}

fn describe(t: Token<'_>) -> String {
    match t {
        Token::LParen => "'('".into(),
        Token::RParen => "')'".into(),
        Token::Not => "'not'".into(),
        Token::And => "'and'".into(),
        Token::Or => "'or'".into(),
        Token::Word(w) => format!("'{w}'"),
        Token::Unexpected(c) => format!("'{c}'"),
        Token::End => "the end of the expression".into(),
    }
}

impl<'a> Parser<'a> {
    fn error(&self, message: impl Into<String>, at: usize) -> ParseError {
        ParseError {
            message: message.into(),
            column: self.src[..at.min(self.src.len())].chars().count() + 1,
        }
    }

    fn lex_error(&self, (message, at): LexError) -> ParseError {
        self.error(message, at)
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and()?;
        while let (Token::Or, _, _) = self.lexer.peek() {
            self.lexer.next();
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        while let (Token::And, _, _) = self.lexer.peek() {
            self.lexer.next();
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("the expression is nested too deeply", self.lexer.pos()));
        }
        let result = self.unary_inner();
        self.depth -= 1;
        result
    }

    fn unary_inner(&mut self) -> Result<Expr, ParseError> {
        match self.lexer.next() {
            (Token::Not, _) => Ok(Expr::Not(Box::new(self.unary()?))),
            (Token::LParen, open) => {
                let inner = self.or()?;
                match self.lexer.next() {
                    (Token::RParen, _) => Ok(inner),
                    (Token::End, _) => Err(self.error("'(' is never closed", open)),
                    (t, at) => Err(self.error(
                        format!("expected ')' or a connective, found {}", describe(t)),
                        at,
                    )),
                }
            }
            (Token::Word(w), at) => self.comparison(w, at).map(Expr::Compare),
            (t, at) => Err(self.error(
                format!("expected a subject, 'not' or '(', found {}", describe(t)),
                at,
            )),
        }
    }

    fn comparison(&mut self, word: &str, at: usize) -> Result<Comparison, ParseError> {
        let subject = Subject::from_word(word).ok_or_else(|| {
            self.error(
                format!(
                    "unknown subject '{word}' (expected one of {})",
                    Subject::NAMES
                ),
                at,
            )
        })?;
        let (operator, op_at) = self.lexer.operator().map_err(|e| self.lex_error(e))?;
        if !subject.allows(operator) {
            return Err(self.error(
                format!(
                    "operator '{}' cannot be used with {}",
                    operator.symbol(),
                    subject.name()
                ),
                op_at,
            ));
        }
        let (argument, arg_at) = if !operator.takes_argument() {
            (Argument::None, self.lexer.pos())
        } else if operator.takes_list() {
            let (list, at) = self.lexer.list().map_err(|e| self.lex_error(e))?;
            (Argument::List(list), at)
        } else {
            let (value, at) = self.lexer.value().map_err(|e| self.lex_error(e))?;
            (Argument::Value(value), at)
        };
        let compiled = self.compile(&subject, operator, &argument, arg_at)?;
        Ok(Comparison {
            subject,
            operator,
            argument,
            compiled,
        })
    }

    /// Converts the argument once, so that a bad date, number, version or pattern is a parse error.
    fn compile(
        &self,
        subject: &Subject,
        operator: Operator,
        argument: &Argument,
        at: usize,
    ) -> Result<Compiled, ParseError> {
        let Argument::Value(value) = argument else {
            return Ok(Compiled::Text);
        };
        if matches!(operator, Operator::Matches | Operator::NotMatches) {
            return Regex::new(&format!(r"\A(?:{value})\z"))
                .map(Compiled::Pattern)
                .map_err(|e| {
                    let why = e.to_string();
                    let last = why.lines().last().unwrap_or("invalid").trim().to_string();
                    self.error(format!("invalid regular expression '{value}': {last}"), at)
                });
        }
        match subject {
            Subject::RunningTasksCount => value
                .parse::<i64>()
                .map(Compiled::Count)
                .map_err(|_| self.error(format!("runningTasksCount needs a whole number, found '{value}'"), at)),
            Subject::RegisteredAt => parse_instant(value).map(Compiled::Instant).ok_or_else(|| {
                self.error(
                    format!(
                        "registeredAt needs a date such as 2018-06-18T22:28:28+00:00, 2018-06-18T22:28:28Z, \
                         2018-06-18T22:28:28 or 2018-06-18, found '{value}'"
                    ),
                    at,
                )
            }),
            Subject::AgentVersion => parse_version(value).map(Compiled::Version).ok_or_else(|| {
                self.error(
                    format!("agentVersion needs a version such as 1.14.5, found '{value}'"),
                    at,
                )
            }),
            _ => Ok(Compiled::Text),
        }
    }
}
