use rand::Rng;

use crate::{InstanceFacts, PortSet, DYNAMIC_PORT_RANGE};

/// What one task needs. Fixed host ports are `(port, udp)`; dynamic ones only count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Demand {
    pub cpu: i64,
    pub memory: i64,
    pub fixed_ports: Vec<(u16, bool)>,
    /// One entry per dynamic port needed: `true` for udp.
    pub dynamic_ports: Vec<bool>,
    /// Attributes the instance must have (`requiresAttributes` of the task definition): name, and the value when
    /// one is required.
    pub required_attributes: Vec<(String, Option<String>)>,
}

/// An instance that may take the task, with what it has left and what the query language can ask about it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Candidate {
    pub id: String,
    pub cpu_remaining: i64,
    pub memory_remaining: i64,
    pub ports_used: PortSet,
    pub facts: InstanceFacts,
}

/// Why no instance could take a task. Ordered by how far an instance got through the checks (agent, attributes,
/// cpu, memory, ports, then constraints), so that the greatest is the closest match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PlacementFailure {
    Agent,
    Attribute,
    Cpu,
    Memory,
    Ports,
    MemberOf,
    DistinctInstance,
}

impl PlacementFailure {
    /// The `failures[].reason` ECS returns.
    pub fn reason(&self) -> &'static str {
        match self {
            PlacementFailure::Agent => "AGENT",
            PlacementFailure::Attribute => "ATTRIBUTE",
            PlacementFailure::Cpu => "RESOURCE:CPU",
            PlacementFailure::Memory => "RESOURCE:MEMORY",
            PlacementFailure::Ports => "RESOURCE:PORTS",
            PlacementFailure::MemberOf => "MemberOf placement constraint unsatisfied.",
            PlacementFailure::DistinctInstance => {
                "DistinctInstance placement constraint unsatisfied."
            }
        }
    }
}

/// Where a task goes: the candidate's index and the dynamic host ports chosen for it, in `Demand` order.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub candidate: usize,
    pub dynamic_ports: Vec<u16>,
}

/// Whether the instance can take the task, constraints aside. Copies nothing: O(fixed ports x log ports used +
/// used ports in the dynamic range).
pub(crate) fn fits(c: &Candidate, d: &Demand) -> Result<(), PlacementFailure> {
    if !c.facts.agent_connected {
        return Err(PlacementFailure::Agent);
    }
    let attributes_ok = d.required_attributes.iter().all(|(name, value)| {
        match (c.facts.attributes.get(name), value) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(have), Some(want)) => have.as_deref() == Some(want.as_str()),
        }
    });
    if !attributes_ok {
        return Err(PlacementFailure::Attribute);
    }
    if d.cpu > c.cpu_remaining {
        return Err(PlacementFailure::Cpu);
    }
    if d.memory > c.memory_remaining {
        return Err(PlacementFailure::Memory);
    }
    for (n, &(port, udp)) in d.fixed_ports.iter().enumerate() {
        if c.ports_used.set(udp).contains(&port) || d.fixed_ports[..n].contains(&(port, udp)) {
            return Err(PlacementFailure::Ports);
        }
    }
    for udp in [false, true] {
        let wanted = d.dynamic_ports.iter().filter(|u| **u == udp).count();
        if wanted == 0 {
            continue;
        }
        let taken_by_fixed = d
            .fixed_ports
            .iter()
            .filter(|(p, u)| *u == udp && DYNAMIC_PORT_RANGE.contains(p))
            .count();
        let span = (DYNAMIC_PORT_RANGE.end() - DYNAMIC_PORT_RANGE.start()) as usize + 1;
        let used = c.ports_used.set(udp).range(DYNAMIC_PORT_RANGE).count();
        if span.saturating_sub(used + taken_by_fixed) < wanted {
            return Err(PlacementFailure::Ports);
        }
    }
    Ok(())
}

/// Takes what the task needs from an instance that `fits` it, choosing its dynamic ports.
pub(crate) fn take(c: &mut Candidate, d: &Demand, rng: &mut impl Rng) -> Vec<u16> {
    c.cpu_remaining -= d.cpu;
    c.memory_remaining -= d.memory;
    for &(port, udp) in &d.fixed_ports {
        c.ports_used.insert(port, udp);
    }
    let mut chosen = Vec::with_capacity(d.dynamic_ports.len());
    for &udp in &d.dynamic_ports {
        // `fits` counted enough free ports; should it not have, the task gets fewer rather than a panic.
        if let Some(port) = c.ports_used.pick_dynamic(udp, rng) {
            c.ports_used.insert(port, udp);
            chosen.push(port);
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::{plan, PlacementRequest};

    /// One task, resources only, the way `plan` places it.
    fn place(
        candidates: &[Candidate],
        demand: &Demand,
        rng: &mut StdRng,
    ) -> Result<Placement, (Option<usize>, PlacementFailure)> {
        let request = PlacementRequest {
            demand: demand.clone(),
            ..Default::default()
        };
        let mut candidates = candidates.to_vec();
        let mut results = plan(&mut candidates, &request, 1, rng);
        results
            .pop()
            .expect("one result per task")
            .map_err(|u| (u.candidate, u.failure))
    }

    fn cand(id: &str, cpu: i64, mem: i64, tcp: &[u16]) -> Candidate {
        let mut ports_used = PortSet::default();
        tcp.iter().for_each(|p| {
            ports_used.insert(*p, false);
        });
        Candidate {
            id: id.into(),
            cpu_remaining: cpu,
            memory_remaining: mem,
            ports_used,
            ..Default::default()
        }
    }

    #[test]
    fn picks_an_instance_that_fits() {
        let mut rng = StdRng::seed_from_u64(1);
        let cs = [cand("small", 100, 100, &[]), cand("big", 4096, 8192, &[])];
        let d = Demand {
            cpu: 1024,
            memory: 512,
            ..Default::default()
        };
        for _ in 0..20 {
            assert_eq!(place(&cs, &d, &mut rng).unwrap().candidate, 1);
        }
    }

    #[test]
    fn reports_the_closest_failure() {
        let mut rng = StdRng::seed_from_u64(2);
        let cs = [cand("a", 100, 10_000, &[]), cand("b", 10_000, 100, &[])];
        let d = Demand {
            cpu: 1000,
            memory: 1000,
            ..Default::default()
        };
        assert_eq!(
            place(&cs, &d, &mut rng),
            Err((Some(1), PlacementFailure::Memory))
        );
        let cs = [cand("a", 10_000, 10_000, &[80])];
        let d = Demand {
            fixed_ports: vec![(80, false)],
            ..Default::default()
        };
        assert_eq!(
            place(&cs, &d, &mut rng),
            Err((Some(0), PlacementFailure::Ports))
        );
        // The same port over udp is free.
        let d = Demand {
            fixed_ports: vec![(80, true)],
            ..Default::default()
        };
        assert!(place(&cs, &d, &mut rng).is_ok());
        assert_eq!(place(&[], &d, &mut rng), Err((None, PlacementFailure::Cpu)));
    }

    #[test]
    fn dynamic_ports_are_distinct_free_and_in_range() {
        let mut rng = StdRng::seed_from_u64(3);
        let cs = [cand("a", 1, 1, &[49153, 49154])];
        let d = Demand {
            dynamic_ports: vec![false; 50],
            ..Default::default()
        };
        let p = place(&cs, &d, &mut rng).unwrap();
        let mut ports = p.dynamic_ports.clone();
        ports.sort();
        ports.dedup();
        assert_eq!(ports.len(), 50);
        assert!(ports
            .iter()
            .all(|p| crate::DYNAMIC_PORT_RANGE.contains(p) && *p != 49153 && *p != 49154));
    }

    #[test]
    fn exhausted_dynamic_range_is_a_ports_failure() {
        let mut rng = StdRng::seed_from_u64(4);
        let all: Vec<u16> = crate::DYNAMIC_PORT_RANGE.collect();
        let cs = [cand("a", 1, 1, &all)];
        let d = Demand {
            dynamic_ports: vec![false],
            ..Default::default()
        };
        assert_eq!(
            place(&cs, &d, &mut rng),
            Err((Some(0), PlacementFailure::Ports))
        );
    }

    #[test]
    fn agent_and_attributes_are_checked_first() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut c = cand("a", 1, 1, &[]);
        c.facts.agent_connected = false;
        let d = Demand {
            cpu: 100,
            ..Default::default()
        };
        assert_eq!(fits(&c, &d), Err(PlacementFailure::Agent));
        c.facts.agent_connected = true;
        let mut d = Demand {
            required_attributes: vec![("ecs.capability.task-eni".into(), None)],
            ..Default::default()
        };
        assert_eq!(fits(&c, &d), Err(PlacementFailure::Attribute));
        c.facts
            .attributes
            .insert("ecs.capability.task-eni".into(), None);
        assert_eq!(fits(&c, &d), Ok(()));
        d.required_attributes = vec![("ecs.os-type".into(), Some("linux".into()))];
        c.facts
            .attributes
            .insert("ecs.os-type".into(), Some("windows".into()));
        assert_eq!(fits(&c, &d), Err(PlacementFailure::Attribute));
        c.facts
            .attributes
            .insert("ecs.os-type".into(), Some("linux".into()));
        assert!(place(&[c], &d, &mut rng).is_ok());
    }

    #[test]
    fn duplicate_fixed_ports_in_one_task_do_not_fit() {
        let c = cand("a", 1, 1, &[]);
        let d = Demand {
            fixed_ports: vec![(80, false), (80, false)],
            ..Default::default()
        };
        assert_eq!(fits(&c, &d), Err(PlacementFailure::Ports));
    }

    #[test]
    fn reasons_are_the_ecs_strings() {
        let all = [
            PlacementFailure::Agent,
            PlacementFailure::Attribute,
            PlacementFailure::Cpu,
            PlacementFailure::Memory,
            PlacementFailure::Ports,
            PlacementFailure::MemberOf,
            PlacementFailure::DistinctInstance,
        ];
        let reasons: Vec<&str> = all.iter().map(|f| f.reason()).collect();
        assert_eq!(
            reasons,
            [
                "AGENT",
                "ATTRIBUTE",
                "RESOURCE:CPU",
                "RESOURCE:MEMORY",
                "RESOURCE:PORTS",
                "MemberOf placement constraint unsatisfied.",
                "DistinctInstance placement constraint unsatisfied."
            ]
        );
    }
}
