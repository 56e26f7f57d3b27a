//! An in-memory index of every cluster's container instances and tasks, fed by a store observer (DESIGN.md §6,
//! the informer pattern), so that placement, the agent's poll and RunTask's client tokens cost what they touch
//! rather than what the cluster holds. The observer sees each committed change before the commit returns, so the
//! index is never behind its caller's own writes.
//!
//! Each task is kept as a [`TaskSummary`] (what it takes from its instance); an instance's placement view
//! ([`Candidate`]) is recomputed from those summaries whenever one of them changes, so applying a summary twice
//! (once by the placement that wrote the task, once by the observer) changes nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use gantry_model::ecs::{status, ContainerInstance};
use gantry_scheduler::{
    attribute_values, Candidate, PlacementRequest, PlacementStrategy, PortSet, Prepared,
    SpreadField,
};
use gantry_store::{Event, EventKind, Store};
use serde::Deserialize;
use tokio::sync::Notify;

use crate::records::TaskRecord;
use crate::{placement, resources, services};

/// What one task takes from its instance, how the query language sees it, and what the service controller and
/// the stopped-task expiry read of it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskSummary {
    pub instance: Option<String>,
    /// Not STOPPED: holds cpu, memory and ports.
    pub holds: bool,
    pub cpu: i64,
    pub memory: i64,
    pub ports: Vec<(u16, bool)>,
    pub running: bool,
    /// Not yet RUNNING (PROVISIONING, PENDING, ACTIVATING).
    pub pending: bool,
    /// Set while the task counts in its group (spread, distinctInstance, `task:group`): not stopped or stopping.
    pub group: Option<String>,
    /// The task's group whatever its state (a service finds its tasks, stopped ones included, by it).
    pub member_of: Option<String>,
    pub client_token: Option<String>,
    pub started_by: Option<String>,
    /// Desired STOPPED.
    pub stopping: bool,
    pub health_status: Option<String>,
    /// Some container has a health check.
    pub health_checks: bool,
    pub started_at: Option<f64>,
    pub stopped_at: Option<f64>,
    /// Stopped by a failure rather than by a user or the scheduler (the circuit breaker counts these).
    pub failed: bool,
}

/// The members of a task record a summary reads, by their wire names.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Head {
    container_instance_arn: Option<String>,
    last_status: String,
    desired_status: String,
    group: Option<String>,
    started_by: Option<String>,
    health_status: Option<String>,
    started_at: Option<f64>,
    stopped_at: Option<f64>,
    stop_code: Option<String>,
    stopped_reason: Option<String>,
}

/// What a summary reads of a record besides its `task`.
struct Reserved {
    cpu: i64,
    memory: i64,
    ports: Vec<(u16, bool)>,
    health_checks: bool,
    client_token: Option<String>,
}

impl TaskSummary {
    pub fn of(r: &TaskRecord) -> TaskSummary {
        let t = &r.task;
        let head = Head {
            container_instance_arn: t.container_instance_arn.clone(),
            last_status: t.last_status.clone(),
            desired_status: t.desired_status.clone(),
            group: t.group.clone(),
            started_by: t.started_by.clone(),
            health_status: t.health_status.clone(),
            started_at: t.started_at,
            stopped_at: t.stopped_at,
            stop_code: t.stop_code.clone(),
            stopped_reason: t.stopped_reason.clone(),
        };
        TaskSummary::new(
            head,
            Reserved {
                cpu: r.reserved_cpu,
                memory: r.reserved_memory,
                ports: r.host_ports(),
                health_checks: r.containers.iter().any(|c| c.health_check.is_some()),
                client_token: r.client_token.clone(),
            },
        )
    }

    fn new(head: Head, reserved: Reserved) -> TaskSummary {
        let holds = head.last_status != status::STOPPED;
        let stopping = head.desired_status == status::STOPPED;
        TaskSummary {
            instance: head.container_instance_arn,
            holds,
            cpu: reserved.cpu,
            memory: reserved.memory,
            ports: reserved.ports,
            running: head.last_status == status::RUNNING,
            pending: crate::resources::is_pending(&head.last_status),
            member_of: head.group.clone(),
            group: head.group.filter(|_| holds && !stopping),
            client_token: reserved.client_token,
            started_by: head.started_by,
            stopping,
            health_status: head.health_status,
            health_checks: reserved.health_checks,
            started_at: head.started_at,
            stopped_at: head.stopped_at,
            failed: !holds
                && services::is_failure(head.stop_code.as_deref(), head.stopped_reason.as_deref()),
        }
    }

    /// From a stored record, reading only the members the summary needs (cheaper than a whole `TaskRecord`).
    fn from_json(bytes: &[u8]) -> Option<TaskSummary> {
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase", default)]
        struct Mapping {
            host_port: Option<i64>,
            protocol: Option<String>,
        }
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase", default)]
        struct Container {
            port_mappings: Vec<Mapping>,
            health_check: Option<serde::de::IgnoredAny>,
        }
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase", default)]
        struct Lite {
            task: Head,
            containers: Vec<Container>,
            reserved_cpu: i64,
            reserved_memory: i64,
            client_token: Option<String>,
            network_mode: String,
        }
        let r: Lite = serde_json::from_slice(bytes).ok()?;
        // As `TaskRecord::host_ports`: an awsvpc task's ports are on its own address.
        let ports = r
            .containers
            .iter()
            .filter(|_| r.network_mode != "awsvpc")
            .flat_map(|c| c.port_mappings.iter())
            .filter_map(|p| {
                let port = u16::try_from(p.host_port?).ok().filter(|p| *p != 0)?;
                Some((port, p.protocol.as_deref() == Some("udp")))
            })
            .collect();
        Some(TaskSummary::new(
            r.task,
            Reserved {
                cpu: r.reserved_cpu,
                memory: r.reserved_memory,
                ports,
                health_checks: r.containers.iter().any(|c| c.health_check.is_some()),
                client_token: r.client_token,
            },
        ))
    }
}

/// The bookkeeping of one instance, beside its placement view.
struct Instance {
    status: String,
    /// ACTIVE: takes new tasks.
    active: bool,
    /// When its agent was last heard from by this server (kept in memory: a poll is not worth a write).
    last_seen: Option<Instant>,
    registered_cpu: i64,
    registered_memory: i64,
    reserved_ports: Vec<(u16, bool)>,
    held_cpu: i64,
    held_memory: i64,
    port_refs: HashMap<(u16, bool), u32>,
    groups: HashMap<String, u32>,
    running: i64,
}

impl Instance {
    fn new(ci: &ContainerInstance, c: &mut Candidate) -> Instance {
        let mut i = Instance {
            status: String::new(),
            active: false,
            last_seen: None,
            registered_cpu: 0,
            registered_memory: 0,
            reserved_ports: Vec::new(),
            held_cpu: 0,
            held_memory: 0,
            port_refs: HashMap::new(),
            groups: HashMap::new(),
            running: 0,
        };
        i.update(ci, c);
        i
    }

    /// Heard from after `since` (`None`: a timeout longer than the clock's past, which counts every sighting).
    fn heard_since(&self, since: Option<Instant>) -> bool {
        self.last_seen
            .is_some_and(|t| since.is_none_or(|since| t > since))
    }

    /// Takes the record's registration and facts; the task bookkeeping stays.
    fn update(&mut self, ci: &ContainerInstance, c: &mut Candidate) {
        self.status = ci.status.clone();
        self.active = ci.status == "ACTIVE";
        self.registered_cpu = resources::registered_integer(ci, "CPU");
        self.registered_memory = resources::registered_integer(ci, "MEMORY");
        self.reserved_ports = resources::reserved_ports(ci).collect();
        let connected = c.facts.agent_connected;
        c.id = ci.container_instance_arn.clone();
        c.facts = placement::facts(ci);
        c.facts.agent_connected = connected;
        self.refresh(c);
    }

    fn apply(&mut self, s: &TaskSummary, sign: i64) {
        if s.holds {
            self.held_cpu += sign * s.cpu;
            self.held_memory += sign * s.memory;
            for p in &s.ports {
                let n = self.port_refs.entry(*p).or_default();
                *n = n.saturating_add_signed(sign as i32);
                if *n == 0 {
                    self.port_refs.remove(p);
                }
            }
        }
        if s.running {
            self.running += sign;
        }
        if let Some(g) = &s.group {
            let n = self.groups.entry(g.clone()).or_default();
            *n = n.saturating_add_signed(sign as i32);
            if *n == 0 {
                self.groups.remove(g);
            }
        }
    }

    /// Recomputes the placement view from the bookkeeping (placement may have changed it in place).
    fn refresh(&self, c: &mut Candidate) {
        c.cpu_remaining = self.registered_cpu - self.held_cpu;
        c.memory_remaining = self.registered_memory - self.held_memory;
        c.ports_used = self.ports();
        c.facts.running_tasks_count = self.running;
        c.facts.task_groups = self.groups.iter().map(|(g, n)| (g.clone(), *n)).collect();
    }

    /// `refresh`, for only what a task's summary touches: the cost of one task, not of all those on the instance.
    fn refresh_for(&self, s: &TaskSummary, c: &mut Candidate) {
        c.cpu_remaining = self.registered_cpu - self.held_cpu;
        c.memory_remaining = self.registered_memory - self.held_memory;
        if !s.ports.is_empty() {
            c.ports_used = self.ports();
        }
        c.facts.running_tasks_count = self.running;
        if let Some(g) = &s.group {
            match (self.groups.get(g), c.facts.task_groups.get_mut(g)) {
                (Some(n), Some(shown)) => *shown = *n,
                (Some(n), None) => {
                    c.facts.task_groups.insert(g.clone(), *n);
                }
                (None, _) => {
                    c.facts.task_groups.remove(g);
                }
            }
        }
    }

    fn ports(&self) -> PortSet {
        let mut ports = PortSet::default();
        for (port, udp) in self.reserved_ports.iter().chain(self.port_refs.keys()) {
            ports.insert(*port, *udp);
        }
        ports
    }
}

/// One cluster's instances and tasks.
#[derive(Default)]
pub struct ClusterIndex {
    /// Every instance of the cluster as placement sees it, `books` beside it.
    candidates: Vec<Candidate>,
    books: Vec<Instance>,
    /// `[cpu_remaining, memory_remaining]` of each candidate, as one array for placement to read (see `Prepared`).
    resources: Vec<[i64; 2]>,
    position: HashMap<String, usize>,
    /// Shared so that a service's pass over thousands of tasks copies pointers, not summaries.
    tasks: HashMap<String, Arc<TaskSummary>>,
    /// Task ids not STOPPED, per instance ARN (whether or not the instance is known).
    by_instance: HashMap<String, BTreeSet<String>>,
    client_tokens: HashMap<String, BTreeSet<String>>,
    /// Task ids per group, stopped tasks included.
    by_group: HashMap<String, Group>,
    /// Placement's numbers kept between plans (see `Prepared`): per group, its tasks on each instance in
    /// `candidates` order; per attribute, each instance's value numbered. Built when a placement first needs
    /// them; the group columns follow every task change, the attribute columns are dropped when an instance
    /// changes.
    group_columns: HashMap<String, Vec<u32>>,
    attribute_columns: HashMap<String, Vec<u32>>,
    /// New tasks placement recorded before committing them: their creation, when the observer sees it, is
    /// already accounted for and need not be decoded again.
    placed: HashSet<String>,
    /// Per instance ARN, what wakes its agent's long-poll: any change to a task on it, or to its record.
    wakers: HashMap<String, Arc<Notify>>,
    /// Counts of changes: to the tasks of each group, and to any instance record. Equal counts, same facts.
    group_changes: HashMap<String, u64>,
    instance_changes: u64,
    /// The cluster's RUNNING and pending tasks, as DescribeClusters counts them.
    running_tasks: i64,
    pending_tasks: i64,
    /// When `agent_connected` was last worked out for every candidate, and with which timeout; `None` after an
    /// instance record changed.
    connected_as_of: Option<(Instant, Duration)>,
}

/// How stale `agent_connected` may be for an instance whose agent falls silent (one that is heard from counts as
/// connected at once): a pass over every instance per placement is the larger cost at 10,000 instances.
const CONNECTED_REFRESH: Duration = Duration::from_secs(1);

/// A task group's tasks (stopped ones included) by id, and the list the service controller last read, kept
/// until the group changes: a steady service's pass then copies nothing.
#[derive(Default)]
struct Group {
    tasks: BTreeMap<String, Arc<TaskSummary>>,
    listed: Option<GroupList>,
}

/// A group's tasks with their summaries, in id order.
pub type GroupList = Arc<[(String, Arc<TaskSummary>)]>;

/// Group columns kept at most; past that they are built again as placements need them.
const MAX_GROUP_COLUMNS: usize = 64;

impl ClusterIndex {
    /// Every instance as a placement candidate, `agent_connected` only when ACTIVE and heard from within
    /// `timeout` of `now`, with the numbers placement would otherwise derive for `request`. The slice is the
    /// index's own: placement changes it in place, and [`ClusterIndex::put_task`] of the placed tasks then sets
    /// it right. O(instances) array work; O(instances) map lookups when a column has to be built.
    pub fn prepare(
        &mut self,
        request: &PlacementRequest,
        now: Instant,
        timeout: Duration,
    ) -> (&mut [Candidate], Prepared<'_>) {
        let fresh = self.connected_as_of.is_some_and(|(at, t)| {
            t == timeout
                && now
                    .checked_duration_since(at)
                    .is_some_and(|d| d < CONNECTED_REFRESH)
        });
        if !fresh {
            let since = now.checked_sub(timeout);
            for (c, b) in self.candidates.iter_mut().zip(&self.books) {
                c.facts.agent_connected = b.active && b.heard_since(since);
            }
            self.connected_as_of = Some((now, timeout));
        }
        if !self.group_columns.contains_key(&request.group) {
            if self.group_columns.len() >= MAX_GROUP_COLUMNS {
                self.group_columns.clear();
            }
            let column = self
                .candidates
                .iter()
                .map(|c| c.facts.group_tasks(&request.group))
                .collect();
            self.group_columns.insert(request.group.clone(), column);
        }
        for s in &request.strategies {
            if let PlacementStrategy::Spread(SpreadField::Attribute(name)) = s {
                if !self.attribute_columns.contains_key(name) {
                    let column = attribute_values(&self.candidates, name);
                    self.attribute_columns.insert(name.clone(), column);
                }
            }
        }
        let prepared = Prepared {
            group_tasks: self.group_columns.get(&request.group).map(Vec::as_slice),
            attribute_values: Some(&self.attribute_columns),
            resources_remaining: Some(&self.resources),
        };
        (&mut self.candidates, prepared)
    }

    /// What is notified when a task on the instance, or the instance itself, changes.
    pub fn waker(&mut self, arn: &str) -> Arc<Notify> {
        self.wakers.entry(arn.to_string()).or_default().clone()
    }

    fn wake(&self, arn: &str) {
        if let Some(w) = self.wakers.get(arn) {
            w.notify_waiters();
        }
    }

    /// Records that the instance's agent was heard from at `now`.
    pub fn mark_seen(&mut self, arn: &str, now: Instant) {
        if let Some(&i) = self.position.get(arn) {
            self.books[i].last_seen = Some(now);
            self.candidates[i].facts.agent_connected = self.books[i].active;
        }
    }

    /// When the instance's agent was last heard from by this server.
    pub fn last_seen(&self, arn: &str) -> Option<Instant> {
        self.position
            .get(arn)
            .and_then(|&i| self.books[i].last_seen)
    }

    pub fn candidate(&self, position: usize) -> &Candidate {
        &self.candidates[position]
    }

    /// Whether the instance is ACTIVE (takes new tasks).
    pub fn is_active(&self, position: usize) -> bool {
        self.books.get(position).is_some_and(|b| b.active)
    }

    pub fn position(&self, arn: &str) -> Option<usize> {
        self.position.get(arn).copied()
    }

    /// The ids of the tasks on `instance_arn` that are not STOPPED.
    pub fn tasks_on(&self, instance_arn: &str) -> Vec<String> {
        ids(&self.by_instance, instance_arn)
    }

    pub fn tasks_with_token(&self, token: &str) -> Vec<String> {
        ids(&self.client_tokens, token)
    }

    /// The group's tasks, stopped ones included, with their summaries.
    pub fn group_summaries(&mut self, group: &str) -> GroupList {
        let Some(g) = self.by_group.get_mut(group) else {
            return Arc::new([]);
        };
        g.listed
            .get_or_insert_with(|| {
                g.tasks
                    .iter()
                    .map(|(id, t)| (id.clone(), t.clone()))
                    .collect()
            })
            .clone()
    }

    /// How many changes the group's tasks and the cluster's instance records have seen: while both stay the
    /// same, so do the facts a service's pass reads from the index (time aside).
    pub fn changes(&self, group: &str) -> (u64, u64) {
        (
            self.group_changes.get(group).copied().unwrap_or(0),
            self.instance_changes,
        )
    }

    /// Whether every ACTIVE or DRAINING instance was heard from within `timeout` of `now`.
    pub fn all_heard_within(&self, now: Instant, timeout: Duration) -> bool {
        let since = now.checked_sub(timeout);
        self.books
            .iter()
            .filter(|b| b.status != "INACTIVE")
            .all(|b| b.heard_since(since))
    }

    /// Whether any instance takes new tasks.
    pub fn any_active(&self) -> bool {
        self.books.iter().any(|b| b.active)
    }

    /// The ARNs of the instances with this status.
    pub fn instances_with_status(&self, status: &str) -> Vec<String> {
        self.books
            .iter()
            .zip(&self.candidates)
            .filter(|(b, _)| b.status == status)
            .map(|(_, c)| c.id.clone())
            .collect()
    }

    fn put_instance(&mut self, ci: &ContainerInstance) {
        let arn = &ci.container_instance_arn;
        self.wake(arn);
        self.instance_changes += 1;
        self.connected_as_of = None;
        self.attribute_columns.clear();
        if let Some(&i) = self.position.get(arn) {
            self.books[i].update(ci, &mut self.candidates[i]);
            self.resources[i] = remaining(&self.candidates[i]);
            return;
        }
        let mut candidate = Candidate::default();
        let mut inst = Instance::new(ci, &mut candidate);
        // Tasks may have arrived first (after an admin reset, or in key order when loading).
        for id in self.by_instance.get(arn).into_iter().flatten() {
            if let Some(s) = self.tasks.get(id) {
                inst.apply(s, 1);
            }
        }
        inst.refresh(&mut candidate);
        self.group_columns.clear();
        self.position.insert(arn.clone(), self.books.len());
        self.books.push(inst);
        self.resources.push(remaining(&candidate));
        self.candidates.push(candidate);
    }

    fn delete_instance(&mut self, arn: &str) {
        self.wake(arn);
        self.instance_changes += 1;
        self.connected_as_of = None;
        let Some(i) = self.position.remove(arn) else {
            return;
        };
        self.books.swap_remove(i);
        self.candidates.swap_remove(i);
        self.resources.swap_remove(i);
        self.group_columns.clear();
        self.attribute_columns.clear();
        if let Some(moved) = self.candidates.get(i) {
            self.position.insert(moved.id.clone(), i);
        }
    }

    /// Records a task placement created, before the commit that stores it; the store's report of that creation
    /// is then skipped (see `Index::apply`). `put_task(id, None)` takes it back if the commit fails.
    pub fn put_placed_task(&mut self, id: &str, summary: TaskSummary) {
        self.placed.insert(id.to_string());
        self.put_task(id, Some(summary));
    }

    /// Records (or replaces) a task's summary; `None` forgets the task.
    pub fn put_task(&mut self, id: &str, summary: Option<TaskSummary>) {
        if summary.is_none() {
            self.placed.remove(id);
        }
        if let Some(old) = self.tasks.remove(id) {
            self.account(id, &old, -1);
        }
        if let Some(new) = summary {
            let new = Arc::new(new);
            self.account(id, &new, 1);
            self.tasks.insert(id.to_string(), new);
        }
    }

    /// The cluster's RUNNING tasks and those not yet running.
    pub fn task_counts(&self) -> (i64, i64) {
        (self.running_tasks, self.pending_tasks)
    }

    fn account(&mut self, id: &str, s: &Arc<TaskSummary>, sign: i64) {
        self.running_tasks += sign * i64::from(s.running);
        self.pending_tasks += sign * i64::from(s.pending);
        if let Some(arn) = &s.instance {
            self.wake(arn);
            if s.holds {
                add_or_remove(&mut self.by_instance, arn, id, sign);
            }
            if let Some(&i) = self.position.get(arn) {
                let books = &mut self.books[i];
                books.apply(s, sign);
                books.refresh_for(s, &mut self.candidates[i]);
                self.resources[i] = remaining(&self.candidates[i]);
                if let Some(g) = &s.group {
                    if let Some(column) = self.group_columns.get_mut(g) {
                        column[i] = books.groups.get(g).copied().unwrap_or(0);
                    }
                }
            }
        }
        if let Some(token) = &s.client_token {
            add_or_remove(&mut self.client_tokens, token, id, sign);
        }
        if let Some(group) = &s.member_of {
            *self.group_changes.entry(group.clone()).or_default() += 1;
            let g = self.by_group.entry(group.clone()).or_default();
            g.listed = None;
            if sign > 0 {
                g.tasks.insert(id.to_string(), s.clone());
            } else {
                g.tasks.remove(id);
                if g.tasks.is_empty() {
                    self.by_group.remove(group);
                }
            }
        }
    }
}

fn ids(map: &HashMap<String, BTreeSet<String>>, key: &str) -> Vec<String> {
    map.get(key)
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default()
}

/// Adds `id` under `key` (sign > 0) or removes it, dropping emptied keys.
fn add_or_remove(map: &mut HashMap<String, BTreeSet<String>>, key: &str, id: &str, sign: i64) {
    if sign > 0 {
        map.entry(key.to_string())
            .or_default()
            .insert(id.to_string());
    } else if let Some(set) = map.get_mut(key) {
        set.remove(id);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

type Clusters = HashMap<(String, String), ClusterIndex>;

/// The index of every cluster in every region.
#[derive(Default)]
pub struct Index {
    clusters: Mutex<Clusters>,
}

/// `(region, kind, cluster, id)` of an ECS key such as `/ecs/{region}/tasks/{cluster}/{id}`.
fn remaining(c: &Candidate) -> [i64; 2] {
    [c.cpu_remaining, c.memory_remaining]
}

/// One stored change as the index takes it.
enum Change<'a> {
    NewTask(&'a Event),
    Task(Option<Box<TaskSummary>>),
    Instance(Box<ContainerInstance>),
    InstanceGone,
}

fn parse_key(key: &str) -> Option<(&str, &str, &str, &str)> {
    let mut parts = key.strip_prefix("/ecs/")?.splitn(4, '/');
    Some((parts.next()?, parts.next()?, parts.next()?, parts.next()?))
}

impl Index {
    /// Loads the store's instances and tasks and follows every later change.
    pub fn attach<S: Store>(store: &S) -> Arc<Index> {
        let index = Arc::new(Index::default());
        let weak: Weak<Index> = Arc::downgrade(&index);
        let snapshot = store.observe(
            "/ecs/",
            Arc::new(move |events: &[&Event]| {
                if let Some(index) = weak.upgrade() {
                    index.apply(events);
                }
            }),
        );
        let events: Vec<Event> = snapshot
            .into_iter()
            .map(|kv| Event {
                kind: EventKind::Put,
                kv,
            })
            .collect();
        index.apply(&events.iter().collect::<Vec<_>>());
        index
    }

    /// Follows the changes of one commit: records are decoded first, then the index is locked once for all.
    fn apply(&self, events: &[&Event]) {
        let changes: Vec<(&str, &str, &str, Change)> = events
            .iter()
            .filter_map(|e| {
                let (region, kind, cluster, id) = parse_key(&e.kv.key)?;
                let change = match (kind, e.kind) {
                    // Placement's own new tasks need no decoding (see below); other new tasks are rare.
                    ("tasks", EventKind::Put) if e.kv.create_revision == e.kv.mod_revision => {
                        Change::NewTask(e)
                    }
                    ("tasks", EventKind::Put) => {
                        Change::Task(TaskSummary::from_json(&e.kv.value).map(Box::new))
                    }
                    ("tasks", EventKind::Delete) => Change::Task(None),
                    ("instances", EventKind::Put) => {
                        match serde_json::from_slice::<ContainerInstance>(&e.kv.value) {
                            Ok(ci) => Change::Instance(Box::new(ci)),
                            Err(err) => {
                                tracing::warn!(key = %e.kv.key, error = %err, "undecodable instance");
                                return None;
                            }
                        }
                    }
                    ("instances", EventKind::Delete) => Change::InstanceGone,
                    _ => return None,
                };
                Some((region, cluster, id, change))
            })
            .collect();
        if changes.is_empty() {
            return;
        }
        for (region, cluster, id, change) in changes {
            let mut clusters = self.lock();
            let c = clusters
                .entry((region.to_string(), cluster.to_string()))
                .or_default();
            match change {
                // A task placement recorded with the very summary this record gives: nothing to decode, but its
                // agent may now read the record.
                Change::NewTask(_) if c.placed.remove(id) => {
                    if let Some(arn) = c.tasks.get(id).and_then(|t| t.instance.clone()) {
                        c.wake(&arn);
                    }
                }
                Change::NewTask(e) => c.put_task(id, TaskSummary::from_json(&e.kv.value)),
                Change::Task(summary) => c.put_task(id, summary.map(|s| *s)),
                Change::Instance(ci) => c.put_instance(&ci),
                Change::InstanceGone => {
                    let suffix = format!("/{cluster}/{id}");
                    let arn = c
                        .candidates
                        .iter()
                        .find(|i| i.id.ends_with(&suffix))
                        .map(|i| i.id.clone());
                    if let Some(arn) = arn {
                        c.delete_instance(&arn);
                    }
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Clusters> {
        // A panic while holding the lock leaves bookkeeping that is still usable; go on with it.
        self.clusters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `(region, cluster, task id)` of every task, in every cluster, whose summary satisfies `f`.
    pub fn find_tasks(&self, f: impl Fn(&TaskSummary) -> bool) -> Vec<(String, String, String)> {
        let clusters = self.lock();
        let mut out = Vec::new();
        for ((region, cluster), c) in clusters.iter() {
            for (id, t) in &c.tasks {
                if f(t) {
                    out.push((region.clone(), cluster.clone(), id.clone()));
                }
            }
        }
        out
    }

    /// Runs `f` on one cluster's index (an empty one when the cluster has nothing yet). Do not write to the store
    /// inside `f`: the store's observer takes the same lock.
    pub fn with<T>(
        &self,
        region: &str,
        cluster: &str,
        f: impl FnOnce(&mut ClusterIndex) -> T,
    ) -> T {
        let mut clusters = self.lock();
        let c = clusters
            .entry((region.to_string(), cluster.to_string()))
            .or_default();
        f(c)
    }
}

#[cfg(test)]
mod tests {
    use gantry_model::ecs::{ContainerDefinition, PortMapping, Resource, Task};
    use gantry_store::{Txn, WalStore};

    use super::*;
    use crate::repo::encode;

    fn record(on: &str, last: &str, desired: &str, port: i64) -> TaskRecord {
        TaskRecord {
            task: Task {
                container_instance_arn: Some(on.into()),
                last_status: last.into(),
                desired_status: desired.into(),
                group: Some("service:web".into()),
                ..Default::default()
            },
            containers: vec![ContainerDefinition {
                port_mappings: vec![PortMapping {
                    host_port: Some(port),
                    protocol: Some("udp".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            reserved_cpu: 100,
            reserved_memory: 200,
            client_token: Some("tok".into()),
            ..Default::default()
        }
    }

    #[test]
    fn the_light_decoding_reads_what_the_controller_needs() {
        let mut r = record("ci", "STOPPED", "STOPPED", 5000);
        r.task.started_by = Some("ecs-svc/1".into());
        r.task.health_status = Some("UNHEALTHY".into());
        r.task.started_at = Some(10.5);
        r.task.stopped_at = Some(20.25);
        r.task.stop_code = Some("EssentialContainerExited".into());
        r.containers[0].health_check = Some(Default::default());
        let s = TaskSummary::from_json(&encode(&r)).unwrap();
        assert_eq!(s, TaskSummary::of(&r));
        assert!(s.failed && s.health_checks && s.stopping && !s.holds);
        assert_eq!((s.started_at, s.stopped_at), (Some(10.5), Some(20.25)));
        r.task.stop_code = Some("UserInitiated".into());
        assert!(!TaskSummary::of(&r).failed);
    }

    #[test]
    fn the_light_decoding_agrees_with_the_record() {
        for (last, desired) in [
            ("PENDING", "RUNNING"),
            ("RUNNING", "RUNNING"),
            ("RUNNING", "STOPPED"),
            ("STOPPED", "STOPPED"),
        ] {
            for mode in ["bridge", "awsvpc"] {
                let mut r = record("ci", last, desired, 5000);
                r.network_mode = mode.into();
                assert_eq!(
                    TaskSummary::from_json(&encode(&r)),
                    Some(TaskSummary::of(&r))
                );
            }
        }
    }

    fn instance(arn: &str) -> ContainerInstance {
        ContainerInstance {
            container_instance_arn: arn.into(),
            status: "ACTIVE".into(),
            registered_resources: vec![
                Resource::integer("CPU", 1000),
                Resource::integer("MEMORY", 1000),
                Resource::string_set("PORTS", vec!["22".into()]),
            ],
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn the_creation_of_a_placed_task_is_not_decoded_again() {
        let store = WalStore::in_memory().unwrap();
        let index = Index::attach(&store);
        let placed = TaskSummary::of(&record("ci", "PENDING", "RUNNING", 1));
        index.with("r", "c", |c| c.put_placed_task("t1", placed.clone()));
        // What is stored differs from what placement recorded only so the test can tell which one the index kept.
        let stored = record("ci", "PENDING", "RUNNING", 2);
        let key = "/ecs/r/tasks/c/t1";
        let waker = index.with("r", "c", |c| c.waker("ci"));
        let changed = waker.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        store
            .txn(Txn::new().put(key, encode(&stored)))
            .await
            .unwrap();
        let woke = tokio::time::timeout(std::time::Duration::from_secs(1), changed).await;
        let kept = |index: &Index| index.with("r", "c", |c| (*c.tasks["t1"]).clone());
        assert_eq!(kept(&index), placed);
        // The agent's poll woke for the commit (it reads the record, which exists only now).
        assert!(
            woke.is_ok(),
            "the instance's poll was not woken by the commit"
        );
        assert!(index.with("r", "c", |c| c.placed.is_empty()));
        // Later changes are read from the store.
        store
            .txn(Txn::new().put(key, encode(&stored)))
            .await
            .unwrap();
        assert_eq!(kept(&index), TaskSummary::of(&stored));
    }

    #[tokio::test]
    async fn follows_the_store_and_applying_twice_changes_nothing() {
        let store = WalStore::in_memory().unwrap();
        let arn = "arn:aws:ecs:r:1:container-instance/c/i1";
        store
            .txn(Txn::new().put(
                "/ecs/r/tasks/c/t0",
                encode(&record(arn, "RUNNING", "RUNNING", 1)),
            ))
            .await
            .unwrap();
        let index = Index::attach(&store);
        // The task came before its instance: counted once the instance appears.
        store
            .txn(Txn::new().put("/ecs/r/instances/c/i1", encode(&instance(arn))))
            .await
            .unwrap();
        // The candidate, after checking that placement's group column agrees with its facts.
        let view = |index: &Index| {
            index.with("r", "c", |c| {
                let req = PlacementRequest {
                    group: "service:web".into(),
                    ..Default::default()
                };
                let (all, prepared) = c.prepare(&req, Instant::now(), Duration::from_secs(1));
                assert_eq!(all.len(), 1);
                assert_eq!(
                    prepared.group_tasks,
                    Some(&[all[0].facts.group_tasks("service:web")][..])
                );
                assert_eq!(
                    prepared.resources_remaining,
                    Some(&[[all[0].cpu_remaining, all[0].memory_remaining]][..])
                );
                let shown = all[0].clone();
                // What the task-by-task updates show is what a recomputation from the bookkeeping gives.
                let mut recomputed = shown.clone();
                c.books[0].refresh(&mut recomputed);
                assert_eq!(shown, recomputed);
                shown
            })
        };
        let v = view(&index);
        assert_eq!((v.cpu_remaining, v.memory_remaining), (900, 800));
        assert!(v.ports_used.udp.contains(&1) && v.ports_used.tcp.contains(&22));
        assert_eq!(v.facts.running_tasks_count, 1);
        assert_eq!(v.facts.group_tasks("service:web"), 1);
        let counts = |index: &Index| index.with("r", "c", |c| c.task_counts());
        assert_eq!(counts(&index), (1, 0));

        // Placement records its task before committing; the observer's copy of the same summary is a no-op.
        let r = record(arn, "PENDING", "RUNNING", 2);
        index.with("r", "c", |c| c.put_task("t1", Some(TaskSummary::of(&r))));
        store
            .txn(Txn::new().put("/ecs/r/tasks/c/t1", encode(&r)))
            .await
            .unwrap();
        let v = view(&index);
        assert_eq!((v.cpu_remaining, v.memory_remaining), (800, 600));
        assert_eq!(v.facts.group_tasks("service:web"), 2);
        assert_eq!(counts(&index), (1, 1));
        assert_eq!(
            index.with("r", "c", |c| c.tasks_on(arn)),
            vec!["t0".to_string(), "t1".to_string()]
        );

        // Stopping: out of the group at once, resources held until STOPPED.
        store
            .txn(Txn::new().put(
                "/ecs/r/tasks/c/t1",
                encode(&record(arn, "RUNNING", "STOPPED", 2)),
            ))
            .await
            .unwrap();
        let v = view(&index);
        assert_eq!(v.cpu_remaining, 800);
        assert_eq!(v.facts.group_tasks("service:web"), 1);
        store
            .txn(Txn::new().put(
                "/ecs/r/tasks/c/t1",
                encode(&record(arn, "STOPPED", "STOPPED", 2)),
            ))
            .await
            .unwrap();
        store
            .txn(Txn::new().delete("/ecs/r/tasks/c/t0"))
            .await
            .unwrap();
        let v = view(&index);
        assert_eq!(counts(&index), (0, 0));
        assert_eq!((v.cpu_remaining, v.memory_remaining), (1000, 1000));
        assert!(v.ports_used.udp.is_empty());
        assert_eq!(v.facts.task_groups.len(), 0);
        assert!(index.with("r", "c", |c| c.tasks_on(arn)).is_empty());
        assert_eq!(
            index.with("r", "c", |c| c.tasks_with_token("tok")),
            vec!["t1".to_string()]
        );
        let in_group = index.with("r", "c", |c| c.group_summaries("service:web"));
        assert_eq!(in_group.len(), 1);
        assert_eq!(in_group[0].0, "t1");
        assert!(!in_group[0].1.holds && in_group[0].1.stopping);
        assert_eq!(
            index.find_tasks(|t| !t.holds),
            vec![("r".to_string(), "c".to_string(), "t1".to_string())]
        );

        store
            .txn(Txn::new().delete("/ecs/r/instances/c/i1"))
            .await
            .unwrap();
        index.with("r", "c", |c| {
            assert!(c.candidates.is_empty() && c.resources.is_empty())
        });
    }
}
