//! Placing the tasks of one group, one after another, with resources, constraints and strategies, as ECS does:
//! first the instances that fit the task's cpu, memory and ports, then those that satisfy the constraints, then
//! the strategies in order, each choosing among the instances the previous one left tied, and a random choice
//! among what remains.
//!
//! Cost: O(candidates x (constraints + strategies)) once to set up, then per task O(eligible x strategies) with
//! a few array reads per instance (O(1) when no strategy ranks, that is random only), plus the re-check of the
//! one instance that took the task. This relies on two facts: within one plan an instance only loses resources
//! and only gains tasks of the group, and only the instance that took a task changes. So an instance that cannot
//! take the task stays unable for the rest of the plan (it could only gain the group's tasks by taking one), and
//! the eligible set is computed once and shrinks.

use std::collections::HashMap;

use rand::Rng;

use crate::fit::{fits, take};
use crate::{
    BinpackField, Candidate, Demand, Placement, PlacementConstraint, PlacementFailure,
    PlacementStrategy, SpreadField, MAX_STRATEGIES,
};

/// What to place: `count` tasks of one task group (`service:NAME`, `family:NAME` or a custom group).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlacementRequest {
    pub group: String,
    pub demand: Demand,
    pub strategies: Vec<PlacementStrategy>,
    /// Those of the request and those of the task definition together.
    pub constraints: Vec<PlacementConstraint>,
}

/// A task that could not be placed, with the instance that came closest (`None` when there was none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unplaced {
    pub candidate: Option<usize>,
    pub failure: PlacementFailure,
}

impl Unplaced {
    /// The `failures[].reason` ECS returns.
    pub fn reason(&self) -> &'static str {
        self.failure.reason()
    }
}

/// Places `count` tasks, one by one, updating `candidates` as each is placed (resources, ports, the group's task
/// count in `facts.task_groups`), so that later tasks, and later calls with the same slice, see the earlier ones.
/// Pass every instance of the cluster: spread counts the group's tasks on all of them, including those that
/// cannot take the task. `facts.running_tasks_count` is left alone: placed tasks are pending, not running.
/// Returns one result per task, in order; once one fails, the rest fail alike.
pub fn plan(
    candidates: &mut [Candidate],
    request: &PlacementRequest,
    count: usize,
    rng: &mut impl Rng,
) -> Vec<Result<Placement, Unplaced>> {
    let mut planner = Planner::new(candidates, request);
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        match planner.choose(rng) {
            Some(pos) => out.push(Ok(planner.place(pos, rng))),
            None => {
                let unplaced = planner.unplaced();
                out.resize(count, Err(unplaced));
                break;
            }
        }
    }
    out
}

/// A DAEMON service: one task of the group on every instance that satisfies the `memberOf` constraints and has
/// none yet (instances the expressions exclude are skipped, not failures). Strategies do not apply. Returns a
/// result per instance that should run the task, in instance order, with the instance's failure when it cannot
/// take it. O(candidates x constraints).
pub fn plan_daemon(
    candidates: &mut [Candidate],
    request: &PlacementRequest,
    rng: &mut impl Rng,
) -> Vec<Result<Placement, Unplaced>> {
    let mut out = Vec::new();
    for (i, c) in candidates.iter_mut().enumerate() {
        let selected = request.constraints.iter().all(|k| match k {
            PlacementConstraint::MemberOf(e) => e.matches(&c.facts),
            PlacementConstraint::DistinctInstance => true,
        });
        if !selected || c.facts.group_tasks(&request.group) > 0 {
            continue;
        }
        out.push(match fits(c, &request.demand) {
            Ok(()) => {
                let dynamic_ports = take(c, &request.demand, rng);
                add_group_task(c, &request.group);
                Ok(Placement {
                    candidate: i,
                    dynamic_ports,
                })
            }
            Err(failure) => Err(Unplaced {
                candidate: Some(i),
                failure,
            }),
        });
    }
    out
}

fn add_group_task(c: &mut Candidate, group: &str) {
    match c.facts.task_groups.get_mut(group) {
        Some(n) => *n += 1,
        None => {
            c.facts.task_groups.insert(group.to_string(), 1);
        }
    }
}

/// One ranking criterion, as a number where less is better.
#[derive(Debug, Clone, Copy)]
enum Key {
    Cpu,
    Memory,
    /// The group's tasks on the instance (spread by instanceId or host).
    Instance,
    /// The group's tasks on all instances with the same value of an attribute (index into `spreads`).
    Bucket(usize),
}

/// Spread over an attribute: each instance's value as a small number, and the group's tasks per value.
struct Spread {
    bucket: Vec<u32>,
    counts: Vec<u32>,
}

struct Planner<'a> {
    candidates: &'a mut [Candidate],
    request: &'a PlacementRequest,
    /// The strategies up to the first `random` (which leaves a random choice, as the final tie-break does).
    keys: Vec<Key>,
    spreads: Vec<Spread>,
    /// Copies of what the ranking reads, kept in arrays for a tight loop.
    cpu: Vec<i64>,
    memory: Vec<i64>,
    group_tasks: Vec<u32>,
    /// Indices of the instances that can take the next task, in no particular order.
    eligible: Vec<u32>,
    closest: Option<(usize, PlacementFailure)>,
    ties: Vec<u32>,
}

impl<'a> Planner<'a> {
    fn new(candidates: &'a mut [Candidate], request: &'a PlacementRequest) -> Self {
        let group = request.group.as_str();
        let group_tasks: Vec<u32> = candidates
            .iter()
            .map(|c| c.facts.group_tasks(group))
            .collect();
        let mut keys = Vec::with_capacity(MAX_STRATEGIES);
        let mut spreads = Vec::new();
        for s in &request.strategies {
            let key = match s {
                PlacementStrategy::Random => break,
                PlacementStrategy::Binpack(BinpackField::Cpu) => Key::Cpu,
                PlacementStrategy::Binpack(BinpackField::Memory) => Key::Memory,
                PlacementStrategy::Spread(SpreadField::Instance) => Key::Instance,
                PlacementStrategy::Spread(SpreadField::Attribute(name)) => {
                    spreads.push(spread(candidates, name, &group_tasks));
                    Key::Bucket(spreads.len() - 1)
                }
            };
            keys.push(key);
        }
        let mut planner = Planner {
            cpu: candidates.iter().map(|c| c.cpu_remaining).collect(),
            memory: candidates.iter().map(|c| c.memory_remaining).collect(),
            candidates,
            request,
            keys,
            spreads,
            group_tasks,
            eligible: Vec::new(),
            closest: None,
            ties: Vec::new(),
        };
        for i in 0..planner.candidates.len() {
            match planner.check(i) {
                Ok(()) => planner.eligible.push(i as u32),
                Err(f) => planner.note(i, f),
            }
        }
        planner
    }

    /// Resources first, then the constraints in order.
    fn check(&self, i: usize) -> Result<(), PlacementFailure> {
        let c = &self.candidates[i];
        fits(c, &self.request.demand)?;
        for k in &self.request.constraints {
            match k {
                PlacementConstraint::DistinctInstance if self.group_tasks[i] > 0 => {
                    return Err(PlacementFailure::DistinctInstance)
                }
                PlacementConstraint::MemberOf(e) if !e.matches(&c.facts) => {
                    return Err(PlacementFailure::MemberOf)
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Remembers the failure of the instance that got furthest through the checks (the first such on a tie).
    fn note(&mut self, i: usize, f: PlacementFailure) {
        if self.closest.is_none_or(|(_, c)| f > c) {
            self.closest = Some((i, f));
        }
    }

    fn unplaced(&self) -> Unplaced {
        match self.closest {
            Some((i, failure)) => Unplaced {
                candidate: Some(i),
                failure,
            },
            None => Unplaced {
                candidate: None,
                failure: PlacementFailure::Cpu,
            },
        }
    }

    /// The position in `eligible` of the instance to take the next task: each key narrows the instances the
    /// previous ones left tied to those with its least value, then a random choice among the rest. The first
    /// key takes one pass over the eligible instances, each later one a pass over the remaining ties; each pass
    /// is a tight loop over one array. `None` when no instance can take the task.
    fn choose(&mut self, rng: &mut impl Rng) -> Option<usize> {
        if self.eligible.is_empty() {
            return None;
        }
        if self.keys.is_empty() {
            return Some(rng.gen_range(0..self.eligible.len()));
        }
        let mut ties = std::mem::take(&mut self.ties);
        ties.clear();
        for (n, key) in self.keys.iter().enumerate() {
            let first = n == 0;
            match *key {
                Key::Cpu => narrow(&mut ties, &self.eligible, first, |i| self.cpu[i]),
                Key::Memory => narrow(&mut ties, &self.eligible, first, |i| self.memory[i]),
                Key::Instance => narrow(&mut ties, &self.eligible, first, |i| {
                    self.group_tasks[i] as i64
                }),
                Key::Bucket(s) => {
                    let s = &self.spreads[s];
                    narrow(&mut ties, &self.eligible, first, |i| {
                        s.counts[s.bucket[i] as usize] as i64
                    })
                }
            }
            if ties.len() == 1 {
                break;
            }
        }
        let pos = ties[rng.gen_range(0..ties.len())] as usize;
        self.ties = ties;
        Some(pos)
    }

    /// Places a task on the eligible instance at `pos`, updating everything the next choice reads.
    fn place(&mut self, pos: usize, rng: &mut impl Rng) -> Placement {
        let i = self.eligible[pos] as usize;
        let c = &mut self.candidates[i];
        let dynamic_ports = take(c, &self.request.demand, rng);
        add_group_task(c, &self.request.group);
        self.cpu[i] = c.cpu_remaining;
        self.memory[i] = c.memory_remaining;
        self.group_tasks[i] += 1;
        for s in &mut self.spreads {
            s.counts[s.bucket[i] as usize] += 1;
        }
        if let Err(f) = self.check(i) {
            self.eligible.swap_remove(pos);
            self.note(i, f);
        }
        Placement {
            candidate: i,
            dynamic_ports,
        }
    }
}

/// Keeps in `ties` (positions in `eligible`) those with the least `value`. With `first`, `ties` is empty and
/// every eligible instance is a candidate.
fn narrow(ties: &mut Vec<u32>, eligible: &[u32], first: bool, value: impl Fn(usize) -> i64) {
    let mut best = i64::MAX;
    if first {
        for (pos, &i) in eligible.iter().enumerate() {
            let v = value(i as usize);
            if v < best {
                best = v;
                ties.clear();
            }
            if v == best {
                ties.push(pos as u32);
            }
        }
    } else {
        let mut kept = 0;
        for n in 0..ties.len() {
            let pos = ties[n];
            let v = value(eligible[pos as usize] as usize);
            if v < best {
                best = v;
                kept = 0;
            }
            if v == best {
                ties[kept] = pos;
                kept += 1;
            }
        }
        ties.truncate(kept);
    }
}

/// Numbers the values of attribute `name` across the candidates (those without it, or without a value, share
/// one) and counts the group's tasks per value.
fn spread(candidates: &[Candidate], name: &str, group_tasks: &[u32]) -> Spread {
    let mut ids: HashMap<Option<&str>, u32> = HashMap::new();
    let mut counts = Vec::new();
    let bucket = candidates
        .iter()
        .zip(group_tasks)
        .map(|(c, tasks)| {
            let value = c.facts.attributes.get(name).and_then(|v| v.as_deref());
            let next = ids.len() as u32;
            let id = *ids.entry(value).or_insert(next);
            if id == next {
                counts.push(0);
            }
            counts[id as usize] += tasks;
            id
        })
        .collect();
    Spread { bucket, counts }
}

#[cfg(test)]
mod tests;
