//! The cluster query language of ECS (`memberOf` constraints, `ListContainerInstances --filter`):
//! `subject operator [argument]`, combined with and/or/not and parentheses. Expressions are parsed once into an
//! [`Expr`] (regular expressions compiled, dates and numbers converted) and then evaluated cheaply per instance.

mod ast;
mod eval;
mod lexer;
mod literal;
mod parser;
mod print;

pub use ast::{Argument, Comparison, Expr, Operator, Subject};
pub use parser::{parse, ParseError, MAX_EXPRESSION_LENGTH};

#[cfg(test)]
mod tests;
