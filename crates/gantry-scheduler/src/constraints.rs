//! Placement constraints: rules an instance must satisfy to take a task (binding, unlike strategies).

use crate::query::{self, Expr};
use crate::InvalidPlacement;

/// ECS counts the constraints of the task definition and of the request together.
pub const MAX_CONSTRAINTS: usize = 10;

#[derive(Debug, Clone, PartialEq)]
pub enum PlacementConstraint {
    /// Each task of the group on a different instance (tasks already running count).
    DistinctInstance,
    /// Only instances the expression selects; parsed once.
    MemberOf(Expr),
}

impl PlacementConstraint {
    /// From the wire shape `{type, expression}`.
    pub fn from_wire(
        kind: &str,
        expression: Option<&str>,
    ) -> Result<PlacementConstraint, InvalidPlacement> {
        match (kind, expression) {
            // An empty string is how some clients send "no expression".
            ("distinctInstance", None | Some("")) => Ok(PlacementConstraint::DistinctInstance),
            ("distinctInstance", Some(_)) => Err(InvalidPlacement::UnexpectedExpression),
            ("memberOf", None) => Err(InvalidPlacement::ExpressionMissing),
            ("memberOf", Some(e)) if e.trim().is_empty() => {
                Err(InvalidPlacement::ExpressionMissing)
            }
            ("memberOf", Some(e)) => Ok(PlacementConstraint::MemberOf(query::parse(e)?)),
            (other, _) => Err(InvalidPlacement::ConstraintType(other.to_string())),
        }
    }

    /// The wire `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            PlacementConstraint::DistinctInstance => "distinctInstance",
            PlacementConstraint::MemberOf(_) => "memberOf",
        }
    }

    /// Checks the count of all the constraints that apply to a task.
    pub fn check_count(n: usize) -> Result<(), InvalidPlacement> {
        if n > MAX_CONSTRAINTS {
            return Err(InvalidPlacement::TooManyConstraints(n));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shapes() {
        assert_eq!(
            PlacementConstraint::from_wire("distinctInstance", None),
            Ok(PlacementConstraint::DistinctInstance)
        );
        assert_eq!(
            PlacementConstraint::from_wire("distinctInstance", Some("task:group == a")),
            Err(InvalidPlacement::UnexpectedExpression)
        );
        assert_eq!(
            PlacementConstraint::from_wire("memberOf", None),
            Err(InvalidPlacement::ExpressionMissing)
        );
        assert_eq!(
            PlacementConstraint::from_wire("memberOf", Some("  ")),
            Err(InvalidPlacement::ExpressionMissing)
        );
        assert!(matches!(
            PlacementConstraint::from_wire("memberOf", Some("attribute:a == b")),
            Ok(PlacementConstraint::MemberOf(_))
        ));
        assert_eq!(
            PlacementConstraint::from_wire("sameInstance", None),
            Err(InvalidPlacement::ConstraintType("sameInstance".into()))
        );
        let err = PlacementConstraint::from_wire("memberOf", Some("attribute:a ==")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid memberOf expression: expected a value at the end of the expression at column 15"
        );
        let long = format!("attribute:a == {}", "x".repeat(2000));
        assert!(matches!(
            PlacementConstraint::from_wire("memberOf", Some(&long)),
            Err(InvalidPlacement::Expression(_))
        ));
    }

    #[test]
    fn at_most_ten() {
        assert_eq!(PlacementConstraint::check_count(10), Ok(()));
        assert_eq!(
            PlacementConstraint::check_count(11),
            Err(InvalidPlacement::TooManyConstraints(11))
        );
        assert_eq!(
            InvalidPlacement::TooManyConstraints(11).to_string(),
            "Too many placement constraints: 11 (at most 10)"
        );
    }
}
