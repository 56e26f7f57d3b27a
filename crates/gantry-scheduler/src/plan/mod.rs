//! Placing the tasks of one group, one after another, with resources, constraints and strategies, as ECS does:
//! first the instances that fit the task's cpu, memory and ports, then those that satisfy the constraints, then
//! the strategies in order, each choosing among the instances the previous one left tied, and a random choice
//! among what remains.
//!
//! How the best instance is found fast enough for 10,000 instances and thousands of tasks per call: the
//! instances that share every spread attribute value form a *cell*, in which the spread keys are the same for
//! all; within a cell the instances are ordered by their own keys (binpack, spread by instance) and a random
//! tag that breaks ties. A plan of `count` tasks only ever needs each cell's best `count` (an instance outside
//! them is never better than one of them that has not been chosen yet, since only the chosen instance changes),
//! so one pass keeps those, and each task then costs O(cells + log count): the cells' firsts compared with the
//! spread counts filled in. This relies on two facts: within one plan an instance only loses resources and only
//! gains tasks of the group, and only the instance that took a task changes. So an instance that cannot take the
//! task stays unable for the rest of the plan (it could only gain the group's tasks by taking one).

use std::collections::{BTreeSet, BinaryHeap, HashMap};

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
    plan_prepared(candidates, request, count, rng, Prepared::default())
}

/// Numbers about the candidates that `plan` would otherwise derive from their facts, for a caller that keeps
/// them up to date between plans (as an index does): reading them is an array copy where deriving them is a
/// map lookup per instance. Each must agree with the facts; what is `None` (or missing) is derived.
#[derive(Debug, Clone, Copy, Default)]
pub struct Prepared<'a> {
    /// `facts.group_tasks(request.group)` of every candidate, in candidate order.
    pub group_tasks: Option<&'a [u32]>,
    /// Per attribute name: every candidate's value of the attribute as a number, equal values as equal numbers
    /// (having no value, or not having the attribute, is one more value).
    pub attribute_values: Option<&'a HashMap<String, Vec<u32>>>,
    /// `[cpu_remaining, memory_remaining]` of every candidate, in candidate order: read in one array where the
    /// candidates themselves are a cache miss each.
    pub resources_remaining: Option<&'a [[i64; 2]]>,
}

/// `plan`, with some of its inputs precomputed.
pub fn plan_prepared(
    candidates: &mut [Candidate],
    request: &PlacementRequest,
    count: usize,
    rng: &mut impl Rng,
    prepared: Prepared<'_>,
) -> Vec<Result<Placement, Unplaced>> {
    let mut planner = Planner::new(candidates, request, count, prepared, rng);
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        match planner.choose(rng) {
            Some(i) => out.push(Ok(planner.place(i, rng))),
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

/// An instance's place in its cell: its own key values (spread keys left at zero), a random tag, its index.
type Rank = ([i64; MAX_STRATEGIES], u64, u32);

/// Instances with the same values of every spread attribute, the best of them ordered.
struct Cell {
    /// The bucket of each spread, in `spreads` order.
    buckets: Vec<u32>,
    best: BTreeSet<Rank>,
}

enum Choice {
    /// No strategy ranks (only `random`): any instance that can take the task, picked uniformly.
    Random { eligible: Vec<u32> },
    Ranked {
        cells: Vec<Cell>,
        cell_of: Vec<u32>,
        seed: u64,
    },
}

struct Planner<'a> {
    candidates: &'a mut [Candidate],
    request: &'a PlacementRequest,
    /// The strategies up to the first `random` (which leaves a random choice, as the final tie-break does).
    keys: Vec<Key>,
    spreads: Vec<Spread>,
    group_tasks: Vec<u32>,
    choice: Choice,
    /// The instance that got furthest through the checks: among those `admit_all` found unable (the first on a
    /// tie), and among those that became unable by taking a task (`note`d later, the first on a tie).
    closest: Option<(usize, PlacementFailure)>,
    /// Instances `admit_all` found short of cpu or memory, whose failure is worked out only if a task fails: on
    /// a cluster binpack has filled they are the ones ranked first, thousands of them, checked on every plan.
    /// Nothing changes them during the plan (they take no task), so the later check is the same.
    short: Vec<u32>,
    /// `closest` as `admit_all` left it, the `short` instances aside.
    admitted_closest: Option<(usize, PlacementFailure)>,
}

impl<'a> Planner<'a> {
    fn new(
        candidates: &'a mut [Candidate],
        request: &'a PlacementRequest,
        count: usize,
        prepared: Prepared<'_>,
        rng: &mut impl Rng,
    ) -> Self {
        let group_tasks: Vec<u32> = match prepared.group_tasks {
            Some(counts) => counts.to_vec(),
            None => candidates
                .iter()
                .map(|c| c.facts.group_tasks(&request.group))
                .collect(),
        };
        let mut keys = Vec::with_capacity(MAX_STRATEGIES);
        let mut spreads = Vec::new();
        for s in &request.strategies {
            let key = match s {
                PlacementStrategy::Random => break,
                PlacementStrategy::Binpack(BinpackField::Cpu) => Key::Cpu,
                PlacementStrategy::Binpack(BinpackField::Memory) => Key::Memory,
                PlacementStrategy::Spread(SpreadField::Instance) => Key::Instance,
                PlacementStrategy::Spread(SpreadField::Attribute(name)) => {
                    let bucket = match prepared.attribute_values.and_then(|v| v.get(name)) {
                        Some(values) => values.clone(),
                        None => attribute_values(candidates, name),
                    };
                    spreads.push(Spread::new(bucket, &group_tasks));
                    Key::Bucket(spreads.len() - 1)
                }
            };
            keys.push(key);
        }
        let choice = if keys.is_empty() {
            Choice::Random {
                eligible: Vec::new(),
            }
        } else {
            let cell_of = cells_of(&spreads, candidates.len());
            Choice::Ranked {
                cells: Vec::new(),
                cell_of,
                seed: rng.gen(),
            }
        };
        let mut planner = Planner {
            candidates,
            request,
            keys,
            spreads,
            group_tasks,
            choice,
            closest: None,
            short: Vec::new(),
            admitted_closest: None,
        };
        planner.admit_all(count.max(1), prepared.resources_remaining);
        planner.admitted_closest = planner.closest.take();
        planner
    }

    /// One pass over every instance: notes why those that cannot take the task cannot, and keeps those that
    /// can (for a ranked choice, each cell's best `keep`).
    fn admit_all(&mut self, keep: usize, prepared_resources: Option<&[[i64; 2]]>) {
        let cell_of = match &mut self.choice {
            Choice::Ranked { cell_of, .. } => std::mem::take(cell_of),
            Choice::Random { .. } => {
                for i in 0..self.candidates.len() {
                    match self.check(i) {
                        Err(f) => self.note(i, f),
                        Ok(()) => {
                            if let Choice::Random { eligible } = &mut self.choice {
                                eligible.push(i as u32);
                            }
                        }
                    }
                }
                return;
            }
        };
        let mut heaps: Vec<BinaryHeap<Rank>> = Vec::new();
        for (i, &cell) in cell_of.iter().enumerate() {
            let cell = cell as usize;
            if heaps.len() <= cell {
                heaps.resize_with(cell + 1, BinaryHeap::new);
            }
            let resources = match prepared_resources {
                Some(r) => {
                    let c = &self.candidates[i];
                    debug_assert_eq!(r[i], [c.cpu_remaining, c.memory_remaining]);
                    r[i]
                }
                None => {
                    let c = &self.candidates[i];
                    [c.cpu_remaining, c.memory_remaining]
                }
            };
            let heap = &mut heaps[cell];
            // Ranked out by `keep` instances that can take the task: whether this one can does not matter, and
            // neither does why not, since with that many able instances no task of the plan fails.
            let full = heap.len() >= keep;
            if full
                && heap
                    .peek()
                    .is_some_and(|worst| !self.ranks_below(i, resources, worst))
            {
                continue;
            }
            let demand = &self.request.demand;
            if resources[0] < demand.cpu || resources[1] < demand.memory {
                self.short.push(i as u32);
                continue;
            }
            let rank = self.rank_of(i, resources);
            if let Err(f) = self.check(i) {
                self.note(i, f);
                continue;
            }
            if full {
                heap.pop();
            }
            heap.push(rank);
        }
        let Choice::Ranked {
            cells,
            cell_of: kept,
            ..
        } = &mut self.choice
        else {
            return;
        };
        *kept = cell_of;
        for heap in heaps {
            // Every member of a cell has the same buckets; an empty cell never comes first.
            let buckets = match heap.peek() {
                Some(&(_, _, i)) => self.spreads.iter().map(|s| s.bucket[i as usize]).collect(),
                None => Vec::new(),
            };
            cells.push(Cell {
                buckets,
                best: heap.into_iter().collect(),
            });
        }
    }

    /// The instance's own key values and tag (a hash of its index with the plan's seed: random, yet fixed for
    /// the plan, so that an instance keeps its place among its ties).
    fn rank(&self, i: usize) -> Rank {
        let c = &self.candidates[i];
        self.rank_of(i, [c.cpu_remaining, c.memory_remaining])
    }

    /// `rank`, with the instance's `[cpu, memory]` remaining given. Inlined: the hot loop of `admit_all`.
    #[inline(always)]
    fn rank_of(&self, i: usize, [cpu, memory]: [i64; 2]) -> Rank {
        let Choice::Ranked { seed, .. } = self.choice else {
            return ([0; MAX_STRATEGIES], 0, i as u32);
        };
        let mut values = [0; MAX_STRATEGIES];
        for (v, key) in values.iter_mut().zip(&self.keys) {
            *v = self.own_value(*key, i, [cpu, memory]);
        }
        (values, mix(seed ^ i as u64), i as u32)
    }

    /// The instance's value for one key of its rank (spread keys are the cell's, left at zero here).
    #[inline(always)]
    fn own_value(&self, key: Key, i: usize, [cpu, memory]: [i64; 2]) -> i64 {
        match key {
            Key::Cpu => cpu,
            Key::Memory => memory,
            Key::Instance => self.group_tasks[i] as i64,
            Key::Bucket(_) => 0,
        }
    }

    /// Whether the instance's rank is less than `other`, without building it (most instances of a large
    /// cluster are compared once and dropped).
    #[inline(always)]
    fn ranks_below(&self, i: usize, resources: [i64; 2], other: &Rank) -> bool {
        for (key, &theirs) in self.keys.iter().zip(&other.0) {
            let mine = self.own_value(*key, i, resources);
            if mine != theirs {
                return mine < theirs;
            }
        }
        let Choice::Ranked { seed, .. } = self.choice else {
            return (i as u32) < other.2;
        };
        (mix(seed ^ i as u64), i as u32) < (other.1, other.2)
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
        // The order `admit_all` would have noted them in: by failure, then by instance; later notes after.
        let mut closest = self.admitted_closest;
        for &i in &self.short {
            let i = i as usize;
            if let Err(f) = self.check(i) {
                if closest.is_none_or(|(j, g)| f > g || (f == g && i < j)) {
                    closest = Some((i, f));
                }
            }
        }
        if let Some((i, f)) = self.closest {
            if closest.is_none_or(|(_, g)| f > g) {
                closest = Some((i, f));
            }
        }
        match closest {
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

    /// The instance to take the next task, `None` when none can: the least rank over the cells' firsts, with
    /// each cell's spread counts in their places.
    fn choose(&self, rng: &mut impl Rng) -> Option<usize> {
        match &self.choice {
            Choice::Random { eligible } if eligible.is_empty() => None,
            Choice::Random { eligible } => {
                Some(eligible[rng.gen_range(0..eligible.len())] as usize)
            }
            Choice::Ranked { cells, .. } => cells
                .iter()
                .filter_map(|cell| {
                    let &(mut values, tag, i) = cell.best.first()?;
                    for (v, key) in values.iter_mut().zip(&self.keys) {
                        if let Key::Bucket(s) = *key {
                            *v = self.spreads[s].counts[cell.buckets[s] as usize] as i64;
                        }
                    }
                    Some((values, tag, i))
                })
                .min()
                .map(|(_, _, i)| i as usize),
        }
    }

    /// Places a task on instance `i`, updating everything the next choice reads.
    fn place(&mut self, i: usize, rng: &mut impl Rng) -> Placement {
        let before = self.rank(i);
        let c = &mut self.candidates[i];
        let dynamic_ports = take(c, &self.request.demand, rng);
        add_group_task(c, &self.request.group);
        self.group_tasks[i] += 1;
        for s in &mut self.spreads {
            s.counts[s.bucket[i] as usize] += 1;
        }
        let able = self.check(i);
        let after = self.rank(i);
        match &mut self.choice {
            Choice::Random { eligible } => {
                if able.is_err() {
                    if let Some(pos) = eligible.iter().position(|&e| e as usize == i) {
                        eligible.swap_remove(pos);
                    }
                }
            }
            Choice::Ranked { cells, cell_of, .. } => {
                let best = &mut cells[cell_of[i] as usize].best;
                best.remove(&before);
                if able.is_ok() {
                    best.insert(after);
                }
            }
        }
        if let Err(f) = able {
            self.note(i, f);
        }
        Placement {
            candidate: i,
            dynamic_ports,
        }
    }
}

/// Numbers the cells: instances share a cell when they share the bucket of every spread. O(instances x spreads).
fn cells_of(spreads: &[Spread], n: usize) -> Vec<u32> {
    let Some((first, rest)) = spreads.split_first() else {
        return vec![0; n];
    };
    let mut cell_of = first.bucket.clone();
    for s in rest {
        let values = s.counts.len() as u64;
        let mut ids: HashMap<u64, u32> = HashMap::new();
        for (cell, bucket) in cell_of.iter_mut().zip(&s.bucket) {
            let next = ids.len() as u32;
            *cell = *ids
                .entry(*cell as u64 * values + *bucket as u64)
                .or_insert(next);
        }
    }
    cell_of
}

/// A 64-bit mixing function (splitmix64's finalizer): distinct inputs give unrelated outputs.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Numbers the values of attribute `name` across the candidates (those without it, or without a value, share
/// one), as `Prepared::attribute_values` holds them.
pub fn attribute_values(candidates: &[Candidate], name: &str) -> Vec<u32> {
    let mut ids: HashMap<Option<&str>, u32> = HashMap::new();
    candidates
        .iter()
        .map(|c| {
            let value = c.facts.attributes.get(name).and_then(|v| v.as_deref());
            let next = ids.len() as u32;
            *ids.entry(value).or_insert(next)
        })
        .collect()
}

impl Spread {
    /// Counts the group's tasks per value.
    fn new(bucket: Vec<u32>, group_tasks: &[u32]) -> Spread {
        let values = bucket.iter().max().map_or(0, |m| *m as usize + 1);
        let mut counts = vec![0; values];
        for (b, tasks) in bucket.iter().zip(group_tasks) {
            counts[*b as usize] += tasks;
        }
        Spread { bucket, counts }
    }
}

#[cfg(test)]
mod tests;
