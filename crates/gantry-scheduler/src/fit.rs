use rand::seq::SliceRandom;
use rand::Rng;

use crate::PortSet;

/// What one task needs. Fixed host ports are `(port, udp)`; dynamic ones only count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Demand {
    pub cpu: i64,
    pub memory: i64,
    pub fixed_ports: Vec<(u16, bool)>,
    /// One entry per dynamic port needed: `true` for udp.
    pub dynamic_ports: Vec<bool>,
}

/// An instance that may take the task, with what it has left.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Candidate {
    pub id: String,
    pub cpu_remaining: i64,
    pub memory_remaining: i64,
    pub ports_used: PortSet,
}

/// Why no instance could take a task, as ECS reports it in `failures[].reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PlacementFailure {
    Cpu,
    Memory,
    Ports,
}

impl PlacementFailure {
    pub fn reason(&self) -> &'static str {
        match self {
            PlacementFailure::Cpu => "RESOURCE:CPU",
            PlacementFailure::Memory => "RESOURCE:MEMORY",
            PlacementFailure::Ports => "RESOURCE:PORTS",
        }
    }
}

/// Where a task goes: the candidate's index and the dynamic host ports chosen for it, in `Demand` order.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub candidate: usize,
    pub dynamic_ports: Vec<u16>,
}

fn check(c: &Candidate, d: &Demand, rng: &mut impl Rng) -> Result<Vec<u16>, PlacementFailure> {
    if d.cpu > c.cpu_remaining {
        return Err(PlacementFailure::Cpu);
    }
    if d.memory > c.memory_remaining {
        return Err(PlacementFailure::Memory);
    }
    let mut used = c.ports_used.clone();
    for &(port, udp) in &d.fixed_ports {
        if !used.insert(port, udp) {
            return Err(PlacementFailure::Ports);
        }
    }
    let mut chosen = Vec::with_capacity(d.dynamic_ports.len());
    for &udp in &d.dynamic_ports {
        let port = used.pick_dynamic(udp, rng).ok_or(PlacementFailure::Ports)?;
        used.insert(port, udp);
        chosen.push(port);
    }
    Ok(chosen)
}

/// Places one task on a random instance among those that fit. When none fits, the failure is the one of the
/// instance that came closest (passed the most checks), which is the most useful thing to tell the user.
/// The failure is returned with the index of that closest candidate (`None` when there were no candidates).
pub fn place(
    candidates: &[Candidate],
    demand: &Demand,
    rng: &mut impl Rng,
) -> Result<Placement, (Option<usize>, PlacementFailure)> {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.shuffle(rng);
    let mut closest: Option<(usize, PlacementFailure)> = None;
    for i in order {
        match check(&candidates[i], demand, rng) {
            Ok(dynamic_ports) => {
                return Ok(Placement {
                    candidate: i,
                    dynamic_ports,
                })
            }
            Err(f) if closest.is_none_or(|(_, c)| f > c) => closest = Some((i, f)),
            Err(_) => {}
        }
    }
    Err(match closest {
        Some((i, f)) => (Some(i), f),
        None => (None, PlacementFailure::Cpu),
    })
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

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
}
