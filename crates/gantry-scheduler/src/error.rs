use crate::query::ParseError;

/// A placement strategy or constraint ECS would refuse with InvalidParameterException.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPlacement {
    #[error("Invalid placement strategy type '{0}': expected random, spread or binpack")]
    StrategyType(String),
    #[error("The binpack placement strategy needs a field: cpu or memory")]
    BinpackFieldMissing,
    #[error("Invalid binpack field '{0}': expected cpu or memory")]
    BinpackField(String),
    #[error("The spread placement strategy needs a field: instanceId, host or attribute:NAME")]
    SpreadFieldMissing,
    #[error("Invalid spread field '{0}': expected instanceId, host or attribute:NAME")]
    SpreadField(String),
    #[error("Too many placement strategies: {0} (at most {max})", max = crate::MAX_STRATEGIES)]
    TooManyStrategies(usize),
    #[error("Invalid placement constraint type '{0}': expected distinctInstance or memberOf")]
    ConstraintType(String),
    #[error("The memberOf placement constraint needs an expression")]
    ExpressionMissing,
    #[error("The distinctInstance placement constraint does not take an expression")]
    UnexpectedExpression,
    #[error("Invalid memberOf expression: {0}")]
    Expression(#[from] ParseError),
    #[error("Too many placement constraints: {0} (at most {max})", max = crate::MAX_CONSTRAINTS)]
    TooManyConstraints(usize),
}
