//! Property tests of placement over random clusters and demands (seeded, so a failure replays). Each placement
//! is checked against a slow reference written from the ECS docs: the chosen instance fits, satisfies the
//! constraints and is among the best by the strategies; a failure means no instance could take the task.

use std::collections::{BTreeMap, BTreeSet};

use gantry_scheduler::query::{parse, Expr};
use gantry_scheduler::{
    plan, BinpackField, Candidate, Demand, PlacementConstraint, PlacementRequest,
    PlacementStrategy, SpreadField, DYNAMIC_PORT_RANGE,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const AZ: &str = "ecs.availability-zone";
const GROUP: &str = "service:web";
const EXPRESSIONS: [&str; 6] = [
    "attribute:ecs.instance-type =~ t2.*",
    "attribute:ecs.availability-zone in [az-1, az-2]",
    "not(task:group == service:web)",
    "task:group == service:db or runningTasksCount < 3",
    "attribute:stack exists and attribute:ecs.availability-zone != az-3",
    "agentConnected == true",
];

fn random_cluster(rng: &mut StdRng) -> Vec<Candidate> {
    let zones = rng.gen_range(1..=4);
    (0..rng.gen_range(0..25))
        .map(|n| {
            let mut c = Candidate {
                id: format!("i-{n}"),
                cpu_remaining: rng.gen_range(0..4096),
                memory_remaining: rng.gen_range(0..8192),
                ..Default::default()
            };
            c.facts.agent_connected = rng.gen_bool(0.9);
            c.facts.running_tasks_count = rng.gen_range(0..6);
            if rng.gen_bool(0.9) {
                let az = format!("az-{}", rng.gen_range(1..=zones));
                c.facts.attributes.insert(AZ.into(), Some(az));
            }
            let kind = ["t2.small", "t2.micro", "m5.large"][rng.gen_range(0..3)];
            c.facts
                .attributes
                .insert("ecs.instance-type".into(), Some(kind.into()));
            if rng.gen_bool(0.5) {
                c.facts.attributes.insert("stack".into(), None);
            }
            for group in [GROUP, "service:db"] {
                if rng.gen_bool(0.3) {
                    c.facts
                        .task_groups
                        .insert(group.into(), rng.gen_range(1..3));
                }
            }
            for _ in 0..rng.gen_range(0..3) {
                c.ports_used
                    .insert([80, 443, 8080][rng.gen_range(0..3)], false);
            }
            c
        })
        .collect()
}

fn random_request(rng: &mut StdRng) -> PlacementRequest {
    let pool = [
        PlacementStrategy::Random,
        PlacementStrategy::Spread(SpreadField::Instance),
        PlacementStrategy::Spread(SpreadField::Attribute(AZ.into())),
        PlacementStrategy::Binpack(BinpackField::Cpu),
        PlacementStrategy::Binpack(BinpackField::Memory),
    ];
    let mut constraints = Vec::new();
    if rng.gen_bool(0.3) {
        constraints.push(PlacementConstraint::DistinctInstance);
    }
    for _ in 0..rng.gen_range(0..3) {
        let e = EXPRESSIONS[rng.gen_range(0..EXPRESSIONS.len())];
        constraints.push(PlacementConstraint::MemberOf(parse(e).unwrap()));
    }
    PlacementRequest {
        group: GROUP.into(),
        demand: Demand {
            cpu: rng.gen_range(0..1024),
            memory: rng.gen_range(0..2048),
            fixed_ports: if rng.gen_bool(0.3) {
                vec![([80, 443, 8080][rng.gen_range(0..3)], false)]
            } else {
                vec![]
            },
            dynamic_ports: (0..rng.gen_range(0..3))
                .map(|_| rng.gen_bool(0.3))
                .collect(),
            required_attributes: vec![],
        },
        strategies: (0..rng.gen_range(0..4))
            .map(|_| pool[rng.gen_range(0..pool.len())].clone())
            .collect(),
        constraints,
    }
}

/// The reference: can the instance take the task now?
fn can_take(c: &Candidate, r: &PlacementRequest) -> bool {
    let d = &r.demand;
    c.facts.agent_connected
        && c.cpu_remaining >= d.cpu
        && c.memory_remaining >= d.memory
        && d.fixed_ports
            .iter()
            .all(|(p, udp)| !c.ports_used.set(*udp).contains(p))
        && r.constraints.iter().all(|k| match k {
            PlacementConstraint::DistinctInstance => c.facts.group_tasks(&r.group) == 0,
            PlacementConstraint::MemberOf(e) => e.matches(&c.facts),
        })
}

/// The reference ranking: the strategies up to the first random, as numbers where less is better.
fn keys(cs: &[Candidate], i: usize, r: &PlacementRequest) -> Vec<i64> {
    let az = |c: &Candidate| c.facts.attributes.get(AZ).cloned().flatten();
    let mut out = Vec::new();
    for s in &r.strategies {
        out.push(match s {
            PlacementStrategy::Random => break,
            PlacementStrategy::Binpack(BinpackField::Cpu) => cs[i].cpu_remaining,
            PlacementStrategy::Binpack(BinpackField::Memory) => cs[i].memory_remaining,
            PlacementStrategy::Spread(SpreadField::Instance) => {
                cs[i].facts.group_tasks(&r.group) as i64
            }
            PlacementStrategy::Spread(SpreadField::Attribute(_)) => cs
                .iter()
                .filter(|c| az(c) == az(&cs[i]))
                .map(|c| c.facts.group_tasks(&r.group) as i64)
                .sum(),
        });
    }
    out
}

#[test]
fn every_placement_is_feasible_and_best_and_every_failure_is_real() {
    let mut rng = StdRng::seed_from_u64(20);
    let (mut placed, mut failed) = (0, 0);
    for round in 0..400 {
        let initial = random_cluster(&mut rng);
        let r = random_request(&mut rng);
        let count = rng.gen_range(1..15);
        let mut cs = initial.clone();
        let out = plan(&mut cs, &r, count, &mut rng);
        assert_eq!(out.len(), count);
        // Replay on a copy, checking each step against the reference.
        let mut sim = initial.clone();
        for (n, result) in out.iter().enumerate() {
            let feasible: Vec<usize> = (0..sim.len()).filter(|i| can_take(&sim[*i], &r)).collect();
            match result {
                Ok(p) => {
                    placed += 1;
                    let i = p.candidate;
                    assert!(
                        feasible.contains(&i),
                        "round {round} task {n}: {i} cannot take it"
                    );
                    let best = feasible.iter().map(|j| keys(&sim, *j, &r)).min().unwrap();
                    assert_eq!(
                        keys(&sim, i, &r),
                        best,
                        "round {round} task {n}: not the best"
                    );
                    let c = &mut sim[i];
                    c.cpu_remaining -= r.demand.cpu;
                    c.memory_remaining -= r.demand.memory;
                    for (p, udp) in &r.demand.fixed_ports {
                        c.ports_used.insert(*p, *udp);
                    }
                    assert_eq!(p.dynamic_ports.len(), r.demand.dynamic_ports.len());
                    for (port, udp) in p.dynamic_ports.iter().zip(&r.demand.dynamic_ports) {
                        assert!(DYNAMIC_PORT_RANGE.contains(port));
                        assert!(c.ports_used.insert(*port, *udp), "port {port} reused");
                    }
                    *c.facts.task_groups.entry(r.group.clone()).or_insert(0) += 1;
                }
                Err(u) => {
                    failed += 1;
                    assert!(
                        feasible.is_empty(),
                        "round {round} task {n}: {feasible:?} could take it"
                    );
                    assert_eq!(u.candidate.is_none(), sim.is_empty());
                }
            }
        }
        // The planner's own view agrees with the replay, and no resource went below zero.
        assert_eq!(cs, sim, "round {round}");
        for (c, before) in cs.iter().zip(&initial) {
            assert!(c.cpu_remaining >= 0 || c.cpu_remaining == before.cpu_remaining);
            assert!(c.memory_remaining >= 0 || c.memory_remaining == before.memory_remaining);
        }
    }
    assert!(
        placed > 300 && failed > 100,
        "placed {placed}, failed {failed}"
    );
}

#[test]
fn distinct_instance_never_doubles_up() {
    let mut rng = StdRng::seed_from_u64(21);
    for _ in 0..200 {
        let mut cs = random_cluster(&mut rng);
        let mut r = random_request(&mut rng);
        r.constraints.push(PlacementConstraint::DistinctInstance);
        let had: Vec<u32> = cs.iter().map(|c| c.facts.group_tasks(GROUP)).collect();
        let out = plan(&mut cs, &r, 30, &mut rng);
        let mut seen = BTreeSet::new();
        for p in out.iter().flatten() {
            assert!(seen.insert(p.candidate));
            assert_eq!(had[p.candidate], 0);
        }
    }
}

#[test]
fn member_of_placements_satisfy_the_expression() {
    let mut rng = StdRng::seed_from_u64(22);
    for _ in 0..300 {
        let mut cs = random_cluster(&mut rng);
        let mut r = random_request(&mut rng);
        let expr: Expr = parse(EXPRESSIONS[rng.gen_range(0..EXPRESSIONS.len())]).unwrap();
        r.constraints = vec![PlacementConstraint::MemberOf(expr.clone())];
        let mut sim = cs.clone();
        for p in plan(&mut cs, &r, 10, &mut rng).iter().flatten() {
            assert!(expr.matches(&sim[p.candidate].facts), "{expr}");
            *sim[p.candidate]
                .facts
                .task_groups
                .entry(GROUP.into())
                .or_insert(0) += 1;
        }
    }
}

#[test]
fn spread_keeps_zones_even_when_resources_allow() {
    let mut rng = StdRng::seed_from_u64(23);
    for _ in 0..200 {
        let zones = rng.gen_range(1..=5);
        let mut cs: Vec<Candidate> = (0..rng.gen_range(1..20))
            .map(|n| {
                let mut c = Candidate {
                    id: format!("i-{n}"),
                    cpu_remaining: 1 << 20,
                    memory_remaining: 1 << 20,
                    ..Default::default()
                };
                let az = format!("az-{}", n % zones);
                c.facts.attributes.insert(AZ.into(), Some(az));
                if rng.gen_bool(0.3) {
                    c.facts
                        .task_groups
                        .insert(GROUP.into(), rng.gen_range(1..4));
                }
                c
            })
            .collect();
        let per_zone = |cs: &[Candidate]| {
            let mut m: BTreeMap<String, i64> = BTreeMap::new();
            for c in cs {
                let az = c.facts.attributes[AZ].clone().unwrap();
                *m.entry(az).or_insert(0) += c.facts.group_tasks(GROUP) as i64;
            }
            m
        };
        let spread_of =
            |m: &BTreeMap<String, i64>| m.values().max().unwrap() - m.values().min().unwrap();
        let before = spread_of(&per_zone(&cs));
        let mut r = random_request(&mut rng);
        r.demand = Demand {
            cpu: 1,
            memory: 1,
            ..Default::default()
        };
        r.constraints.clear();
        r.strategies = vec![
            PlacementStrategy::Spread(SpreadField::Attribute(AZ.into())),
            PlacementStrategy::Binpack(BinpackField::Memory),
        ];
        let count = rng.gen_range(1..40);
        let out = plan(&mut cs, &r, count, &mut rng);
        assert!(out.iter().all(|p| p.is_ok()));
        let after = spread_of(&per_zone(&cs));
        // Each task goes to the emptiest zone: the gap never grows, and closes to at most one.
        assert!(after <= before.max(1), "{before} -> {after}");
        let total: i64 = per_zone(&cs).values().sum();
        let zones_used = per_zone(&cs).len() as i64;
        if count as i64 >= before * zones_used {
            assert!(after <= 1, "{before} -> {after} after {count} of {total}");
        }
    }
}
