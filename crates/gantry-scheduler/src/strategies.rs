//! Placement strategies: preferences among the instances that can take a task (best effort, unlike constraints).
//! They apply in order, each choosing among the instances the previous ones left tied; a random choice breaks
//! the ties that remain. The ranking itself lives in `plan`, over precomputed numbers.

use crate::InvalidPlacement;

/// ECS takes at most five strategies per task or service.
pub const MAX_STRATEGIES: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlacementStrategy {
    Random,
    /// Balance the tasks of the group across the values of a field.
    Spread(SpreadField),
    /// The instance with the least of the resource left (that still fits the task).
    Binpack(BinpackField),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpreadField {
    /// `instanceId`, or `host` which means the same.
    Instance,
    /// `attribute:NAME`, for example `attribute:ecs.availability-zone`.
    Attribute(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinpackField {
    Cpu,
    Memory,
}

impl PlacementStrategy {
    /// From the wire shape `{type, field}`. Field keywords are read without regard to case; `random` ignores its
    /// field, as the API reference says it is not used.
    pub fn from_wire(
        kind: &str,
        field: Option<&str>,
    ) -> Result<PlacementStrategy, InvalidPlacement> {
        let field = field.filter(|f| !f.is_empty());
        match kind {
            "random" => Ok(PlacementStrategy::Random),
            "binpack" => match field {
                None => Err(InvalidPlacement::BinpackFieldMissing),
                Some(f) if f.eq_ignore_ascii_case("cpu") => {
                    Ok(PlacementStrategy::Binpack(BinpackField::Cpu))
                }
                Some(f) if f.eq_ignore_ascii_case("memory") => {
                    Ok(PlacementStrategy::Binpack(BinpackField::Memory))
                }
                Some(f) => Err(InvalidPlacement::BinpackField(f.to_string())),
            },
            "spread" => match field {
                None => Err(InvalidPlacement::SpreadFieldMissing),
                Some(f)
                    if f.eq_ignore_ascii_case("instanceId") || f.eq_ignore_ascii_case("host") =>
                {
                    Ok(PlacementStrategy::Spread(SpreadField::Instance))
                }
                Some(f) => match f.split_once(':') {
                    Some((prefix, name))
                        if prefix.eq_ignore_ascii_case("attribute") && !name.is_empty() =>
                    {
                        Ok(PlacementStrategy::Spread(SpreadField::Attribute(
                            name.to_string(),
                        )))
                    }
                    _ => Err(InvalidPlacement::SpreadField(f.to_string())),
                },
            },
            other => Err(InvalidPlacement::StrategyType(other.to_string())),
        }
    }

    /// The wire `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            PlacementStrategy::Random => "random",
            PlacementStrategy::Spread(_) => "spread",
            PlacementStrategy::Binpack(_) => "binpack",
        }
    }

    /// The wire `field`, canonical (`host` reads back as `instanceId`).
    pub fn field(&self) -> Option<String> {
        match self {
            PlacementStrategy::Random => None,
            PlacementStrategy::Spread(SpreadField::Instance) => Some("instanceId".into()),
            PlacementStrategy::Spread(SpreadField::Attribute(a)) => Some(format!("attribute:{a}")),
            PlacementStrategy::Binpack(BinpackField::Cpu) => Some("cpu".into()),
            PlacementStrategy::Binpack(BinpackField::Memory) => Some("memory".into()),
        }
    }

    pub fn check_count(n: usize) -> Result<(), InvalidPlacement> {
        if n > MAX_STRATEGIES {
            return Err(InvalidPlacement::TooManyStrategies(n));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PlacementStrategy as S;

    #[test]
    fn wire_shapes() {
        assert_eq!(S::from_wire("random", None), Ok(S::Random));
        assert_eq!(S::from_wire("random", Some("memory")), Ok(S::Random));
        assert_eq!(
            S::from_wire("binpack", Some("memory")),
            Ok(S::Binpack(BinpackField::Memory))
        );
        assert_eq!(
            S::from_wire("binpack", Some("CPU")),
            Ok(S::Binpack(BinpackField::Cpu))
        );
        assert_eq!(
            S::from_wire("binpack", None),
            Err(InvalidPlacement::BinpackFieldMissing)
        );
        assert_eq!(
            S::from_wire("binpack", Some("disk")),
            Err(InvalidPlacement::BinpackField("disk".into()))
        );
        assert_eq!(
            S::from_wire("spread", Some("instanceId")),
            Ok(S::Spread(SpreadField::Instance))
        );
        assert_eq!(
            S::from_wire("spread", Some("host")),
            Ok(S::Spread(SpreadField::Instance))
        );
        assert_eq!(
            S::from_wire("spread", Some("attribute:ecs.availability-zone")),
            Ok(S::Spread(SpreadField::Attribute(
                "ecs.availability-zone".into()
            )))
        );
        assert_eq!(
            S::from_wire("spread", Some("")),
            Err(InvalidPlacement::SpreadFieldMissing)
        );
        assert_eq!(
            S::from_wire("spread", Some("attribute:")),
            Err(InvalidPlacement::SpreadField("attribute:".into()))
        );
        assert_eq!(
            S::from_wire("spread", Some("zone")),
            Err(InvalidPlacement::SpreadField("zone".into()))
        );
        assert_eq!(
            S::from_wire("pack", None),
            Err(InvalidPlacement::StrategyType("pack".into()))
        );
    }

    #[test]
    fn field_reads_back() {
        for (kind, field) in [
            ("binpack", "cpu"),
            ("binpack", "memory"),
            ("spread", "instanceId"),
            ("spread", "attribute:ecs.availability-zone"),
        ] {
            let s = S::from_wire(kind, Some(field)).unwrap();
            assert_eq!((s.kind(), s.field().as_deref()), (kind, Some(field)));
        }
        assert_eq!(S::Random.field(), None);
    }

    #[test]
    fn at_most_five() {
        assert_eq!(S::check_count(5), Ok(()));
        assert_eq!(
            S::check_count(6),
            Err(InvalidPlacement::TooManyStrategies(6))
        );
    }
}
