use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::query::parse;

fn instance(id: &str, az: &str, cpu: i64, memory: i64) -> Candidate {
    let mut c = Candidate {
        id: id.into(),
        cpu_remaining: cpu,
        memory_remaining: memory,
        ..Default::default()
    };
    c.facts
        .attributes
        .insert("ecs.availability-zone".into(), Some(az.into()));
    c
}

fn request(group: &str, cpu: i64, memory: i64) -> PlacementRequest {
    PlacementRequest {
        group: group.into(),
        demand: Demand {
            cpu,
            memory,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn spread_az() -> PlacementStrategy {
    PlacementStrategy::Spread(SpreadField::Attribute("ecs.availability-zone".into()))
}

fn member_of(src: &str) -> PlacementConstraint {
    PlacementConstraint::MemberOf(parse(src).unwrap())
}

fn placed(results: &[Result<Placement, Unplaced>]) -> Vec<usize> {
    results
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|p| p.candidate))
        .collect()
}

fn tasks_per_az(cs: &[Candidate], group: &str) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for c in cs {
        let az = c.facts.attributes["ecs.availability-zone"].clone().unwrap();
        *out.entry(az).or_insert(0) += c.facts.group_tasks(group);
    }
    out
}

fn three_azs() -> Vec<Candidate> {
    ["a", "b", "c"]
        .iter()
        .flat_map(|az| {
            (0..2)
                .map(move |n| instance(&format!("{az}{n}"), &format!("us-east-1{az}"), 4096, 8192))
        })
        .collect()
}

#[test]
fn spread_over_three_zones_gives_one_each() {
    for seed in 0..20 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut cs = three_azs();
        let mut req = request("family:web", 256, 512);
        req.strategies = vec![spread_az()];
        let out = plan(&mut cs, &req, 3, &mut rng);
        assert_eq!(placed(&out).len(), 3);
        assert!(tasks_per_az(&cs, "family:web").values().all(|n| *n == 1));
    }
}

#[test]
fn spread_balances_with_the_group_tasks_already_there() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut cs = three_azs();
    cs[0].facts.task_groups.insert("service:web".into(), 2); // a: 2
    cs[5].facts.task_groups.insert("service:web".into(), 1); // c: 1
    cs[2].facts.task_groups.insert("service:other".into(), 5); // another group does not count
    let mut req = request("service:web", 256, 512);
    req.strategies = vec![spread_az()];
    let out = plan(&mut cs, &req, 3, &mut rng);
    // The first task goes to b, the only zone without one.
    assert!(["b0", "b1"].contains(&cs[out[0].as_ref().unwrap().candidate].id.as_str()));
    assert!(tasks_per_az(&cs, "service:web").values().all(|n| *n == 2));
}

#[test]
fn spread_by_instance_evens_out() {
    let mut rng = StdRng::seed_from_u64(2);
    let mut cs = three_azs();
    cs[3].facts.task_groups.insert("g".into(), 1);
    let mut req = request("g", 1, 1);
    req.strategies = vec![PlacementStrategy::Spread(SpreadField::Instance)];
    plan(&mut cs, &req, 11, &mut rng);
    assert!(cs.iter().all(|c| c.facts.group_tasks("g") == 2));
}

#[test]
fn binpack_memory_fills_the_fullest_instance_first() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut cs = vec![
        instance("roomy", "a", 4096, 1000),
        instance("fullest", "a", 4096, 500),
        instance("empty", "a", 4096, 2000),
    ];
    let mut req = request("g", 0, 200);
    req.strategies = vec![PlacementStrategy::Binpack(BinpackField::Memory)];
    let out = plan(&mut cs, &req, 5, &mut rng);
    assert_eq!(placed(&out), [1, 1, 0, 0, 0]);
    assert_eq!(cs[1].memory_remaining, 100);
    assert_eq!(cs[0].memory_remaining, 400);
}

#[test]
fn binpack_cpu() {
    let mut rng = StdRng::seed_from_u64(4);
    let mut cs = vec![
        instance("a", "a", 1024, 100),
        instance("b", "a", 512, 100),
        instance("c", "a", 300, 100),
    ];
    let mut req = request("g", 256, 1);
    req.strategies = vec![PlacementStrategy::Binpack(BinpackField::Cpu)];
    let out = plan(&mut cs, &req, 3, &mut rng);
    // c (300) takes one, then b (512 -> 256 -> 0).
    assert_eq!(placed(&out), [2, 1, 1]);
}

#[test]
fn spread_by_zone_then_binpack_within_each() {
    for seed in 0..10 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut cs = vec![
            instance("a-big", "us-east-1a", 4096, 8000),
            instance("a-small", "us-east-1a", 4096, 1000),
            instance("b-big", "us-east-1b", 4096, 8000),
            instance("b-small", "us-east-1b", 4096, 1200),
        ];
        let mut req = request("g", 0, 400);
        req.strategies = vec![
            spread_az(),
            PlacementStrategy::Binpack(BinpackField::Memory),
        ];
        let out = plan(&mut cs, &req, 4, &mut rng);
        let mut got = placed(&out);
        got.sort();
        assert_eq!(got, [1, 1, 3, 3], "seed {seed}");
        // A fifth task: a-small has 200 left, so zone a's binpack picks a-big... but spread picks by count first.
        let out = plan(&mut cs, &req, 2, &mut rng);
        let mut got = placed(&out);
        got.sort();
        assert_eq!(got, [0, 3]);
    }
}

#[test]
fn random_uses_every_instance_and_ignores_later_strategies() {
    let mut rng = StdRng::seed_from_u64(5);
    let mut cs = three_azs();
    let mut req = request("g", 1, 1);
    req.strategies = vec![
        PlacementStrategy::Random,
        PlacementStrategy::Binpack(BinpackField::Memory),
    ];
    let out = plan(&mut cs, &req, 600, &mut rng);
    let mut per = [0; 6];
    placed(&out).into_iter().for_each(|i| per[i] += 1);
    assert!(per.iter().all(|n| (60..=140).contains(n)), "{per:?}");
}

#[test]
fn ties_are_broken_at_random() {
    let mut rng = StdRng::seed_from_u64(6);
    let mut seen = [0; 6];
    for _ in 0..300 {
        let mut cs = three_azs();
        let mut req = request("g", 1, 1);
        req.strategies = vec![PlacementStrategy::Binpack(BinpackField::Memory)];
        seen[placed(&plan(&mut cs, &req, 1, &mut rng))[0]] += 1;
    }
    assert!(seen.iter().all(|n| *n > 20), "{seen:?}");
}

#[test]
fn distinct_instance_across_count() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut cs = vec![
        instance("a", "a", 4096, 4096),
        instance("b", "a", 4096, 4096),
        instance("c", "a", 4096, 4096),
        instance("d", "a", 4096, 4096),
    ];
    cs[3].facts.task_groups.insert("g".into(), 1);
    let mut req = request("g", 1, 1);
    req.constraints = vec![PlacementConstraint::DistinctInstance];
    req.strategies = vec![PlacementStrategy::Binpack(BinpackField::Memory)];
    let out = plan(&mut cs, &req, 5, &mut rng);
    let mut got = placed(&out);
    got.sort();
    assert_eq!(got, [0, 1, 2]);
    for r in &out[3..] {
        let u = r.as_ref().unwrap_err();
        assert_eq!(
            u.reason(),
            "DistinctInstance placement constraint unsatisfied."
        );
        assert!(u.candidate.is_some());
    }
}

#[test]
fn member_of_filters_instances() {
    let mut rng = StdRng::seed_from_u64(8);
    let mut cs = three_azs();
    cs[1]
        .facts
        .attributes
        .insert("ecs.instance-type".into(), Some("t2.small".into()));
    cs[4]
        .facts
        .attributes
        .insert("ecs.instance-type".into(), Some("t2.micro".into()));
    cs[5]
        .facts
        .attributes
        .insert("ecs.instance-type".into(), Some("m5.large".into()));
    let mut req = request("g", 1, 1);
    req.constraints = vec![member_of(
        "attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1c",
    )];
    let out = plan(&mut cs, &req, 20, &mut rng);
    assert!(placed(&out).iter().all(|i| *i == 1));
    req.constraints = vec![member_of("attribute:ecs.instance-type == c5.large")];
    let out = plan(&mut cs, &req, 2, &mut rng);
    for r in out {
        assert_eq!(
            r.unwrap_err().reason(),
            "MemberOf placement constraint unsatisfied."
        );
    }
}

#[test]
fn member_of_task_group_affinity_and_anti_affinity() {
    let mut rng = StdRng::seed_from_u64(9);
    let mut cs = three_azs();
    cs[2].facts.task_groups.insert("service:db".into(), 1);
    let mut req = request("service:web", 1, 1);
    req.constraints = vec![member_of("task:group == service:db")];
    assert!(placed(&plan(&mut cs, &req, 5, &mut rng))
        .iter()
        .all(|i| *i == 2));
    // Not next to the group itself: one per instance, like distinctInstance.
    let mut cs = three_azs();
    let mut req = request("service:api", 1, 1);
    req.constraints = vec![member_of("not(task:group == service:api)")];
    let out = plan(&mut cs, &req, 7, &mut rng);
    let mut got = placed(&out);
    got.sort();
    assert_eq!(got, [0, 1, 2, 3, 4, 5]);
    assert_eq!(
        out[6].clone().unwrap_err().failure,
        PlacementFailure::MemberOf
    );
}

#[test]
fn the_closest_failure_is_reported() {
    let mut rng = StdRng::seed_from_u64(10);
    let mut cs = vec![
        instance("small", "a", 100, 100),
        instance("other-type", "a", 4096, 4096),
    ];
    let mut req = request("g", 200, 200);
    req.constraints = vec![member_of("attribute:stack == prod")];
    let out = plan(&mut cs, &req, 1, &mut rng);
    assert_eq!(
        out[0],
        Err(Unplaced {
            candidate: Some(1),
            failure: PlacementFailure::MemberOf
        })
    );
    req.constraints.clear();
    req.demand.memory = 5000;
    let out = plan(&mut cs, &req, 1, &mut rng);
    assert_eq!(out[0].clone().unwrap_err().reason(), "RESOURCE:MEMORY");
    cs.iter_mut().for_each(|c| c.facts.agent_connected = false);
    let out = plan(&mut cs, &request("g", 1, 1), 1, &mut rng);
    assert_eq!(out[0].clone().unwrap_err().reason(), "AGENT");
    let out = plan(&mut [], &request("g", 1, 1), 2, &mut rng);
    assert_eq!(
        out,
        vec![
            Err(Unplaced {
                candidate: None,
                failure: PlacementFailure::Cpu
            });
            2
        ]
    );
}

#[test]
fn instances_short_of_resources_report_the_same_closest_failure() {
    // A ranked plan puts off checking instances short of cpu or memory until a task fails. Clusters where every
    // instance fails, for all kinds of reasons: the greatest failure, on the first instance with it, as checking
    // every instance in order gives.
    use rand::Rng;
    let mut rng = StdRng::seed_from_u64(12);
    let mut req = request("g", 200, 200);
    req.demand.required_attributes = vec![("needed".into(), None)];
    req.constraints = vec![member_of("attribute:stack == prod")];
    req.strategies = vec![
        spread_az(),
        PlacementStrategy::Binpack(BinpackField::Memory),
    ];
    let mut compared = 0;
    for _ in 0..500 {
        let mut cs: Vec<Candidate> = (0..rng.gen_range(1..10))
            .map(|i| {
                let az = if rng.gen_bool(0.5) { "a" } else { "b" };
                let mut c = instance(
                    &format!("i{i}"),
                    az,
                    rng.gen_range(0..300),
                    rng.gen_range(0..300),
                );
                c.facts.agent_connected = rng.gen_bool(0.8);
                if rng.gen_bool(0.7) {
                    c.facts.attributes.insert("needed".into(), None);
                }
                if rng.gen_bool(0.4) {
                    c.facts
                        .attributes
                        .insert("stack".into(), Some("prod".into()));
                }
                c
            })
            .collect();
        let failures: Vec<Option<PlacementFailure>> = cs
            .iter()
            .map(|c| match crate::fit::fits(c, &req.demand) {
                Err(f) => Some(f),
                Ok(()) if c.facts.attributes.get("stack") != Some(&Some("prod".into())) => {
                    Some(PlacementFailure::MemberOf)
                }
                Ok(()) => None,
            })
            .collect();
        if failures.iter().any(Option::is_none) {
            continue;
        }
        let mut expected: Option<(usize, PlacementFailure)> = None;
        for (i, f) in failures.iter().enumerate() {
            let f = f.expect("every instance fails");
            if expected.is_none_or(|(_, g)| f > g) {
                expected = Some((i, f));
            }
        }
        let (i, failure) = expected.expect("at least one instance");
        let out = plan(&mut cs, &req, 2, &mut rng);
        assert_eq!(
            out[0],
            Err(Unplaced {
                candidate: Some(i),
                failure
            }),
            "{failures:?}"
        );
        compared += 1;
    }
    assert!(
        compared > 100,
        "only {compared} clusters where every instance fails"
    );
}

#[test]
fn running_out_of_resources_midway() {
    let mut rng = StdRng::seed_from_u64(11);
    let mut cs = vec![
        instance("a", "a", 1000, 1000),
        instance("b", "a", 1000, 600),
    ];
    let out = plan(&mut cs, &request("g", 300, 300), 6, &mut rng);
    assert_eq!(placed(&out).len(), 5);
    // a ran out of cpu, b of memory: b got further through the checks.
    assert_eq!(
        out[5],
        Err(Unplaced {
            candidate: Some(1),
            failure: PlacementFailure::Memory
        })
    );
    assert!(cs
        .iter()
        .all(|c| c.cpu_remaining >= 0 && c.memory_remaining >= 0));
}

#[test]
fn host_ports_are_not_shared() {
    let mut rng = StdRng::seed_from_u64(12);
    let mut cs = vec![
        instance("a", "a", 4096, 4096),
        instance("b", "a", 4096, 4096),
    ];
    let mut req = request("g", 1, 1);
    req.demand.fixed_ports = vec![(80, false)];
    req.demand.dynamic_ports = vec![false, true];
    let out = plan(&mut cs, &req, 3, &mut rng);
    let mut got = placed(&out);
    got.sort();
    assert_eq!(got, [0, 1]);
    assert_eq!(out[2].clone().unwrap_err().reason(), "RESOURCE:PORTS");
    assert!(cs.iter().all(|c| c.ports_used.tcp.contains(&80)));
    // Dynamic ports only: many tasks on one instance, all different.
    let mut cs = vec![instance("a", "a", 4096, 4096)];
    req.demand.fixed_ports.clear();
    let out = plan(&mut cs, &req, 50, &mut rng);
    let mut ports: Vec<u16> = out
        .iter()
        .flat_map(|r| r.as_ref().unwrap().dynamic_ports.clone())
        .collect();
    assert_eq!(ports.len(), 100);
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 100);
    assert_eq!(cs[0].ports_used.tcp.len() + cs[0].ports_used.udp.len(), 100);
}

#[test]
fn candidates_keep_what_was_placed() {
    let mut rng = StdRng::seed_from_u64(13);
    let mut cs = vec![instance("a", "a", 1000, 1000)];
    plan(&mut cs, &request("family:web", 100, 200), 3, &mut rng);
    assert_eq!(cs[0].cpu_remaining, 700);
    assert_eq!(cs[0].memory_remaining, 400);
    assert_eq!(cs[0].facts.group_tasks("family:web"), 3);
    assert_eq!(cs[0].facts.running_tasks_count, 0);
    // A second call sees the first: distinctInstance refuses the instance now.
    let mut req = request("family:web", 1, 1);
    req.constraints = vec![PlacementConstraint::DistinctInstance];
    assert_eq!(
        plan(&mut cs, &req, 1, &mut rng)[0]
            .clone()
            .unwrap_err()
            .failure,
        PlacementFailure::DistinctInstance
    );
}

#[test]
fn daemon_one_task_per_selected_instance() {
    let mut rng = StdRng::seed_from_u64(14);
    let mut cs = three_azs();
    cs[0].facts.task_groups.insert("service:agent".into(), 1); // already has its task
    cs[1].memory_remaining = 10; // cannot fit
    let mut req = request("service:agent", 10, 100);
    req.constraints = vec![member_of("attribute:ecs.availability-zone != us-east-1c")];
    let out = plan_daemon(&mut cs, &req, &mut rng);
    assert_eq!(
        out,
        vec![
            Err(Unplaced {
                candidate: Some(1),
                failure: PlacementFailure::Memory
            }),
            Ok(Placement {
                candidate: 2,
                dynamic_ports: vec![]
            }),
            Ok(Placement {
                candidate: 3,
                dynamic_ports: vec![]
            }),
        ]
    );
    assert_eq!(cs[2].facts.group_tasks("service:agent"), 1);
    // Run again: nothing left to do but the instance without room.
    assert_eq!(plan_daemon(&mut cs, &req, &mut rng).len(), 1);
}

#[test]
fn prepared_numbers_give_the_same_plan() {
    let mut cs: Vec<Candidate> = (0..30)
        .map(|i| {
            instance(
                &format!("i{i}"),
                ["a", "b", "c", "d"][i % 4],
                1000,
                1000 + i as i64,
            )
        })
        .collect();
    cs[3].facts.attributes.remove("ecs.availability-zone");
    for (i, c) in cs.iter_mut().enumerate().take(10) {
        c.facts.task_groups.insert("g".into(), (i % 3) as u32);
    }
    let mut req = request("g", 100, 100);
    req.strategies = vec![
        spread_az(),
        PlacementStrategy::Binpack(BinpackField::Memory),
    ];
    let group_tasks: Vec<u32> = cs.iter().map(|c| c.facts.group_tasks("g")).collect();
    let values: HashMap<String, Vec<u32>> = [(
        "ecs.availability-zone".to_string(),
        // Any numbering will do as long as equal values share a number.
        attribute_values(&cs, "ecs.availability-zone")
            .iter()
            .map(|v| 7 - v)
            .collect(),
    )]
    .into();
    let mut derived = cs.clone();
    let a = plan(&mut derived, &req, 40, &mut StdRng::seed_from_u64(5));
    let resources: Vec<[i64; 2]> = cs
        .iter()
        .map(|c| [c.cpu_remaining, c.memory_remaining])
        .collect();
    let prepared = Prepared {
        group_tasks: Some(&group_tasks),
        attribute_values: Some(&values),
        resources_remaining: Some(&resources),
    };
    let b = plan_prepared(&mut cs, &req, 40, &mut StdRng::seed_from_u64(5), prepared);
    assert_eq!(placed(&a), placed(&b));
    assert_eq!(derived, cs);
}
