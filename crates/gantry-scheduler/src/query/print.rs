//! Prints an expression back in the language, such that parsing the text gives the same expression.

use std::fmt;

use super::ast::{Argument, Comparison, Expr};

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Compare(c) => write!(f, "{c}"),
            Expr::Not(e) => match **e {
                Expr::Compare(_) | Expr::Not(_) => write!(f, "not {e}"),
                _ => write!(f, "not ({e})"),
            },
            // Chains are left-associative: only a right operand of the same or a looser kind needs parentheses.
            Expr::Or(a, b) => {
                write!(f, "{a} or ")?;
                grouped(f, b, matches!(**b, Expr::Or(..)))
            }
            Expr::And(a, b) => {
                grouped(f, a, matches!(**a, Expr::Or(..)))?;
                write!(f, " and ")?;
                grouped(f, b, matches!(**b, Expr::Or(..) | Expr::And(..)))
            }
        }
    }
}

fn grouped(f: &mut fmt::Formatter<'_>, e: &Expr, parens: bool) -> fmt::Result {
    if parens {
        write!(f, "({e})")
    } else {
        write!(f, "{e}")
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.subject.name(), self.operator.symbol())?;
        match &self.argument {
            Argument::None => Ok(()),
            Argument::Value(v) => write!(f, " {}", literal(v)),
            Argument::List(l) => {
                let items: Vec<String> = l.iter().map(|v| literal(v)).collect();
                write!(f, " [{}]", items.join(", "))
            }
        }
    }
}

/// A value bare when it is plainly safe, else single-quoted with `'` and `\` escaped.
fn literal(v: &str) -> String {
    let safe = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@*+".contains(c));
    if safe {
        return v.to_string();
    }
    let mut out = String::with_capacity(v.len() + 2);
    out.push('\'');
    for c in v.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}
