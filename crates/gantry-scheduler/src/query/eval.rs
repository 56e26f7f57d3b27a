//! Evaluation of a parsed expression against one instance's facts: no parsing, no allocation.
//!
//! A subject may have several values (`task:group`: every group with a task on the instance) or none (a missing
//! attribute, no EC2 instance id). A comparison holds when some value satisfies it, so a subject without values
//! satisfies nothing but `!exists`: `attribute:stack != prod` selects instances that have a `stack` attribute
//! whose value is not `prod`, as the ECS docs describe; negate a comparison (`not(task:group == db)`) to select
//! instances without the value.

use std::cmp::Ordering;

use super::ast::{Argument, Comparison, Compiled, Expr, Operator, Subject};
use super::literal::compare_version;
use crate::InstanceFacts;

impl Expr {
    /// Whether the instance is selected. Linear in the size of the expression (and, for `task:group`, in the
    /// number of groups on the instance only for operators other than `==`, `in` and `exists`).
    pub fn matches(&self, facts: &InstanceFacts) -> bool {
        match self {
            Expr::Compare(c) => c.matches(facts),
            Expr::Not(e) => !e.matches(facts),
            Expr::And(a, b) => a.matches(facts) && b.matches(facts),
            Expr::Or(a, b) => a.matches(facts) || b.matches(facts),
        }
    }

    /// Whether the expression looks at the task groups on an instance (which placement itself changes).
    pub fn uses_task_groups(&self) -> bool {
        match self {
            Expr::Compare(c) => c.subject == Subject::TaskGroup,
            Expr::Not(e) => e.uses_task_groups(),
            Expr::And(a, b) | Expr::Or(a, b) => a.uses_task_groups() || b.uses_task_groups(),
        }
    }
}

impl Comparison {
    pub fn matches(&self, f: &InstanceFacts) -> bool {
        match &self.subject {
            Subject::AgentConnected => self.agent_connected(f.agent_connected),
            Subject::AgentVersion => match &self.compiled {
                Compiled::Version(v) => {
                    compare_version(&f.agent_version, v).is_some_and(|o| self.ordering_holds(o))
                }
                _ => false,
            },
            Subject::Attribute(name) => match (self.operator, f.attributes.get(name)) {
                (Operator::Exists, found) => found.is_some(),
                (Operator::NotExists, found) => found.is_none(),
                (_, Some(Some(value))) => self.text(value),
                // Missing, or present without a value: nothing to compare.
                _ => false,
            },
            Subject::Ec2InstanceId => f.ec2_instance_id.as_deref().is_some_and(|v| self.text(v)),
            Subject::RegisteredAt => match self.compiled {
                Compiled::Instant(t) => self.ordering_holds(f.registered_at.cmp(&t)),
                _ => false,
            },
            Subject::RunningTasksCount => match self.compiled {
                Compiled::Count(n) => self.ordering_holds(f.running_tasks_count.cmp(&n)),
                _ => false,
            },
            Subject::TaskGroup => self.task_group(f),
        }
    }

    /// `true`/`false` without regard to case, as a boolean reads.
    fn agent_connected(&self, connected: bool) -> bool {
        let value = if connected { "true" } else { "false" };
        let same = |v: &String| v.eq_ignore_ascii_case(value);
        match (self.operator, &self.argument) {
            (Operator::Equals, Argument::Value(v)) => same(v),
            (Operator::NotEquals, Argument::Value(v)) => !same(v),
            (Operator::In, Argument::List(l)) => l.iter().any(same),
            (Operator::NotIn, Argument::List(l)) => !l.iter().any(same),
            _ => self.text(value),
        }
    }

    fn task_group(&self, f: &InstanceFacts) -> bool {
        let has = |g: &str| f.task_groups.get(g).is_some_and(|n| *n > 0);
        let mut groups = f
            .task_groups
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(g, _)| g);
        match (self.operator, &self.argument) {
            (Operator::Exists, _) => groups.next().is_some(),
            (Operator::NotExists, _) => groups.next().is_none(),
            (Operator::Equals, Argument::Value(v)) => has(v),
            (Operator::In, Argument::List(l)) => l.iter().any(|v| has(v)),
            _ => groups.any(|g| self.text(g)),
        }
    }

    /// A string-valued comparison of one value. Ordering on text compares numbers as numbers when both sides are
    /// numbers, else as strings.
    fn text(&self, value: &str) -> bool {
        match (&self.argument, &self.compiled) {
            (_, Compiled::Pattern(re)) => {
                re.is_match(value) == (self.operator == Operator::Matches)
            }
            (Argument::List(list), _) => {
                list.iter().any(|v| v == value) == (self.operator == Operator::In)
            }
            (Argument::Value(arg), _) => {
                let ordering = match (value.parse::<f64>(), arg.parse::<f64>()) {
                    (Ok(a), Ok(b)) if self.operator.is_ordering() => a.partial_cmp(&b),
                    _ => Some(value.cmp(arg.as_str())),
                };
                ordering.is_some_and(|o| self.ordering_holds(o))
            }
            (Argument::None, _) => false,
        }
    }

    /// Whether `value <op> argument` holds, given how the value compares with the argument.
    fn ordering_holds(&self, o: Ordering) -> bool {
        match self.operator {
            Operator::Equals => o == Ordering::Equal,
            Operator::NotEquals => o != Ordering::Equal,
            Operator::GreaterThan => o == Ordering::Greater,
            Operator::GreaterThanEqual => o != Ordering::Less,
            Operator::LessThan => o == Ordering::Less,
            Operator::LessThanEqual => o != Ordering::Greater,
            _ => false,
        }
    }
}
