use std::collections::BTreeMap;

/// What the cluster query language can ask about a container instance (see `query`).
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceFacts {
    pub agent_connected: bool,
    /// The agent's version, such as `1.14.5`.
    pub agent_version: String,
    /// Attributes by name; an attribute may have no value.
    pub attributes: BTreeMap<String, Option<String>>,
    pub ec2_instance_id: Option<String>,
    /// Registration time, epoch seconds.
    pub registered_at: i64,
    pub running_tasks_count: i64,
    /// Tasks on the instance (pending or running) per task group; counts are above zero.
    pub task_groups: BTreeMap<String, u32>,
}

impl Default for InstanceFacts {
    /// A connected instance with nothing else known: callers that only care about resources need not say more.
    fn default() -> Self {
        InstanceFacts {
            agent_connected: true,
            agent_version: String::new(),
            attributes: BTreeMap::new(),
            ec2_instance_id: None,
            registered_at: 0,
            running_tasks_count: 0,
            task_groups: BTreeMap::new(),
        }
    }
}

impl InstanceFacts {
    pub fn attribute(&self, name: &str) -> Option<&Option<String>> {
        self.attributes.get(name)
    }

    /// How many tasks of `group` the instance holds.
    pub fn group_tasks(&self, group: &str) -> u32 {
        self.task_groups.get(group).copied().unwrap_or(0)
    }
}
