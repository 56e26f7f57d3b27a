use regex::Regex;

/// A parsed expression. `And`/`Or` chains are left-associative, as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Compare(Comparison),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

/// What an expression asks about an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    AgentConnected,
    AgentVersion,
    /// `attribute:NAME`
    Attribute(String),
    Ec2InstanceId,
    RegisteredAt,
    RunningTasksCount,
    /// `task:group`
    TaskGroup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    NotEquals,
    GreaterThan,
    GreaterThanEqual,
    LessThan,
    LessThanEqual,
    Exists,
    NotExists,
    In,
    NotIn,
    Matches,
    NotMatches,
}

/// The argument as written (unquoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Argument {
    None,
    Value(String),
    List(Vec<String>),
}

/// `subject operator [argument]`, with the argument converted once for evaluation.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub subject: Subject,
    pub operator: Operator,
    pub argument: Argument,
    pub(super) compiled: Compiled,
}

/// The argument in the form evaluation needs, so that nothing is parsed per instance.
#[derive(Debug, Clone)]
pub(super) enum Compiled {
    Text,
    /// Anchored: Java's `String.matches` semantics, the whole value must match.
    Pattern(Regex),
    Count(i64),
    /// Epoch seconds.
    Instant(i64),
    Version(Vec<u64>),
}

impl PartialEq for Comparison {
    // The compiled form follows from the rest.
    fn eq(&self, other: &Self) -> bool {
        self.subject == other.subject
            && self.operator == other.operator
            && self.argument == other.argument
    }
}

impl Operator {
    /// Every operator with its symbol and its word form, as the docs list them.
    pub const ALL: [(Operator, &'static str, &'static str); 12] = [
        (Operator::Equals, "==", "equals"),
        (Operator::NotEquals, "!=", "not_equals"),
        (Operator::GreaterThan, ">", "greater_than"),
        (Operator::GreaterThanEqual, ">=", "greater_than_equal"),
        (Operator::LessThan, "<", "less_than"),
        (Operator::LessThanEqual, "<=", "less_than_equal"),
        (Operator::Exists, "exists", "exists"),
        (Operator::NotExists, "!exists", "not_exists"),
        (Operator::In, "in", "in"),
        (Operator::NotIn, "!in", "not_in"),
        (Operator::Matches, "=~", "matches"),
        (Operator::NotMatches, "!~", "not_matches"),
    ];

    pub fn symbol(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(o, _, _)| *o == self)
            .map(|(_, s, _)| *s)
            .unwrap_or("?")
    }

    pub fn from_word(word: &str) -> Option<Operator> {
        Self::ALL
            .iter()
            .find(|(_, s, w)| w.eq_ignore_ascii_case(word) || s.eq_ignore_ascii_case(word))
            .map(|(o, _, _)| *o)
    }

    pub fn is_ordering(self) -> bool {
        matches!(
            self,
            Operator::GreaterThan
                | Operator::GreaterThanEqual
                | Operator::LessThan
                | Operator::LessThanEqual
        )
    }

    pub fn takes_list(self) -> bool {
        matches!(self, Operator::In | Operator::NotIn)
    }

    pub fn takes_argument(self) -> bool {
        !matches!(self, Operator::Exists | Operator::NotExists)
    }
}

impl Subject {
    pub const NAMES: &'static str =
        "agentConnected, agentVersion, attribute:NAME, ec2InstanceId, registeredAt, runningTasksCount, task:group";

    /// Subject names are matched without regard to case; attribute names keep theirs.
    pub fn from_word(word: &str) -> Option<Subject> {
        if let Some((prefix, name)) = word.split_once(':') {
            if prefix.eq_ignore_ascii_case("attribute") {
                return (!name.is_empty()).then(|| Subject::Attribute(name.to_string()));
            }
        }
        let s = match word.to_ascii_lowercase().as_str() {
            "agentconnected" => Subject::AgentConnected,
            "agentversion" => Subject::AgentVersion,
            "ec2instanceid" => Subject::Ec2InstanceId,
            "registeredat" => Subject::RegisteredAt,
            "runningtaskscount" => Subject::RunningTasksCount,
            "task:group" => Subject::TaskGroup,
            _ => return None,
        };
        Some(s)
    }

    pub fn name(&self) -> String {
        match self {
            Subject::AgentConnected => "agentConnected".into(),
            Subject::AgentVersion => "agentVersion".into(),
            Subject::Attribute(n) => format!("attribute:{n}"),
            Subject::Ec2InstanceId => "ec2InstanceId".into(),
            Subject::RegisteredAt => "registeredAt".into(),
            Subject::RunningTasksCount => "runningTasksCount".into(),
            Subject::TaskGroup => "task:group".into(),
        }
    }

    /// The operators the docs allow for the subject (attributes take them all; task:group all but ordering).
    pub fn allows(&self, op: Operator) -> bool {
        use Operator::*;
        match self {
            Subject::AgentConnected | Subject::Ec2InstanceId => {
                matches!(op, Equals | NotEquals | In | NotIn | Matches | NotMatches)
            }
            Subject::AgentVersion | Subject::RegisteredAt | Subject::RunningTasksCount => {
                matches!(op, Equals | NotEquals) || op.is_ordering()
            }
            Subject::Attribute(_) => true,
            Subject::TaskGroup => !op.is_ordering(),
        }
    }
}
